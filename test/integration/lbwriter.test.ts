/**
 * LB actuator against a real nginx (no mocks): candidate validation of every
 * hostile render, and the consul-template write contract (byte compare,
 * validate, atomic swap, live validate + restore, reload, pending reload)
 * against a throwaway nginx master listening on 127.0.0.1 only.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { readIfExists, writeFileAtomic } from "../../src/actuators/lb/atomicFile.js";
import { LbConfigWriter } from "../../src/actuators/lb/configWriter.js";
import { LbError } from "../../src/actuators/lb/errors.js";
import { NginxDriver } from "../../src/actuators/lb/nginxDriver.js";
import type { HealthInstance, LoadBalancerSpec } from "../../src/domain/types.js";
import { renderNginx } from "../../src/render/nginx.js";
import { startNginx, type NginxHandle } from "../support/nginx.js";
import { delay, freePort, waitFor } from "../support/wait.js";
import { hostileCases } from "../support/hostileRender.js";

const NGINX_BIN = existsSync("/usr/sbin/nginx") ? "/usr/sbin/nginx" : "nginx";

let nginx: NginxHandle;
let backend: Server;
let backendPort: number;
let scratch: string;

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), "dockbind-lbwriter-"));
  backend = createServer((_req, res) => {
    res.end("backend-ok");
  });
  backendPort = await freePort();
  await new Promise<void>((resolve) => backend.listen(backendPort, "127.0.0.1", resolve));
  nginx = await startNginx();
});

after(async () => {
  await nginx.stop();
  await new Promise<void>((resolve) =>
    backend.close(() => {
      resolve();
    }),
  );
  await rm(scratch, { recursive: true, force: true });
});

function isLbError(reason: LbError["reason"]): (e: unknown) => boolean {
  return (e: unknown) => e instanceof LbError && e.reason === reason;
}

function lbSpec(port: number, over: Partial<LoadBalancerSpec> = {}): LoadBalancerSpec {
  return { kind: "nginx", listen: { address: "127.0.0.1", port }, onlyPassing: true, method: "round_robin", output: "x.conf", ...over };
}

function backendInstance(): HealthInstance {
  return { serviceId: "web-1", node: "n1", address: "127.0.0.1", port: backendPort, tags: [], status: "passing" };
}

async function dotFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.startsWith("."));
}

test("every hostile-table render passes `nginx -t` on its own (validateCandidate)", async () => {
  const driver = new NginxDriver({ nginxBin: NGINX_BIN, timeoutMs: 10_000 });
  const port = await freePort();
  const inputs = [
    ...hostileCases(lbSpec(port, { method: "least_conn", serverName: "*.example.com" })),
    ...hostileCases(lbSpec(port, { method: "ip_hash", onlyPassing: false, listen: { address: "::1", port } })),
  ];
  assert.ok(inputs.length >= 120);
  for (const [i, c] of inputs.entries()) {
    const file = join(scratch, `case-${i}.conf`);
    await writeFile(file, renderNginx(c.input).text);
    await driver.validateCandidate(file).catch((e: unknown) => {
      throw new Error(`${c.name}: ${e instanceof Error ? e.message : String(e)}`);
    });
  }
});

test("validateCandidate rejects junk with nginx's stderr in a typed error", async () => {
  const driver = new NginxDriver({ nginxBin: NGINX_BIN });
  const file = join(scratch, "empty-upstream.conf");
  await writeFile(file, "upstream dockbind_x {\n}\n");
  await assert.rejects(driver.validateCandidate(file), (e: unknown) => {
    return e instanceof LbError && e.reason === "ValidationFailed" && /no servers are inside upstream/.test(e.message);
  });
  const missing = new NginxDriver({ nginxBin: join(scratch, "no-such-nginx") });
  await assert.rejects(missing.validateCandidate(file), isLbError("ValidationFailed"));
});

test("apply: reload pending survives failures, equal bytes => no reload, traffic flows", async () => {
  const driver = new NginxDriver({ nginxBin: NGINX_BIN, args: nginx.nginxArgs });
  const writer = new LbConfigWriter(driver);
  const path = join(nginx.confDir, "web.conf");
  const lbPort = await freePort();
  const text = renderNginx({ bindingKey: "default/web", serviceName: "web", lb: lbSpec(lbPort), instances: [backendInstance()] }).text;

  // Make `nginx -s reload` fail for real: hide the master's pid file.
  const pidFile = join(nginx.prefix, "nginx.pid");
  await rename(pidFile, `${pidFile}.hidden`);
  try {
    await assert.rejects(writer.apply({ path, text }), isLbError("ReloadFailed"));
    assert.equal(await readFile(path, "utf8"), text, "valid file stays after a failed reload");
    assert.equal(writer.isReloadPending(path), true);
    await assert.rejects(writer.apply({ path, text }), isLbError("ReloadFailed"), "equal bytes still retry the pending reload");
  } finally {
    await rename(`${pidFile}.hidden`, pidFile);
  }

  const reloadsBefore = await nginx.reloadCount();
  assert.deepEqual(await writer.apply({ path, text }), { changed: false, reloaded: true });
  assert.equal(writer.isReloadPending(path), false);
  await waitFor(async () => (await nginx.reloadCount()) > reloadsBefore || undefined, { timeoutMs: 5_000, what: "reload logged" });
  const res = await waitFor(() => nginx.get(lbPort).catch(() => undefined), { timeoutMs: 5_000, what: `nginx on ${lbPort}` });
  assert.deepEqual([res.status, res.body], [200, "backend-ok"]);

  // Steady state: same writer and a fresh writer (restarted controller): zero reloads.
  const steady = await nginx.reloadCount();
  assert.deepEqual(await writer.apply({ path, text }), { changed: false, reloaded: false });
  assert.deepEqual(await new LbConfigWriter(driver).apply({ path, text }), { changed: false, reloaded: false });
  await delay(300);
  assert.equal(await nginx.reloadCount(), steady);

  assert.equal((await stat(path)).mode & 0o777, 0o644);
  assert.deepEqual(await dotFiles(nginx.confDir), []);
});

test("broken custom-template output: last good file byte-identical, ValidationFailed, no temp files", async () => {
  const driver = new NginxDriver({ nginxBin: NGINX_BIN, args: nginx.nginxArgs });
  const path = join(nginx.confDir, "junk.conf");
  const lbPort = await freePort();
  const writer = new LbConfigWriter(driver);
  const good = renderNginx({ bindingKey: "default/junk", serviceName: "junk", lb: lbSpec(lbPort), instances: [backendInstance()] }).text;
  assert.deepEqual(await writer.apply({ path, text: good }), { changed: true, reloaded: true });
  const before = await readFile(path);

  const junk = renderNginx({
    bindingKey: "default/junk",
    serviceName: "junk",
    lb: lbSpec(lbPort),
    instances: [backendInstance()],
    template: "server { listen 1.2.3; }\n",
  }).text;
  const reloads = await nginx.reloadCount();
  await assert.rejects(writer.apply({ path, text: junk }), isLbError("ValidationFailed"));
  assert.deepEqual(await readFile(path), before);
  assert.deepEqual(await dotFiles(nginx.confDir), []);
  assert.equal(await nginx.reloadCount(), reloads);
  // The good file's reload is asynchronous in the master: poll until its workers listen.
  const res = await waitFor(() => nginx.get(lbPort).catch(() => undefined), { timeoutMs: 5_000, what: `nginx on ${lbPort}` });
  assert.equal(res.body, "backend-ok");
});

test("live validation failure restores the previous file (or removes a new one)", async () => {
  const driver = new NginxDriver({ nginxBin: NGINX_BIN, args: nginx.nginxArgs });
  const writer = new LbConfigWriter(driver);
  const a = join(nginx.confDir, "dup-a.conf");
  const b = join(nginx.confDir, "dup-b.conf");
  const render = (service: string, port: number): string =>
    renderNginx({ bindingKey: `default/${service}`, serviceName: service, lb: lbSpec(port), instances: [backendInstance()] }).text;
  const [pa, pb] = [await freePort(), await freePort()];
  await writer.apply({ path: a, text: render("dup", pa) });

  // Valid alone, but `upstream dockbind_dup` is already defined by dup-a.conf.
  const clash = render("dup", pb);
  await assert.rejects(writer.apply({ path: b, text: clash }), (e: unknown) => {
    return e instanceof LbError && e.reason === "ValidationFailed" && /duplicate upstream/.test(e.message);
  });
  assert.equal(existsSync(b), false, "a new file that breaks the live config is removed");

  const goodB = render("other", pb);
  assert.deepEqual(await writer.apply({ path: b, text: goodB }), { changed: true, reloaded: true });
  await assert.rejects(writer.apply({ path: b, text: clash }), isLbError("ValidationFailed"));
  assert.equal(await readFile(b, "utf8"), goodB, "previous bytes restored");
  await driver.validateLive();
  assert.deepEqual(await dotFiles(nginx.confDir), []);

  // remove(): deletes, validates, reloads; a second remove is a no-op.
  assert.deepEqual(await writer.remove(b), { changed: true, reloaded: true });
  assert.equal(existsSync(b), false);
  assert.deepEqual(await writer.remove(b), { changed: false, reloaded: false });
  await writer.remove(a);
});

test("writeFileAtomic: exact mode, no world-writable, no leftovers on failure; readIfExists", async () => {
  const dir = await mkdtemp(join(scratch, "atomic-"));
  const file = join(dir, "a.conf");
  assert.equal(await readIfExists(file), undefined);
  await writeFileAtomic(file, "one\n", 0o640);
  await writeFileAtomic(file, "two\n", 0o640);
  assert.equal((await readIfExists(file))?.toString(), "two\n");
  assert.equal((await stat(file)).mode & 0o777, 0o640);
  await assert.rejects(writeFileAtomic(file, "x", 0o666), RangeError);
  await assert.rejects(writeFileAtomic(join(dir, "missing-dir", "b.conf"), "x"), { code: "ENOENT" });
  assert.deepEqual((await readdir(dir)).sort(), ["a.conf"]);
});

test("concurrent applies on one writer are serialised and both land", async () => {
  const driver = new NginxDriver({ nginxBin: NGINX_BIN, args: nginx.nginxArgs });
  const writer = new LbConfigWriter(driver);
  const [p1, p2] = [await freePort(), await freePort()];
  const files = ["conc-1.conf", "conc-2.conf"].map((f) => join(nginx.confDir, f));
  const texts = [p1, p2].map(
    (port, i) => renderNginx({ bindingKey: `default/conc-${i}`, serviceName: `conc-${i}`, lb: lbSpec(port), instances: [backendInstance()] }).text,
  );
  const results = await Promise.all(files.map((path, i) => writer.apply({ path, text: texts[i] ?? "" })));
  assert.deepEqual(results, [
    { changed: true, reloaded: true },
    { changed: true, reloaded: true },
  ]);
  for (const port of [p1, p2]) {
    const res = await waitFor(() => nginx.get(port).catch(() => undefined), { timeoutMs: 5_000, what: `nginx on ${port}` });
    assert.equal(res.body, "backend-ok");
  }
  for (const f of files) await writer.remove(f);
  assert.deepEqual(await dotFiles(nginx.confDir), []);
});
