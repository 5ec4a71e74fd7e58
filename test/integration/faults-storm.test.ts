/**
 * Issue #6 fault suite, part 4: an event storm. STORM_CONTAINERS (default
 * 200) matching containers are started in a burst (STORM_CONCURRENCY
 * parallel `docker run`, default 8), then all removed at once. The final
 * states must be exact (Consul and the LB file), the number of nginx reloads
 * bounded by the render debounce, and the controller's RSS must not grow
 * without bound (< 2x its warm value). Figures are printed.
 *
 * The storm runs on a private engine of its own (test/support/extraDockerd.ts)
 * so that it loads no other file's dockerd: `make test` runs it beside the
 * files that need the shared engine alone.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { TEST_LABEL } from "../support/docker.js";
import { apiRemoveContainer, apiRunContainer, type DockerEndpoint } from "../support/dockerProxy.js";
import { startExtraDockerd, type ExtraDockerd } from "../support/extraDockerd.js";
import { upstreamServers } from "../support/fsWatch.js";
import { ensureBackendImage } from "../support/image.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const N = Number(process.env.STORM_CONTAINERS ?? "200");
const CONCURRENCY = Number(process.env.STORM_CONCURRENCY ?? "8");
const SERVICE = "fault-storm";
/** Render debounce used for this controller (consul-template's `wait = "500ms:2s"`). */
const WAIT_MIN_S = 0.5;
const WAIT_MAX_S = 2;
let world: World;
let port: number;
let engine: ExtraDockerd;
let endpoint: DockerEndpoint;

function rssMb(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "0");
  return Math.round(kb / 1024);
}

async function ownedCount(): Promise<number> {
  const r = await fetch(`${world.consul.url}/v1/agent/services`);
  const all = (await r.json()) as Record<string, { Meta?: Record<string, string> | null }>;
  return Object.values(all).filter((s) => s.Meta?.dockbind_node === world.node).length;
}

async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const item = items[next++];
        if (item !== undefined) await fn(item);
      }
    }),
  );
}

before(async () => {
  world = await startWorld("faults-storm");
  // A /23: the storm's containers and the warm-up's must all get an address.
  engine = await startExtraDockerd({ name: "storm", bridgeCidr: "172.31.246.1/23" });
  endpoint = { socketPath: engine.socket };
  port = await freePort();
  world.writeFile("storm.yaml", bindingYaml({ name: "storm", service: SERVICE, app: SERVICE, listenPort: port, check: "none" }));
  await world.startController(["--docker-host", engine.host, "--wait-min", `${WAIT_MIN_S * 1000}ms`, "--wait-max", `${WAIT_MAX_S}s`, "--resync", "30s"]);
  await waitFor(() => world.lbFile("storm.conf"), { timeoutMs: 20_000, what: "initial (empty) LB file" });
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
  await engine.stop();
});

