import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateBinding } from "../../src/api/v1alpha1/validate.js";
import { desiredForSwarmBinding, swarmServiceMatches, type SwarmSnapshot, type SwarmTask } from "../../src/domain/swarm.js";
import type { ContainerInfo, ServiceBinding } from "../../src/domain/types.js";
import { BindingStatusStore } from "../../src/reconcilers/bindingStatus.js";
import { RegistrarReconciler } from "../../src/reconcilers/registrar.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { nodeFromApi, serviceFromApi, taskFromApi } from "../../src/sources/docker/swarmInspect.js";
import type { SwarmStore } from "../../src/ports/swarmStore.js";
import type { SwarmView } from "../../src/domain/swarm.js";
import { FakeBindings, FakeConsul, FakeContainers, makeSwarmTask } from "../support/fakes.js";

const OPTS = { node: "n1", hostIP: "192.0.2.10" };

function doc(backends: Record<string, unknown>): unknown {
  return {
    apiVersion: "dockbind.io/v1alpha1",
    kind: "ServiceBinding",
    metadata: { name: "sw" },
    spec: { service: { name: "web" }, backends: { port: 80, ...backends }, healthCheck: { type: "http", path: "/health/", interval: "1s" } },
  };
}

function binding(backends: Record<string, unknown>): ServiceBinding {
  const r = validateBinding(doc(backends));
  assert.ok(r.ok, JSON.stringify(r));
  return r.binding;
}

/** Task of service svc1 in slot 1 on node1, port 80 published in host mode on 30000 + id length. */
function task(id: string, over: Partial<SwarmTask> = {}): SwarmTask {
  return makeSwarmTask(id, {
    slot: 1,
    containerId: `ctr-${id}`,
    ports: [{ protocol: "tcp", targetPort: 80, publishedPort: 30000 + id.length, publishMode: "host" }],
    networks: { ingress: "10.0.0.5", backend: `10.0.1.${id.length}` },
    ...over,
  });
}

const SNAP: SwarmSnapshot = {
  services: [
    { id: "svc1", name: "web", labels: { app: "web" } },
    { id: "svc2", name: "other", labels: { app: "other" } },
  ],
  nodes: [
    { id: "node1", hostname: "vm", addr: "127.0.0.1" },
    { id: "node2", hostname: "vm2", addr: "10.1.2.3" },
  ],
  tasks: [],
};

describe("swarm binding validation", () => {
  it("accepts swarm by name or by service labels", () => {
    assert.equal(validateBinding(doc({ swarm: { service: "web" } })).ok, true);
    assert.equal(validateBinding(doc({ swarm: { selector: { matchLabels: { app: "web" } } } })).ok, true);
  });
  it("selector and swarm are mutually exclusive; one of them is required; swarm needs a field", () => {
    const both = validateBinding(doc({ selector: { matchLabels: { a: "b" } }, swarm: { service: "web" } }));
    assert.ok(!both.ok);
    assert.deepEqual(
      both.errors.map((e) => e.field),
      ["spec.backends.swarm"],
    );
    const none = validateBinding(doc({}));
    assert.ok(!none.ok);
    assert.deepEqual(
      none.errors.map((e) => e.field),
      ["spec.backends.selector"],
    );
    assert.equal(validateBinding(doc({ swarm: {} })).ok, false);
    assert.equal(validateBinding(doc({ swarm: { service: "bad name" } })).ok, false);
    assert.equal(validateBinding(doc({ swarm: { service: "web", extra: 1 } })).ok, false);
  });
  it("the swarm selector follows the selector rules", () => {
    const r = validateBinding(doc({ swarm: { selector: { matchExpressions: [{ key: "tier", operator: "In" }] } } }));
    assert.ok(!r.ok);
    assert.deepEqual(
      r.errors.map((e) => e.field),
      ["spec.backends.swarm.selector.matchExpressions[0].values"],
    );
  });
});

