/**
 * The Consul health source's contract (src/sources/consul/healthWatcher.ts),
 * driven through a fake Consul whose queries stay open until the test answers
 * them, with mocked timers (debounce, backoff and hold are timers):
 * - the first query is a non-blocking read, later ones block on the last
 *   X-Consul-Index (index 0 counts as 1); first data fires onChange at once,
 *   later changes through the debouncer, an identical answer never;
 * - a failed query keeps the last known instances, backs off exponentially
 *   (kick() cuts the wait short) and the next query is non-blocking;
 * - an index that went backwards calls onIndexReset and starts a hold: known
 *   instances missing from (or less healthy in) the fresh answer are kept
 *   until the fresh answer covers all of them, or until holdMs passes (then
 *   the fresh answer wins);
 * - a blocking answer with the index it was given (the wait ended) is no
 *   change and is not compared;
 * - onLost reports, at once, the instances (node + service ID) the previous
 *   raw answer had and this one lacks; a status change or a hold is no loss;
 * - onEdited reports, at once, the instances both answers have whose
 *   registration changed in place (address, port, tags, meta, weight), with
 *   both versions; a status change or a different tag order is no edit;
 * - setWanted() stops loops of refs no longer wanted and forgets their data.
 */
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import type { HealthInstance, ServiceRef } from "../../src/domain/types.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { HealthWatcher } from "../../src/sources/consul/healthWatcher.js";
import { FakeConsul, makeInstance, type PendingHealthQuery } from "../support/fakes.js";

const WEB: ServiceRef = { service: "web" };
const HOLD_MS = 30_000;
const BACKOFF = { baseMs: 1_000, maxMs: 8_000 };
const DEBOUNCE = { minMs: 100, maxMs: 1_000 };

const A = makeInstance("a", "passing", { address: "192.0.2.1" });
const B = makeInstance("b", "passing", { address: "192.0.2.2" });
const C = makeInstance("c", "passing", { address: "192.0.2.3" });

interface Setup {
  readonly consul: FakeConsul;
  readonly watcher: HealthWatcher;
  /** Keys passed to onChange, in order. */
  readonly changes: string[];
  /** Keys passed to onIndexReset, in order. */
  readonly resets: string[];
  /** onLost calls: the key and the lost service IDs. */
  readonly lost: string[];
  /** onEdited calls: the key and, per instance, its service ID and tags before -> after. */
  readonly edited: string[];
  /** The watcher's open query (waits until it is sent). */
  current(): Promise<PendingHealthQuery>;
  /** Answers the open query and returns the next one: by then the answer has been applied. */
  answer(instances: readonly HealthInstance[], index: string): Promise<PendingHealthQuery>;
  /** Fails the open query; the next one is only sent after the backoff. */
  fail(): Promise<void>;
}

/** Lets pending promise callbacks and immediates run (setImmediate is not mocked). */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function setup(t: TestContext, refs: readonly ServiceRef[] = [WEB]): Setup {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 });
  const consul = new FakeConsul();
  const changes: string[] = [];
  const resets: string[] = [];
  const lost: string[] = [];
  const edited: string[] = [];
  const watcher = new HealthWatcher({
    consul,
    logger: silentLogger(),
    waitMs: 60_000,
    backoff: BACKOFF,
    debounce: DEBOUNCE,
    holdMs: HOLD_MS,
    onChange: (key) => changes.push(key),
    onIndexReset: (key) => resets.push(key),
    onLost: (key, gone) => lost.push(`${key} ${gone.map((i) => `${i.node}/${i.serviceId}`).join(",")}`),
    onEdited: (key, changed) =>
      edited.push(`${key} ${changed.map((e) => `${e.after.serviceId}[${e.before.tags.join(",")}]->[${e.after.tags.join(",")}]`).join(" ")}`),
  });
  t.after(() => watcher.stop());
  watcher.setWanted(refs);
  let open: PendingHealthQuery | undefined;
  const current = async (): Promise<PendingHealthQuery> => (open ??= await consul.nextHealthQuery());
  return {
    consul,
    watcher,
    changes,
    resets,
    lost,
    edited,
    current,
    async answer(instances, index) {
      const q = await current();
      open = undefined;
      q.respond(instances, index);
      return current();
    },
    async fail() {
      const q = await current();
      open = undefined;
      q.fail();
      await flush();
    },
  };
}

