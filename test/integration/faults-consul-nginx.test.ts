/**
 * Issue #6 fault suite, part 1: the Consul agent restarts with lost state, and
 * nginx refuses reloads or is down. Real dockerd, Consul dev agent and nginx.
 *
 * Knobs (make soak raises them): FAULT_CONSUL_RESTARTS (default 2).
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ControllerHandle } from "../support/controller.js";
import { removeContainer, runBackend, stopContainer } from "../support/docker.js";
import { run } from "../support/exec.js";
import { upstreamServers, watchFile } from "../support/fsWatch.js";
import { httpGet } from "../support/http.js";
import { startManaged } from "../support/procs.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const RESTARTS = Number(process.env.FAULT_CONSUL_RESTARTS ?? "2");
const SERVICE = "fault-web";
let world: World;
let port: number;
/** The nginx master's pid, kept while the pid file is made stale (staleNginxPidFile). */
let masterPid: string;
const backends: { name: string; id: string; hostPort: number }[] = [];

async function served(expected: readonly string[]): Promise<void> {
  const want = [...expected].sort().join(",");
  await waitFor(async () => ([...new Set(await world.sample(port, expected.length * 3))].sort().join(",") === want ? true : undefined), {
    timeoutMs: 30_000,
    what: `nginx on ${port} serving [${want}]`,
  });
}

async function ownedIds(): Promise<string[]> {
  const r = await httpGet(`${world.consul.url}/v1/agent/services`, 2_000);
  if (r.status !== 200) return [];
  const all = JSON.parse(r.body) as Record<string, { Meta?: Record<string, string> | null }>;
  return Object.entries(all)
    .filter(([, s]) => s.Meta?.dockbind_node === world.node)
    .map(([id]) => id)
    .sort();
}

async function agentAnswers(): Promise<boolean> {
  try {
    const r = await httpGet(`${world.consul.url}/v1/status/leader`, 500);
    return r.status === 200 && r.body.length > 4;
  } catch {
    return false;
  }
}

function controller(): ControllerHandle {
  assert.ok(world.controller);
  return world.controller;
}

/** Degraded condition of default/web from /api/status (undefined when the endpoint is not there). */
async function degraded(): Promise<string | undefined> {
  const listening = controller()
    .logs()
    .find((l) => l.message === "http server listening");
  if (listening === undefined) return undefined;
  const r = await httpGet(`http://${String(listening.address)}/api/status`, 2_000);
  const doc = JSON.parse(r.body) as { bindings: { key: string; conditions: { type: string; status: string }[] }[] };
  return doc.bindings.find((b) => b.key === "default/web")?.conditions.find((c) => c.type === "Degraded")?.status;
}

/**
 * Reloads fail while on: nginx's pid file names a pid above the kernel's pid_max (no process), as a
 * stale pid file would, so neither the controller's signal nor `nginx -s reload` reaches the master,
 * which keeps running its config. Off: the master's pid again.
 */
function staleNginxPidFile(on: boolean): void {
  const noProcess = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8").trim()) + 1;
  writeFileSync(world.nginx.pidFile, `${on ? String(noProcess) : masterPid}\n`);
}

before(async () => {
  world = await startWorld("faults-consul");
  port = await freePort();
  masterPid = readFileSync(world.nginx.pidFile, "utf8").trim();
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: SERVICE, app: SERVICE, listenPort: port }));
  // The production resync period (30 s, the last --resync wins): re-assertion within 5 s must come from
  // detecting the agent restart, not from a periodic resync.
  await world.startController(["--resync", "30s"]);
  for (const name of ["fc-a", "fc-b", "fc-c"]) {
    const b = await runBackend({ name, labels: { app: SERVICE }, env: { NAME: name } });
    backends.push({ name, id: b.id, hostPort: b.hostPort ?? 0 });
  }
  await served(backends.map((b) => b.name));
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("Consul agent restart with lost state", () => {
  it(`re-asserts every registration within 5 s and never empties the config (${RESTARTS} restarts)`, async () => {
    const file = join(world.nginx.confDir, "web.conf");
    const expected = backends.map((b) => `127.0.0.1:${b.hostPort}`).sort();
    await waitFor(() => (upstreamServers(world.lbFile("web.conf")).join(",") === expected.join(",") ? true : undefined), {
      timeoutMs: 20_000,
      what: "3 servers rendered",
    });
    const before = await ownedIds();
    assert.equal(before.length, 3);
    const watch = watchFile(file);
    const reassertMs: number[] = [];
    try {
      for (let round = 0; round < RESTARTS; round++) {
        // Time the agent first answers with a leader, polled every 20 ms while it restarts.
        const poller = (async () => {
          await waitFor(async () => !(await agentAnswers()) || undefined, { timeoutMs: 15_000, intervalMs: 20, what: "agent down" });
          await waitFor(async () => (await agentAnswers()) || undefined, { timeoutMs: 30_000, intervalMs: 20, what: "agent answering" });
          return Date.now();
        })();
        // Lost state: restart() wipes the persisted services, checks and node id (test/support/consul.ts).
        await world.consul.restart();
        const answering = await poller;
        await waitFor(async () => ((await ownedIds()).join(",") === before.join(",") ? true : undefined), {
          timeoutMs: 15_000,
          intervalMs: 25,
          what: "every owned registration back",
        });
        reassertMs.push(Date.now() - answering);
        await waitFor(async () => ((await world.health(SERVICE)).filter((e) => e.status === "passing").length === 3 ? true : undefined), {
          timeoutMs: 20_000,
          what: "3 passing instances",
        });
        await served(backends.map((b) => b.name));
      }
    } finally {
      watch.stop();
    }
    process.stdout.write(`# consul restart: re-assert after agent answered (ms): ${reassertMs.join(", ")}\n`);
    for (const ms of reassertMs) assert.ok(ms <= 5_000, `registrations back ${ms} ms after the agent answered (limit 5000)`);
    const lost = watch.versions.filter((v) => upstreamServers(v.text).join(",") !== expected.join(","));
    assert.deepEqual(
      lost.map((v) => ({ at: v.at, servers: upstreamServers(v.text) })),
      [],
      `the generated config lost servers during the restart (${watch.versions.length} versions observed)`,
    );
    assert.equal((await ownedIds()).length, 3, "no duplicate registration after re-assert");
    // The health watcher's hold was released by the re-registrations (not by its expiry).
    assert.equal(
      controller()
        .logs()
        .filter((x) => x.message === "consul hold released: every held instance is back").length,
      RESTARTS,
    );
  });
});

