/**
 * Self-test of the test bed: real consul, nginx and a backend container.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { startConsul, type ConsulHandle } from "../support/consul.js";
import { removeContainer, runBackend, stopContainer } from "../support/docker.js";
import { ensureDockerd } from "../support/dockerd.js";
import { run } from "../support/exec.js";
import { httpGet } from "../support/http.js";
import { startNginx, type NginxHandle } from "../support/nginx.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";

let consul: ConsulHandle;
let nginx: NginxHandle;

before(async () => {
  await ensureDockerd();
  [consul, nginx] = await Promise.all([startConsul({ node: "testbed-self" }), startNginx()]);
});

after(async () => {
  await cleanupAll();
});

test("consul dev agent has a leader and survives a restart", async () => {
  const leader = await httpGet(`${consul.url}/v1/status/leader`);
  assert.equal(leader.status, 200);
  assert.match(JSON.parse(leader.body) as string, /^127\.0\.0\.1:\d+$/);
  const self = JSON.parse((await httpGet(`${consul.url}/v1/agent/self`)).body) as { Config: { NodeName: string } };
  assert.equal(self.Config.NodeName, "testbed-self");
  await consul.restart();
  assert.equal((await httpGet(`${consul.url}/v1/status/leader`)).status, 200);
});

test("nginx picks up a conf.d file on reload", async () => {
  const port = await freePort();
  writeFileSync(join(nginx.confDir, "self.conf"), `server { listen 127.0.0.1:${port}; location / { return 200 "bed\\n"; } }\n`);
  await run("nginx", [...nginx.nginxArgs, "-t", "-q"], { check: true });
  const before = await nginx.reloadCount();
  await run("nginx", [...nginx.nginxArgs, "-s", "reload"], { check: true });
  await waitFor(async () => (await nginx.reloadCount()) === before + 1 || undefined, { timeoutMs: 5_000, what: "nginx reload logged" });
  const res = await waitFor(() => nginx.get(port).catch(() => undefined), { timeoutMs: 5_000, what: `nginx on 127.0.0.1:${port}` });
  assert.equal(res.status, 200);
  assert.equal(res.body, "bed\n");
  assert.equal((await nginx.get(port, "/x")).status, 200);
});

test("backend container serves $NAME on its published loopback port", async () => {
  const name = `dockbind-testbed-${process.pid}`;
  const b = await runBackend({ name, env: { NAME: "hello-bed" }, labels: { "dockbind.io/role": "web" } });
  assert.ok(b.hostPort !== undefined);
  const res = await httpGet(`http://127.0.0.1:${b.hostPort}/`);
  assert.deepEqual([res.status, res.body], [200, "hello-bed"]);
  assert.equal((await httpGet(`http://127.0.0.1:${b.hostPort}/health/`)).body, "ok");
  const t = Date.now();
  await stopContainer(b.id);
  assert.ok(Date.now() - t < 2_000, `docker stop took ${Date.now() - t} ms`);
  await removeContainer(b.id);
});