function ids(s: Setup, ref: ServiceRef = WEB): string[] | undefined {
  return s.watcher.get(ref)?.instances.map((i) => `${i.serviceId}:${i.status}`);
}

describe("health watcher: blocking queries", () => {
  it("reads without blocking first, then blocks on the last index; first data fires onChange at once", async (t) => {
    const s = setup(t);
    const first = await s.current();
    assert.equal(first.query.index, undefined, "first read is non-blocking");
    assert.equal(first.query.service, "web");
    assert.equal(s.watcher.get(WEB), undefined, "no snapshot before Consul answered");
    const second = await s.answer([B, A], "5");
    assert.equal(second.query.index, "5");
    assert.equal(second.query.waitMs, 60_000);
    assert.deepEqual(ids(s), ["a:passing", "b:passing"], "instances sorted by service id");
    assert.deepEqual(s.changes, ["/web"], "first data is not debounced");
  });

  it("new passing capacity after a quiet period renders at once, a change taking an instance out waits for the debounce; an identical answer is ignored", async (t) => {
    const s = setup(t);
    await s.answer([A], "5");
    const q = await s.answer([A], "6");
    assert.equal(q.query.index, "6");
    t.mock.timers.tick(DEBOUNCE.maxMs);
    assert.deepEqual(s.changes, ["/web"], "identical answer: no change");
    await s.answer([A, B], "7");
    assert.deepEqual(ids(s), ["a:passing", "b:passing"], "the store has the new set at once");
    assert.deepEqual(s.changes, ["/web", "/web"], "one more passing instance after a quiet period: onChange at once");
    await s.answer([B], "8");
    assert.deepEqual(ids(s), ["b:passing"]);
    t.mock.timers.tick(DEBOUNCE.minMs - 1);
    assert.deepEqual(s.changes, ["/web", "/web"], "an instance out: onChange waits for the debounce");
    t.mock.timers.tick(1);
    assert.deepEqual(s.changes, ["/web", "/web", "/web"]);
    t.mock.timers.tick(DEBOUNCE.maxMs);
    await s.answer([B, { ...A, status: "critical" }], "9");
    t.mock.timers.tick(DEBOUNCE.minMs - 1);
    assert.equal(s.changes.length, 3, "a new instance that is not passing: nothing to serve at once");
    t.mock.timers.tick(1);
    assert.equal(s.changes.length, 4);
  });

  it("treats X-Consul-Index 0 as 1", async (t) => {
    const s = setup(t);
    const q = await s.answer([], "0");
    assert.equal(q.query.index, "1");
  });

  it("queries the binding's datacenter and keys it by dc/service", async (t) => {
    const s = setup(t, [{ service: "web", dc: "dc2" }]);
    assert.equal((await s.current()).query.dc, "dc2");
    await s.answer([A], "3");
    assert.deepEqual(s.changes, ["dc2/web"]);
    assert.equal(s.watcher.get(WEB), undefined, "another datacenter's data is not the local one");
    assert.deepEqual(ids(s, { service: "web", dc: "dc2" }), ["a:passing"]);
  });
});

describe("health watcher: a wait that ended without a change", () => {
  it("takes an answer with the index it blocked on as unchanged: not decoded into the store, no onChange, no loss", async (t) => {
    const s = setup(t);
    await s.answer([A, B], "5");
    const q = await s.answer([A], "5");
    assert.equal(q.query.index, "5", "blocks on the same index again");
    assert.deepEqual(ids(s), ["a:passing", "b:passing"], "the store keeps what the index stands for");
    t.mock.timers.tick(DEBOUNCE.maxMs);
    assert.deepEqual(s.changes, ["/web"]);
    assert.deepEqual(s.lost, []);
    await s.answer([A], "6");
    assert.deepEqual(ids(s), ["a:passing"], "a new index is applied");
  });
});

