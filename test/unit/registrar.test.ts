import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConsulError } from "../../src/clients/consul/types.js";
import { registrationHash, withHash } from "../../src/domain/plan.js";
import { COMPAT_BINDING_KEY } from "../../src/domain/registratorCompat.js";
import { OWNER_META, type ContainerInfo, type RegisteredService, type Registration, type ServiceBinding } from "../../src/domain/types.js";
import { BindingStatusStore } from "../../src/reconcilers/bindingStatus.js";
import { ownerRequest, RegistrarReconciler } from "../../src/reconcilers/registrar.js";
import { decodeNodeRequest, keyed, type NodeRequest } from "../../src/runtime/requests.js";
import { ReconcileError } from "../../src/runtime/errors.js";
import { silentLogger } from "../../src/runtime/logger.js";
import type { CheckProbe } from "../../src/actuators/probe/checkProbe.js";
import { PROBE_TIMEOUT_CAP_MS, RegistrationProber } from "../../src/reconcilers/registrationProber.js";
import { FakeBindings, FakeConsul, FakeContainers, makeBinding, makeContainer, makeInstance } from "../support/fakes.js";

import type { OwnerIdentity } from "../../src/domain/ownership.js";

const NODE = "node-1";
/** This registrar's owner identity (engine and instance of the controller under test). */
const SELF = { node: NODE, engine: "ENGINE-SELF", instance: "i-self", adopt: [] } as const;
const HOST_IP = "192.0.2.10";

/** The registrar's binding: service `<name>` tagged v1, containers `app=<name>` on private port `port`. */
function binding(name = "web", port = 8080): ServiceBinding {
  return makeBinding(name, { service: { tags: ["v1"] }, backends: { port } });
}

function container(id: string, app = "web", hostPort = 32768, privatePort = 8080): ContainerInfo {
  return makeContainer(id, { labels: { app }, ports: [{ privatePort, protocol: "tcp", hostIP: "0.0.0.0", hostPort }] });
}

const C1 = "c1c1c1c1c1c1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const C2 = "c2c2c2c2c2c2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/** A registration as some owner would have written it. */
function foreign(id: string, meta: Record<string, string>): RegisteredService {
  return { id, name: "web", address: "10.0.0.1", port: 80, tags: [], meta };
}

function setup(over: { notSyncedRetryMs?: number; compat?: boolean; probe?: CheckProbe; identity?: () => OwnerIdentity | undefined } = {}) {
  const consul = new FakeConsul();
  const containers = new FakeContainers();
  const bindings = new FakeBindings();
  const status = new BindingStatusStore();
  const registrar = new RegistrarReconciler({
    bindings,
    containers,
    consul,
    status,
    logger: silentLogger(),
    node: NODE,
    identity: over.identity ?? (() => SELF),
    hostIP: HOST_IP,
    // Re-read the agent on every reconcile: these tests change the fake agent between reconciles.
    agentServicesMaxAgeMs: 0,
    ...(over.notSyncedRetryMs !== undefined ? { notSyncedRetryMs: over.notSyncedRetryMs } : {}),
    ...(over.compat === true ? { compat: { node: NODE, hostIP: HOST_IP, internal: false, extraTags: [] } } : {}),
    ...(over.probe !== undefined ? { probe: over.probe } : {}),
  });
  return { consul, containers, bindings, status, registrar };
}

/** binding() with healthCheck.probeBeforeRegister and a 10 s interval. */
function probingBinding(): ServiceBinding {
  const b = binding();
  return { ...b, spec: { ...b.spec, healthCheck: { ...b.spec.healthCheck, probeBeforeRegister: true, interval: "10s" } } };
}

