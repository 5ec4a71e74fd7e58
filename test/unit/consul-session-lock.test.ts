import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConsulSessionLock, type SessionLockTiming } from "../../src/actuators/consul/consulSessionLock.js";
import type { Registration } from "../../src/domain/types.js";
import { runElection } from "../../src/runtime/leaderElection.js";
import { silentLogger } from "../../src/runtime/logger.js";
import type { ConsulLocking, KvEntry, SessionSpec } from "../../src/ports/consul.js";

const TIMING: SessionLockTiming = { renewMs: 20, checkTtlMs: 50, sessionTtlS: 10, lockDelayMs: 60, renewDeadlineMs: 90, freePollMs: 5, waitMs: 1_000 };

/** Consul's session/KV lock semantics for one key: acquire/release, invalidation frees the key and starts lock-delay. */
class FakeConsul implements ConsulLocking {
  readonly sessions = new Map<string, SessionSpec>();
  entry: { value?: string; session?: string; index: number } = { index: 1 };
  lockDelayUntil = 0;
  failing = false;
  /** Renew cycles refused while `failing` (each starts by passing the check). */
  failedRenews = 0;
  readonly registered = new Set<string>();
  private nextId = 0;
  private waiters: (() => void)[] = [];

  private check(): void {
    if (this.failing) throw new Error("connect ECONNREFUSED");
  }
  private changed(): void {
    this.entry = { ...this.entry, index: this.entry.index + 1 };
    for (const w of this.waiters.splice(0)) w();
  }
  /** The session is gone (its check turned critical, or destroyed): the key is freed, lock-delay starts. */
  invalidate(id: string): void {
    this.sessions.delete(id);
    if (this.entry.session === id) {
      this.entry = { index: this.entry.index };
      this.lockDelayUntil = Date.now() + TIMING.lockDelayMs;
      this.changed();
    }
  }
  holderSession(): string | undefined {
    return this.entry.session;
  }
  register(r: Registration): Promise<void> {
    this.check();
    this.registered.add(r.id);
    return Promise.resolve();
  }
  deregister(id: string): Promise<void> {
    this.check();
    this.registered.delete(id);
    return Promise.resolve();
  }
  createSession(spec: SessionSpec): Promise<string> {
    this.check();
    const id = `s${++this.nextId}`;
    this.sessions.set(id, spec);
    return Promise.resolve(id);
  }
  renewSession(id: string): Promise<boolean> {
    this.check();
    return Promise.resolve(this.sessions.has(id));
  }
  destroySession(id: string): Promise<void> {
    this.check();
    this.invalidate(id);
    return Promise.resolve();
  }
  async kvGet(_key: string, q: { readonly index?: string; readonly waitMs?: number; readonly signal?: AbortSignal }): Promise<KvEntry> {
    this.check();
    if (q.index !== undefined && q.index === String(this.entry.index)) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, q.waitMs ?? 0);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
        q.signal?.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const e = this.entry;
    return { ...(e.value !== undefined ? { value: e.value } : {}), ...(e.session !== undefined ? { session: e.session } : {}), index: String(e.index) };
  }
  kvAcquire(_key: string, value: string, session: string): Promise<boolean> {
    this.check();
    if (!this.sessions.has(session) || (this.entry.session !== undefined && this.entry.session !== session) || Date.now() < this.lockDelayUntil)
      return Promise.resolve(false);
    this.entry = { ...this.entry, value, session };
    this.changed();
    return Promise.resolve(true);
  }
  kvRelease(_key: string, session: string): Promise<boolean> {
    this.check();
    if (this.entry.session !== session) return Promise.resolve(false);
    this.entry = { index: this.entry.index, ...(this.entry.value !== undefined ? { value: this.entry.value } : {}) };
    this.changed();
    return Promise.resolve(true);
  }
  passCheck(): Promise<void> {
    if (this.failing) this.failedRenews++;
    this.check();
    return Promise.resolve();
  }
}

const lock = (consul: FakeConsul, identity: string): ConsulSessionLock =>
  new ConsulSessionLock({ consul, name: "pair", identity, logger: silentLogger(), timing: TIMING });

