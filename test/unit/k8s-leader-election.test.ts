/**
 * LeaderElector semantics on an in-memory lock with optimistic versions (the
 * real Lease is exercised by test/integration/k8s-leader.test.ts). Short
 * durations: lease 1 s (the record's unit), renew deadline 600 ms, retry 100 ms.
 */
import assert from "node:assert/strict";
import { afterEach, describe, it } from "node:test";
import { LeaderElector, type LeaderElectionRecord, type LockState, type ResourceLock } from "../../src/runtime/leaderElection.js";
import { silentLogger } from "../../src/runtime/logger.js";

class MemoryLock implements ResourceLock {
  state: LockState | undefined;
  private v = 0;
  /** Identities whose calls fail (a partitioned replica). */
  readonly cutOff = new Set<string>();
  readonly writes: string[] = [];

  constructor(private readonly caller: { id: string }) {}

  as(id: string): ResourceLock {
    return {
      describe: () => "memory",
      get: () => (this.cutOff.has(id) ? Promise.reject(new Error("unreachable")) : Promise.resolve(this.state)),
      create: (rec) => {
        if (this.cutOff.has(id)) return Promise.reject(new Error("unreachable"));
        if (this.state !== undefined) return Promise.reject(new Error("AlreadyExists"));
        this.state = { record: rec, version: String(++this.v) };
        this.writes.push(`${id}:create`);
        return Promise.resolve();
      },
      update: (rec: LeaderElectionRecord, version: string) => {
        if (this.cutOff.has(id)) return Promise.reject(new Error("unreachable"));
        if (this.state?.version !== version) return Promise.reject(new Error("Conflict"));
        this.state = { record: rec, version: String(++this.v) };
        this.writes.push(`${id}:update`);
        return Promise.resolve();
      },
    };
  }

  get(): Promise<LockState | undefined> {
    return this.as(this.caller.id).get(AbortSignal.timeout(1000));
  }
  create(rec: LeaderElectionRecord): Promise<void> {
    return this.as(this.caller.id).create(rec, AbortSignal.timeout(1000));
  }
  update(rec: LeaderElectionRecord, version: string): Promise<void> {
    return this.as(this.caller.id).update(rec, version, AbortSignal.timeout(1000));
  }
  describe(): string {
    return "memory";
  }
}

const TIMING = { leaseDurationMs: 1000, renewDeadlineMs: 600, retryPeriodMs: 100 } as const;
const LEASE = TIMING.leaseDurationMs;

/** Every replica of the current test: stopped after it, pass or fail. */
const started: Replica[] = [];
afterEach(async () => {
  for (const r of started.splice(0)) {
    r.stop.abort();
    await r.outcome;
  }
});

interface Replica {
  readonly id: string;
  readonly stop: AbortController;
  outcome: Promise<string>;
  leading: boolean;
  leaderSignal: AbortSignal | undefined;
}

function replica(lock: MemoryLock, id: string): Replica {
  const elector = new LeaderElector({ lock: lock.as(id), identity: id, logger: silentLogger(), ...TIMING });
  const r: Replica = { id, stop: new AbortController(), outcome: Promise.resolve(""), leading: false, leaderSignal: undefined };
  started.push(r);
  r.outcome = elector.run(r.stop.signal, async (signal) => {
    r.leading = true;
    r.leaderSignal = signal;
    await new Promise<void>((resolve) => {
      signal.addEventListener("abort", () => {
        resolve();
      });
    });
    r.leading = false;
  });
  return r;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean, ms: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
  return Date.now() - t0;
}

describe("LeaderElector", () => {
  it("rejects timings that cannot be safe", () => {
    const lock = new MemoryLock({ id: "x" });
    assert.throws(() => new LeaderElector({ lock, identity: "x", logger: silentLogger(), leaseDurationMs: 10_000, renewDeadlineMs: 10_000 }), /lease duration/);
    assert.throws(() => new LeaderElector({ lock, identity: "x", logger: silentLogger(), renewDeadlineMs: 2_000, retryPeriodMs: 2_000 }), /retry period/);
  });

  it("exactly one of two candidates leads; the standby never writes while the leader renews", async () => {
    const lock = new MemoryLock({ id: "" });
    const a = replica(lock, "a");
    await until(() => a.leading, 2000, "a leads");
    const b = replica(lock, "b");
    await sleep(2 * LEASE + 300); // > 2 lease durations: a renews, b must keep waiting
    assert.equal(a.leading, true);
    assert.equal(b.leading, false);
    assert.equal(lock.state?.record.holderIdentity, "a");
    assert.equal(lock.writes.filter((w) => w.startsWith("b:")).length, 0);
    assert.ok(lock.writes.filter((w) => w === "a:update").length >= 10, "a renews every retry period");
    a.stop.abort();
    b.stop.abort();
    assert.equal(await a.outcome, "stopped");
    assert.equal(await b.outcome, "stopped");
  });

  it("a graceful stop releases the lease: the standby takes over within a retry period", async () => {
    const lock = new MemoryLock({ id: "" });
    const a = replica(lock, "a");
    await until(() => a.leading, 2000, "a leads");
    const b = replica(lock, "b");
    await sleep(200);
    a.stop.abort();
    assert.equal(await a.outcome, "stopped");
    const ms = await until(() => b.leading, 1000, "b leads");
    assert.ok(ms < 300, `takeover after release took ${ms} ms`);
    assert.equal(lock.state?.record.leaseTransitions, 1);
    b.stop.abort();
    await b.outcome;
  });

  it("a crashed leader (no release, no renew) is replaced within the lease duration of its last renewal", async () => {
    const lock = new MemoryLock({ id: "" });
    const a = replica(lock, "a");
    await until(() => a.leading, 2000, "a leads");
    const b = replica(lock, "b");
    await sleep(300);
    lock.cutOff.add("a"); // a can neither renew nor release: a crash as seen by the lock
    const lastRenew = Date.parse(lock.state?.record.renewTime ?? "");
    const ms = await until(() => b.leading, 2000, "b leads");
    const sinceRenew = Date.now() - lastRenew;
    assert.ok(sinceRenew >= LEASE - 5, `b took over ${sinceRenew} ms after a's last renewal (lease ${LEASE} ms)`);
    assert.ok(sinceRenew <= LEASE + 500, `b took over ${sinceRenew} ms after a's last renewal (lease ${LEASE} ms)`);
    assert.ok(ms > 0);
    // a itself has given up after its renew deadline (before the lease expired for others).
    assert.equal(await a.outcome, "lost");
    assert.equal(a.leaderSignal?.aborted, true);
    b.stop.abort();
    await b.outcome;
  });

  it("a leader that cannot renew for the renew deadline stops leading before anyone else may take over", async () => {
    const lock = new MemoryLock({ id: "" });
    const a = replica(lock, "a");
    await until(() => a.leading, 2000, "a leads");
    const cut = Date.now();
    lock.cutOff.add("a");
    assert.equal(await a.outcome, "lost");
    const lostAfter = Date.now() - cut;
    assert.ok(lostAfter >= 450 && lostAfter < LEASE, `lost after ${lostAfter} ms (renew deadline 600, lease ${LEASE})`);
  });
});