describe("RegistrarReconciler: bindings", () => {
  it("registers every backend with owner meta and the content hash", async () => {
    const { consul, containers, bindings, status, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1, "web", 32768));
    containers.put(container(C2, "web", 32769));
    containers.put(container("dddddddddddd", "other", 40000));
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), {});
    assert.equal(consul.writes().length, 2);
    const regs = [...consul.services.values()];
    assert.deepEqual(regs.map((r) => `${r.address}:${r.port}`).sort(), [`${HOST_IP}:32768`, `${HOST_IP}:32769`]);
    for (const r of regs) {
      assert.equal(r.meta[OWNER_META.node], NODE);
      assert.equal(r.meta[OWNER_META.binding], "default/web");
      assert.match(r.meta[OWNER_META.hash] ?? "", /^[0-9a-f]{16}$/);
    }
    const s = status.get("default/web");
    assert.deepEqual(s.backends, { desired: 2, registered: 2, passing: 0 });
    assert.equal(s.conditions.find((c) => c.type === "Registered")?.status, "True");
    assert.equal(s.conditions.find((c) => c.type === "Ready")?.status, "True");
  });

  it("a converged binding makes zero Consul writes", async () => {
    const { consul, containers, bindings, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    consul.calls.length = 0;
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.deepEqual(consul.writes(), []);
    assert.deepEqual(consul.calls, ["list", "list"], "it still reads the agent each time");
  });

  it("re-registers when the published port changed", async () => {
    const { consul, containers, bindings, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1, "web", 32768));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    containers.put(container(C1, "web", 40000));
    consul.calls.length = 0;
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.equal(consul.writes().length, 1);
    assert.match(consul.writes()[0] ?? "", /^register /);
    assert.equal([...consul.services.values()][0]?.port, 40000);
  });

  it("deregisters the registration of a container that went away", async () => {
    const { consul, containers, bindings, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1, "web", 32768));
    containers.put(container(C2, "web", 32769));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    const gone = [...consul.services.values()].find((s) => s.meta[OWNER_META.container] === C2);
    assert.ok(gone !== undefined);
    containers.items.delete(C2);
    consul.calls.length = 0;
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.deepEqual(consul.writes(), [`deregister ${gone.id}`]);
  });

  it("deregisters only this node's registrations for this binding; foreign ones are untouched", async () => {
    const { consul, bindings, status, registrar } = setup();
    bindings.put(binding()); // no containers: nothing is desired
    const ours = foreign("ours-stale", { [OWNER_META.node]: NODE, [OWNER_META.binding]: "default/web" });
    const otherNode = foreign("other-node", { [OWNER_META.node]: "node-2", [OWNER_META.binding]: "default/web" });
    const otherBinding = foreign("other-binding", { [OWNER_META.node]: NODE, [OWNER_META.binding]: "default/api" });
    const unowned = foreign("unowned", {});
    const bindingOnly = foreign("no-node-meta", { [OWNER_META.binding]: "default/web" });
    const compat = foreign("compat", { [OWNER_META.node]: NODE, [OWNER_META.binding]: COMPAT_BINDING_KEY, [OWNER_META.container]: C1 });
    for (const s of [ours, otherNode, otherBinding, unowned, bindingOnly, compat]) consul.seed(s);
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.deepEqual(consul.writes(), ["deregister ours-stale"]);
    assert.deepEqual([...consul.services.keys()].sort(), ["compat", "no-node-meta", "other-binding", "other-node", "unowned"]);
    assert.deepEqual(status.get("default/web").backends, { desired: 0, registered: 0, passing: 0 });
    assert.match(status.get("default/web").conditions.find((c) => c.type === "Registered")?.message ?? "", /^0 instance/);
  });

  it("a deleted binding has its registrations deregistered and its status dropped", async () => {
    const { consul, containers, bindings, status, registrar } = setup();
    bindings.put(binding("web"));
    bindings.put(binding("api", 9090));
    containers.put(container(C1, "web"));
    containers.put(container(C2, "api", 33000, 9090));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    await registrar.reconcile({ kind: "binding", binding: "default/api" });
    assert.equal(consul.services.size, 2);
    bindings.items.delete("default/web");
    consul.calls.length = 0;
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), {});
    assert.equal(consul.writes().length, 1);
    assert.match(consul.writes()[0] ?? "", /^deregister dockbind:node-1:default:web:/);
    assert.deepEqual(
      [...consul.services.values()].map((s) => s.meta[OWNER_META.binding]),
      ["default/api"],
    );
    assert.deepEqual(status.keys(), ["default/api"]);
  });

  it("counts skipped backends and names the reason", async () => {
    const { containers, bindings, status, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1, "web", 32768));
    containers.put({ ...container(C2, "web"), ports: [{ privatePort: 8080, protocol: "tcp" }] });
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    const s = status.get("default/web");
    assert.deepEqual(s.backends, { desired: 2, registered: 1, passing: 0 });
    assert.match(s.conditions.find((c) => c.type === "Registered")?.message ?? "", /1 backend\(s\) skipped: port 8080\/tcp is not published/);
  });
});

