import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { BindingStatusStore, type BindingStatus, type Condition, type ConditionType } from "../../src/reconcilers/bindingStatus.js";

const T0 = Date.UTC(2025, 0, 1, 0, 0, 0);

function clock(t: TestContext): (ms: number) => void {
  t.mock.timers.enable({ apis: ["Date"], now: T0 });
  return (ms) => {
    t.mock.timers.tick(ms);
  };
}

function iso(ms: number): string {
  return new Date(T0 + ms).toISOString();
}

function cond(s: BindingStatus, type: ConditionType): Condition {
  const c = s.conditions.find((x) => x.type === type);
  assert.ok(c !== undefined, `no ${type} condition in ${JSON.stringify(s.conditions)}`);
  return c;
}

describe("BindingStatusStore: conditions", () => {
  it("a new condition gets the current time as lastTransitionTime", (t) => {
    clock(t);
    const store = new BindingStatusStore();
    store.setCondition("k", "Registered", "True", "Registered", "2 instance(s) registered");
    const c = cond(store.get("k"), "Registered");
    assert.deepEqual(c, { type: "Registered", status: "True", reason: "Registered", message: "2 instance(s) registered", lastTransitionTime: iso(0) });
  });

  it("lastTransitionTime does not change when only reason or message change", (t) => {
    const advance = clock(t);
    const store = new BindingStatusStore();
    store.setCondition("k", "Registered", "False", "ConsulUnavailable", "connection refused");
    advance(5000);
    store.setCondition("k", "Registered", "False", "ConsulRejected", "HTTP 403");
    const c = cond(store.get("k"), "Registered");
    assert.equal(c.reason, "ConsulRejected");
    assert.equal(c.message, "HTTP 403");
    assert.equal(c.lastTransitionTime, iso(0));
  });

  it("lastTransitionTime changes when the status changes", (t) => {
    const advance = clock(t);
    const store = new BindingStatusStore();
    store.setCondition("k", "Registered", "False", "ConsulUnavailable", "down");
    advance(7000);
    store.setCondition("k", "Registered", "True", "Registered", "ok");
    assert.equal(cond(store.get("k"), "Registered").lastTransitionTime, iso(7000));
    advance(1000);
    store.setCondition("k", "Registered", "False", "ConsulUnavailable", "down");
    assert.equal(cond(store.get("k"), "Registered").lastTransitionTime, iso(8000));
  });

  it("an identical update notifies nobody", (t) => {
    clock(t);
    const store = new BindingStatusStore();
    const seen: string[] = [];
    store.onChange((key) => seen.push(key));
    store.setCondition("k", "Registered", "True", "Registered", "ok");
    store.setCondition("k", "Registered", "True", "Registered", "ok");
    assert.deepEqual(seen, ["k"]);
  });

  it("listeners get the key and the new status", (t) => {
    clock(t);
    const store = new BindingStatusStore();
    const seen: [string, BindingStatus][] = [];
    store.onChange((key, status) => seen.push([key, status]));
    store.setCondition("a", "Registered", "True", "Registered", "ok");
    assert.deepEqual(
      seen.map(([key]) => key),
      ["a"],
    );
    assert.equal(seen[0]?.[1], store.get("a"));
  });

  it("keeps one condition per type, sorted by type", (t) => {
    clock(t);
    const store = new BindingStatusStore();
    store.setCondition("k", "Registered", "True", "Registered", "ok");
    store.setCondition("k", "LoadBalancerConfigured", "True", "Rendered", "ok");
    store.setCondition("k", "Registered", "True", "Registered", "ok again");
    assert.deepEqual(
      store.get("k").conditions.map((c) => c.type),
      ["LoadBalancerConfigured", "Ready", "Registered"],
    );
  });

  it("keys are independent", (t) => {
    clock(t);
    const store = new BindingStatusStore();
    store.setCondition("a", "Registered", "True", "Registered", "ok");
    store.setCondition("b", "Registered", "False", "ConsulUnavailable", "down");
    assert.equal(cond(store.get("a"), "Ready").status, "True");
    assert.equal(cond(store.get("b"), "Ready").status, "False");
  });
});