describe("health watcher: lost instances", () => {
  it("reports each instance that left the answer once, before the debounce; a status change, a new instance or a repeat are no loss", async (t) => {
    const s = setup(t);
    await s.answer([A, B], "5");
    assert.deepEqual(s.lost, [], "the first answer loses nothing");
    await s.answer([A, { ...B, status: "critical" }, C], "6");
    assert.deepEqual(s.lost, [], "a status change and a new instance are no loss");
    await s.answer([{ ...B, status: "critical" }, C], "7");
    assert.deepEqual(s.lost, ["/web n/a"], "reported synchronously with the answer, before any debounce");
    await s.answer([{ ...B, status: "critical" }, C], "8");
    assert.deepEqual(s.lost, ["/web n/a"], "an identical answer reports nothing again");
    await s.answer([{ ...C, node: "n2" }], "9");
    assert.deepEqual(s.lost, ["/web n/a", "/web n/b,n/c"], "the same service ID on another node is not the same instance");
  });

  it("compares raw answers: instances kept by a hold are reported lost once, not at every answer of the hold", async (t) => {
    const s = setup(t);
    await s.answer([A, B], "50");
    await s.answer([B], "3");
    assert.deepEqual(s.resets, ["/web"]);
    assert.deepEqual(ids(s), ["a:passing", "b:passing"], "held");
    await s.answer([B], "4");
    assert.deepEqual(s.lost, ["/web n/a"]);
  });
});

describe("health watcher: registrations edited in place", () => {
  it("reports an instance whose tags, meta, port or weight changed, with both versions, at once; a status change or another tag order is no edit", async (t) => {
    const s = setup(t);
    const a = { ...A, tags: ["x", "y"], meta: { k: "1" } };
    await s.answer([a, B], "5");
    await s.answer([{ ...a, tags: ["y", "x"], status: "critical" }, B], "6");
    assert.deepEqual(s.edited, [], "status and tag order are no edit");
    await s.answer([{ ...a, tags: ["x", "evil"] }, B], "7");
    assert.deepEqual(s.edited, ["/web a[y,x]->[x,evil]"], "reported synchronously with the answer, before any debounce");
    await s.answer(
      [
        { ...a, tags: ["x", "evil"], meta: { k: "2" } },
        { ...B, port: 81 },
      ],
      "8",
    );
    assert.deepEqual(s.edited.slice(1), ["/web a[x,evil]->[x,evil] b[]->[]"], "meta and port");
    await s.answer(
      [
        { ...a, tags: ["x", "evil"], meta: { k: "2" } },
        { ...B, port: 81, weight: 5 },
      ],
      "9",
    );
    assert.deepEqual(s.edited.slice(2), ["/web b[]->[]"], "weight");
    assert.deepEqual(s.lost, [], "an edit is no loss");
  });
});

describe("health watcher: failures", () => {
  it("keeps the last known instances, backs off exponentially, and reads without blocking after a failure", async (t) => {
    const s = setup(t);
    await s.answer([A, B], "10");
    await s.fail();
    assert.deepEqual(ids(s), ["a:passing", "b:passing"], "an outage never empties the snapshot");
    assert.equal(s.consul.healthQueries.length, 2);
    t.mock.timers.tick(BACKOFF.baseMs - 1);
    await flush();
    assert.equal(s.consul.healthQueries.length, 2, "no retry before the backoff");
    t.mock.timers.tick(1);
    assert.equal((await s.current()).query.index, undefined, "after a failure the read is non-blocking");
    await s.fail();
    t.mock.timers.tick(2 * BACKOFF.baseMs - 1);
    await flush();
    assert.equal(s.consul.healthQueries.length, 3, "the second backoff is twice the first");
    t.mock.timers.tick(1);
    const recovered = await s.answer([A, B], "11");
    assert.equal(recovered.query.index, "11", "blocking again once a query succeeded");
    assert.deepEqual(s.changes, ["/web"], "the same instances after the outage: nothing to render");
  });

  it("flags the kept instances stale while queries fail, and clears the flag on the next answer", async (t) => {
    const s = setup(t);
    await s.answer([A], "10");
    assert.equal(s.watcher.get(WEB)?.stale, undefined);
    await s.fail();
    assert.equal(s.watcher.get(WEB)?.stale, true, "last known, not fresh");
    assert.deepEqual(ids(s), ["a:passing"]);
    t.mock.timers.tick(BACKOFF.baseMs);
    await s.answer([A], "11");
    assert.equal(s.watcher.get(WEB)?.stale, undefined, "fresh again");
    assert.equal(s.watcher.failing(WEB), false);
  });

  it("reports a ref failing before its first answer without inventing a snapshot, and tells onChange once", async (t) => {
    const s = setup(t);
    await s.fail();
    assert.equal(s.watcher.failing(WEB), true);
    assert.equal(s.watcher.get(WEB), undefined, "no answer: nothing known");
    assert.deepEqual(s.changes, ["/web"], "a failover decision waiting for this ref goes on");
    t.mock.timers.tick(BACKOFF.baseMs);
    await s.fail();
    assert.deepEqual(s.changes, ["/web"], "not again while it keeps failing");
    t.mock.timers.tick(2 * BACKOFF.baseMs);
    await s.answer([A], "5");
    assert.equal(s.watcher.failing(WEB), false);
    assert.deepEqual(s.changes, ["/web", "/web"], "first data");
  });

  it("kick() retries a query waiting in backoff at once", async (t) => {
    const s = setup(t);
    await s.answer([A], "10");
    await s.fail();
    assert.equal(s.consul.healthQueries.length, 2);
    s.watcher.kick();
    assert.equal((await s.current()).query.index, undefined);
    assert.equal(s.consul.healthQueries.length, 3);
  });
});