describe("RegistrarReconciler: ownership with the same node name (another engine or instance)", () => {
  const PEER = { [OWNER_META.node]: NODE, [OWNER_META.engine]: SELF.engine, [OWNER_META.instance]: "i-peer" };

  it("a peer's registrations of a binding we do not have are not orphans of ours: never deregistered", async () => {
    const { consul, registrar } = setup();
    consul.seed(foreign("peer-b", { ...PEER, [OWNER_META.binding]: "default/b", [OWNER_META.container]: C2 }));
    consul.seed(foreign("ours-gone", { ...PEER, [OWNER_META.instance]: SELF.instance, [OWNER_META.binding]: "default/gone" }));
    await registrar.reconcile({ kind: "binding", binding: "default/b" });
    await registrar.reconcile({ kind: "binding", binding: "default/gone" });
    assert.deepEqual(consul.writes(), ["deregister ours-gone"], "our own orphan goes, the peer's stays");
    assert.ok(consul.services.has("peer-b"));
  });

  it("a desired ID a peer holds is never overwritten; the status says why", async () => {
    const { consul, containers, bindings, status, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1, "web", 32768));
    containers.put(container(C2, "web", 32769));
    const sent = consul.sent;
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    const held = sent.find((r) => r.meta[OWNER_META.container] === C1);
    assert.ok(held !== undefined);
    // The peer now holds C1's ID (same engine, same node, another instance).
    consul.services.set(held.id, foreign(held.id, { ...held.meta, [OWNER_META.instance]: "i-peer" }));
    consul.calls.length = 0;
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.deepEqual(consul.writes(), [], "neither rewritten nor deregistered");
    assert.equal(consul.services.get(held.id)?.meta[OWNER_META.instance], "i-peer");
    const s = status.get("default/web");
    assert.deepEqual(s.backends, { desired: 2, registered: 1, passing: 0 });
    assert.match(s.conditions.find((c) => c.type === "Registered")?.message ?? "", /1 service ID\(s\) held by another controller with node node-1/);
  });

  it("writes carry our engine and instance; a restart (same identity) writes nothing", async () => {
    const { consul, containers, bindings, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    const r = [...consul.services.values()][0];
    assert.ok(r !== undefined);
    assert.equal(r.meta[OWNER_META.engine], SELF.engine);
    assert.equal(r.meta[OWNER_META.instance], SELF.instance);
    const restarted = setup();
    for (const s of consul.services.values()) restarted.consul.seed(s);
    restarted.bindings.put(binding());
    restarted.containers.put(container(C1));
    await restarted.registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.deepEqual(restarted.consul.writes(), []);
  });

  it("nothing is read or written before the engine ID is known", async () => {
    const { consul, containers, bindings, registrar } = setup({ identity: () => undefined, notSyncedRetryMs: 300 });
    bindings.put(binding());
    containers.put(container(C1));
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), { requeueAfterMs: 300 });
    assert.deepEqual(consul.calls, []);
  });
});