describe("nginx reload failing / nginx down", () => {
  it("keeps the running config, reports Degraded, retries with backoff and recovers when reloads work again", async () => {
    const c = controller();
    staleNginxPidFile(true);
    const late = await runBackend({ name: "fc-d", labels: { app: SERVICE }, env: { NAME: "fc-d" } });
    backends.push({ name: "fc-d", id: late.id, hostPort: late.hostPort ?? 0 });
    const mark = c.logs().length;
    const failures = (): { retryInMs: number }[] =>
      c
        .logs()
        .slice(mark)
        .filter((l) => l.message === "reconcile failed, will retry" && l.reason === "ReloadFailed")
        .map((l) => ({ retryInMs: Number(l.retryInMs) }));
    await waitFor(() => (failures().length >= 4 ? true : undefined), { timeoutMs: 30_000, what: "4 failed reload attempts" });
    const delays = failures().map((f) => f.retryInMs);
    for (let i = 1; i < delays.length; i++) assert.ok((delays[i] ?? 0) >= (delays[i - 1] ?? 0), `retry delays grow: ${delays.join(", ")}`);
    assert.ok((delays.at(-1) ?? 0) > (delays[0] ?? 0), `backoff: ${delays.join(", ")}`);
    const d = await degraded();
    if (d !== undefined) assert.equal(d, "True", "Degraded reported in /api/status");
    // nginx still runs the last good (old) config: fc-d is not served.
    const seen = new Set(await world.sample(port, 9));
    assert.ok(!seen.has("fc-d") && seen.has("fc-a"), `old config still served: ${[...seen].join(",")}`);
    // The file on disk is valid nginx config (validated before the swap).
    assert.equal((await run("nginx", ["-t", ...world.nginx.nginxArgs])).code, 0);
    staleNginxPidFile(false);
    await served(backends.map((b) => b.name));
    await waitFor(async () => ((await degraded()) ?? "False") === "False" || undefined, { timeoutMs: 20_000, what: "Degraded cleared" });
  });

  it("survives nginx being down: reload failures are retried and it converges once nginx is back", async () => {
    const c = controller();
    await world.nginx.stop();
    const mark = c.logs().length;
    const gone = backends.pop();
    assert.ok(gone);
    await stopContainer(gone.id);
    await removeContainer(gone.id);
    await waitFor(
      () =>
        c
          .logs()
          .slice(mark)
          .some((l) => l.message === "reconcile failed, will retry" && l.reason === "ReloadFailed") || undefined,
      {
        timeoutMs: 30_000,
        what: "reload failure while nginx is down",
      },
    );
    assert.equal(c.proc.alive(), true, "the controller never exits because nginx is down");
    // Start a new master on the same prefix (it reads the files on disk), then the controller's retry reloads it.
    const master = startManaged("nginx", world.nginx.nginxArgs, join(world.nginx.prefix, "stderr.log"));
    await waitFor(
      () =>
        c
          .logs()
          .slice(mark)
          .some((l) => l.message === "load balancer config updated" && l.reloaded === true) || undefined,
      {
        timeoutMs: 30_000,
        what: "successful reload after nginx returned",
      },
    );
    assert.ok(master.alive());
    await served(backends.map((b) => b.name));
    await waitFor(async () => ((await degraded()) ?? "False") === "False" || undefined, { timeoutMs: 20_000, what: "Degraded cleared" });
  });
});
