/**
 * The observer -> metrics mapping (src/observability): each framework hook
 * lands in the controller-runtime / client-go / dockbind_ series it should,
 * with the right labels, read back from the prom-client registry. The
 * workqueue and controller loop used here are the real ones.
 */
import type { NodeConflict } from "../../src/domain/ownership.js";
import assert from "node:assert/strict";
import type { ContainerInfo } from "../../src/domain/types.js";
import { describe, it } from "node:test";
import type { LoadBalancerDriver } from "../../src/actuators/lb/driver.js";
import { LbError } from "../../src/actuators/lb/errors.js";
import type { ServiceBinding } from "../../src/domain/types.js";
import { dockerActionLabel } from "../../src/observability/observers.js";
import { Telemetry } from "../../src/observability/telemetry.js";
import { BindingStatusStore } from "../../src/reconcilers/bindingStatus.js";
import { runController } from "../../src/runtime/controller.js";
import { ReconcileError } from "../../src/runtime/errors.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { WorkQueue } from "../../src/runtime/workqueue.js";
import type { BindingProblem } from "../../src/ports/bindingStore.js";
import { FakeBindings, FakeContainers, FakeHealth, makeBinding } from "../support/fakes.js";

const telemetry = (): Telemetry => new Telemetry();

/** Value of one series (labels must match exactly), undefined when absent. */
async function value(t: Telemetry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = t.metrics.registry.getSingleMetric(name.replace(/_(count|sum)$/, ""));
  assert.ok(metric, `metric ${name} is registered`);
  const suffix = /_(count|sum)$/.exec(name)?.[0];
  const { values } = await metric.get();
  const hit = values.find((v) => {
    const metricName = (v as { metricName?: string }).metricName;
    if (suffix !== undefined ? metricName !== name : metricName !== undefined && metricName !== name) return false;
    const l = v.labels as Record<string, string | number>;
    return Object.keys(labels).length === Object.keys(l).length && Object.entries(labels).every(([k, x]) => String(l[k]) === x);
  });
  return hit?.value;
}

function binding(name: string, lb: boolean): ServiceBinding {
  return makeBinding(name, lb ? { loadBalancer: {} } : {});
}

/** An in-memory BindingStore: test data for the read side, not a stand-in for claimed behaviour. */
function store(bindings: ServiceBinding[], problems: BindingProblem[] = []): FakeBindings {
  const s = new FakeBindings(bindings);
  s.problemList.push(...problems);
  return s;
}

describe("controller loop -> controller_runtime_* metrics", () => {
  it("maps success, requeue, error and terminal outcomes to controller-runtime results", async () => {
    const t = telemetry();
    t.metrics.initController("ctl", 2);
    const queue = new WorkQueue({ name: "ctl", backoff: { baseMs: 60_000, maxMs: 60_000 }, observer: t.queueObserver });
    const seen: string[] = [];
    const reconciler = {
      reconcile(key: string) {
        seen.push(key);
        if (key === "fail") return Promise.reject(new ReconcileError("ConsulUnavailable", "down"));
        if (key === "bad") return Promise.reject(new ReconcileError("InvalidKey", "no", true));
        if (key === "later") return Promise.resolve({ requeueAfterMs: 60_000 });
        return Promise.resolve({});
      },
    };
    const done = runController({ name: "ctl", queue, reconciler, workers: 2, logger: silentLogger(), observer: t.controllerObserver });
    for (const k of ["ok1", "ok2", "fail", "bad", "later"]) queue.add(k);
    while (seen.length < 5) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 20));
    queue.shutDown();
    await done;

    assert.equal(await value(t, "controller_runtime_reconcile_total", { controller: "ctl", result: "success" }), 2);
    assert.equal(await value(t, "controller_runtime_reconcile_total", { controller: "ctl", result: "requeue_after" }), 1);
    assert.equal(await value(t, "controller_runtime_reconcile_total", { controller: "ctl", result: "error" }), 2, "retryable + terminal");
    assert.equal(await value(t, "controller_runtime_reconcile_errors_total", { controller: "ctl" }), 2);
    assert.equal(await value(t, "controller_runtime_terminal_reconcile_errors_total", { controller: "ctl" }), 1);
    assert.equal(await value(t, "controller_runtime_reconcile_time_seconds_count", { controller: "ctl" }), 5);
    assert.equal(await value(t, "controller_runtime_max_concurrent_reconciles", { controller: "ctl" }), 2);

    assert.equal(await value(t, "workqueue_adds_total", { name: "ctl" }), 5);
    assert.equal(await value(t, "workqueue_queue_duration_seconds_count", { name: "ctl" }), 5);
    assert.equal(await value(t, "workqueue_work_duration_seconds_count", { name: "ctl" }), 5);
    assert.equal(await value(t, "workqueue_retries_total", { name: "ctl" }), 1, "only the retryable error is rate-limited");
    assert.equal(await value(t, "workqueue_depth", { name: "ctl" }), 0);
    assert.equal(t.loops.check(0).ok, true, "nothing in flight after shutdown");
  });

  it("creates every series of a controller at zero before any work", async () => {
    const t = telemetry();
    t.metrics.initController("renderer", 1);
    for (const result of ["success", "error", "requeue_after"])
      assert.equal(await value(t, "controller_runtime_reconcile_total", { controller: "renderer", result }), 0);
    assert.equal(await value(t, "workqueue_depth", { name: "renderer" }), 0);
    assert.equal(await value(t, "workqueue_retries_total", { name: "renderer" }), 0);
  });
});