describe("RegistrarReconciler: sources not synced", () => {
  it("requeues after notSyncedRetryMs with zero Consul calls when Docker is not synced", async () => {
    const { consul, containers, bindings, registrar } = setup({ notSyncedRetryMs: 250 });
    bindings.put(binding());
    containers.isSynced = false; // e.g. Docker unreachable: an empty cache must not deregister anything
    consul.seed(foreign("ours", { [OWNER_META.node]: NODE, [OWNER_META.binding]: "default/web" }));
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), { requeueAfterMs: 250 });
    assert.deepEqual(consul.calls, []);
    assert.equal(consul.services.size, 1);
  });

  it("requeues when the binding source is not synced, with a 1 s default", async () => {
    const { consul, bindings, registrar } = setup();
    bindings.isSynced = false;
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), { requeueAfterMs: 1000 });
    assert.deepEqual(await registrar.reconcile({ kind: "container", container: "abc" }), { requeueAfterMs: 1000 });
    assert.deepEqual(consul.calls, []);
  });
});

describe("RegistrarReconciler: Consul errors", () => {
  it("a failed register is rethrown with its reason and sets Registered=False", async () => {
    const { consul, containers, bindings, status, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1));
    const err = new ConsulError("ConsulUnavailable", "register x: connect ECONNREFUSED");
    consul.failOn = "register";
    consul.failWith = err;
    await assert.rejects(registrar.reconcile({ kind: "binding", binding: "default/web" }), (e: unknown) => e === err);
    const s = status.get("default/web");
    const registered = s.conditions.find((c) => c.type === "Registered");
    assert.deepEqual(
      { status: registered?.status, reason: registered?.reason, message: registered?.message },
      { status: "False", reason: "ConsulUnavailable", message: "register x: connect ECONNREFUSED" },
    );
    assert.equal(s.conditions.find((c) => c.type === "Ready")?.status, "False");
  });

  it("a rejected deregister is rethrown as ConsulRejected", async () => {
    const { consul, bindings, status, registrar } = setup();
    bindings.put(binding());
    consul.seed(foreign("ours", { [OWNER_META.node]: NODE, [OWNER_META.binding]: "default/web" }));
    consul.failOn = "deregister";
    consul.failWith = new ConsulError("ConsulRejected", "deregister ours: HTTP 403: Permission denied");
    await assert.rejects(registrar.reconcile({ kind: "binding", binding: "default/web" }), { reason: "ConsulRejected" });
    assert.equal(status.get("default/web").conditions.find((c) => c.type === "Registered")?.reason, "ConsulRejected");
  });

  it("a failed listing of agent services is rethrown and sets Registered=False", async () => {
    const { consul, containers, bindings, status, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1));
    consul.failOn = "list";
    await assert.rejects(registrar.reconcile({ kind: "binding", binding: "default/web" }), { reason: "ConsulUnavailable" });
    assert.deepEqual(consul.writes(), []);
    const registered = status.get("default/web").conditions.find((c) => c.type === "Registered");
    assert.deepEqual([registered?.status, registered?.reason], ["False", "ConsulUnavailable"]);
  });

  it("recovers to Registered=True once Consul is back", async () => {
    const { consul, containers, bindings, status, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1));
    consul.failOn = "register";
    await assert.rejects(registrar.reconcile({ kind: "binding", binding: "default/web" }));
    consul.failOn = undefined;
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.equal(status.get("default/web").conditions.find((c) => c.type === "Registered")?.status, "True");
    assert.equal(consul.services.size, 1);
  });

  it("an error for a deleted binding creates no status entry", async () => {
    const { consul, status, registrar } = setup();
    consul.seed(foreign("ours", { [OWNER_META.node]: NODE, [OWNER_META.binding]: "default/gone" }));
    consul.failOn = "deregister";
    await assert.rejects(registrar.reconcile({ kind: "binding", binding: "default/gone" }));
    assert.deepEqual(status.keys(), []);
  });
});

