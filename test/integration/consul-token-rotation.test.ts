/**
 * The Consul ACL token rotated in --consul-token-file, on the real 3-server
 * cluster (ACL default deny, HTTPS with client certificates):
 * 1. rotation the orderly way (new token B written to the file, then the old
 *    token A revoked): B is used without a restart, a backend started after
 *    the revocation is registered and served, and a backend registered with A
 *    and stopped after the revocation leaves Consul's catalog (its agent-side
 *    token was rewritten to B, so the agent's sync of it does not fail);
 * 2. the current token B revoked BEFORE its successor C is in the file: the
 *    controller gets 403s for a while, must not hammer Consul (counted from
 *    the agent's own log: every 403 answer is an "ACL not found" request
 *    error there), must not deregister anything, and recovers once C is in
 *    the file: the backend started meanwhile is registered and served.
 * No token value appears in the controller log, /api/status or /metrics.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startConsulCluster, type ClusterServer, type ConsulCluster, clusterControllerArgs } from "../support/consulCluster.js";
import { startController, type ControllerHandle } from "../support/controller.js";
import { controllerGet } from "../support/controllerHttp.js";
import { removeContainer, runBackend, stopContainer } from "../support/docker.js";
import { ensureDockerd } from "../support/dockerd.js";
import { ensureBackendImage } from "../support/image.js";
import { startNginx, type NginxHandle } from "../support/nginx.js";
import { ensureBedRoot } from "../support/procs.js";
import { cleanupAll } from "../support/teardown.js";
import { servedExactly } from "../support/traffic.js";
import { delay, freePort, waitFor } from "../support/wait.js";
import { bindingYaml } from "../support/world.js";

const SERVICE = "rot-web";
const POLICY_NAME = "dockbind-rotation";
const POLICY = `service_prefix "rot-" { policy = "write" }
node_prefix "" { policy = "read" }
`;
/** How long the current token stays revoked before its successor is written (phase 2). */
const REVOKED_WINDOW_MS = 10_000;
/** At most this many 403 answers over the whole revoked window: a handful, not one per loop, key and retry. */
const MAX_403 = 8;

let cluster: ConsulCluster;
let agent: ClusterServer;
let nginx: NginxHandle;
let controller: ControllerHandle | undefined;
let tokenFile = "";
let port = 0;
const tokens: string[] = [];
const started: string[] = [];
const figures: string[] = [];

/** A new token of the shared policy; resolves with its SecretID. */
async function newToken(name: string): Promise<string> {
  const t = await cluster.api("PUT", "/v1/acl/token", { body: { Description: name, Policies: [{ Name: POLICY_NAME }] } });
  assert.equal(t.status, 200, `create token ${name}: ${t.body}`);
  const secret = (JSON.parse(t.body) as { SecretID: string }).SecretID;
  tokens.push(secret);
  return secret;
}

async function revoke(secret: string): Promise<void> {
  const self = await cluster.api("GET", "/v1/acl/token/self", { token: secret });
  assert.equal(self.status, 200, `read token: ${self.body}`);
  const accessor = (JSON.parse(self.body) as { AccessorID: string }).AccessorID;
  const r = await cluster.api("DELETE", `/v1/acl/token/${accessor}`);
  assert.equal(r.status, 200, `revoke: ${r.body}`);
}

/** Rotation tools write a sibling and rename it over the file. */
function writeTokenFile(secret: string): void {
  const tmp = `${tokenFile}.new`;
  writeFileSync(tmp, `${secret}\n`, { mode: 0o600 });
  renameSync(tmp, tokenFile);
}

/** The agent's log from byte `from`: its "Request error" lines answered 403 (ACL not found / Permission denied). */
function forbiddenSince(from: number): string[] {
  return readFileSync(agent.logFile)
    .subarray(from)
    .toString("utf8")
    .split("\n")
    .filter((l) => /Request error/.test(l) && /ACL not found|Permission denied/.test(l));
}