describe("swarmServiceMatches", () => {
  it("by name, by labels, both must match when both are given", () => {
    const svc = { name: "web", labels: { app: "web", tier: "front" } };
    assert.equal(swarmServiceMatches({ service: "web" }, svc), true);
    assert.equal(swarmServiceMatches({ service: "api" }, svc), false);
    assert.equal(swarmServiceMatches({ selector: { matchLabels: { tier: "front" } } }, svc), true);
    assert.equal(swarmServiceMatches({ service: "web", selector: { matchLabels: { tier: "back" } } }, svc), false);
    assert.equal(swarmServiceMatches({}, svc), false);
  });
});

describe("desiredForSwarmBinding", () => {
  it("published mode: running tasks of the selected service, node address or --host-ip, host-mode published port", () => {
    const b = binding({ swarm: { service: "web" } });
    const snap: SwarmSnapshot = {
      ...SNAP,
      tasks: [task("t1"), task("t22", { nodeId: "node2" }), task("x3", { serviceId: "svc2" })],
    };
    const r = desiredForSwarmBinding(b, snap, OPTS);
    assert.deepEqual(
      r.registrations.map((x) => [x.id, x.address, x.port]),
      [
        ["dockbind:n1:default:sw:t1:80", "192.0.2.10", 30002], // node addr is loopback: --host-ip
        ["dockbind:n1:default:sw:t22:80", "10.1.2.3", 30003],
      ],
    );
    const first = r.registrations[0];
    assert.equal(first?.check?.http, "http://192.0.2.10:30002/health/");
    assert.equal(first.meta.dockbind_swarm_task, "t1");
    assert.equal(first.meta.dockbind_container, "ctr-t1");
    assert.equal(first.meta.dockbind_binding, "default/sw");
  });

  it("tasks being shut down, not yet running, or whose container is draining are not backends", () => {
    const b = binding({ swarm: { service: "web" } });
    const snap: SwarmSnapshot = {
      ...SNAP,
      tasks: [
        task("keep"),
        task("shut", { desiredState: "shutdown" }),
        task("rem", { desiredState: "remove" }),
        task("start", { state: "starting" }),
        task("drn"),
      ],
    };
    const r = desiredForSwarmBinding(b, snap, { ...OPTS, isDraining: (id) => id === "ctr-drn" });
    assert.deepEqual(
      r.registrations.map((x) => x.meta.dockbind_swarm_task),
      ["keep"],
    );
  });

  it("published mode without a host-mode port is skipped with a reason; binding hostIP wins", () => {
    const snap: SwarmSnapshot = {
      ...SNAP,
      tasks: [task("a", { ports: [{ protocol: "tcp", targetPort: 80, publishedPort: 8080, publishMode: "ingress" }] }), task("bb")],
    };
    const r = desiredForSwarmBinding(binding({ swarm: { service: "web" }, hostIP: "198.51.100.7" }), snap, OPTS);
    assert.deepEqual(
      r.registrations.map((x) => `${x.address}:${x.port}`),
      ["198.51.100.7:30002"],
    );
    assert.equal(r.skipped.length, 1);
    assert.match(r.skipped[0]?.reason ?? "", /not published in host mode/);
  });

  it("one host-mode port per address family: the local container's IPv4 binding wins, else the engine's first entry", () => {
    const ports = [
      { protocol: "tcp" as const, targetPort: 80, publishedPort: 32820, publishMode: "host" as const },
      { protocol: "tcp" as const, targetPort: 80, publishedPort: 32819, publishMode: "host" as const },
    ];
    const snap: SwarmSnapshot = { ...SNAP, tasks: [task("a", { ports })] };
    const b = binding({ swarm: { service: "web" } });
    assert.deepEqual(
      desiredForSwarmBinding(b, snap, OPTS).registrations.map((x) => x.port),
      [32820],
    );
    const local: ContainerInfo = {
      id: "ctr-a",
      name: "web.1.a",
      image: "img",
      hostname: "h",
      labels: {},
      env: {},
      running: true,
      health: "none",
      networks: {},
      ports: [
        { privatePort: 80, protocol: "tcp", hostIP: "::", hostPort: 32819 },
        { privatePort: 80, protocol: "tcp", hostIP: "0.0.0.0", hostPort: 32821 },
      ],
    };
    assert.deepEqual(
      desiredForSwarmBinding(b, snap, { ...OPTS, localContainer: (id) => (id === "ctr-a" ? local : undefined) }).registrations.map((x) => x.port),
      [32821],
    );
  });

  it("internal mode: task IP on the named network, or the first non-ingress network", () => {
    const snap: SwarmSnapshot = { ...SNAP, tasks: [task("abc")] };
    const named = desiredForSwarmBinding(binding({ swarm: { service: "web" }, addressMode: "internal", network: "backend" }), snap, OPTS);
    assert.deepEqual(
      named.registrations.map((x) => `${x.address}:${x.port}`),
      ["10.0.1.3:80"],
    );
    const any = desiredForSwarmBinding(binding({ swarm: { service: "web" }, addressMode: "internal" }), snap, OPTS);
    assert.deepEqual(
      any.registrations.map((x) => x.address),
      ["10.0.1.3"],
    );
    const missing = desiredForSwarmBinding(binding({ swarm: { service: "web" }, addressMode: "internal", network: "nope" }), snap, OPTS);
    assert.equal(missing.registrations.length, 0);
    assert.equal(missing.skipped.length, 1);
  });

  it("is pure and sorted: same snapshot, same output", () => {
    const b = binding({ swarm: { selector: { matchLabels: { app: "web" } } } });
    const snap: SwarmSnapshot = { ...SNAP, tasks: [task("zz"), task("aa")] };
    assert.deepEqual(desiredForSwarmBinding(b, snap, OPTS), desiredForSwarmBinding(b, { ...snap, tasks: [...snap.tasks].reverse() }, OPTS));
  });
});

