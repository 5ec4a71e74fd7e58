/**
 * Issue #4: a 3-server Consul cluster on 127.0.0.2-4 with ACLs (default deny)
 * and TLS (HTTPS with client certificates). The controller talks HTTPS to all
 * three with a least-privilege token read from a file; backends are served
 * through nginx. Killing the raft leader (which is also the agent the
 * controller uses) must not empty nginx's config or fail a request, and the
 * controller keeps converging through the remaining agents.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startConsulCluster, type ClusterServer, type ConsulCluster, clusterControllerArgs } from "../support/consulCluster.js";
import { startController, type ControllerHandle } from "../support/controller.js";
import { removeContainer, runBackend } from "../support/docker.js";
import { ensureDockerd } from "../support/dockerd.js";
import { ensureBackendImage } from "../support/image.js";
import { startNginx, type NginxHandle } from "../support/nginx.js";
import { ensureBedRoot } from "../support/procs.js";
import { cleanupAll } from "../support/teardown.js";
import { servedExactly } from "../support/traffic.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml } from "../support/world.js";

const SERVICE = "cl-web";
/** The least privilege that works (see README "Consul ACL policy"). */
const POLICY = `service_prefix "cl-" { policy = "write" }
node_prefix "" { policy = "read" }
`;

let cluster: ConsulCluster;
let nginx: NginxHandle;
let controller: ControllerHandle | undefined;
let token: string;
let port: number;
let firstAgent: ClusterServer;
const names: string[] = [];
/** Backend container ids, removed explicitly in after() (in addition to cleanupAll's label sweep). */
const started: string[] = [];

interface Entry {
  readonly id: string;
  readonly node: string;
  readonly port: number;
  readonly status: string;
}

async function health(): Promise<Entry[]> {
  const r = await cluster.api("GET", `/v1/health/service/${SERVICE}?stale`);
  if (r.status !== 200) throw new Error(`health: HTTP ${r.status} ${r.body}`);
  const entries = JSON.parse(r.body) as { Node: { Node: string }; Service: { ID: string; Port: number }; Checks: { Status: string }[] }[];
  return entries.map((e) => ({
    id: e.Service.ID,
    node: e.Node.Node,
    port: e.Service.Port,
    status: e.Checks.every((c) => c.Status === "passing") ? "passing" : "critical",
  }));
}

function served(expected: readonly string[], timeoutMs = 20_000): Promise<void> {
  return servedExactly(nginx, port, expected, timeoutMs);
}

before(async () => {
  await Promise.all([ensureDockerd(), ensureBackendImage()]);
  [cluster, nginx] = await Promise.all([startConsulCluster(), startNginx()]);
  token = await cluster.createToken("dockbind-controller", POLICY);
  const dir = mkdtempSync(join(ensureBedRoot(), "cluster-ctl-"));
  const tokenFile = join(dir, "token");
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const bindingsDir = join(dir, "bindings");
  mkdirSync(bindingsDir);
  port = await freePort();
  writeFileSync(join(bindingsDir, "web.yaml"), bindingYaml({ name: "web", service: SERVICE, app: "cl-web", listenPort: port }));
  // The leader goes first: it is the agent the controller uses, so killing it exercises failover.
  firstAgent = await cluster.leader();
  const order = [firstAgent, ...cluster.servers.filter((s) => s !== firstAgent)];
  controller = await startController({
    bindingsDir,
    consulAddr: order.map((s) => s.url).join(","),
    outputDir: nginx.confDir,
    nginxArgs: nginx.nginxArgs,
    node: "cluster-node",
    logName: `controller-cluster-${process.pid}.log`,
    extraArgs: [...clusterControllerArgs(cluster, tokenFile)],
  });
});

after(async () => {
  await controller?.stop();
  // A crash-stop is enough for throwaway servers (SIGTERM makes each wait for its raft peers).
  await Promise.all([...cluster.servers.map((s) => s.kill()), ...started.map((id) => removeContainer(id))]);
  await cleanupAll();
});

describe("3-server Consul cluster with ACL (default deny) and TLS", () => {
  it("rejects anonymous writes (ACL default deny) and registers through HTTPS with the least-privilege token", async () => {
    const anonymous = await cluster.api("PUT", "/v1/agent/service/register", { body: { Name: SERVICE, ID: "anon" }, token: "" });
    assert.equal(anonymous.status, 403, "anonymous registration must be denied");
    for (let i = 1; i <= 3; i++) {
      names.push(`cl-${i}`);
      started.push((await runBackend({ name: `cl-web-${i}-${process.pid}`, labels: { app: "cl-web" }, env: { NAME: `cl-${i}` } })).id);
    }
    await waitFor(async () => ((await health()).filter((e) => e.status === "passing").length === 3 ? true : undefined), {
      timeoutMs: 20_000,
      what: "3 passing instances",
    });
    assert.ok(
      (await health()).every((e) => e.node === `dockbind-${firstAgent.name}`),
      "registered on the first agent",
    );
    await served(names);
  });

  it("never logs the token", () => {
    assert.ok(controller);
    const log = readFileSync(controller.logFile, "utf8");
    assert.ok(log.length > 0);
    assert.ok(!log.includes(token), "the ACL token must not appear in the controller log");
  });

  it("kill -9 of the raft leader: nginx keeps serving, no emptied config, the controller fails over and keeps converging", async () => {
    const ctl = controller;
    assert.ok(ctl);
    const reloadsBefore = await nginx.reloadCount();
    const state = { stop: false, emptied: false };
    const failures: string[] = [];
    let requests = 0;
    const load = (async () => {
      while (!state.stop) {
        const r = await nginx.get(port).catch((err: unknown) => ({ status: 0, body: String(err) }));
        requests++;
        if (r.status !== 200) failures.push(`HTTP ${r.status} ${r.body.slice(0, 60)}`);
        const text = readFileSync(join(nginx.confDir, "web.conf"), "utf8");
        if (!text.includes("proxy_pass")) state.emptied = true;
      }
    })();
    const killedAt = Date.now();
    await firstAgent.kill();
    // A new leader among the two survivors.
    await waitFor(async () => ((await cluster.leader()) !== firstAgent ? true : undefined), { timeoutMs: 20_000, what: "new raft leader" });
    // Registrations re-asserted on the new agent, passing there.
    await waitFor(
      async () => {
        const passing = (await health()).filter((e) => e.status === "passing" && e.node !== `dockbind-${firstAgent.name}`);
        return passing.length === 3 || undefined;
      },
      { timeoutMs: 30_000, what: "3 passing instances on a surviving agent" },
    );
    // The controller keeps converging: a backend started after the kill is registered and served.
    names.push("cl-4");
    started.push((await runBackend({ name: `cl-web-4-${process.pid}`, labels: { app: "cl-web" }, env: { NAME: "cl-4" } })).id);
    await served(names, 30_000);
    state.stop = true;
    await load;
    const reloads = (await nginx.reloadCount()) - reloadsBefore;
    process.stdout.write(
      `# leader kill: ${requests} requests, ${failures.length} failed, ${reloads} nginx reload(s), converged ${Date.now() - killedAt} ms after the kill\n`,
    );
    assert.deepEqual(failures, [], "requests through nginx during the leader kill");
    assert.equal(state.emptied, false, "nginx config never lost its upstream");
    assert.ok(reloads <= 3, `no reload storm (${reloads} reloads)`);
  });
});