function logSize(): number {
  return statSync(agent.logFile).size;
}

async function health(): Promise<{ id: string; status: string }[]> {
  const r = await cluster.api("GET", `/v1/health/service/${SERVICE}?stale`);
  if (r.status !== 200) throw new Error(`health: HTTP ${r.status} ${r.body}`);
  const entries = JSON.parse(r.body) as { Service: { ID: string }; Checks: { Status: string }[] }[];
  return entries.map((e) => ({ id: e.Service.ID, status: e.Checks.every((c) => c.Status === "passing") ? "passing" : "critical" }));
}

function served(expected: readonly string[]): Promise<void> {
  return servedExactly(nginx, port, expected, 30_000);
}

async function backend(name: string): Promise<string> {
  const id = (await runBackend({ name: `${name}-${process.pid}`, labels: { app: SERVICE }, env: { NAME: name } })).id;
  started.push(id);
  return id;
}

function deregistered(): string[] {
  return (controller?.logs() ?? []).filter((l) => l.message === "deregistered").map((l) => String(l.serviceId));
}

before(async () => {
  await Promise.all([ensureDockerd(), ensureBackendImage()]);
  [cluster, nginx] = await Promise.all([startConsulCluster(), startNginx()]);
  const p = await cluster.api("PUT", "/v1/acl/policy", { body: { Name: POLICY_NAME, Rules: POLICY } });
  assert.equal(p.status, 200, p.body);
  const dir = mkdtempSync(join(ensureBedRoot(), "token-rotation-"));
  tokenFile = join(dir, "token");
  writeTokenFile(await newToken("token-a"));
  const bindingsDir = join(dir, "bindings");
  mkdirSync(bindingsDir);
  port = await freePort();
  writeFileSync(join(bindingsDir, "web.yaml"), bindingYaml({ name: "web", service: SERVICE, app: SERVICE, listenPort: port }));
  agent = await cluster.leader();
  controller = await startController({
    bindingsDir,
    consulAddr: agent.url,
    outputDir: nginx.confDir,
    nginxArgs: nginx.nginxArgs,
    node: "rotation-node",
    logName: `controller-rotation-${process.pid}.log`,
    extraArgs: [...clusterControllerArgs(cluster, tokenFile), "--log-level", "debug"],
  });
  await backend("rot-1");
  await served(["rot-1"]);
});

after(async () => {
  await controller?.stop();
  await Promise.all([...cluster.servers.map((s) => s.kill()), ...started.map((id) => removeContainer(id))]);
  await cleanupAll();
  for (const f of figures) process.stdout.write(`# ${f}\n`);
});

