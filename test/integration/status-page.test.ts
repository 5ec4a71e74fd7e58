/**
 * Issue #5 acceptance: the status page of a running controller (2 bindings,
 * one with a failing backend) loaded in real headless Chromium (Debian
 * `chromium`, driven by playwright-core; no browser download). Asserts what a
 * person sees: bindings, backend health badges, counts; that the page is
 * self-contained and read-only; and that hostile text is shown, not executed.
 * Leaves a screenshot at /tmp/dockbind-testbed/status-page.png.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import type { StatusDocument } from "../../src/observability/statusModel.js";
import { controllerCommand, type ControllerHandle } from "../support/controller.js";
import { controllerGet, controllerHttpAddr } from "../support/controllerHttp.js";
import { runBackend } from "../support/docker.js";
import { run, type RunResult } from "../support/exec.js";
import { ensureBedRoot } from "../support/procs.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT = join(ensureBedRoot(), "status-page.png");
const EVIL_FILE = "<i>evil.yaml";
/** A Consul ACL token (the dev agent has ACLs off and ignores it): must never be shown. */
const SECRET = `dockbind-secret-${process.pid}-7f3a9c`;
const tokenFile = join(ensureBedRoot(), `statuspage-token-${process.pid}`);
let world: World;
let controller: ControllerHandle;
let base: string;
let profile: string;
let browser: BrowserContext | undefined;
let page: Page;
const foreignRequests: string[] = [];

async function status(): Promise<StatusDocument> {
  return JSON.parse((await controllerGet(controller, "/api/status")).body) as StatusDocument;
}

function healthOf(doc: StatusDocument, key: string): string[] {
  return (doc.bindings.find((b) => b.key === key)?.backends ?? []).map((b) => b.health).sort();
}

before(async () => {
  world = await startWorld("statuspage");
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: "page-web", app: "page-web", listenPort: await freePort() }));
  world.writeFile("api.yaml", bindingYaml({ name: "api", service: "page-api", app: "page-api", listenPort: await freePort() }));
  writeFileSync(tokenFile, `${SECRET}\n`, { mode: 0o600 });
  controller = await world.startController(["--consul-token-file", tokenFile]);
  base = `http://${await controllerHttpAddr(controller)}`;
  await runBackend({ name: "page-web-1", labels: { app: "page-web" }, env: { NAME: "w1" } });
  await runBackend({ name: "page-web-2", labels: { app: "page-web" }, env: { NAME: "w2" } });
  await runBackend({ name: "page-api-1", labels: { app: "page-api" }, env: { NAME: "a1" } });
  await runBackend({ name: "page-api-bad", labels: { app: "page-api" }, env: { NAME: "bad", FAIL_HEALTH: "1" } });
  await waitFor(
    async () => {
      const doc = await status();
      const passing = doc.bindings.map((b) => `${b.key}=${b.counts.registered}/${b.counts.passing}`).join();
      return healthOf(doc, "default/web").join() === "passing,passing" &&
        healthOf(doc, "default/api").join() === "critical,passing" &&
        passing === "default/api=2/1,default/web=2/2"
        ? true
        : undefined;
    },
    { timeoutMs: 40_000, what: "status: web 2 passing, api 1 passing + 1 critical, counts rendered" },
  );
  profile = mkdtempSync(join(ensureBedRoot(), "chromium-profile-"));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    viewport: { width: 1280, height: 900 },
    timeout: 60_000,
  });
  page = await browser.newPage();
  page.on("request", (r) => {
    if (!r.url().startsWith(base)) foreignRequests.push(r.url());
  });
});

