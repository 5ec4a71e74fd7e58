/**
 * The Manager of Runnables: start order (non-leader runnables first, leader
 * ones only once the lock is held), stop in reverse order with each runnable
 * awaited, leader runnables aborted at once when the lock is lost, and a
 * failing runnable stopping the manager.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { controllerRunnable } from "../../src/runtime/controller.js";
import type { ElectionOutcome, LeadershipLock } from "../../src/runtime/leaderElection.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { aborted, Manager, type Runnable } from "../../src/runtime/manager.js";
import { WorkQueue } from "../../src/runtime/workqueue.js";

/** A deferred promise. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Records "start X" / "abort X" / "end X"; `stopDelay` lets a runnable take a turn of the event loop to stop. */
class Recorder {
  readonly events: string[] = [];
  private readonly waiters: { until: () => boolean; resolve: () => void }[] = [];

  runnable(name: string, needsLeadership: boolean, fail?: Promise<void>): Runnable {
    return {
      name,
      needsLeadership,
      start: async (signal) => {
        this.push(`start ${name}`);
        if (fail !== undefined) {
          await fail;
          this.push(`fail ${name}`);
          throw new Error(`${name} broke`);
        }
        await aborted(signal);
        this.push(`abort ${name}`);
        await new Promise((r) => setImmediate(r));
        this.push(`end ${name}`);
      },
    };
  }

  push(e: string): void {
    this.events.push(e);
    for (const w of this.waiters.filter((x) => x.until())) {
      this.waiters.splice(this.waiters.indexOf(w), 1);
      w.resolve();
    }
  }

  /** Resolves once `e` was recorded. */
  seen(e: string): Promise<void> {
    if (this.events.includes(e)) return Promise.resolve();
    const d = deferred();
    this.waiters.push({ until: () => this.events.includes(e), resolve: d.resolve });
    return d.promise;
  }
}

/** A lock the test grants and takes away. */
class FakeLock implements LeadershipLock {
  readonly granted = deferred();
  readonly lost = deferred();
  /** Resolves once acquire() was called. */
  readonly campaigning = deferred();
  released = false;
  describe(): string {
    return "fake";
  }
  async acquire(signal: AbortSignal): Promise<boolean> {
    this.campaigning.resolve();
    await Promise.race([this.granted.promise, aborted(signal)]);
    return !signal.aborted;
  }
  async hold(signal: AbortSignal): Promise<ElectionOutcome> {
    const lost = this.lost.promise.then(() => "lost" as const);
    return Promise.race([lost, aborted(signal).then(() => "stopped" as const)]);
  }
  release(): Promise<void> {
    this.released = true;
    return Promise.resolve();
  }
}

function election(
  lock: FakeLock,
  leading: boolean[],
): { lock: FakeLock; hooks: { identity: string; logger: ReturnType<typeof silentLogger>; onLeaderChange: (v: boolean) => void } } {
  return {
    lock,
    hooks: {
      identity: "me",
      logger: silentLogger(),
      onLeaderChange: (v) => {
        leading.push(v);
      },
    },
  };
}