describe("event storm", () => {
  it(`${N} containers started and removed in a burst: exact final state, bounded reloads, bounded memory`, async () => {
    const c = world.controller;
    assert.ok(c);
    const image = await ensureBackendImage(engine.host);
    // Warm-up (20 containers up and down) so "before" is a working controller's RSS, not a fresh process's.
    const warm: string[] = [];
    await pool([...Array(20).keys()], CONCURRENCY, async (i) => {
      warm.push(
        await apiRunContainer(
          {
            name: `fs-warm-${process.pid}-${i}`,
            image,
            hostPort: await engine.hostPort(),
            labels: { [TEST_LABEL]: "1", "dockbind-test.pid": String(process.pid), app: SERVICE },
          },
          endpoint,
        ),
      );
    });
    await waitFor(async () => ((await ownedCount()) === warm.length ? true : undefined), { timeoutMs: 60_000, intervalMs: 250, what: "warm-up registrations" });
    await pool(warm, CONCURRENCY, (id) => apiRemoveContainer(id, endpoint));
    await waitFor(async () => ((await ownedCount()) === 0 ? true : undefined), { timeoutMs: 60_000, intervalMs: 250, what: "warm-up gone" });
    await world.nginx.settled(20_000);
    const rssBefore = rssMb(c.proc.pid);
    const reloads0 = await world.nginx.reloadCount();
    const writes0 = world.proxy.writes().length;
    const t0 = Date.now();
    const ids: string[] = [];
    await pool([...Array(N).keys()], CONCURRENCY, async (i) => {
      ids.push(
        await apiRunContainer(
          {
            name: `fs-${process.pid}-${i}`,
            image,
            hostPort: await engine.hostPort(),
            labels: { [TEST_LABEL]: "1", "dockbind-test.pid": String(process.pid), app: SERVICE },
          },
          endpoint,
        ),
      );
    });
    const startedS = (Date.now() - t0) / 1000;
    await waitFor(async () => ((await ownedCount()) === N ? true : undefined), { timeoutMs: 60_000, intervalMs: 250, what: `${N} registrations` });
    await waitFor(() => upstreamServers(world.lbFile("storm.conf")).length === N || undefined, {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: `${N} servers rendered`,
    });
    const upS = (Date.now() - t0) / 1000;
    const reloadsUp = (await world.nginx.reloadCount()) - reloads0;
    const rssPeak = rssMb(c.proc.pid);

    const t1 = Date.now();
    await pool(ids, CONCURRENCY * 2, (id) => apiRemoveContainer(id, endpoint));
    await waitFor(async () => ((await ownedCount()) === 0 ? true : undefined), { timeoutMs: 60_000, intervalMs: 250, what: "0 registrations" });
    await waitFor(
      () => (world.lbFile("storm.conf")?.includes("return 503;") === true && upstreamServers(world.lbFile("storm.conf")).length === 0) || undefined,
      {
        timeoutMs: 60_000,
        intervalMs: 250,
        what: "no servers rendered",
      },
    );
    const downS = (Date.now() - t1) / 1000;
    await world.nginx.settled(20_000);
    const reloads = (await world.nginx.reloadCount()) - reloads0;
    const writes = world.proxy.writes().length - writes0;
    // Memory after the storm, once the heap had a chance to shrink: sampled a few times, the lowest counts.
    const samples: number[] = [];
    await waitFor(
      () => {
        samples.push(rssMb(c.proc.pid));
        return samples.length >= 10 || undefined;
      },
      { timeoutMs: 10_000, intervalMs: 300, what: "RSS samples" },
    );
    const rssAfter = Math.min(...samples);
    process.stdout.write(
      `# storm: ${N} containers started in ${startedS.toFixed(1)} s (concurrency ${CONCURRENCY}), all registered+rendered after ${upS.toFixed(1)} s, ` +
        `all removed+rendered in ${downS.toFixed(1)} s\n# storm: nginx reloads ${reloads} (${reloadsUp} on the way up; ${((2 * N) / Math.max(1, reloads)).toFixed(1)} container events per reload), Consul writes ${writes} ` +
        `(${2 * N} minimum), controller RSS ${rssBefore} MB before, ${rssPeak} MB at peak, ${rssAfter} MB after\n`,
    );
    assert.equal(writes, 2 * N, "exactly one register and one deregister per container");
    // The debouncer's contract: two renders are at least wait-min apart, whatever the event rate:
    // reloads <= duration / wait-min (+1 per phase edge).
    const bound = Math.ceil((upS + downS) / WAIT_MIN_S) + 2;
    assert.ok(reloads <= bound, `${reloads} reloads > ${bound} (one per ${WAIT_MIN_S} s of storm)`);
    assert.ok(reloads < 2 * N, `${reloads} reloads for ${2 * N} container events: nothing coalesced`);
    assert.ok(rssAfter < 2 * rssBefore, `RSS ${rssBefore} MB -> ${rssAfter} MB (>= 2x)`);
  });
});