describe("Consul ACL token rotated in --consul-token-file", () => {
  it("new token written, then the old one revoked: used without a restart, nothing lost, no 403 storm", async () => {
    const c = controller;
    assert.ok(c);
    const [tokenA] = tokens;
    assert.ok(tokenA !== undefined);
    const tokenB = await newToken("token-b");
    const registrations = (): number => c.logs().filter((l) => l.message === "registered").length;
    const registeredBefore = registrations();
    const changedAt = Date.now();
    writeTokenFile(tokenB);
    await c.waitForLog((l) => l.message === "consul token file changed; the next requests use the new token", "token change seen", 15_000);
    figures.push(`orderly rotation: new token in use ${Date.now() - changedAt} ms after the file was replaced`);
    // The rewrite with B (same content) is done before A goes: the agent now syncs rot-1 with B.
    await waitFor(() => (registrations() > registeredBefore ? true : undefined), {
      timeoutMs: 15_000,
      what: "owned registration rewritten with the new token",
    });
    const from = logSize();
    await revoke(tokenA);
    // Every server applies the deletion through raft: wait until the controller's agent refuses A too.
    await waitFor(async () => ((await cluster.api("GET", "/v1/agent/services", { token: tokenA, server: agent })).status === 403 ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: "token A refused by the controller's agent",
    });
    const calibration = forbiddenSince(from).length;
    assert.ok(calibration >= 1, "the agent logs 403 answers (the count below can see them)");

    await backend("rot-2");
    await served(["rot-1", "rot-2"]);
    // rot-1 was registered with A: stopping it must still remove it from the catalog (synced with B now).
    const first = started[0];
    assert.ok(first !== undefined);
    await stopContainer(first);
    await served(["rot-2"]);
    await waitFor(async () => ((await health()).length === 1 ? true : undefined), { timeoutMs: 20_000, what: "rot-1 gone from Consul's catalog" });
    const forbidden = forbiddenSince(from).length - calibration;
    figures.push(`orderly rotation: ${forbidden} 403 answers to the controller after the old token was revoked`);
    assert.ok(forbidden <= 2, `403 answers: ${forbiddenSince(from).slice(0, 5).join(" | ")}`);
  });

  it("current token revoked before its successor is in the file: bounded 403s, nothing deregistered, recovers on the new file", async () => {
    const c = controller;
    assert.ok(c);
    const tokenB = tokens[1];
    assert.ok(tokenB !== undefined);
    const registeredBefore = (await health()).map((e) => e.id);
    const deregisteredBefore = deregistered().length;
    const from = logSize();
    await revoke(tokenB);
    const revokedAt = Date.now();
    // A change the controller must write while it has no valid token: a new backend.
    await backend("rot-3");
    await waitFor(
      () =>
        c
          .logs()
          .some(
            (l) =>
              l.message === "reconcile failed, will retry" &&
              l.reason === "ConsulRejected" &&
              typeof l.timestamp === "string" &&
              l.timestamp >= new Date(revokedAt).toISOString(),
          )
          ? true
          : undefined,
      {
        timeoutMs: 15_000,
        what: "a 403 seen by the registrar",
      },
    );
    await delay(Math.max(0, REVOKED_WINDOW_MS - (Date.now() - revokedAt)));
    const during = forbiddenSince(from).length;
    figures.push(`revoked before rotation: ${during} 403 answers in ${Date.now() - revokedAt} ms without a valid token`);
    assert.ok(during >= 1, "the controller did meet the revoked token");
    assert.ok(during <= MAX_403, `403 answers while revoked: ${during} (${forbiddenSince(from).slice(0, 3).join(" | ")})`);
    // Nothing was deregistered because of the 403s: the agent's registrations are all still there, nginx serves.
    assert.deepEqual((await health()).map((e) => e.id).sort(), [...registeredBefore].sort());
    await served(["rot-2"]);

    const tokenC = await newToken("token-c");
    const rotatedAt = Date.now();
    writeTokenFile(tokenC);
    await served(["rot-2", "rot-3"]);
    figures.push(`revoked before rotation: rot-3 served ${Date.now() - rotatedAt} ms after the new token was written`);
    const total = forbiddenSince(from).length;
    figures.push(`revoked before rotation: ${total} 403 answers in total`);
    assert.ok(total <= MAX_403 + 2, `403 answers in total: ${total}`);
    assert.equal(deregistered().length, deregisteredBefore, "no deregistration at all during the revoked window and the recovery");
  });

  it("no token value in the controller log, /api/status or /metrics", async () => {
    const c = controller;
    assert.ok(c);
    const log = readFileSync(c.logFile, "utf8");
    const status = (await controllerGet(c, "/api/status")).body;
    const metrics = (await controllerGet(c, "/metrics")).body;
    const page = (await controllerGet(c, "/")).body;
    assert.equal(tokens.length, 3);
    for (const secret of [...tokens, cluster.masterToken]) {
      for (const [what, text] of [
        ["log", log],
        ["/api/status", status],
        ["/metrics", metrics],
        ["/", page],
      ] as const) {
        assert.ok(!text.includes(secret), `a token appears in ${what}`);
      }
    }
    assert.match(log, /consul token file changed/);
  });
});
