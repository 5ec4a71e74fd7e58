/**
 * Consul drift is repaired as it happens, not at the next full resync: the
 * controller runs with a resync period far longer than the test (10 min), so
 * only the health watch can bring back a registration removed behind its
 * back (real dockerd, Consul and nginx):
 * - a registration deregistered by hand through the agent API is registered
 *   again (the same service ID, one register write) and served again;
 * - a registration another tool rewrote in place (the same ID with our meta
 *   copied, a tag added and another weight) is written back as the binding
 *   wants it (one register write);
 * - the controller's own rewrites (a binding edit that changes tags) and
 *   deregistrations (a container stopped) are not taken for drift: no
 *   "vanished" or "changed" line, nothing re-registered.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { runBackend, stopContainer, type Backend } from "../support/docker.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const SERVICE = "drift-web";
const VANISHED = "registrations vanished from Consul; re-checking them";
const EDITED = "registrations changed in Consul behind the controller's back; re-checking them";

interface AgentService {
  readonly ID: string;
  readonly Service: string;
  readonly Address: string;
  readonly Port: number;
  readonly Tags: readonly string[] | null;
  readonly Meta: Record<string, string> | null;
  readonly Weights: { readonly Passing: number; readonly Warning: number };
}

/** The agent's own definition of service `id` (GET /v1/agent/service/:id, straight to the agent). */
async function agentService(id: string): Promise<AgentService> {
  const res = await fetch(`${world.consul.url}/v1/agent/service/${encodeURIComponent(id)}`);
  assert.equal(res.status, 200, `agent service ${id}`);
  return (await res.json()) as AgentService;
}

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

  it("writes back, within seconds, a registration another tool rewrote in place (our meta copied, a tag added, another weight)", async () => {
    const controller = world.controller;
    assert.ok(controller);
    const victim = (await world.health(SERVICE))[1];
    assert.ok(victim);
    const mine = await agentService(victim.id);
    const writes = world.proxy.writes().length;
    const body = {
      ID: mine.ID,
      Name: mine.Service,
      Address: mine.Address,
      Port: mine.Port,
      Tags: [...(mine.Tags ?? []), "hijacked"],
      Meta: mine.Meta,
      Weights: { Passing: 42, Warning: 1 },
    };
    const res = await fetch(`${world.consul.url}/v1/agent/service/register`, { method: "PUT", body: JSON.stringify(body) });
    assert.equal(res.status, 200);
    const t0 = performance.now();
    const restored = await waitFor(
      async () => {
        const s = await agentService(victim.id);
        return !(s.Tags ?? []).includes("hijacked") && s.Weights.Passing === mine.Weights.Passing ? s : undefined;
      },
      { timeoutMs: 15_000, what: `${victim.id} written back as the binding wants it` },
    );
    const seconds = (performance.now() - t0) / 1000;
    process.stdout.write(`# ${victim.id} rewritten in place by hand: written back after ${seconds.toFixed(2)} s (resync 10 min)\n`);
    assert.deepEqual(restored.Tags, mine.Tags);
    assert.deepEqual(restored.Meta, mine.Meta);
    const line = controller.logs().find((l) => l.message === EDITED);
    assert.ok(line, "the controller says why it re-checked");
    assert.match(String(line.serviceIds), new RegExp(victim.id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    assert.deepEqual(registerWrites(writes), ["/v1/agent/service/register"], "exactly one write: the restored registration");
    await waitFor(async () => ((await world.health(SERVICE)).every((e) => e.status === "passing") ? true : undefined), {
      timeoutMs: 10_000,
      what: "both passing",
    });
    await world.servedExactly(webPort, ["drift-a", "drift-b"], 10_000);
  });

  it("does not take its own rewrites (a binding edit that changes tags) or deregistrations (a container stopped) for drift", async () => {
    const controller = world.controller;
    assert.ok(controller);
    const drift = (): number => controller.logs().filter((l) => l.message === VANISHED || l.message === EDITED).length;
    const driftBefore = drift();
    const ids = (await world.health(SERVICE)).map((e) => e.id);
    assert.equal(ids.length, 2);
    const yaml = bindingYaml({ name: "web", service: SERVICE, app: SERVICE, listenPort: webPort });
    world.writeFile("web.yaml", yaml.replace("tags: [dockbind-test]", "tags: [dockbind-test, v2]"));
    await waitFor(async () => ((await Promise.all(ids.map(agentService))).every((s) => (s.Tags ?? []).includes("v2")) ? true : undefined), {
      timeoutMs: 15_000,
      what: "the binding's new tag on both registrations",
    });
    const writes = world.proxy.writes().length;
    const b = backends.get("drift-b");
    assert.ok(b);
    await stopContainer(b.id);
    await world.servedExactly(webPort, ["drift-a"], 20_000);
    await waitFor(async () => ((await world.health(SERVICE)).length === 1 ? true : undefined), { timeoutMs: 10_000, what: "drift-b deregistered" });
    await controller.waitForLog((l) => l.message === "deregistered", "the deregistration");
    assert.equal(drift(), driftBefore, "no drift reported for its own rewrites and deregistration");
    assert.deepEqual(registerWrites(writes), [], "nothing re-registered");
  });
});
