/**
 * Maintenance mode on real dockerd/Consul/nginx, under 20 req/s through nginx:
 * - `controller maint enable --container` takes one of three backends out with zero failed requests
 *   (time to its last request printed, at most 1 s); a controller restart and resyncs do not bring it
 *   back; the container replaced by one with the same name (the release flow) comes up in
 *   maintenance and is never served; `maint disable` serves it again;
 * - `spec.maintenance` puts a binding's instances into maintenance and removing it takes them out,
 *   while maintenance set by hand through the agent's HTTP API (what `consul maint -service` calls)
 *   is kept across resyncs; a Consul agent restart with its state lost gets the declared maintenance back;
 * - a declaration written to Consul KV by hand (no CLI) applies within seconds with no resync to
 *   help (--resync 5m): the controller watches its node's KV prefix; the container then replaced
 *   under the same name comes up in maintenance, and deleting the key serves it again.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { controllerCommand, waitForReconciles } from "../support/controller.js";
import { controllerGet, controllerHttpAddr } from "../support/controllerHttp.js";
import { metricSum } from "../support/metrics.js";
import { controllerStatus } from "../support/status.js";
import { removeContainer, runBackend, type Backend } from "../support/docker.js";
import { run } from "../support/exec.js";
import { upstreamServers } from "../support/fsWatch.js";
import { httpGet } from "../support/http.js";
import { cleanupAll } from "../support/teardown.js";
import { delay, freePort, waitFor } from "../support/wait.js";
import { maintenanceKvKey } from "../../src/domain/maintenance.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

let world: World;
let port: number;
let declPort: number;

before(async () => {
  world = await startWorld("maint");
  [port, declPort] = [await freePort(), await freePort()];
  world.writeFile("maint.yaml", bindingYaml({ name: "maint", service: "maint-web", app: "maint-web", listenPort: port }));
  world.writeFile("decl.yaml", declYaml(undefined));
  await world.startController(["--log-level", "debug"]);
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

function declYaml(reason: string | undefined): string {
  const extra = reason === undefined ? "" : `  maintenance:\n    reason: ${reason}\n`;
  return bindingYaml({ name: "decl", service: "maint-decl", app: "maint-decl", listenPort: declPort, extraSpec: extra });
}

/** `controller maint ...` against the world's Consul (through the proxy, as the controller) and node. */
async function maint(...args: string[]): Promise<string> {
  const r = await run(process.execPath, [...controllerCommand(), "maint", ...args, "--consul-addr", world.proxy.addr, "--node", world.node], {
    timeoutMs: 60_000,
  });
  assert.equal(r.code, 0, `controller maint ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** Service ID -> reason of the agent's `_service_maintenance:<id>` checks. */
async function agentMaintenance(): Promise<Map<string, string>> {
  const res = await httpGet(`${world.consul.url}/v1/agent/checks`);
  const checks = JSON.parse(res.body) as Record<string, { ServiceID: string; Notes: string }>;
  return new Map(
    Object.entries(checks)
      .filter(([id]) => id.startsWith("_service_maintenance:"))
      .map(([, c]) => [c.ServiceID, c.Notes]),
  );
}

/** The service ID registered for container `id` (its owner meta). */
async function serviceIdOf(service: string, id: string): Promise<string> {
  return waitFor(async () => (await world.health(service)).find((e) => e.meta.dockbind_container === id)?.id, { timeoutMs: 20_000, what: `${id} registered` });
}

interface Sample {
  readonly at: number;
  readonly status: number;
  readonly body: string;
}

/** Sequential GETs through nginx every 50 ms (20/s) until stopped; every answer with its send time. */
function recordLoad(p: number): { readonly samples: Sample[]; stop(): Promise<Sample[]> } {
  const samples: Sample[] = [];
  const loop = { running: true };
  const done = (async () => {
    const until = Date.now() + 240_000;
    while (loop.running && Date.now() < until) {
      const at = Date.now();
      const r = await world.nginx.get(p).catch((err: unknown) => ({ status: 0, body: String(err) }));
      samples.push({ at, status: r.status, body: r.body });
      await delay(Math.max(0, 50 - (Date.now() - at)));
    }
  })();
  return {
    samples,
    async stop() {
      loop.running = false;
      await done;
      return samples;
    },
  };
}

async function servedSet(p: number, n: number): Promise<Set<string>> {
  return new Set(await world.sample(p, n));
}

describe("maintenance mode", () => {
  it("controller maint: one of three backends out under 20 req/s, kept across restart, resync and replacement, back on disable", async () => {
    const backends: Backend[] = [];
    for (const n of [1, 2, 3]) backends.push(await runBackend({ name: `maint-m${n}`, labels: { app: "maint-web" }, env: { NAME: `m${n}` } }));
    await waitFor(async () => ((await servedSet(port, 12)).size === 3 ? true : undefined), { timeoutMs: 30_000, what: "nginx serving m1, m2, m3" });
    await world.nginx.settled();
    const load = recordLoad(port);
    await delay(1_000);
    // When the maintenance check first shows on the agent, and when m2 leaves the nginx config (polled every 20 ms).
    let seenAt = 0;
    let droppedAt = 0;
    const m2Server = `127.0.0.1:${backends[1]?.hostPort ?? 0}`;
    const poll = setInterval(() => {
      void agentMaintenance().then((m) => {
        if (seenAt === 0 && m.size > 0) seenAt = Date.now();
      });
      if (droppedAt === 0 && !upstreamServers(world.lbFile("maint.conf")).includes(m2Server)) droppedAt = Date.now();
    }, 20);
    const enableStart = Date.now();
    const out = await maint("enable", "--binding", "default/maint", "--container", "maint-m2", "--reason", "release v2");
    const enabledAt = Date.now();
    // The CLI returns only once the agent holds the maintenance check: the first read after it shows it.
    assert.ok((await agentMaintenance()).size > 0, "the maintenance check is on the agent when the CLI returns");
    await waitFor(() => (droppedAt > 0 ? true : undefined), { timeoutMs: 10_000, what: "m2 out of the nginx config" }).finally(() => {
      clearInterval(poll);
    });
    // When it was set: first seen by the 20 ms poll, or (a poll answer delayed on a loaded machine) when the CLI returned.
    if (seenAt === 0 || seenAt > enabledAt) seenAt = enabledAt;
    assert.match(out, /in maintenance: dockbind:maint:default:maint:/);
    await waitFor(() => (load.samples.filter((s) => s.at > enabledAt + 1_000).length >= 20 ? true : undefined), { timeoutMs: 20_000, what: "1 s of load" });
    const lastM2 = load.samples.filter((s) => s.body === "m2").at(-1)?.at ?? 0;
    const m2Id = await serviceIdOf("maint-web", backends[1]?.id ?? "");
    assert.equal((await agentMaintenance()).get(m2Id), "dockbind: release v2");
    console.log(
      `# maint enable: CLI ran ${enabledAt - enableStart} ms; maintenance on the agent -> m2 out of the nginx config ${droppedAt - seenAt} ms, ` +
        `-> last request to m2 sent ${lastM2 - seenAt} ms (CLI returned -> ${lastM2 - enabledAt} ms)`,
    );
    assert.ok(lastM2 <= seenAt + 1_000, `m2 got a request ${lastM2 - seenAt} ms after its maintenance was set`);
    assert.ok(droppedAt - seenAt <= 1_000, `m2 left the nginx config ${droppedAt - seenAt} ms after its maintenance was set`);

    // Controller restart, then two full resyncs: m2 stays out.
    await world.controller?.stop();
    const c = await world.startController(["--log-level", "debug"]);
    await waitForReconciles(c, "default/maint", 3);
    assert.equal((await agentMaintenance()).get(m2Id), "dockbind: release v2", "kept across restart and resyncs");
    // Shown as such: /api/status, metrics, the status page and `controller status`; not counted as passing.
    const view = await waitFor(
      async () => {
        const b = (await controllerStatus(c)).bindings.find((x) => x.key === "default/maint");
        return b?.counts.maintenance === 1 && b.counts.passing === 2 ? b : undefined;
      },
      { timeoutMs: 20_000, what: "status: 2 passing, 1 in maintenance" },
    );
    assert.deepEqual(
      view.backends.map((x) => [x.containerName, x.health, x.maintenance?.reason]),
      [
        ["maint-m1", "passing", undefined],
        ["maint-m2", "maintenance", "dockbind: release v2"],
        ["maint-m3", "passing", undefined],
      ],
    );
    assert.equal(await metricSum(c, "dockbind_backends", { binding: "default/maint", state: "maintenance" }), 1);
    assert.equal(await metricSum(c, "dockbind_backends", { binding: "default/maint", state: "passing" }), 2);
    assert.match((await controllerGet(c, "/")).body, /data-backend-health="maintenance"/);
    const cli = await run(process.execPath, [...controllerCommand(), "status", "--addr", await controllerHttpAddr(c)], { timeoutMs: 60_000 });
    assert.match(cli.stdout, /maint-m2 +127\.0\.0\.1:\d+ +maintenance \(service maintenance: dockbind: release v2\)/);

    // The release flow: replace m2 by a new version under the same name; it comes up in maintenance.
    await removeContainer(backends[1]?.id ?? "");
    const v2 = await runBackend({ name: "maint-m2", labels: { app: "maint-web" }, env: { NAME: "m2v2" } });
    const v2Id = await serviceIdOf("maint-web", v2.id);
    await waitFor(async () => ((await agentMaintenance()).get(v2Id) === "dockbind: release v2" ? true : undefined), {
      timeoutMs: 20_000,
      what: "the replacement in maintenance",
    });
    await waitForReconciles(c, "default/maint", 6);
    const disableStart = Date.now();
    await maint("disable", "--binding", "default/maint", "--container", "maint-m2");
    const disabledAt = Date.now();
    await waitFor(() => (load.samples.some((s) => s.body === "m2v2") ? true : undefined), { timeoutMs: 20_000, what: "m2v2 served after disable" });
    const firstV2 = load.samples.find((s) => s.body === "m2v2")?.at ?? 0;
    const samples = await load.stop();
    const failed = samples.filter((s) => s.status !== 200);
    const m2After = samples.filter((s) => s.body === "m2" && s.at > enabledAt + 1_000);
    const v2Early = samples.filter((s) => s.body === "m2v2" && s.at < disableStart);
    console.log(`# maint: ${samples.length} requests, ${failed.length} failed; maint disable returned -> first request to m2v2 ${firstV2 - disabledAt} ms`);
    assert.deepEqual(failed, [], "no failed request");
    assert.deepEqual(m2After, [], "m2 got no request after maintenance (restart and resyncs included)");
    assert.deepEqual(v2Early, [], "the replacement was never served before maint disable");
    assert.ok(samples.some((s) => s.body === "m1") && samples.some((s) => s.body === "m3"));
    assert.equal((await agentMaintenance()).has(v2Id), false);
  });

  it("spec.maintenance in and out; maintenance set by hand is kept across resyncs; re-applied after an agent restart", async () => {
    const n1 = await runBackend({ name: "maint-n1", labels: { app: "maint-decl" }, env: { NAME: "n1" } });
    const n2 = await runBackend({ name: "maint-n2", labels: { app: "maint-decl" }, env: { NAME: "n2" } });
    await waitFor(async () => ((await servedSet(declPort, 8)).size === 2 ? true : undefined), { timeoutMs: 30_000, what: "nginx serving n1, n2" });
    const [id1, id2] = [await serviceIdOf("maint-decl", n1.id), await serviceIdOf("maint-decl", n2.id)];
    // By hand, the agent's HTTP API (what `consul maint -enable -service=ID -reason ...` sends).
    const put = await fetch(`${world.consul.url}/v1/agent/service/maintenance/${encodeURIComponent(id1)}?enable=true&reason=by-hand`, { method: "PUT" });
    assert.equal(put.status, 200);
    world.writeFile("decl.yaml", declYaml("declared"));
    await waitFor(async () => ((await agentMaintenance()).get(id2) === "dockbind: declared" ? true : undefined), {
      timeoutMs: 20_000,
      what: "n2 in maintenance",
    });
    assert.equal((await agentMaintenance()).get(id1), "by-hand", "a hand-set maintenance is not rewritten");
    await waitFor(() => (upstreamServers(world.lbFile("decl.conf")).length === 0 ? true : undefined), { timeoutMs: 20_000, what: "no server rendered" });

    world.writeFile("decl.yaml", declYaml(undefined));
    await waitFor(async () => ((await agentMaintenance()).has(id2) ? undefined : true), { timeoutMs: 20_000, what: "n2 out of maintenance" });
    const c = world.controller;
    assert.ok(c !== undefined);
    const before = c.logs().filter((l) => l.message === "reconciled" && String(l.key).startsWith("binding/default/decl@")).length;
    await waitForReconciles(c, "default/decl", before + 2);
    assert.equal((await agentMaintenance()).get(id1), "by-hand", "kept across resyncs");
    await waitFor(async () => ([...(await servedSet(declPort, 6))].join() === "n2" ? true : undefined), { timeoutMs: 20_000, what: "nginx serving n2 only" });

    // A dev agent loses everything on restart: the declaration brings the maintenance back.
    world.writeFile("decl.yaml", declYaml("declared"));
    await waitFor(async () => ((await agentMaintenance()).get(id2) === "dockbind: declared" ? true : undefined), {
      timeoutMs: 20_000,
      what: "n2 in maintenance",
    });
    await world.consul.restart();
    await waitFor(
      async () => {
        const m = await agentMaintenance();
        return m.get(id1) === "dockbind: declared" && m.get(id2) === "dockbind: declared" ? true : undefined;
      },
      { timeoutMs: 30_000, what: "both re-registered in maintenance after the agent restart" },
    );
    assert.equal(upstreamServers(world.lbFile("decl.conf")).length, 0);
  });
  it("a KV declaration written by hand applies within seconds without a resync; the replacement under the same name comes up in maintenance", async () => {
    await world.controller?.stop();
    const kvPort = await freePort();
    world.writeFile("kv.yaml", bindingYaml({ name: "kvdecl", service: "maint-kv", app: "maint-kv", listenPort: kvPort }));
    await world.startController(["--log-level", "debug", "--resync", "5m"]);
    const k1 = await runBackend({ name: "maint-kv1", labels: { app: "maint-kv" }, env: { NAME: "kv1" } });
    await runBackend({ name: "maint-kv2", labels: { app: "maint-kv" }, env: { NAME: "kv2" } });
    await waitFor(async () => ((await servedSet(kvPort, 8)).size === 2 ? true : undefined), { timeoutMs: 30_000, what: "nginx serving kv1, kv2" });
    const id1 = await serviceIdOf("maint-kv", k1.id);
    const key = maintenanceKvKey(world.node, "default/kvdecl", "maint-kv1");
    const put = await fetch(`${world.consul.url}/v1/kv/${key}`, { method: "PUT", body: "by kv" });
    assert.equal(put.status, 200);
    const putAt = Date.now();
    await waitFor(async () => ((await agentMaintenance()).get(id1) === "dockbind: by kv" ? true : undefined), {
      timeoutMs: 10_000,
      what: "kv1 in maintenance from the KV declaration alone",
    });
    console.log(`# KV declaration by hand -> maintenance on the agent ${Date.now() - putAt} ms (resync 5 min)`);
    await waitFor(async () => ([...(await servedSet(kvPort, 6))].join() === "kv2" ? true : undefined), { timeoutMs: 10_000, what: "nginx serving kv2 only" });

    // Replaced under the same name: registered in maintenance, never served.
    await removeContainer(k1.id);
    const v2 = await runBackend({ name: "maint-kv1", labels: { app: "maint-kv" }, env: { NAME: "kv1v2" } });
    const v2Id = await serviceIdOf("maint-kv", v2.id);
    await waitFor(async () => ((await agentMaintenance()).get(v2Id) === "dockbind: by kv" ? true : undefined), {
      timeoutMs: 10_000,
      what: "the replacement in maintenance",
    });
    assert.deepEqual([...(await servedSet(kvPort, 10))], ["kv2"], "the replacement is not served");

    const del = await fetch(`${world.consul.url}/v1/kv/${key}`, { method: "DELETE" });
    assert.equal(del.status, 200);
    await waitFor(async () => ((await agentMaintenance()).has(v2Id) ? undefined : true), { timeoutMs: 10_000, what: "the replacement out of maintenance" });
    await waitFor(async () => ((await servedSet(kvPort, 8)).size === 2 ? true : undefined), { timeoutMs: 20_000, what: "nginx serving kv1v2 and kv2" });
  });
});