describe("RegistrarReconciler: requests", () => {
  it("a work-queue key that is no request is a terminal InvalidKey error, and reaches no reconciler", async () => {
    const { consul, registrar } = setup();
    const queued = keyed(decodeNodeRequest, { reconcile: ({ request }: NodeRequest) => registrar.reconcile(request) });
    await assert.rejects(queued.reconcile("bogus/x"), (e: unknown) => e instanceof ReconcileError && e.terminal && e.reason === "InvalidKey");
    assert.deepEqual(consul.calls, []);
  });

  it("container keys without compat mode remove only this node's compat registrations of that container", async () => {
    const { consul, registrar } = setup();
    const mine = foreign("compat-c1", { [OWNER_META.node]: NODE, [OWNER_META.binding]: COMPAT_BINDING_KEY, [OWNER_META.container]: C1 });
    const otherContainer = foreign("compat-c2", { [OWNER_META.node]: NODE, [OWNER_META.binding]: COMPAT_BINDING_KEY, [OWNER_META.container]: C2 });
    const otherNode = foreign("compat-c1-n2", { [OWNER_META.node]: "node-2", [OWNER_META.binding]: COMPAT_BINDING_KEY, [OWNER_META.container]: C1 });
    const bindingOwned = foreign("binding-c1", { [OWNER_META.node]: NODE, [OWNER_META.binding]: "default/web", [OWNER_META.container]: C1 });
    for (const s of [mine, otherContainer, otherNode, bindingOwned]) consul.seed(s);
    assert.deepEqual(await registrar.reconcile({ kind: "container", container: C1 }), {});
    assert.deepEqual(consul.writes(), ["deregister compat-c1"]);
  });

  it("container keys in compat mode register the container's SERVICE_* services once", async () => {
    const { consul, containers, registrar } = setup({ compat: true });
    containers.put({ ...container(C1), env: { SERVICE_NAME: "legacy" } });
    await registrar.reconcile({ kind: "container", container: C1 });
    const regs = [...consul.services.values()];
    assert.deepEqual(
      regs.map((r) => [r.name, r.meta[OWNER_META.binding], r.meta[OWNER_META.container]]),
      [["legacy", COMPAT_BINDING_KEY, C1]],
    );
    consul.calls.length = 0;
    await registrar.reconcile({ kind: "container", container: C1 });
    assert.deepEqual(consul.writes(), [], "converged");
  });

  it("ownerRequest maps owner meta back to the registrar request", () => {
    assert.deepEqual(ownerRequest({ [OWNER_META.binding]: "default/web" }), { kind: "binding", binding: "default/web" });
    assert.deepEqual(ownerRequest({ [OWNER_META.binding]: COMPAT_BINDING_KEY, [OWNER_META.container]: C1 }), { kind: "container", container: C1 });
    assert.equal(ownerRequest({ [OWNER_META.binding]: COMPAT_BINDING_KEY }), undefined);
    assert.equal(ownerRequest({}), undefined);
  });

  it("registrations written with withHash round-trip as converged", async () => {
    // Sanity check of the fake: what register() stores is what the planner expects to read back.
    const { consul, containers, bindings, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    const stored = [...consul.services.values()][0];
    assert.ok(stored !== undefined);
    const { [OWNER_META.hash]: hash, ...rest } = stored.meta;
    assert.equal(
      withHash({ ...stored, meta: rest, check: { tcp: `${HOST_IP}:32768`, interval: "10s", timeout: "2s", status: "critical" } }).meta[OWNER_META.hash],
      hash,
    );
  });
});

describe("RegistrarReconciler: several Docker endpoints on one Consul", () => {
  /** Binding default/web; endpoints host-a (192.0.2.1) and host-b (192.0.2.2), each with one container, both on one agent. */
  function twoEndpoints() {
    const consul = new FakeConsul();
    const bindings = new FakeBindings();
    const status = new BindingStatusStore();
    bindings.put(binding());
    const endpoint = (node: string, hostIP: string) => {
      const containers = new FakeContainers();
      const registrar = new RegistrarReconciler({
        bindings,
        containers,
        consul,
        status,
        logger: silentLogger(),
        node,
        identity: () => ({ node, engine: `engine-${node}`, instance: "i-x", adopt: [] }),
        hostIP,
        agentServicesMaxAgeMs: 0,
      });
      return { containers, registrar };
    };
    const a = endpoint("host-a", "192.0.2.1");
    const b = endpoint("host-b", "192.0.2.2");
    a.containers.put(container(C1, "web", 30001));
    b.containers.put(container(C2, "web", 30002));
    return { consul, status, a, b };
  }

  it("each endpoint registers its own containers under its node; counts are summed; neither removes the other's", async () => {
    const { consul, status, a, b } = twoEndpoints();
    b.containers.put(container(C1.replace(/^c1/, "c3"), "web", 30003));
    await a.registrar.reconcile({ kind: "binding", binding: "default/web" });
    await b.registrar.reconcile({ kind: "binding", binding: "default/web" });
    const byNode = (n: string): string[] =>
      [...consul.services.values()]
        .filter((s) => s.meta[OWNER_META.node] === n)
        .map((s) => `${s.address}:${s.port}`)
        .sort();
    assert.deepEqual(byNode("host-a"), ["192.0.2.1:30001"]);
    assert.deepEqual(byNode("host-b"), ["192.0.2.2:30002", "192.0.2.2:30003"]);
    assert.ok([...consul.services.keys()].every((id) => id.startsWith("dockbind:host-a:") || id.startsWith("dockbind:host-b:")));
    assert.deepEqual(status.get("default/web").backends, { desired: 3, registered: 3, passing: 0 });
    const registered = status.get("default/web").conditions.find((c) => c.type === "Registered");
    assert.equal(registered?.status, "True");
    assert.equal(registered.message, "host-a: 1 instance(s) registered; host-b: 2 instance(s) registered");

    // Host B's containers go away: only host B's registrations are removed, the sum follows.
    b.containers.items.clear();
    consul.calls.length = 0;
    await b.registrar.reconcile({ kind: "binding", binding: "default/web" });
    await a.registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.deepEqual(byNode("host-a"), ["192.0.2.1:30001"]);
    assert.deepEqual(byNode("host-b"), []);
    assert.ok(
      consul.writes().every((w) => w.startsWith("deregister dockbind:host-b:")),
      consul.writes().join(", "),
    );
    assert.deepEqual(status.get("default/web").backends, { desired: 1, registered: 1, passing: 0 });
  });

  it("one endpoint failing makes the binding not Registered, naming that node, and keeps the other's counts", async () => {
    const { consul, status, a, b } = twoEndpoints();
    await a.registrar.reconcile({ kind: "binding", binding: "default/web" });
    await b.registrar.reconcile({ kind: "binding", binding: "default/web" });
    b.containers.put(container(C1.replace(/^c1/, "c3"), "web", 30003));
    consul.failOn = "register";
    await assert.rejects(b.registrar.reconcile({ kind: "binding", binding: "default/web" }), { reason: "ConsulUnavailable" });
    const st = status.get("default/web");
    const registered = st.conditions.find((c) => c.type === "Registered");
    assert.equal(registered?.status, "False");
    assert.equal(registered.reason, "ConsulUnavailable");
    assert.match(registered.message, /^host-b: /);
    assert.deepEqual(st.backends, { desired: 2, registered: 2, passing: 0 }, "the failed pass keeps host-b's last counts");
    assert.equal(st.conditions.find((c) => c.type === "Ready")?.status, "False");
  });
});

describe("RegistrarReconciler: healthCheck.probeBeforeRegister", () => {
  it("registers a backend whose probe passed as passing, one whose probe failed with initialStatus; the hash stays that of the configured check", async () => {
    const probed: string[] = [];
    const { consul, containers, bindings, registrar } = setup({
      probe: (check) => {
        probed.push(check.tcp ?? "");
        return Promise.resolve(check.tcp?.endsWith(":30001") === true);
      },
    });
    const sent = consul.sent;
    bindings.put(probingBinding());
    containers.put(container(C1, "web", 30001));
    containers.put(container(C2, "web", 30002));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.deepEqual(probed.sort(), [`${HOST_IP}:30001`, `${HOST_IP}:30002`]);
    const statusOf = (port: number): string | undefined => sent.find((r) => r.port === port)?.check?.status;
    assert.equal(statusOf(30001), "passing", "probe passed: served at once");
    assert.equal(statusOf(30002), "critical", "probe failed: initialStatus");
    for (const r of sent)
      assert.equal(r.meta[OWNER_META.hash], registrationHash({ ...r, check: { ...r.check, status: "critical" } }), "hash of the configured check");
    // Converged: the next pass writes nothing; only the backend that did not answer is re-probed (still failing).
    consul.calls.length = 0;
    probed.length = 0;
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), { recheckAfterMs: 200 });
    assert.deepEqual(consul.writes(), []);
    assert.deepEqual(probed, [`${HOST_IP}:30002`]);
  });

  it("a backend not answering yet is re-probed (recheck, counted as done) and re-registered passing once it answers, within one interval", async (t) => {
    t.mock.timers.enable({ apis: ["Date"], now: 1_000_000 });
    let answering = false;
    const { consul, containers, bindings, status, registrar } = setup({ probe: () => Promise.resolve(answering) });
    const sent = consul.sent;
    bindings.put(probingBinding());
    containers.put(container(C1, "web", 30001));
    const first = await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.deepEqual(first, { recheckAfterMs: 200 }, "a follow-up, not a failure");
    assert.deepEqual(
      sent.map((r) => r.check?.status),
      ["critical"],
    );
    assert.equal(status.get("default/web").conditions.find((c) => c.type === "Registered")?.status, "True", "registered (critical) meanwhile");
    t.mock.timers.tick(3_000);
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), { recheckAfterMs: 200 }, "still not answering: keep re-probing");
    assert.equal(sent.length, 1);
    const id = sent[0]?.id ?? "";
    assert.equal(consul.checkStatus.get(`service:${id}`), "critical");
    answering = true;
    consul.calls.length = 0;
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), {}, "answered: done");
    assert.deepEqual(
      sent.map((r) => r.check?.status),
      ["critical", "passing"],
    );
    assert.equal(sent[1]?.meta[OWNER_META.hash], sent[0]?.meta[OWNER_META.hash], "same registration, same hash");
    // Consul keeps an existing check's status on re-registration: the check goes first, so "passing" applies.
    assert.deepEqual(consul.writes(), [`deregister check service:${id}`, `register ${id}`]);
    assert.equal(consul.checkStatus.get(`service:${id}`), "passing", "the agent's check is passing");
    consul.calls.length = 0;
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), {});
    assert.deepEqual(consul.writes(), [], "converged");
  });

  it("stops re-probing after one check interval (Consul has run its own check by then)", async (t) => {
    t.mock.timers.enable({ apis: ["Date"], now: 1_000_000 });
    let probes = 0;
    const { containers, bindings, registrar } = setup({ probe: () => Promise.resolve(++probes < 0) });
    bindings.put(probingBinding());
    containers.put(container(C1, "web", 30001));
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), { recheckAfterMs: 200 });
    t.mock.timers.tick(10_001);
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), {});
    assert.equal(probes, 1, "no probe after the window");
    // A container that goes away while pending ends its follow-up too.
    containers.put(container(C2, "web", 30002));
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), { recheckAfterMs: 200 });
    containers.items.delete(C2);
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/web" }), {});
  });

  it("does not probe bindings without probeBeforeRegister", async () => {
    let probes = 0;
    const { consul, containers, bindings, registrar } = setup({ probe: () => Promise.resolve(++probes > 0) });
    bindings.put(binding());
    containers.put(container(C1));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.equal(probes, 0);
    assert.equal([...consul.services.values()].length, 1);
  });
});

