/**
 * A Docker event stream that stalls silently: the controller reaches the real
 * dockerd through a stalling proxy (test/support/stallProxy.ts); the stream's
 * connection stops forwarding in both directions but stays open, while the
 * controller's list and inspect requests still get through. Containers are
 * started and removed during the stall.
 *
 * Asserted: the stall is detected within --resync + STALL_GRACE_MS of the
 * first missed change (measured and printed) with the warn log line and
 * dockbind_watch_restarts_total{source="docker",reason="stalled"}; the
 * untouched container's registration never disappears meanwhile; every
 * change is applied; the re-established stream delivers events again.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { removeContainer, runBackend } from "../support/docker.js";
import { metricSum } from "../support/metrics.js";
import { ensureBedRoot } from "../support/procs.js";
import { startStallProxy, type StallProxy } from "../support/stallProxy.js";
import { cleanupAll } from "../support/teardown.js";
import { waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";
import { STALL_GRACE_MS } from "../../src/sources/docker/dockerWatcher.js";

const SERVICE = "stall-docker";
const RESYNC_MS = 2_000;
let world: World;
let proxy: StallProxy;

/** Container ids (12) registered by this world's controller. */
async function owned(): Promise<Set<string>> {
  const r = await fetch(`${world.consul.url}/v1/agent/services`);
  const all = (await r.json()) as Record<string, { Meta?: Record<string, string> | null }>;
  return new Set(
    Object.values(all)
      .filter((s) => s.Meta?.dockbind_node === world.node)
      .map((s) => (s.Meta?.dockbind_container ?? "").slice(0, 12)),
  );
}

function same(a: ReadonlySet<string>, b: readonly string[]): boolean {
  return a.size === b.length && b.every((x) => a.has(x.slice(0, 12)));
}

before(async () => {
  world = await startWorld("stall-docker");
  proxy = await startStallProxy({ path: "/var/run/docker.sock" }, { path: join(ensureBedRoot(), `docker-stall-${process.pid}.sock`) });
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: SERVICE, app: SERVICE, check: "none" }));
  await world.startController(["--docker-host", `unix://${proxy.address}`, "--resync", `${RESYNC_MS / 1000}s`]);
});

after(async () => {
  await world.controller?.stop();
  await proxy.close();
  await world.proxy.close();
  await cleanupAll();
});

describe("silent Docker event stream stall", () => {
  it("is detected and re-established within the bound; nothing is deregistered meanwhile; every change is applied", async () => {
    const c = world.controller;
    assert.ok(c);
    const keep = await runBackend({ name: "stall-d-keep", labels: { app: SERVICE } });
    const victim = await runBackend({ name: "stall-d-victim", labels: { app: SERVICE } });
    await waitFor(async () => same(await owned(), [keep.id, victim.id]) || undefined, { timeoutMs: 20_000, what: "2 registrations" });

    // Stall the event stream's connection (the only one carrying GET /events).
    const stalled = await waitFor(() => proxy.stall((v) => /^GET \S*\/events/.test(v.head)) || undefined, { timeoutMs: 10_000, what: "the events connection" });
    assert.equal(stalled, 1);
    const mark = c.logs().length;
    let keepLost = false;
    const polling = { on: true }; // cleared below, read by the poller
    const poller = (async () => {
      while (polling.on) {
        if (!(await owned()).has(keep.id.slice(0, 12))) keepLost = true;
        await new Promise((r) => setTimeout(r, 200));
      }
    })();

    const changedAt = Date.now();
    const fresh = await runBackend({ name: "stall-d-fresh", labels: { app: SERVICE } });
    await removeContainer(victim.id);
    const line = await c.waitForLog((l) => l.message === "docker event stream stalled; reconnecting", "stall detected", 60_000);
    const detectedMs = Date.parse(String(line.timestamp)) - changedAt;
    const bound = RESYNC_MS + STALL_GRACE_MS + 2_000; // + the list and the container start itself
    console.log(
      `docker stall detected ${detectedMs} ms after the first missed change (bound ${bound} ms: --resync ${RESYNC_MS} + grace ${STALL_GRACE_MS} + 2000)`,
    );
    assert.ok(detectedMs <= bound, `detected after ${detectedMs} ms`);
    assert.ok(Number(line.unreportedChanges) >= 1);
    assert.ok(
      c
        .logs()
        .slice(mark)
        .some((l) => l.message === "docker event stream stalled; reconnecting"),
    );

    await c.waitForLog((l) => l.message === "docker event stream reconnected", "stream re-established", 20_000);
    await waitFor(async () => same(await owned(), [keep.id, fresh.id]) || undefined, { timeoutMs: 20_000, what: "keep + fresh registered, victim gone" });
    polling.on = false;
    await poller;
    assert.equal(keepLost, false, "the untouched container stayed registered throughout the stall");
    assert.ok((await metricSum(c, "dockbind_watch_restarts_total", { source: "docker", reason: "stalled" })) >= 1);

    // The new stream delivers events again (counted by action).
    const starts = await metricSum(c, "dockbind_docker_events_total", { action: "start" });
    const late = await runBackend({ name: "stall-d-late", labels: { app: SERVICE } });
    await waitFor(async () => (await metricSum(c, "dockbind_docker_events_total", { action: "start" })) > starts || undefined, {
      timeoutMs: 10_000,
      what: "a start event on the new stream",
    });
    await waitFor(async () => same(await owned(), [keep.id, fresh.id, late.id]) || undefined, { timeoutMs: 20_000, what: "late registered" });
  });
});