describe("swarm API normalisation", () => {
  it("tasks: ports deduplicated, network prefix stripped, bad values dropped", () => {
    const t = taskFromApi({
      ID: "t1",
      ServiceID: "s1",
      Slot: 2,
      NodeID: "n1",
      DesiredState: "running",
      Status: {
        State: "running",
        ContainerStatus: { ContainerID: "abc" },
        PortStatus: {
          Ports: [
            { Protocol: "tcp", TargetPort: 80, PublishedPort: 32770, PublishMode: "host" },
            { Protocol: "tcp", TargetPort: 80, PublishedPort: 32770, PublishMode: "host" },
            { Protocol: "tcp", TargetPort: "80", PublishedPort: 1, PublishMode: "host" },
          ],
        },
      },
      NetworksAttachments: [
        { Network: { Spec: { Name: "backend" } }, Addresses: ["10.0.1.3/24"] },
        { Network: { Spec: { Name: "evil" } }, Addresses: ["not-an-ip/24"] },
      ],
    });
    assert.deepEqual(t, {
      id: "t1",
      serviceId: "s1",
      slot: 2,
      nodeId: "n1",
      desiredState: "running",
      state: "running",
      containerId: "abc",
      ports: [{ protocol: "tcp", targetPort: 80, publishedPort: 32770, publishMode: "host" }],
      networks: { backend: "10.0.1.3" },
    });
    assert.equal(taskFromApi({ ID: "x" }), undefined);
    assert.equal(taskFromApi(null), undefined);
  });
  it("services and nodes", () => {
    assert.deepEqual(serviceFromApi({ ID: "s", Spec: { Name: "web", Labels: { app: "web", n: 1 } } }), { id: "s", name: "web", labels: { app: "web" } });
    assert.equal(serviceFromApi({ ID: "s", Spec: {} }), undefined);
    assert.deepEqual(nodeFromApi({ ID: "n", Description: { Hostname: "vm" }, Status: { Addr: "127.0.0.1" } }), { id: "n", hostname: "vm", addr: "127.0.0.1" });
  });
});