describe("Manager", () => {
  it("without an election starts everything in order (non-leader first) and stops in reverse, awaiting each", async () => {
    const rec = new Recorder();
    const m = new Manager({ logger: silentLogger() });
    m.add(rec.runnable("source", true), rec.runnable("http", false), rec.runnable("controller", true));
    const stop = new AbortController();
    const done = m.run(stop.signal);
    await rec.seen("start controller");
    assert.deepEqual(rec.events, ["start http", "start source", "start controller"]);
    stop.abort();
    assert.equal(await done, "stopped");
    assert.deepEqual(rec.events.slice(3), ["abort controller", "end controller", "abort source", "end source", "abort http", "end http"]);
  });

  it("starts leader runnables only once the lock is held, and releases it after they stopped", async () => {
    const rec = new Recorder();
    const lock = new FakeLock();
    const leading: boolean[] = [];
    const m = new Manager({ logger: silentLogger(), election: election(lock, leading) });
    m.add(rec.runnable("http", false), rec.runnable("source", true), rec.runnable("controller", true));
    const stop = new AbortController();
    const done = m.run(stop.signal);
    await Promise.all([rec.seen("start http"), lock.campaigning.promise]);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(rec.events, ["start http"], "nothing that needs leadership runs before the lock is held");
    lock.granted.resolve();
    await rec.seen("start controller");
    assert.deepEqual(rec.events, ["start http", "start source", "start controller"]);
    assert.deepEqual(leading, [true]);
    stop.abort();
    assert.equal(await done, "stopped");
    assert.deepEqual(rec.events.slice(3), ["abort controller", "end controller", "abort source", "end source", "abort http", "end http"]);
    assert.equal(lock.released, true);
    assert.deepEqual(leading, [true, false]);
  });

  it("a stop while campaigning starts no leader runnable", async () => {
    const rec = new Recorder();
    const lock = new FakeLock();
    const m = new Manager({ logger: silentLogger(), election: election(lock, []) });
    m.add(rec.runnable("http", false), rec.runnable("controller", true));
    const stop = new AbortController();
    const done = m.run(stop.signal);
    await rec.seen("start http");
    stop.abort();
    assert.equal(await done, "stopped");
    assert.deepEqual(rec.events, ["start http", "abort http", "end http"]);
    assert.equal(lock.released, false);
  });

  it("aborts every leader runnable at once when the lock is lost and resolves lost", async () => {
    const rec = new Recorder();
    const lock = new FakeLock();
    const leading: boolean[] = [];
    const m = new Manager({ logger: silentLogger(), election: election(lock, leading) });
    m.add(rec.runnable("http", false), rec.runnable("source", true), rec.runnable("controller", true));
    const done = m.run(new AbortController().signal);
    lock.granted.resolve();
    await rec.seen("start controller");
    lock.lost.resolve();
    assert.equal(await done, "lost");
    // Both leader runnables were aborted before either finished stopping (an ordered stop would end one first).
    await Promise.all([rec.seen("end source"), rec.seen("end controller")]);
    const at = (e: string): number => rec.events.indexOf(e);
    assert.ok(at("abort source") < at("end controller") && at("abort controller") < at("end source"), rec.events.join(", "));
    assert.ok(rec.events.includes("end http"), "the runnables that need no leadership were stopped");
    assert.equal(lock.released, false, "a lost lock is not released");
    assert.deepEqual(leading, [true, false]);
  });

  it("a failing runnable stops the manager in order and resolves failed", async () => {
    const rec = new Recorder();
    const breakIt = deferred();
    const m = new Manager({ logger: silentLogger() });
    m.add(rec.runnable("http", false), rec.runnable("source", true), rec.runnable("watcher", true, breakIt.promise), rec.runnable("controller", true));
    const done = m.run(new AbortController().signal);
    await rec.seen("start controller");
    breakIt.resolve();
    assert.equal(await done, "failed");
    assert.deepEqual(rec.events.slice(4), ["fail watcher", "abort controller", "end controller", "abort source", "end source", "abort http", "end http"]);
  });

  it("refuses runnables added after run()", async () => {
    const m = new Manager({ logger: silentLogger() });
    const stop = new AbortController();
    stop.abort();
    const done = m.run(stop.signal);
    assert.throws(() => {
      m.add(new Recorder().runnable("late", false));
    }, /before run/);
    assert.equal(await done, "stopped");
  });
});

describe("controllerRunnable", () => {
  it("runs `before` ahead of any reconcile, then the workers; a stop shuts the queue down after the in-flight reconcile", async () => {
    const events: string[] = [];
    const queue = new WorkQueue({ name: "q", backoff: { baseMs: 10, maxMs: 100 } });
    queue.add("k1");
    const adopted = deferred();
    const inFlight = deferred();
    const release = deferred();
    const r = controllerRunnable(
      {
        name: "q",
        queue,
        workers: 1,
        logger: silentLogger(),
        reconciler: {
          reconcile: async (key) => {
            events.push(`reconcile ${key}`);
            inFlight.resolve();
            await release.promise;
            events.push(`done ${key}`);
            return {};
          },
        },
      },
      async () => {
        events.push("before");
        await adopted.promise;
      },
    );
    assert.equal(r.needsLeadership, true);
    const stop = new AbortController();
    const run = r.start(stop.signal);
    await new Promise((res) => setImmediate(res));
    assert.deepEqual(events, ["before"], "no reconcile before `before` finished");
    adopted.resolve();
    await inFlight.promise;
    stop.abort();
    await new Promise((res) => setImmediate(res));
    queue.add("k2"); // after the stop: the queue is shut down and takes nothing
    release.resolve();
    await run;
    assert.deepEqual(events, ["before", "reconcile k1", "done k1"], "the in-flight reconcile finished; nothing was taken after the stop");
  });
});