after(async () => {
  await browser?.close();
  rmSync(profile, { recursive: true, force: true });
  rmSync(tokenFile, { force: true });
  await controller.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("status page in headless Chromium", () => {
  it("shows both bindings with their backends and health", async () => {
    const res = await page.goto(`${base}/`);
    assert.equal(res?.status(), 200);
    assert.match(await page.title(), /dockbind status — statuspage/);
    const api = page.locator('section[data-binding="default/api"]');
    const web = page.locator('section[data-binding="default/web"]');
    assert.equal(
      await api
        .locator("h2")
        .innerText()
        .then((t) => t.includes("default/api")),
      true,
    );
    assert.equal(await api.locator('[data-backend-health="passing"]').count(), 1);
    assert.equal(await api.locator('[data-backend-health="critical"]').count(), 1);
    assert.match(await api.locator('[data-backend-health="critical"]').innerText(), /page-api-bad[\s\S]*critical/);
    assert.equal(await web.locator('[data-backend-health="passing"]').count(), 2);
    assert.equal(await web.locator("[data-backend-health]").count(), 2);
    for (const [section, passing] of [
      [api, "1"],
      [web, "2"],
    ] as const) {
      assert.equal(await section.locator('[data-count="desired"]').innerText(), "2");
      assert.equal(await section.locator('[data-count="registered"]').innerText(), "2");
      assert.equal(await section.locator('[data-count="passing"]').innerText(), passing);
      assert.equal(await section.getAttribute("data-ready"), "True");
    }
    assert.match(await page.locator("[data-last-reload]").innerText(), /ok[\s\S]*last nginx reload/);
  });

  it("refreshes itself, loads nothing from elsewhere and is read-only", async () => {
    assert.equal(await page.locator('meta[http-equiv="refresh"]').getAttribute("content"), "5");
    assert.deepEqual(foreignRequests, []);
    assert.equal(await page.locator("script, form, link[rel=stylesheet], img, iframe").count(), 0);
    const csp = (await page.goto(`${base}/`))?.headers()["content-security-policy"] ?? "";
    assert.match(csp, /default-src 'none'/);
    const post = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/`, { method: "POST" }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end("x=1");
    });
    assert.equal(post, 405);
  });

  it("`controller status` prints the same bindings and backends from the running controller", async () => {
    const cli = (...args: string[]): Promise<RunResult> =>
      run(process.execPath, [...controllerCommand(), "status", "--addr", base.slice("http://".length), ...args], {
        timeoutMs: 60_000,
      });
    const text = await cli();
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^default\/api\s+page-api\s+True\s+2\s+2\s+1\s+Reloaded/m);
    assert.match(text.stdout, /^default\/web\s+page-web\s+True\s+2\s+2\s+2\s+Reloaded/m);
    assert.match(text.stdout, /^ {2}page-api-bad\s+127\.0\.0\.1:\d+\s+critical$/m);
    assert.match(text.stdout, /^ready: yes$/m);
    const json = await cli("--output", "json");
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as StatusDocument;
    assert.deepEqual(
      doc.bindings.map((b) => [b.key, b.counts.passing]),
      [
        ["default/api", 1],
        ["default/web", 2],
      ],
    );
    const down = await run(process.execPath, [...controllerCommand(), "status", "--addr", `127.0.0.1:${await freePort()}`], {
      timeoutMs: 60_000,
    });
    assert.equal(down.code, 1);
    assert.match(down.stderr, /ECONNREFUSED/);
  });

  it("never shows the Consul token: not in /metrics, /api/status, the page or the logs", async () => {
    for (const path of ["/metrics", "/api/status", "/", "/healthz", "/readyz"]) {
      const r = await controllerGet(controller, path);
      assert.equal(r.status, 200, path);
      assert.ok(!r.body.includes(SECRET), `${path} leaks the token`);
    }
    assert.ok(!readFileSync(controller.logFile, "utf8").includes(SECRET), "the log leaks the token");
  });

  it("shows an invalid binding file by name, escaped, and saves a screenshot", async () => {
    world.writeFile(
      EVIL_FILE,
      'apiVersion: dockbind.io/v1alpha1\nkind: ServiceBinding\nmetadata: {name: "<b>x</b>"}\nspec: {service: {name: y}, backends: {selector: {matchLabels: {a: b}}, port: 80}}\n',
    );
    await waitFor(async () => ((await status()).problems.length > 0 ? true : undefined), { timeoutMs: 20_000, what: "binding problem reported" });
    await page.goto(`${base}/`);
    const problems = page.locator('[data-section="problems"]');
    assert.match(await problems.innerText(), /<i>evil\.yaml[\s\S]*metadata\.name/);
    assert.equal(await problems.locator("i, b").count(), 0, "file names and messages are text, never markup");
    assert.match(await page.locator('[data-section="errors"]').innerText(), /invalid binding/);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    world.removeFile(EVIL_FILE);
  });
});