describe("RegistrationProber: probe time is capped", () => {
  it("passes the check's timeout to the probe, capped at PROBE_TIMEOUT_CAP_MS", async () => {
    const timeouts: string[] = [];
    const prober = new RegistrationProber((check) => {
      timeouts.push(check.timeout ?? "");
      return Promise.resolve(true);
    });
    const r = (id: string, timeout: string): Registration => ({
      id,
      name: "web",
      address: "192.0.2.1",
      port: 80,
      tags: [],
      meta: {},
      check: { tcp: "192.0.2.1:80", timeout, interval: "10s", probeBeforeRegister: true },
    });
    assert.deepEqual(await prober.probeAll([r("a", "2s"), r("b", "50ms"), { ...r("c", "1s"), check: { ttl: "30s" } }]), [true, true, undefined]);
    assert.deepEqual(timeouts, [`${PROBE_TIMEOUT_CAP_MS}ms`, "50ms"]);
  });
});

describe("RegistrarReconciler: ACL token rotated", () => {
  it("rewriteAll() re-registers each owned, still wanted registration once (same content), then writes nothing again", async () => {
    const { consul, containers, bindings, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1, "web", 32768));
    containers.put(container(C2, "web", 32769));
    consul.seed(foreign("peer", { [OWNER_META.node]: "other-node", [OWNER_META.binding]: "default/web" }));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    const before = new Map([...consul.services].map(([id, s]) => [id, JSON.stringify(s)]));
    consul.calls.length = 0;
    registrar.rewriteAll();
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.deepEqual(
      consul.writes().sort(),
      [...before.keys()]
        .filter((id) => id !== "peer")
        .map((id) => `register ${id}`)
        .sort(),
      "ours only, each once",
    );
    assert.deepEqual(new Map([...consul.services].map(([id, s]) => [id, JSON.stringify(s)])), before, "same content");
    consul.calls.length = 0;
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.deepEqual(consul.writes(), [], "converged again");
  });

  it("a rewrite that failed (403 of a revoked token) is done by the next successful reconcile; nothing is deregistered meanwhile", async () => {
    const { consul, containers, bindings, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    registrar.rewriteAll();
    consul.failOn = "list";
    consul.failWith = new ConsulError("ConsulRejected", "list agent services: HTTP 403: ACL not found");
    consul.calls.length = 0;
    await assert.rejects(registrar.reconcile({ kind: "binding", binding: "default/web" }), { reason: "ConsulRejected" });
    assert.deepEqual(consul.writes(), [], "a 403 on the listing is not an empty agent: nothing deregistered");
    consul.failOn = undefined;
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.equal(consul.writes().filter((w) => w.startsWith("register ")).length, 1);
    assert.equal(consul.services.size, 1);
  });
});