describe("health watcher: index reset and hold", () => {
  it("holds instances an agent restart lost until the fresh answer covers all of them again", async (t) => {
    const s = setup(t);
    await s.answer([A, B, C], "100");
    await s.fail();
    t.mock.timers.tick(BACKOFF.baseMs);
    // The restarted agent answers with a lower index; b is not re-registered yet, c is critical.
    assert.equal((await s.current()).query.index, undefined);
    const blocking = await s.answer([A, { ...C, status: "critical" }], "3");
    assert.deepEqual(s.resets, ["/web"], "onIndexReset called once");
    assert.equal(blocking.query.index, "3", "the query after the reset blocks on the new, lower index");
    assert.deepEqual(ids(s), ["a:passing", "b:passing", "c:passing"], "missing and less healthy instances held");
    t.mock.timers.tick(DEBOUNCE.maxMs);
    assert.deepEqual(s.changes, ["/web"], "the held snapshot is unchanged: nothing re-rendered");

    // b is back, c still critical: c still held.
    assert.equal((await s.answer([A, B, { ...C, status: "critical" }], "4")).query.index, "4");
    assert.deepEqual(ids(s), ["a:passing", "b:passing", "c:passing"], "c still held as passing");
    // Every held instance is back and as healthy: the hold ends.
    await s.answer([A, B, C], "5");
    assert.deepEqual(ids(s), ["a:passing", "b:passing", "c:passing"]);
    // The hold is over: a later loss is applied as Consul reports it.
    await s.answer([A], "6");
    assert.deepEqual(ids(s), ["a:passing"], "after the hold ended nothing is substituted");
    assert.deepEqual(s.resets, ["/web"]);
  });

  it("applies the fresh answer when the hold expires", async (t) => {
    const s = setup(t);
    await s.answer([A, B], "100");
    // No failure in between: the blocking query itself returns a lower index.
    const q = await s.answer([A], "2");
    assert.equal(q.query.index, "2");
    assert.deepEqual(s.resets, ["/web"]);
    assert.deepEqual(ids(s), ["a:passing", "b:passing"]);
    t.mock.timers.tick(HOLD_MS - 1);
    assert.deepEqual(ids(s), ["a:passing", "b:passing"], "held until holdMs");
    t.mock.timers.tick(1);
    assert.deepEqual(ids(s), ["a:passing"], "on expiry the agent's answer wins");
    assert.deepEqual(s.changes, ["/web"]);
    t.mock.timers.tick(DEBOUNCE.minMs);
    assert.deepEqual(s.changes, ["/web", "/web"], "and is rendered after the debounce (it takes an instance out)");
  });

  it("on expiry applies what the agent reported last", async (t) => {
    const s = setup(t);
    await s.answer([A, B, C], "100");
    await s.answer([A], "2");
    await s.answer([A, { ...B, status: "warning" }], "3");
    assert.deepEqual(ids(s), ["a:passing", "b:passing", "c:passing"]);
    t.mock.timers.tick(HOLD_MS);
    assert.deepEqual(ids(s), ["a:passing", "b:warning"]);
  });

  it("starts no hold when nothing was known before the reset", async (t) => {
    const s = setup(t);
    await s.answer([], "100");
    await s.answer([], "2");
    assert.deepEqual(s.resets, ["/web"], "the reset is still reported");
    await s.answer([A], "3");
    assert.deepEqual(ids(s), ["a:passing"]);
    await s.answer([], "4");
    assert.deepEqual(ids(s), [], "nothing held");
  });
});