describe("actuator and source hooks -> dockbind_* metrics", () => {
  it("counts Consul writes by kind and result", async () => {
    const t = telemetry();
    t.consulObserver.onWrite?.("register", true);
    t.consulObserver.onWrite?.("register", true);
    t.consulObserver.onWrite?.("deregister", false);
    t.consulObserver.onWrite?.("check", true);
    assert.equal(await value(t, "dockbind_consul_writes_total", { kind: "register", result: "success" }), 2);
    assert.equal(await value(t, "dockbind_consul_writes_total", { kind: "check", result: "success" }), 1);
    assert.equal(await value(t, "dockbind_consul_writes_total", { kind: "check", result: "error" }), 0);
    assert.equal(await value(t, "dockbind_consul_writes_total", { kind: "deregister", result: "error" }), 1);
    assert.equal(await value(t, "dockbind_consul_writes_total", { kind: "deregister", result: "success" }), 0);
  });

  it("counts Docker events by action (bounded label values) and stream reconnects", async () => {
    const t = telemetry();
    t.dockerObserver.onEvent?.("start");
    t.dockerObserver.onEvent?.("health_status");
    t.dockerObserver.onEvent?.("exec_start: sh -c 'rm -rf /'");
    t.dockerObserver.onReconnect?.();
    assert.equal(await value(t, "dockbind_docker_events_total", { action: "start" }), 1);
    assert.equal(await value(t, "dockbind_docker_events_total", { action: "health_status" }), 1);
    assert.equal(await value(t, "dockbind_docker_events_total", { action: "other" }), 1);
    assert.equal(await value(t, "dockbind_docker_event_stream_reconnects_total"), 1);
    assert.equal(dockerActionLabel("die"), "die");
    assert.equal(dockerActionLabel("A".repeat(40)), "other");
  });

  it("counts stalled watches re-established per source (both series exported at 0 before the first)", async () => {
    const t = telemetry();
    assert.equal(await value(t, "dockbind_watch_restarts_total", { source: "kubernetes", reason: "stalled" }), 0);
    assert.equal(await value(t, "dockbind_watch_restarts_total", { source: "docker", reason: "stalled" }), 0);
    t.dockerObserver.onStall?.();
    t.dockerObserver.onStall?.();
    assert.equal(await value(t, "dockbind_watch_restarts_total", { source: "docker", reason: "stalled" }), 2);
    assert.equal(await value(t, "dockbind_watch_restarts_total", { source: "kubernetes", reason: "stalled" }), 0);
  });

  it("counts renders and records the last successful render per binding", async () => {
    const t = telemetry();
    const bindings = store([binding("web", true)]);
    t.attach({
      mode: "docker-only",
      node: "n",
      instance: "i-test",
      endpoints: [],
      bindings,
      status: new BindingStatusStore(),
      containers: new FakeContainers(),
      health: new FakeHealth(),
      consul: { leader: () => Promise.resolve("x") },
      controllers: [],
    });
    const before = Date.now() / 1000;
    t.rendererObserver.onRender?.("default/web", "changed");
    t.rendererObserver.onRender?.("default/web", "unchanged");
    t.rendererObserver.onRender?.("default/web", "error", "ValidationFailed");
    assert.equal(await value(t, "dockbind_lb_renders_total", { result: "changed" }), 1);
    assert.equal(await value(t, "dockbind_lb_renders_total", { result: "unchanged" }), 1);
    assert.equal(await value(t, "dockbind_lb_renders_total", { result: "error" }), 1);
    const last = await value(t, "dockbind_lb_last_success_timestamp_seconds", { binding: "default/web" });
    assert.ok(last !== undefined && last >= before - 1 && last <= Date.now() / 1000 + 1, String(last));
    bindings.delete("default/web");
    assert.equal(await value(t, "dockbind_lb_last_success_timestamp_seconds", { binding: "default/web" }), undefined, "a deleted binding's series goes away");
  });

  it("counts nginx validations and reloads through the driver wrapper, passing errors through", async () => {
    const t = telemetry();
    let failReload = false;
    const inner: LoadBalancerDriver = {
      kind: "nginx",
      validateCandidate: (p) => (p.includes("bad") ? Promise.reject(new LbError("ValidationFailed", "nginx: [emerg] bad")) : Promise.resolve()),
      validateLive: () => Promise.resolve({}),
      reload: () => (failReload ? Promise.reject(new LbError("ReloadFailed", "no master")) : Promise.resolve()),
    };
    const d = t.observeDriver(inner);
    await d.validateCandidate("/x/good.conf");
    await d.validateLive();
    await assert.rejects(d.validateCandidate("/x/bad.conf"), (e: unknown) => e instanceof LbError && e.reason === "ValidationFailed");
    await d.reload();
    failReload = true;
    await assert.rejects(d.reload(), /no master/);
    assert.equal(await value(t, "dockbind_lb_validations_total", { result: "success" }), 2);
    assert.equal(await value(t, "dockbind_lb_validations_total", { result: "error" }), 1);
    assert.equal(await value(t, "dockbind_lb_reloads_total", { result: "success" }), 1);
    assert.equal(await value(t, "dockbind_lb_reloads_total", { result: "error" }), 1);
    assert.equal(t.lb.lastReload?.ok, false);
    assert.equal(t.lb.lastReload.message, "no master");
    assert.equal(t.lb.lastValidation?.ok, false);
    assert.equal(d.kind, "nginx");
  });
});

