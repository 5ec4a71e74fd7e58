import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AgentServiceSnapshot } from "../../src/actuators/consul/agentServiceSnapshot.js";
import type { RegisteredService, Registration } from "../../src/domain/types.js";

function svc(id: string): RegisteredService {
  return { id, name: "web", address: "127.0.0.1", port: 80, tags: [], meta: {} };
}

/** A fake agent whose reads resolve only when the test says so. */
function agent(initial: RegisteredService[]) {
  let services = initial;
  const pending: (() => void)[] = [];
  let reads = 0;
  return {
    get reads() {
      return reads;
    },
    set(next: RegisteredService[]) {
      services = next;
    },
    release() {
      for (const p of pending.splice(0)) p();
    },
    listAgentServices(): Promise<readonly RegisteredService[]> {
      reads++;
      const snapshot = services;
      return new Promise((resolve) => {
        pending.push(() => {
          resolve(snapshot);
        });
      });
    },
  };
}

const reg = (id: string): Registration => ({ id, name: "web", address: "127.0.0.1", port: 81, tags: ["t"], meta: { k: "v" } });

describe("AgentServiceSnapshot", () => {
  it("ofBinding(): candidates are the services of one binding, kept current by recorded writes; byId sees every service", async () => {
    const of = (id: string, binding: string): RegisteredService => ({ ...svc(id), meta: { dockbind_binding: binding } });
    const a = agent([of("a1", "ns/a"), of("a2", "ns/a"), of("b1", "ns/b"), svc("plain")]);
    const snap = new AgentServiceSnapshot(a, 60_000);
    const first = snap.ofBinding("ns/a");
    a.release();
    const va = await first;
    assert.deepEqual(va.candidates.map((s) => s.id).sort(), ["a1", "a2"]);
    assert.equal(va.byId("b1")?.id, "b1", "byId looks beyond the binding");
    assert.equal(va.byId("plain")?.id, "plain");
    snap.recordRegister({ ...reg("a3"), meta: { dockbind_binding: "ns/a" } });
    snap.recordDeregister("a1");
    snap.recordRegister({ ...reg("b1"), meta: { dockbind_binding: "ns/a" } }); // re-registered under another binding
    const again = await snap.ofBinding("ns/a");
    assert.deepEqual(again.candidates.map((s) => s.id).sort(), ["a2", "a3", "b1"]);
    assert.deepEqual((await snap.ofBinding("ns/b")).candidates, []);
    assert.equal(a.reads, 1, "served from the snapshot");
  });

  it("concurrent callers share one read", async () => {
    const a = agent([svc("a")]);
    const snap = new AgentServiceSnapshot(a, 10_000);
    const lists = [snap.list(), snap.list(), snap.list()];
    a.release();
    const results = await Promise.all(lists);
    assert.equal(a.reads, 1);
    for (const r of results)
      assert.deepEqual(
        r.map((s) => s.id),
        ["a"],
      );
  });

  it("serves the snapshot while it is fresh and re-reads after invalidate()", async () => {
    const a = agent([svc("a")]);
    const snap = new AgentServiceSnapshot(a, 10_000);
    const first = snap.list();
    a.release();
    await first;
    a.set([svc("a"), svc("b")]);
    assert.deepEqual(
      (await snap.list()).map((s) => s.id),
      ["a"],
      "fresh snapshot served without a read",
    );
    assert.equal(a.reads, 1);
    snap.invalidate();
    const again = snap.list();
    a.release();
    assert.deepEqual(
      (await again).map((s) => s.id),
      ["a", "b"],
    );
    assert.equal(a.reads, 2);
  });

  it("maxAge 0 re-reads every time", async () => {
    const a = agent([svc("a")]);
    const snap = new AgentServiceSnapshot(a, 0);
    for (let i = 0; i < 3; i++) {
      const p = snap.list();
      a.release();
      await p;
    }
    assert.equal(a.reads, 3);
  });

  it("applies its own writes, including writes made while a read was in flight", async () => {
    const a = agent([svc("a"), svc("gone")]);
    const snap = new AgentServiceSnapshot(a, 10_000);
    const inflight = snap.list();
    // The read started before these writes: its answer must not undo them.
    snap.recordRegister(reg("new"));
    snap.recordDeregister("gone");
    a.release();
    await inflight;
    const ids = (await snap.list()).map((s) => s.id).sort();
    assert.deepEqual(ids, ["a", "new"]);
    assert.equal(a.reads, 1);
    const added = (await snap.list()).find((s) => s.id === "new");
    assert.deepEqual(added, { id: "new", name: "web", address: "127.0.0.1", port: 81, tags: ["t"], meta: { k: "v" } });
  });

  it("does not keep a read that an invalidate() overtook", async () => {
    const a = agent([svc("old")]);
    const snap = new AgentServiceSnapshot(a, 10_000);
    const inflight = snap.list();
    snap.invalidate();
    a.release();
    await inflight;
    a.set([svc("fresh")]);
    const next = snap.list();
    a.release();
    assert.deepEqual(
      (await next).map((s) => s.id),
      ["fresh"],
    );
    assert.equal(a.reads, 2);
  });
});