describe("BindingStatusStore: Ready is derived", () => {
  it("Ready=True when Registered is True and there is no load balancer", (t) => {
    clock(t);
    const store = new BindingStatusStore();
    store.setCondition("k", "Registered", "True", "Registered", "ok");
    const ready = cond(store.get("k"), "Ready");
    assert.equal(ready.status, "True");
    assert.equal(ready.reason, "Converged");
  });

  it("Ready=False copies the reason and message of a blocking Registered condition", (t) => {
    clock(t);
    const store = new BindingStatusStore();
    store.setCondition("k", "Registered", "False", "ConsulUnavailable", "connection refused");
    const ready = cond(store.get("k"), "Ready");
    assert.equal(ready.status, "False");
    assert.equal(ready.reason, "ConsulUnavailable");
    assert.equal(ready.message, "connection refused");
  });

  it("a LoadBalancerConfigured condition that is not True blocks Ready", (t) => {
    clock(t);
    const store = new BindingStatusStore();
    store.setCondition("k", "Registered", "True", "Registered", "ok");
    store.setCondition("k", "LoadBalancerConfigured", "False", "ConfigTestFailed", "nginx -t failed");
    const ready = cond(store.get("k"), "Ready");
    assert.equal(ready.status, "False");
    assert.equal(ready.reason, "ConfigTestFailed");
    store.setCondition("k", "LoadBalancerConfigured", "Unknown", "Pending", "waiting");
    assert.equal(cond(store.get("k"), "Ready").status, "False");
    store.setCondition("k", "LoadBalancerConfigured", "True", "Rendered", "ok");
    assert.equal(cond(store.get("k"), "Ready").status, "True");
  });

  it("Degraded=True blocks Ready, Degraded=False does not", (t) => {
    clock(t);
    const store = new BindingStatusStore();
    store.setCondition("k", "Registered", "True", "Registered", "ok");
    store.setCondition("k", "Degraded", "True", "NoHealthyBackends", "0 of 2 passing");
    assert.equal(cond(store.get("k"), "Ready").status, "False");
    assert.equal(cond(store.get("k"), "Ready").reason, "NoHealthyBackends");
    store.setCondition("k", "Degraded", "False", "Healthy", "2 of 2 passing");
    assert.equal(cond(store.get("k"), "Ready").status, "True");
  });

  it("Registered blocks before Degraded is considered", (t) => {
    clock(t);
    const store = new BindingStatusStore();
    store.setCondition("k", "Degraded", "True", "NoHealthyBackends", "x");
    store.setCondition("k", "Registered", "False", "ConsulUnavailable", "y");
    assert.equal(cond(store.get("k"), "Ready").reason, "ConsulUnavailable");
  });

  it("Ready's lastTransitionTime changes only when Ready's status changes", (t) => {
    const advance = clock(t);
    const store = new BindingStatusStore();
    store.setCondition("k", "Registered", "False", "ConsulUnavailable", "down");
    advance(1000);
    store.setCondition("k", "Registered", "False", "ConsulRejected", "403");
    assert.equal(cond(store.get("k"), "Ready").lastTransitionTime, iso(0), "still False");
    advance(1000);
    store.setCondition("k", "Registered", "True", "Registered", "ok");
    assert.equal(cond(store.get("k"), "Ready").lastTransitionTime, iso(2000));
    advance(1000);
    store.setCondition("k", "LoadBalancerConfigured", "True", "Rendered", "ok");
    assert.equal(cond(store.get("k"), "Ready").lastTransitionTime, iso(2000), "still True");
  });
});

describe("BindingStatusStore: backends, renders, keys", () => {
  it("an unknown key has an empty status", () => {
    const store = new BindingStatusStore();
    assert.deepEqual(store.get("nope"), { conditions: [], backends: { desired: 0, registered: 0, passing: 0 } });
    assert.deepEqual(store.keys(), []);
  });

  it("setBackends merges counts and notifies only on a change", () => {
    const store = new BindingStatusStore();
    const seen: string[] = [];
    store.onChange((k) => seen.push(k));
    store.setBackends("k", { desired: 3, registered: 2 });
    store.setBackends("k", { passing: 1 });
    assert.deepEqual(store.get("k").backends, { desired: 3, registered: 2, passing: 1 });
    store.setBackends("k", { desired: 3 });
    assert.equal(seen.length, 2);
  });

  it("setLastRender records time, result and server count", (t) => {
    clock(t);
    const store = new BindingStatusStore();
    store.setLastRender("k", "reloaded", 3);
    assert.deepEqual(store.get("k").lastRender, { at: iso(0), result: "reloaded", servers: 3 });
  });

  it("updates keep the other parts of the status", (t) => {
    clock(t);
    const store = new BindingStatusStore();
    store.setBackends("k", { desired: 2 });
    store.setCondition("k", "Registered", "True", "Registered", "ok");
    store.setLastRender("k", "unchanged", 2);
    const s = store.get("k");
    assert.equal(s.backends.desired, 2);
    assert.equal(cond(s, "Registered").status, "True");
    assert.equal(s.lastRender?.result, "unchanged");
  });

  it("keys() is sorted and delete() forgets a key", () => {
    const store = new BindingStatusStore();
    store.setBackends("b", { desired: 1 });
    store.setBackends("a", { desired: 1 });
    assert.deepEqual(store.keys(), ["a", "b"]);
    store.delete("a");
    assert.deepEqual(store.keys(), ["b"]);
    assert.equal(store.get("a").backends.desired, 0);
  });
});

