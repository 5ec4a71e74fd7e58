/**
 * healthCheck.type docker, the pure and in-memory parts: the decision (which
 * containers are registered, with which TTL check status), the hash that
 * ignores the live health, validation, the TTL keeper (DockerHealthTtl), the
 * registrar's writes and status, and `controller plan`'s warnings.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DockerHealthTtl, serviceCheckId } from "../../src/actuators/consul/dockerHealthTtl.js";
import { bindingWarnings, validateBinding } from "../../src/api/v1alpha1/validate.js";
import { computePlan } from "../../src/cli/planCompute.js";
import { formatPlanText } from "../../src/cli/planFormat.js";
import { containerLookup, desiredRegistrations } from "../../src/domain/decisions.js";
import { desiredForBinding, dockerCheckStatus, NO_DOCKER_HEALTHCHECK } from "../../src/domain/desired.js";
import { registrationHash } from "../../src/domain/plan.js";
import { desiredForSwarmBinding } from "../../src/domain/swarm.js";
import type { ContainerHealth, ContainerInfo, Registration, ServiceBinding } from "../../src/domain/types.js";
import { BindingStatusStore } from "../../src/reconcilers/bindingStatus.js";
import { RegistrarReconciler } from "../../src/reconcilers/registrar.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { FakeBindings, FakeConsul, FakeContainers, makeBinding, makeContainer, makeSwarmTask } from "../support/fakes.js";

const NODE = "node-1";
const OPTS = { node: NODE, hostIP: "192.0.2.10" };
const C1 = "c1c1c1c1c1c1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const C2 = "c2c2c2c2c2c2bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

function dockerBinding(initialStatus: "passing" | "warning" | "critical" = "critical"): ServiceBinding {
  return makeBinding("web", { healthCheck: { type: "docker", ttl: "3s", initialStatus } });
}

function withHealth(id: string, health: ContainerHealth, hostPort = 32768): ContainerInfo {
  return makeContainer(id, { health, ports: [{ privatePort: 80, protocol: "tcp", hostIP: "0.0.0.0", hostPort }] });
}

describe("healthCheck.type docker: the decision", () => {
  it("maps Docker health to the check status: healthy passing, unhealthy critical, starting initialStatus, none not registered", () => {
    assert.equal(dockerCheckStatus("healthy", "critical"), "passing");
    assert.equal(dockerCheckStatus("unhealthy", "passing"), "critical");
    assert.equal(dockerCheckStatus("starting", "warning"), "warning");
    assert.equal(dockerCheckStatus("none", "passing"), undefined);
  });

  it("registers containers with a HEALTHCHECK with a TTL check; one without is skipped with NoDockerHealthcheck", () => {
    const d = desiredForBinding(dockerBinding(), [withHealth(C1, "healthy"), withHealth(C2, "none", 32769)], OPTS);
    assert.equal(d.registrations.length, 1);
    assert.deepEqual(d.registrations[0]?.check, { ttl: "3s", status: "critical", dockerHealth: "passing" });
    assert.deepEqual(d.skipped, [
      {
        containerId: C2,
        code: NO_DOCKER_HEALTHCHECK,
        reason: "container c-c2c2 has no Docker HEALTHCHECK (healthCheck.type docker registers only containers with one)",
      },
    ]);
  });

  it("a health change does not change the registration hash (a check update, never a re-registration)", () => {
    const hashes = (["starting", "healthy", "unhealthy"] as const).map((h) => {
      const r = desiredForBinding(dockerBinding(), [withHealth(C1, h)], OPTS).registrations[0];
      assert.ok(r);
      return registrationHash(r);
    });
    assert.equal(new Set(hashes).size, 1);
    // Other check types hash as they always did: dockerHealth absent changes nothing.
    const tcp = desiredForBinding(makeBinding("web"), [withHealth(C1, "healthy")], OPTS).registrations[0];
    assert.ok(tcp);
    assert.equal(tcp.check?.dockerHealth, undefined);
  });

  it("other check types ignore Docker health: a container without a HEALTHCHECK is registered", () => {
    assert.equal(desiredForBinding(makeBinding("web"), [withHealth(C1, "none")], OPTS).registrations.length, 1);
  });

  it("Swarm tasks: the health of their container on this engine; a task running elsewhere is skipped (DockerHealthUnknown)", () => {
    const b = makeBinding("web", { healthCheck: { type: "docker", ttl: "3s" }, backends: { swarm: { service: "svc" }, addressMode: "internal" } });
    const snapshot = {
      services: [{ id: "svc1", name: "svc", labels: {} }],
      tasks: [
        makeSwarmTask("t1", { containerId: C1, networks: { overlay: "10.0.0.5" } }),
        makeSwarmTask("t2", { containerId: C2, networks: { overlay: "10.0.0.6" } }),
      ],
      nodes: [],
    };
    const local = new Map([[C1, withHealth(C1, "unhealthy")]]);
    const d = desiredForSwarmBinding(b, snapshot, { ...OPTS, localContainer: (id) => local.get(id) });
    assert.deepEqual(
      d.registrations.map((r) => r.check?.dockerHealth),
      ["critical"],
    );
    assert.deepEqual(
      d.skipped.map((s) => [s.containerId, s.code]),
      [[C2, "DockerHealthUnknown"]],
    );
  });
});

describe("healthCheck.type docker: validation", () => {
  const doc = (healthCheck: Record<string, unknown>, lb?: Record<string, unknown>): Record<string, unknown> => ({
    apiVersion: "dockbind.io/v1alpha1",
    kind: "ServiceBinding",
    metadata: { name: "web" },
    spec: {
      service: { name: "web" },
      backends: { selector: { matchLabels: { app: "web" } }, port: 80 },
      healthCheck,
      ...(lb !== undefined ? { loadBalancer: { listen: { port: 8080 }, output: "web.conf", ...lb } } : {}),
    },
  });

  it("accepts type docker with the default TTL (30s) and warns about containers without a HEALTHCHECK", () => {
    const r = validateBinding(doc({ type: "docker" }));
    assert.ok(r.ok);
    assert.equal(r.binding.spec.healthCheck.ttl, "30s");
    assert.deepEqual(
      bindingWarnings(r.binding).map((w) => w.field),
      ["spec.healthCheck.type"],
    );
    const unguarded = validateBinding(doc({ type: "docker" }, { onlyPassing: false }));
    assert.ok(unguarded.ok);
    assert.deepEqual(
      bindingWarnings(unguarded.binding).map((w) => w.field),
      ["spec.healthCheck.type", "spec.loadBalancer.onlyPassing"],
    );
    const tcp = validateBinding(doc({ type: "tcp" }));
    assert.ok(tcp.ok);
    assert.deepEqual(bindingWarnings(tcp.binding), []);
  });

  it("rejects a TTL under 1s and hostile values with a field path", () => {
    const short = validateBinding(doc({ type: "docker", ttl: "500ms" }));
    assert.ok(!short.ok);
    assert.deepEqual(
      short.errors.map((e) => e.field),
      ["spec.healthCheck.ttl"],
    );
    for (const [hc, field] of [
      [{ type: "docker;" }, "spec.healthCheck.type"],
      [{ type: "Docker" }, "spec.healthCheck.type"],
      [{ type: "docker", ttl: "3s\nreturn 200;" }, "spec.healthCheck.ttl"],
      [{ type: "docker", ttl: "1e9s" }, "spec.healthCheck.ttl"],
      [{ type: "docker", initialStatus: "healthy" }, "spec.healthCheck.initialStatus"],
    ] as const) {
      const r = validateBinding(doc(hc));
      assert.ok(!r.ok, JSON.stringify(hc));
      assert.deepEqual(
        r.errors.map((e) => e.field),
        [field],
        JSON.stringify(hc),
      );
    }
  });
});

function reg(id: string, dockerHealth: "passing" | "critical" | undefined, ttl = "3s"): Registration {
  return {
    id,
    name: "web",
    address: "192.0.2.1",
    port: 80,
    tags: [],
    meta: {},
    check: { ttl, status: "critical", ...(dockerHealth !== undefined ? { dockerHealth } : {}) },
  };
}

describe("DockerHealthTtl", () => {
  function keeper(): { consul: FakeConsul; ttl: DockerHealthTtl; clock: { now: number } } {
    const consul = new FakeConsul();
    const clock = { now: 1_000_000 };
    const ttl = new DockerHealthTtl({ consul, logger: silentLogger(), now: () => clock.now });
    return { consul, ttl, clock };
  }

  it("sends a status this process has not sent yet, then only changes; a just registered check counts as sent", async () => {
    const { consul, ttl } = keeper();
    await ttl.track("b", [reg("s1", "passing"), reg("s2", "critical"), reg("plain", undefined)], new Set(["s2"]));
    assert.deepEqual(consul.checkUpdates, [`${serviceCheckId("s1")} passing`]);
    await ttl.track("b", [reg("s1", "passing"), reg("s2", "critical")], new Set());
    assert.equal(consul.checkUpdates.length, 1, "unchanged statuses are not sent by a reconcile");
    await ttl.track("b", [reg("s1", "critical"), reg("s2", "critical")], new Set());
    assert.deepEqual(consul.checkUpdates.slice(1), [`${serviceCheckId("s1")} critical`]);
    assert.equal(ttl.size(), 2);
  });

  it("refreshes each check every third of its TTL with the same status; forgets checks no longer handed over", async () => {
    const { consul, ttl, clock } = keeper();
    await ttl.track("b", [reg("s1", "passing", "3s"), reg("s2", "critical", "30s")], new Set(["s1", "s2"]));
    await ttl.refreshDue();
    assert.deepEqual(consul.checkUpdates, []);
    clock.now += 1000;
    await ttl.refreshDue();
    assert.deepEqual(consul.checkUpdates, [`${serviceCheckId("s1")} passing`]);
    clock.now += 9000;
    await ttl.refreshDue();
    assert.deepEqual(consul.checkUpdates.slice(1).sort(), [`${serviceCheckId("s1")} passing`, `${serviceCheckId("s2")} critical`]);
    await ttl.track("b", [reg("s2", "critical", "30s")], new Set());
    await ttl.track("other", [], new Set());
    assert.equal(ttl.size(), 1);
    clock.now += 60_000;
    consul.checkUpdates.length = 0;
    await ttl.refreshDue();
    assert.deepEqual(consul.checkUpdates, [`${serviceCheckId("s2")} critical`]);
  });

  it("run() sleeps until the next refresh is due: no timer while nothing is tracked, woken by track()", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 });
    const consul = new FakeConsul();
    const ttl = new DockerHealthTtl({ consul, logger: silentLogger() });
    const stop = new AbortController();
    const running = ttl.run(stop.signal);
    const flush = async (): Promise<void> => {
      for (let i = 0; i < 3; i++) await new Promise((resolve) => setImmediate(resolve));
    };
    await flush();
    t.mock.timers.tick(3_600_000);
    await flush();
    assert.deepEqual(consul.checkUpdates, [], "nothing tracked: nothing sent in an hour");
    await ttl.track("b", [reg("s1", "passing", "3s")], new Set(["s1"]));
    await flush();
    t.mock.timers.tick(999);
    await flush();
    assert.deepEqual(consul.checkUpdates, [], "not due before a third of the TTL");
    t.mock.timers.tick(1);
    await flush();
    assert.deepEqual(consul.checkUpdates, [`${serviceCheckId("s1")} passing`], "refreshed when due");
    t.mock.timers.tick(1000);
    await flush();
    assert.equal(consul.checkUpdates.length, 2, "and again a third of the TTL later");
    stop.abort();
    await running;
  });

  it("a failed change rejects the reconcile's track and is sent again by the next one", async () => {
    const { consul, ttl } = keeper();
    consul.failCheckUpdates = true;
    await assert.rejects(ttl.track("b", [reg("s1", "critical")], new Set()), { name: "ConsulError", reason: "ConsulUnavailable" });
    consul.failCheckUpdates = false;
    await ttl.track("b", [reg("s1", "critical")], new Set());
    assert.deepEqual(consul.checkUpdates, [`${serviceCheckId("s1")} critical`, `${serviceCheckId("s1")} critical`]);
  });

  it("updates of one check are sent one after another with the latest status", async () => {
    const consul = new FakeConsul();
    const order: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    consul.updateTtlCheck = async (checkId, status) => {
      assert.equal(checkId, serviceCheckId("s1"));
      order.push(`start ${status}`);
      if (order.length === 1) await gate;
      order.push(`end ${status}`);
    };
    const clock = { now: 0 };
    const ttl = new DockerHealthTtl({ consul, logger: silentLogger(), now: () => clock.now });
    const first = ttl.track("b", [reg("s1", "passing")], new Set());
    const second = ttl.track("b", [reg("s1", "critical")], new Set());
    release();
    await Promise.all([first, second]);
    assert.deepEqual(order, ["start critical", "end critical", "start critical", "end critical"]);
  });
});

describe("healthCheck.type docker: registrar", () => {
  function setup(): { consul: FakeConsul; containers: FakeContainers; status: BindingStatusStore; registrar: RegistrarReconciler; sent: Registration[] } {
    const consul = new FakeConsul();
    const containers = new FakeContainers();
    const bindings = new FakeBindings();
    bindings.put(dockerBinding());
    const status = new BindingStatusStore();
    const registrar = new RegistrarReconciler({
      bindings,
      containers,
      consul,
      status,
      logger: silentLogger(),
      node: NODE,
      identity: () => ({ node: NODE, engine: "E", instance: "i", adopt: [] }),
      hostIP: "192.0.2.10",
      agentServicesMaxAgeMs: 0,
    });
    return { consul, containers, status, registrar, sent: consul.sent };
  }

  it("registers with the status of Docker's health; a health change is one check update, no re-registration", async () => {
    const { consul, containers, registrar, sent } = setup();
    containers.put(withHealth(C1, "healthy"));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.equal(sent.length, 1);
    assert.equal(sent[0]?.check?.status, "passing");
    assert.deepEqual(consul.checkUpdates, [], "the registration carried the status");
    containers.put(withHealth(C1, "unhealthy"));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.equal(sent.length, 1, "no re-registration");
    assert.deepEqual(consul.checkUpdates, [`service:${sent[0].id} critical`]);
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.equal(consul.checkUpdates.length, 1, "converged: nothing sent");
  });

  it("a container without a HEALTHCHECK is not registered; the Registered condition names it with reason NoDockerHealthcheck", async () => {
    const { containers, status, registrar, sent } = setup();
    containers.put(withHealth(C1, "healthy"));
    containers.put(withHealth(C2, "none", 32769));
    await registrar.reconcile({ kind: "binding", binding: "default/web" });
    assert.equal(sent.length, 1);
    const cond = status.get("default/web").conditions.find((c) => c.type === "Registered");
    assert.ok(cond);
    assert.equal(cond.status, "True");
    assert.equal(cond.reason, NO_DOCKER_HEALTHCHECK);
    assert.match(cond.message, /1 instance\(s\) registered; 1 backend\(s\) skipped: container c-c2c2 has no Docker HEALTHCHECK/);
  });
});

describe("healthCheck.type docker: controller plan", () => {
  it("warns about selected containers without a HEALTHCHECK, in the result and the text", () => {
    const b = dockerBinding();
    const containers = [withHealth(C1, "healthy"), withHealth(C2, "none", 32769)];
    const d = desiredRegistrations(b, { ...OPTS, containers: containerLookup(containers), bindings: [b] });
    assert.equal(d.kind, "desired");
    const plan = computePlan({
      endpoints: [{ node: NODE, hostIP: OPTS.hostIP, containers, owner: { node: NODE, engine: "E", instance: "i", adopt: [] } }],
      bindings: [b],
      agentServices: [],
      rendered: [],
      onDisk: new Map(),
      ownedFiles: new Map(),
    });
    assert.equal(plan.summary.register, 1);
    assert.deepEqual(
      plan.warnings.map((w) => [w.binding, w.container, w.reason]),
      [["default/web", "c-c2c2", NO_DOCKER_HEALTHCHECK]],
    );
    const text = formatPlanText(plan, { node: NODE, bindingsDir: "/b", docker: "d", consul: "c", outputDir: "/o" });
    assert.match(text, /WARNING: default\/web: not registered \(NoDockerHealthcheck\): container c-c2c2 has no Docker HEALTHCHECK/);
  });
});