describe("RegistrarReconciler: registrations edited behind its back (editedBehindBack)", () => {
  it("tells another party's edit from its own writes, including a write the agent has not answered yet", async () => {
    const { consul, containers, bindings, registrar } = setup();
    bindings.put(binding());
    containers.put(container(C1));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    const mine = [...consul.services.values()][0];
    assert.ok(mine);
    const seen = (over: Partial<RegisteredService>): ReturnType<typeof makeInstance> => {
      const s = { ...mine, ...over };
      return makeInstance(s.id, "passing", {
        address: s.address,
        port: s.port,
        tags: s.tags,
        meta: s.meta,
        ...(s.weight !== undefined ? { weight: s.weight } : {}),
      });
    };
    assert.equal(registrar.editedBehindBack(seen({})), false, "its own registration as written");
    assert.equal(registrar.editedBehindBack(seen({ tags: [...mine.tags, "hijacked"] })), true, "a tag added by another party");
    assert.equal(registrar.editedBehindBack(seen({ weight: 42 })), true, "another weight");
    assert.equal(registrar.editedBehindBack(seen({ meta: { ...mine.meta, extra: "1" } })), true, "a meta key added");
    assert.equal(registrar.editedBehindBack(makeInstance("not-in-the-view")), false, "an ID it does not hold: the full resync decides");
    let inFlight: boolean | undefined;
    consul.beforeRegister = (r) => {
      inFlight = registrar.editedBehindBack(seen({ tags: [...r.tags], meta: { ...r.meta } }));
    };
    bindings.put(makeBinding("web", { service: { tags: ["v2"] }, backends: { port: 8080 } }));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.equal(inFlight, false, "its own rewrite, seen by a watcher before the agent answered");
    consul.beforeRegister = undefined;
    assert.equal(registrar.editedBehindBack(seen({ tags: ["v2"], meta: [...consul.services.values()][0]?.meta ?? {} })), false, "and once answered");
  });
});
