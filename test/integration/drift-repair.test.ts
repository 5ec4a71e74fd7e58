/**
 * Consul drift is repaired as it happens, not at the next full resync: the
 * controller runs with a resync period far longer than the test (10 min), so
 * only the health watch can bring back a registration removed behind its
 * back (real dockerd, Consul and nginx):
 * - a registration deregistered by hand through the agent API is registered
 *   again (the same service ID, one register write) and served again;
 * - the controller's own deregistration (a container stopped) is not taken
 *   for drift: no "vanished" line, nothing re-registered.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { runBackend, stopContainer, type Backend } from "../support/docker.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const SERVICE = "drift-web";
const VANISHED = "registrations vanished from Consul; re-checking them";

let world: World;
let webPort: number;
const backends = new Map<string, Backend>();

function registerWrites(since: number): string[] {
  return world.proxy
    .writes()
    .slice(since)
    .filter((r) => r.path.startsWith("/v1/agent/service/register"))
    .map((r) => r.path);
}

before(async () => {
  world = await startWorld("drift");
  webPort = await freePort();
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: SERVICE, app: SERVICE, listenPort: webPort }));
  await world.startController(["--resync", "10m"]);
  for (const n of ["drift-a", "drift-b"]) backends.set(n, await runBackend({ name: n, labels: { app: SERVICE }, env: { NAME: n } }));
  await world.servedExactly(webPort, ["drift-a", "drift-b"], 20_000);
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("consul drift repair without a resync", () => {
  it("registers again, within seconds, a registration deregistered by hand", async () => {
    const controller = world.controller;
    assert.ok(controller);
    const entries = await world.health(SERVICE);
    assert.equal(entries.length, 2);
    const victim = entries[0];
    assert.ok(victim);
    const writes = world.proxy.writes().length;
    const res = await fetch(`${world.consul.url}/v1/agent/service/deregister/${encodeURIComponent(victim.id)}`, { method: "PUT" });
    assert.equal(res.status, 200);
    const t0 = performance.now();
    await waitFor(async () => ((await world.health(SERVICE)).some((e) => e.id === victim.id && e.status === "passing") ? true : undefined), {
      timeoutMs: 15_000,
      what: `${victim.id} registered again and passing`,
    });
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write(`# hand-deregistered ${victim.id}: registered again and passing after ${seconds.toFixed(1)} s (resync 10 min)\n`);
    const line = controller.logs().find((l) => l.message === VANISHED);
    assert.ok(line, "the controller says why it re-checked");
    assert.match(String(line.serviceIds), new RegExp(victim.id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    assert.deepEqual(registerWrites(writes), ["/v1/agent/service/register"], "exactly one write: the restored registration");
    await world.servedExactly(webPort, ["drift-a", "drift-b"], 10_000);
  });

  it("does not take its own deregistration for drift", async () => {
    const controller = world.controller;
    assert.ok(controller);
    const vanishedBefore = controller.logs().filter((l) => l.message === VANISHED).length;
    const writes = world.proxy.writes().length;
    const b = backends.get("drift-b");
    assert.ok(b);
    await stopContainer(b.id);
    await world.servedExactly(webPort, ["drift-a"], 20_000);
    await waitFor(async () => ((await world.health(SERVICE)).length === 1 ? true : undefined), { timeoutMs: 10_000, what: "drift-b deregistered" });
    await controller.waitForLog((l) => l.message === "deregistered", "the deregistration");
    assert.equal(controller.logs().filter((l) => l.message === VANISHED).length, vanishedBefore, "no drift reported for its own deregistration");
    assert.deepEqual(registerWrites(writes), [], "nothing re-registered");
  });
});
