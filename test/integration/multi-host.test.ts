/**
 * Issue #4 (multi-host ownership): two controllers with different --node
 * identities share one Consul agent, each selecting its own containers for the
 * same service. Neither ever removes the other's registrations (registrator
 * #505), and a kill -9 + restart of one creates no duplicates (registrator
 * #312) and leaves the other's registrations untouched.
 */
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startController, type ControllerHandle } from "../support/controller.js";
import { startConsulProxy, type ConsulProxy } from "../support/consulProxy.js";
import { runBackend } from "../support/docker.js";
import { ensureBedRoot } from "../support/procs.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const SERVICE = "mh-web";
let world: World;
let port: number;
/** Host B: its own bindings dir, its own counting proxy, no load balancer. */
let proxyB: ConsulProxy;
let bindingsB: string;
let controllerB: ControllerHandle | undefined;

async function startB(): Promise<ControllerHandle> {
  controllerB = await startController({
    bindingsDir: bindingsB,
    consulAddr: proxyB.addr,
    outputDir: mkdtempSync(join(ensureBedRoot(), "mh-b-out-")),
    nginxArgs: world.nginx.nginxArgs,
    node: "host-b",
    logName: `controller-mh-b-${process.pid}.log`,
    extraArgs: ["--resync", "2s", "--haproxy-output-dir", mkdtempSync(join(ensureBedRoot(), "mh-b-hx-"))],
  });
  return controllerB;
}

/** Instances by owner node; and the number of registrations per container (1 = no duplicates). */
async function byOwner(): Promise<{ a: string[]; b: string[]; perContainer: Map<string, number> }> {
  const entries = await world.health(SERVICE);
  const perContainer = new Map<string, number>();
  for (const e of entries) {
    const c = e.meta.dockbind_container ?? "";
    perContainer.set(c, (perContainer.get(c) ?? 0) + 1);
  }
  const ids = (node: string): string[] =>
    entries
      .filter((e) => e.meta.dockbind_node === node)
      .map((e) => e.id)
      .sort();
  return { a: ids("host-a"), b: ids("host-b"), perContainer };
}

before(async () => {
  world = await startWorld("host-a");
  port = await freePort();
  proxyB = await startConsulProxy(world.consul.httpAddr);
  bindingsB = mkdtempSync(join(ensureBedRoot(), "bindings-host-b-"));
  mkdirSync(bindingsB, { recursive: true });
  // Same service, different containers: host A renders the LB for both hosts' instances.
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: SERVICE, app: "mh-a", listenPort: port }));
  writeFileSync(join(bindingsB, "web.yaml"), bindingYaml({ name: "web", service: SERVICE, app: "mh-b" }));
  await Promise.all([world.startController(), startB()]);
});

after(async () => {
  await Promise.all([world.controller?.stop(), controllerB?.stop()]);
  await Promise.all([world.proxy.close(), proxyB.close()]);
  await cleanupAll();
});

describe("two controllers sharing one Consul", () => {
  it("each registers only its own containers; both hosts' instances are served", async () => {
    for (const [app, n] of [
      ["mh-a", 2],
      ["mh-b", 2],
    ] as const) {
      for (let i = 1; i <= n; i++) await runBackend({ name: `${app}-${i}-${process.pid}`, labels: { app }, env: { NAME: `${app}-${i}` } });
    }
    const owners = await waitFor(
      async () => {
        const o = await byOwner();
        return o.a.length === 2 && o.b.length === 2 ? o : undefined;
      },
      { timeoutMs: 20_000, what: "2 instances per host" },
    );
    assert.ok(owners.a.every((id) => id.startsWith("dockbind:host-a:")));
    assert.ok(owners.b.every((id) => id.startsWith("dockbind:host-b:")));
    await waitFor(
      async () => {
        const bodies = await world.sample(port, 12);
        return ["mh-a-1", "mh-a-2", "mh-b-1", "mh-b-2"].every((n) => bodies.includes(n)) || undefined;
      },
      { timeoutMs: 20_000, what: "nginx serving all four backends" },
    );
  });

  it("several resyncs of both: neither deregisters the other's instances", async () => {
    const before = await byOwner();
    // Resync is 2 s: every pass lists the agent, so request counts measure reconcile passes.
    await waitFor(() => (world.proxy.requests.length > 0 && proxyB.requests.length > 0 ? true : undefined), {
      timeoutMs: 5_000,
      what: "both controllers talking to Consul",
    });
    const readsA = world.proxy.requests.length;
    const readsB = proxyB.requests.length;
    await waitFor(() => (world.proxy.requests.length > readsA + 6 && proxyB.requests.length > readsB + 6 ? true : undefined), {
      timeoutMs: 20_000,
      what: "several reconcile passes on both",
    });
    assert.deepEqual(await byOwner(), before);
    const deregs = [...world.proxy.writes(), ...proxyB.writes()].filter((w) => w.path.includes("/deregister/"));
    assert.deepEqual(deregs, [], "no deregistration at all");
  });

  it("kill -9 and restart of host B: zero duplicates, host A's registrations untouched", async () => {
    const before = await byOwner();
    const writesA = world.proxy.writes().length;
    controllerB?.proc.kill();
    await controllerB?.proc.exited;
    // Host A keeps running while B is down: it must not touch B's registrations.
    const readsA = world.proxy.requests.length;
    await waitFor(() => (world.proxy.requests.length > readsA + 6 ? true : undefined), { timeoutMs: 20_000, what: "host A reconciling while B is down" });
    assert.deepEqual((await byOwner()).b, before.b, "B's registrations survive B's crash");
    const writesB = proxyB.writes().length;
    const next = await startB();
    await waitFor(() => (proxyB.requests.length > 10 ? true : undefined), { timeoutMs: 20_000, what: "restarted B reconciling" });
    await next.waitForLog((l) => l.message === "controller started", "B started");
    const readsB = proxyB.requests.length;
    await waitFor(() => (proxyB.requests.length > readsB + 6 ? true : undefined), { timeoutMs: 20_000, what: "several passes of restarted B" });
    const afterRestart = await byOwner();
    assert.deepEqual(afterRestart, before, "same instances, same IDs");
    for (const [container, n] of afterRestart.perContainer) assert.equal(n, 1, `registrations of container ${container}`);
    assert.deepEqual(proxyB.writes().slice(writesB), [], "restarted B wrote nothing (converged)");
    assert.deepEqual(world.proxy.writes().slice(writesA), [], "A wrote nothing");
  });
});