describe("BindingStatusStore.setRegistration: one binding served by several Docker endpoints", () => {
  const ok = (n: number) => ({ status: "True" as const, reason: "Registered", message: `${n} instance(s) registered`, counts: { desired: n, registered: n } });

  it("one node: counts and condition exactly as that node reported them", () => {
    const s = new BindingStatusStore();
    s.setRegistration("default/web", "host-a", { ...ok(2), counts: { desired: 3, registered: 2 } });
    assert.deepEqual(s.get("default/web").backends, { desired: 3, registered: 2, passing: 0 });
    const r = s.get("default/web").conditions.find((c) => c.type === "Registered");
    assert.deepEqual([r?.status, r?.reason, r?.message], ["True", "Registered", "2 instance(s) registered"]);
  });

  it("sums counts over nodes; False wins and names the failing node", () => {
    const s = new BindingStatusStore();
    s.setRegistration("default/web", "host-b", ok(1));
    s.setRegistration("default/web", "host-a", ok(2));
    assert.deepEqual(s.get("default/web").backends, { desired: 3, registered: 3, passing: 0 });
    const first = s.get("default/web").conditions.find((c) => c.type === "Registered");
    assert.equal(first?.message, "host-a: 2 instance(s) registered; host-b: 1 instance(s) registered");
    s.setRegistration("default/web", "host-b", { status: "False", reason: "ConsulRejected", message: "403" });
    const failed = s.get("default/web").conditions.find((c) => c.type === "Registered");
    assert.deepEqual([failed?.status, failed?.reason, failed?.message], ["False", "ConsulRejected", "host-b: 403"]);
    assert.deepEqual(s.get("default/web").backends, { desired: 3, registered: 3, passing: 0 }, "a failure without counts keeps the node's last ones");
    s.setRegistration("default/web", "host-b", ok(4));
    assert.deepEqual(s.get("default/web").backends, { desired: 6, registered: 6, passing: 0 });
    assert.equal(s.get("default/web").conditions.find((c) => c.type === "Registered")?.status, "True");
  });

  it("an abstaining node (e.g. a swarm worker) has no say while another node reports; alone, its words stand", () => {
    const s = new BindingStatusStore();
    const worker = { status: "False" as const, reason: "SwarmNotManager", message: "worker", abstain: true, counts: { desired: 0, registered: 0 } };
    s.setRegistration("default/sw", "worker-1", worker);
    assert.equal(s.get("default/sw").conditions.find((c) => c.type === "Registered")?.reason, "SwarmNotManager");
    s.setRegistration("default/sw", "manager-1", ok(3));
    const r = s.get("default/sw").conditions.find((c) => c.type === "Registered");
    assert.deepEqual([r?.status, r?.message], ["True", "manager-1: 3 instance(s) registered"]);
    assert.deepEqual(s.get("default/sw").backends, { desired: 3, registered: 3, passing: 0 });
  });

  it("delete forgets every node", () => {
    const s = new BindingStatusStore();
    s.setRegistration("default/web", "host-a", ok(2));
    s.setRegistration("default/web", "host-b", ok(1));
    s.delete("default/web");
    s.setRegistration("default/web", "host-a", ok(1));
    assert.deepEqual(s.get("default/web").backends, { desired: 1, registered: 1, passing: 0 });
    assert.equal(s.get("default/web").conditions.find((c) => c.type === "Registered")?.message, "1 instance(s) registered");
  });
});