describe("ConsulSessionLock", () => {
  it("refuses timings where the key could change hands before the holder stops", () => {
    assert.throws(
      () => new ConsulSessionLock({ consul: new FakeConsul(), name: "x", identity: "a", logger: silentLogger(), timing: { ...TIMING, renewDeadlineMs: 110 } }),
      /renew deadline/,
    );
    assert.throws(
      () => new ConsulSessionLock({ consul: new FakeConsul(), name: "x", identity: "a", logger: silentLogger(), timing: { ...TIMING, renewMs: 30 } }),
      /twice per check TTL/,
    );
  });

  it("the first candidate acquires; its session is bound to its TTL check and serfHealth; the key names it", async () => {
    const consul = new FakeConsul();
    const a = lock(consul, "host-a");
    assert.equal(await a.acquire(new AbortController().signal), true);
    const session = consul.holderSession();
    assert.ok(session !== undefined);
    assert.deepEqual(consul.sessions.get(session)?.checks, ["serfHealth", "service:dockbind-leader:pair:host-a"]);
    assert.equal(consul.sessions.get(session)?.lockDelay, "1s");
    assert.equal((JSON.parse(consul.entry.value ?? "{}") as { holderIdentity?: string }).holderIdentity, "host-a");
    await a.release();
    assert.equal(consul.holderSession(), undefined);
    assert.equal(consul.sessions.size, 0, "session destroyed");
    assert.deepEqual([...consul.registered], [], "check deregistered");
  });

  it("crash of the holder: the holder's hold() reports lost, the standby acquires only after lock-delay, via runElection", async () => {
    const consul = new FakeConsul();
    const a = lock(consul, "host-a");
    const b = lock(consul, "host-b");
    const stop = new AbortController();
    const aLeading = new Promise<AbortSignal>((resolve) => {
      void runElection(a, { identity: "host-a", logger: silentLogger() }, stop.signal, (s) => {
        resolve(s);
        return new Promise<void>((r) => {
          s.addEventListener("abort", () => {
            r();
          });
        });
      });
    });
    const aSignal = await aLeading;
    const b0 = { leadAt: 0 };
    const bRun = runElection(b, { identity: "host-b", logger: silentLogger() }, stop.signal, (s) => {
      b0.leadAt = Date.now();
      return new Promise<void>((r) => {
        s.addEventListener("abort", () => {
          r();
        });
      });
    });
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(b0.leadAt, 0, "the standby waits while the holder's session lives");
    const aSession = consul.holderSession();
    assert.ok(aSession !== undefined);
    const crashedAt = Date.now();
    consul.invalidate(aSession);
    await new Promise<void>((r) => {
      aSignal.addEventListener("abort", () => {
        r();
      });
    });
    assert.ok(Date.now() - crashedAt <= TIMING.renewMs * 3, "the holder stops within a renew period of its session going away");
    const leadAt = (): number => b0.leadAt;
    while (leadAt() === 0 && Date.now() - crashedAt < 2_000) await new Promise((r) => setTimeout(r, 5));
    assert.ok(
      b0.leadAt - crashedAt >= TIMING.lockDelayMs - 5,
      `standby acquired ${b0.leadAt - crashedAt} ms after the crash (lock-delay ${TIMING.lockDelayMs})`,
    );
    stop.abort();
    assert.equal(await bRun, "stopped");
  });

  it("a release hands over without lock-delay", async () => {
    const consul = new FakeConsul();
    const a = lock(consul, "host-a");
    const b = lock(consul, "host-b");
    const signal = new AbortController().signal;
    assert.equal(await a.acquire(signal), true);
    const bAcquired = b.acquire(signal);
    await new Promise((r) => setTimeout(r, 30));
    const releasedAt = Date.now();
    await a.release();
    assert.equal(await bAcquired, true);
    assert.ok(Date.now() - releasedAt < TIMING.lockDelayMs, "no lock-delay after a release");
    await b.release();
  });

  it("the holder gives up when no renew cycle succeeded for the renew deadline, or when the key names another session", async () => {
    const consul = new FakeConsul();
    const a = lock(consul, "host-a");
    const signal = new AbortController().signal;
    assert.equal(await a.acquire(signal), true);
    consul.failing = true;
    const started = Date.now();
    assert.equal(await a.hold(signal), "lost");
    const took = Date.now() - started;
    // Not before the deadline (minus the cycle in which the last renew succeeded); then at the first renew cycles
    // past it. Cycles are counted, not timed: on a loaded machine each one runs late, so there are fewer, never more.
    assert.ok(took >= TIMING.renewDeadlineMs - TIMING.renewMs - 5, `lost after ${took} ms`);
    const cycles = Math.ceil(TIMING.renewDeadlineMs / TIMING.renewMs);
    assert.ok(
      consul.failedRenews >= cycles - 1 && consul.failedRenews <= cycles + 2,
      `lost after ${consul.failedRenews} failed renews (deadline: ${cycles} cycles)`,
    );
    assert.ok(took < TIMING.sessionTtlS * 1000, `lost after ${took} ms: the renew deadline decided, not the session TTL`);
    consul.failing = false;

    const consul2 = new FakeConsul();
    const b = lock(consul2, "host-b");
    assert.equal(await b.acquire(signal), true);
    consul2.entry = { ...consul2.entry, session: "someone-else" };
    assert.equal(await b.hold(signal), "lost");
  });

  it("a standby stopped while waiting removes its session and check", async () => {
    const consul = new FakeConsul();
    const a = lock(consul, "host-a");
    const b = lock(consul, "host-b");
    assert.equal(await a.acquire(new AbortController().signal), true);
    const stop = new AbortController();
    const waiting = b.acquire(stop.signal);
    await new Promise((r) => setTimeout(r, 30));
    stop.abort();
    assert.equal(await waiting, false);
    assert.deepEqual([...consul.registered], ["dockbind-leader:pair:host-a"]);
    assert.equal(consul.sessions.size, 1);
    await a.release();
  });
});