describe("health watcher: agent failover hold", () => {
  const dead = (i: HealthInstance): HealthInstance => ({ ...i, status: "critical" });
  const copy = (i: HealthInstance, status: HealthInstance["status"]): HealthInstance => ({ ...i, node: "n2", status });
  const ours = (i: HealthInstance): boolean => i.serviceId !== "c";
  const passing = (s: Setup): string[] | undefined =>
    s.watcher
      .get(WEB)
      ?.instances.filter((i) => i.status === "passing")
      .map((i) => `${i.node}/${i.serviceId}`)
      .sort();

  it("holdAll() keeps our instances passing until their re-registered copies pass on another node, whatever serf says first", async (t) => {
    const s = setup(t);
    await s.answer([A, B, C], "100");
    await s.fail();
    assert.equal(s.watcher.holdAll(ours), 1, "one ref held");
    t.mock.timers.tick(BACKOFF.baseMs);
    // The new agent's first answer: serf has not failed the old node yet (its copies still passing),
    // the new copies have not passed their first check. The old copies prove nothing: still held.
    await s.answer([A, B, C, copy(A, "critical"), copy(B, "critical")], "101");
    assert.deepEqual(s.resets, [], "a failover is not an index reset");
    // Serf fails the old node: the held copies stay passing; c (another controller's) is rendered as reported.
    await s.answer([dead(A), dead(B), dead(C), copy(A, "critical"), copy(B, "critical")], "102");
    assert.deepEqual(passing(s), ["n/a", "n/b"], "our last known copies stay passing, c is not held");
    // a's new copy passes: a is covered, b still held.
    await s.answer([dead(A), dead(B), dead(C), copy(A, "passing"), copy(B, "critical")], "103");
    assert.deepEqual(passing(s), ["n/b", "n2/a"]);
    // Both pass on the new agent: the hold ends and Consul's answer is applied as is.
    await s.answer([dead(A), dead(B), dead(C), copy(A, "passing"), copy(B, "passing")], "104");
    assert.deepEqual(passing(s), ["n2/a", "n2/b"]);
    await s.answer([dead(A), dead(B), dead(C), copy(A, "passing")], "105");
    assert.deepEqual(passing(s), ["n2/a"], "after the release nothing is substituted");
  });

  it("holdAll() with nothing of ours known holds nothing; an expired hold applies the agent's answer", async (t) => {
    const s = setup(t);
    assert.equal(s.watcher.holdAll(ours), 0);
    await s.answer([C], "100");
    assert.equal(s.watcher.holdAll(ours), 0, "only another controller's instance: nothing to hold");
    await s.answer([A], "101");
    assert.equal(s.watcher.holdAll(ours), 1);
    await s.answer([dead(A)], "102");
    assert.deepEqual(ids(s), ["a:passing"]);
    t.mock.timers.tick(HOLD_MS);
    assert.deepEqual(ids(s), ["a:critical"]);
  });
});

describe("health watcher: wanted refs", () => {
  it("stops the loop of a ref no binding needs any more and forgets its data", async (t) => {
    const s = setup(t, [WEB, { service: "api" }]);
    const first = await s.consul.nextHealthQuery();
    const second = await s.consul.nextHealthQuery();
    const [web, api] = first.query.service === "web" ? [first, second] : [second, first];
    web.respond([A], "5");
    api.respond([B], "5");
    await s.consul.nextHealthQuery();
    await s.consul.nextHealthQuery();
    assert.deepEqual(ids(s, { service: "api" }), ["b:passing"]);
    const sent = s.consul.healthQueries.length;
    s.watcher.setWanted([WEB]);
    await flush();
    assert.equal(s.watcher.get({ service: "api" }), undefined, "its data is forgotten");
    assert.deepEqual(ids(s), ["a:passing"], "the other ref keeps its data");
    assert.equal(s.consul.healthQueries.length, sent, "no query for the dropped ref after its loop stopped");
    s.watcher.setWanted([WEB]);
    assert.equal(s.consul.healthQueries.length, sent, "setWanted is idempotent");
  });
});