describe("registrar with swarm bindings", () => {
  const b = binding({ swarm: { service: "web" } });
  const consul = new FakeConsul();
  const bindings = new FakeBindings([b]);
  const containers = new FakeContainers();
  let view: SwarmView = { kind: "unavailable", reason: "SwarmNotActive", message: "the Docker engine is not in swarm mode" };
  const swarm: SwarmStore = { view: () => view };
  const status = new BindingStatusStore();
  const registrar = new RegistrarReconciler({
    bindings,
    containers,
    consul,
    status,
    logger: silentLogger(),
    node: "n1",
    identity: () => ({ node: "n1", engine: "E1", instance: "i-1", adopt: [] }),
    hostIP: "192.0.2.10",
    swarm,
  });

  it("not in swarm mode: a clear status condition, nothing written, retried later", async () => {
    const r = await registrar.reconcile({ kind: "binding", binding: "default/sw" });
    assert.ok(r.requeueAfterMs !== undefined && r.requeueAfterMs > 0);
    const cond = status.get("default/sw").conditions.find((c) => c.type === "Registered");
    assert.equal(cond?.status, "False");
    assert.equal(cond.reason, "SwarmNotActive");
    assert.deepEqual(consul.writes(), []);
  });

  it("swarm ready: registers running tasks; a task going to shutdown is deregistered", async () => {
    view = { kind: "ready", snapshot: { ...SNAP, tasks: [task("t1"), task("t2")] } };
    await registrar.reconcile({ kind: "binding", binding: "default/sw" });
    assert.deepEqual(consul.writes(), ["register dockbind:n1:default:sw:t1:80", "register dockbind:n1:default:sw:t2:80"]);
    assert.equal(status.get("default/sw").conditions.find((c) => c.type === "Registered")?.status, "True");
    view = { kind: "ready", snapshot: { ...SNAP, tasks: [task("t1"), task("t2", { desiredState: "shutdown" })] } };
    await registrar.reconcile({ kind: "binding", binding: "default/sw" });
    assert.equal(consul.writes().at(-1), "deregister dockbind:n1:default:sw:t2:80");
    // Swarm unreachable afterwards: nothing is deregistered.
    view = { kind: "unavailable", reason: "SwarmUnreachable", message: "gone" };
    const n = consul.writes().length;
    await registrar.reconcile({ kind: "binding", binding: "default/sw" });
    assert.equal(consul.writes().length, n);
    assert.deepEqual([...consul.services.keys()], ["dockbind:n1:default:sw:t1:80"]);
  });

  it("another endpoint serves the swarm: this node's copies are removed and it abstains", async () => {
    view = { kind: "unavailable", reason: "SwarmServedByOtherEndpoint", message: "swarm abc is served through Docker endpoint n0" };
    assert.deepEqual(await registrar.reconcile({ kind: "binding", binding: "default/sw" }), {});
    assert.equal(consul.writes().at(-1), "deregister dockbind:n1:default:sw:t1:80");
    assert.deepEqual([...consul.services.keys()], []);
    const cond = status.get("default/sw").conditions.find((c) => c.type === "Registered");
    assert.deepEqual([cond?.status, cond?.reason], ["False", "SwarmServedByOtherEndpoint"], "alone, the abstaining node's words stand");
    // The serving endpoint reports: it alone decides the condition and the counts.
    status.setRegistration("default/sw", "n0", {
      status: "True",
      reason: "Registered",
      message: "1 instance(s) registered",
      counts: { desired: 1, registered: 1 },
    });
    const after = status.get("default/sw");
    assert.equal(after.conditions.find((c) => c.type === "Registered")?.status, "True");
    assert.deepEqual(after.backends, { desired: 1, registered: 1, passing: 0 });
  });
});
