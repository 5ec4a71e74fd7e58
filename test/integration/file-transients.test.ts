/**
 * Transient states of the bindings directory are not deletions: with one
 * binding serving two backends through the real nginx at 20 requests/s, a
 * file truncated for 3 s, cut off mid-document, moved out for 4 s, and the
 * whole directory missing for 1 s and 7 s must fail no request, write nothing
 * to Consul and reload nothing. A real removal still deregisters and removes
 * the generated file, after --delete-delay (default 10 s).
 */
import assert from "node:assert/strict";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { controllerGet } from "../support/controllerHttp.js";
import { runBackend } from "../support/docker.js";
import { cleanupAll } from "../support/teardown.js";
import { startLoad } from "../support/traffic.js";
import { delay, freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

let world: World;
let port = 0;
const FILE = "web.yaml";
const figures: string[] = [];

/** Runs `disturb` under load; asserts 0 failed requests, 0 Consul writes, 0 nginx reloads. */
async function withoutEffect(name: string, disturb: () => Promise<void>): Promise<void> {
  const writesBefore = world.proxy.writes().length;
  const reloadsBefore = await world.nginx.reloadCount();
  const l = startLoad(world.nginx, port);
  await delay(500);
  await disturb();
  await delay(1_500);
  const r = await l.stop();
  figures.push(`${name}: ${r.failed} of ${r.sent} requests failed`);
  assert.equal(r.failed, 0, `${name}: failed requests: ${r.failures.slice(0, 5).join(" | ")}`);
  assert.ok(r.sent >= 40, `${name}: the load ran (${r.sent} requests)`);
  assert.deepEqual(world.proxy.writes().slice(writesBefore), [], `${name}: Consul writes`);
  assert.equal(await world.nginx.reloadCount(), reloadsBefore, `${name}: nginx reloads`);
}

before(async () => {
  world = await startWorld("transients");
  port = await freePort();
  world.writeFile(FILE, bindingYaml({ name: "web", service: "transients-web", app: "transients-web", listenPort: port }));
  await Promise.all([
    runBackend({ name: "transients-1", labels: { app: "transients-web" }, env: { NAME: "t1" } }),
    runBackend({ name: "transients-2", labels: { app: "transients-web" }, env: { NAME: "t2" } }),
  ]);
  await world.startController();
  await waitFor(async () => ((await world.health("transients-web")).filter((e) => e.status === "passing").length === 2 ? true : undefined), {
    timeoutMs: 30_000,
    what: "2 passing backends",
  });
  await world.servedExactly(port, ["t1", "t2"]);
  await world.nginx.settled();
});

after(async () => {
  for (const f of figures) process.stdout.write(`# ${f}\n`);
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("transient file states are not deletions (requests flowing through nginx)", () => {
  it("a binding file truncated to zero bytes for 3 s and written back (non-atomically)", async () => {
    const path = join(world.bindingsDir, FILE);
    const text = readFileSync(path, "utf8");
    const c = world.controller;
    assert.ok(c);
    await withoutEffect("truncated 3 s", async () => {
      writeFileSync(path, "");
      await c.waitForLog((l) => l.message === "invalid binding" && l.field === "(file)" && /file is empty/.test(String(l.error)), "empty file reported");
      const status = JSON.parse((await controllerGet(c, "/api/status")).body) as { problems: { source: string; message: string }[] };
      assert.ok(
        status.problems.some((p) => p.source === path && /file is empty/.test(p.message)),
        JSON.stringify(status.problems),
      );
      await delay(3_000);
      writeFileSync(path, text);
    });
  });

  it("a binding file cut off mid-document for 3 s", async () => {
    const path = join(world.bindingsDir, FILE);
    const text = readFileSync(path, "utf8");
    await withoutEffect("cut mid-document 3 s", async () => {
      writeFileSync(path, text.slice(0, text.indexOf("backends:") + 14));
      await delay(3_000);
      writeFileSync(path, text);
    });
  });

  it("the binding file moved out of the directory for 4 s: held as Deleting, warned as a mass deletion, cancelled", async () => {
    const c = world.controller;
    assert.ok(c);
    const path = join(world.bindingsDir, FILE);
    const away = join(world.bindingsDir, "..", `${FILE}.away-${process.pid}`);
    const massBefore = c.logs().filter((l) => l.message.startsWith("bindings scan would delete most bindings")).length;
    await withoutEffect("moved out 4 s", async () => {
      renameSync(path, away);
      await c.waitForLog((l) => l.message.startsWith("binding removed; deleting it after the delete delay"), "deletion held");
      const status = JSON.parse((await controllerGet(c, "/api/status")).body) as {
        bindings: { key: string; deleting?: { remainingSeconds: number; mass: boolean } }[];
      };
      const deleting = status.bindings.find((b) => b.key === "default/web")?.deleting;
      assert.ok(deleting !== undefined && deleting.remainingSeconds > 0 && deleting.remainingSeconds <= 10 && deleting.mass, JSON.stringify(status.bindings));
      assert.match((await controllerGet(c, "/")).body, /Deleting in \d+s/, "the status page shows the hold");
      const metrics = (await controllerGet(c, "/metrics")).body;
      assert.match(metrics, /^dockbind_bindings_deleting 1$/m);
      assert.match(metrics, /^dockbind_binding_mass_deletions_total 1$/m);
      await delay(4_000);
      renameSync(away, path);
      await c.waitForLog((l) => l.message === "binding deletion cancelled: the binding is back", "deletion cancelled");
    });
    const warned = c.logs().filter((l) => l.message.startsWith("bindings scan would delete most bindings"));
    assert.equal(warned.length - massBefore, 1, "the mass deletion is warned once");
    assert.equal(warned.at(-1)?.level, "warn");
  });

  for (const seconds of [1, 7]) {
    it(`the whole bindings directory missing for ${seconds} s`, async () => {
      const c = world.controller;
      assert.ok(c);
      const away = `${world.bindingsDir}.away`;
      await withoutEffect(`directory missing ${seconds} s`, async () => {
        renameSync(world.bindingsDir, away);
        await delay(seconds * 1_000);
        renameSync(away, world.bindingsDir);
      });
    });
  }

  it("a real removal deregisters both backends and removes the generated file, after the delete delay", async () => {
    const c = world.controller;
    assert.ok(c);
    assert.ok(world.lbFile("web.conf")?.includes("upstream"));
    const removedAt = Date.now();
    world.removeFile(FILE);
    await waitFor(async () => ((await world.health("transients-web")).length === 0 ? true : undefined), {
      timeoutMs: 30_000,
      what: "transients-web deregistered",
    });
    const deregisteredAfter = Date.now() - removedAt;
    await waitFor(() => (world.lbFile("web.conf") === undefined ? true : undefined), { timeoutMs: 10_000, what: "web.conf removed" });
    const fileGoneAfter = Date.now() - removedAt;
    figures.push(
      `real removal: deregistered after ${(deregisteredAfter / 1000).toFixed(1)} s, web.conf removed after ${(fileGoneAfter / 1000).toFixed(1)} s (--delete-delay 10s)`,
    );
    assert.ok(deregisteredAfter >= 9_500, `deregistered only after the delay (${deregisteredAfter} ms)`);
    assert.ok(deregisteredAfter < 20_000, `and not much later (${deregisteredAfter} ms)`);
    // The reload that drops the server block follows the file removal (nginx reloads asynchronously).
    await waitFor(async () => ((await world.nginx.get(port).catch(() => ({ status: 0 }))).status !== 200 ? true : undefined), {
      timeoutMs: 10_000,
      what: "nginx no longer serving the binding",
    });
  });
});