describe("level gauges read at scrape time", () => {
  it("exports desired/registered/passing per binding (with or without a load balancer) and validation errors", async () => {
    const t = telemetry();
    const status = new BindingStatusStore();
    status.setBackends("default/web", { desired: 3, registered: 3, passing: 2 });
    status.setBackends("default/worker", { desired: 2, registered: 2, passing: 1 });
    const problem: BindingProblem = { source: "/b/x.yaml", document: 1, field: "spec.backends.port", message: "must be <= 65535" };
    const bindings = store([binding("web", true), binding("worker", false)], [problem]);
    t.attach({
      mode: "docker-only",
      node: "n",
      instance: "i-test",
      endpoints: [],
      bindings,
      status,
      containers: new FakeContainers(),
      health: new FakeHealth(),
      consul: { leader: () => Promise.resolve("x") },
      controllers: [{ name: "registrar", workers: 2 }],
    });
    assert.equal(await value(t, "dockbind_backends", { binding: "default/web", state: "desired" }), 3);
    assert.equal(await value(t, "dockbind_backends", { binding: "default/web", state: "registered" }), 3);
    assert.equal(await value(t, "dockbind_backends", { binding: "default/web", state: "passing" }), 2);
    assert.equal(await value(t, "dockbind_backends", { binding: "default/worker", state: "registered" }), 2);
    assert.equal(await value(t, "dockbind_backends", { binding: "default/worker", state: "passing" }), 1, "Consul's health without a load balancer too");
    assert.equal(await value(t, "dockbind_binding_validation_errors"), 1);
    bindings.delete("default/worker");
    assert.equal(await value(t, "dockbind_backends", { binding: "default/worker", state: "desired" }), undefined, "deleted bindings vanish");
  });

  it("exports each Docker endpoint's sync state and container count", async () => {
    const t = telemetry();
    let bSynced = false;
    const peer = (engine: string): NodeConflict => ({ node: "host-b", peer: { engine, instance: "i-other" }, registrations: 1, adoptWith: "i-other" });
    let bConflicts: NodeConflict[] = [peer("E1"), peer("E2")];
    const c = (id: string): ContainerInfo => ({
      id,
      name: id,
      image: "i",
      hostname: id,
      labels: {},
      env: {},
      running: true,
      health: "none",
      ports: [],
      networks: {},
    });
    const a = { synced: () => true, list: () => [c("a1"), c("a2")], get: () => undefined, select: () => [] };
    const b = { synced: () => bSynced, list: () => [c("b1")], get: () => undefined, select: () => [] };
    t.attach({
      mode: "docker-only",
      node: "ctl",
      instance: "i-test",
      endpoints: [
        { node: "host-a", hostIP: "192.0.2.1", containers: a, identity: () => undefined, conflicts: () => [] },
        { node: "host-b", hostIP: "192.0.2.2", containers: b, identity: () => undefined, conflicts: () => bConflicts },
      ],
      bindings: store([]),
      status: new BindingStatusStore(),
      containers: a,
      health: new FakeHealth(),
      consul: { leader: () => Promise.resolve("x") },
      controllers: [],
    });
    assert.equal(await value(t, "dockbind_docker_endpoint_synced", { node: "host-a" }), 1);
    assert.equal(await value(t, "dockbind_docker_endpoint_synced", { node: "host-b" }), 0);
    assert.equal(await value(t, "dockbind_docker_containers", { node: "host-a" }), 2);
    assert.equal(await value(t, "dockbind_docker_containers", { node: "host-b" }), 1);
    bSynced = true;
    assert.equal(await value(t, "dockbind_docker_endpoint_synced", { node: "host-b" }), 1, "read at scrape time");
    assert.equal(await value(t, "dockbind_node_identity_conflicts", { node: "host-a" }), 0);
    assert.equal(await value(t, "dockbind_node_identity_conflicts", { node: "host-b" }), 2, "one per other controller, labelled by our node only");
    bConflicts = [];
    assert.equal(await value(t, "dockbind_node_identity_conflicts", { node: "host-b" }), 0, "a conflict that ended is gone at the next scrape");
  });

  it("exports leader status and the exposition format with every documented metric name", async () => {
    const t = telemetry();
    t.metrics.setLeader(true, "dockbind");
    assert.equal(await value(t, "leader_election_master_status", { name: "dockbind" }), 1);
    t.metrics.setLeader(false, "dockbind");
    assert.equal(await value(t, "leader_election_master_status", { name: "dockbind" }), 0);
    const { contentType, body } = await t.metrics.exposition();
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    for (const name of [
      "controller_runtime_reconcile_total",
      "controller_runtime_reconcile_errors_total",
      "controller_runtime_reconcile_time_seconds",
      "workqueue_depth",
      "workqueue_adds_total",
      "workqueue_queue_duration_seconds",
      "workqueue_work_duration_seconds",
      "workqueue_retries_total",
      "leader_election_master_status",
      "dockbind_backends",
      "dockbind_consul_writes_total",
      "dockbind_lb_renders_total",
      "dockbind_lb_validations_total",
      "dockbind_lb_reloads_total",
      "dockbind_lb_last_success_timestamp_seconds",
      "dockbind_docker_event_stream_reconnects_total",
      "dockbind_docker_events_total",
      "dockbind_binding_validation_errors",
    ])
      assert.match(body, new RegExp(`^# TYPE ${name} `, "m"), name);
  });
});
