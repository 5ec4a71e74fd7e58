import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { runController, type ReconcileOutcome, type ReconcileResult, type Reconciler } from "../../src/runtime/controller.js";
import { ReconcileError } from "../../src/runtime/errors.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { WorkQueue } from "../../src/runtime/workqueue.js";

interface Outcome {
  readonly controller: string;
  readonly outcome: ReconcileOutcome;
  readonly seconds: number;
  readonly reason: string | undefined;
}

/** Records observer calls and lets a test await a condition on them (no sleeping). */
class Recorder {
  readonly outcomes: Outcome[] = [];
  private waiters: { pred: () => boolean; resolve: () => void }[] = [];

  readonly observer = {
    onReconcile: (controller: string, outcome: ReconcileOutcome, seconds: number, reason?: string): void => {
      this.outcomes.push({ controller, outcome, seconds, reason });
      this.notify();
    },
  };

  notify(): void {
    this.waiters = this.waiters.filter((w) => {
      if (!w.pred()) return true;
      w.resolve();
      return false;
    });
  }

  until(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ pred, resolve }));
  }

  count(n: number): Promise<void> {
    return this.until(() => this.outcomes.length >= n);
  }

  first(): Outcome {
    const o = this.outcomes[0];
    assert.ok(o !== undefined, "no outcome recorded");
    return o;
  }

  kinds(): ReconcileOutcome[] {
    return this.outcomes.map((o) => o.outcome);
  }
}

function fakeTime(t: TestContext): void {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 });
}

function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A reconciler scripted per call: each entry returns a result or throws. */
function scripted(steps: (() => ReconcileResult)[], calls: string[]): Reconciler {
  return {
    reconcile(key: string): Promise<ReconcileResult> {
      const step = steps[calls.length] ?? (() => ({}));
      calls.push(key);
      return Promise.resolve().then(step);
    },
  };
}

/** Starts a controller; `reconciler` may be a factory that gets the queue (to re-add keys or read backoff). */
function start(reconciler: Reconciler | ((queue: WorkQueue) => Reconciler), rec: Recorder, workers = 1, backoff = { baseMs: 100, maxMs: 1000 }) {
  const queue = new WorkQueue({ name: "q", backoff });
  if (typeof reconciler === "function") reconciler = reconciler(queue);
  const done = runController({ name: "ctl", queue, reconciler, workers, logger: silentLogger(), observer: rec.observer });
  return { queue, done };
}

describe("runController", () => {
  it("reconciles a key once, reports success and leaves the queue idle", async () => {
    const rec = new Recorder();
    const calls: string[] = [];
    const { queue, done } = start(scripted([() => ({})], calls), rec);
    queue.add("k");
    await rec.count(1);
    assert.deepEqual(calls, ["k"]);
    assert.equal(rec.first().controller, "ctl");
    assert.equal(rec.first().outcome, "success");
    assert.equal(rec.first().reason, undefined);
    assert.ok(rec.first().seconds >= 0);
    assert.equal(queue.idle(), true);
    queue.shutDown();
    await done;
  });

  it("success forgets the key's backoff", async (t) => {
    fakeTime(t);
    const rec = new Recorder();
    const calls: string[] = [];
    const requeuesSeen: number[] = [];
    const { queue, done } = start(
      (q) =>
        scripted(
          [
            () => {
              requeuesSeen.push(q.numRequeues("k"));
              throw new Error("boom");
            },
            () => {
              requeuesSeen.push(q.numRequeues("k"));
              throw new Error("boom");
            },
            () => {
              requeuesSeen.push(q.numRequeues("k"));
              return {};
            },
          ],
          calls,
        ),
      rec,
    );
    queue.add("k");
    await rec.count(1);
    t.mock.timers.tick(100);
    await rec.count(2);
    t.mock.timers.tick(200);
    await rec.count(3);
    assert.deepEqual(rec.kinds(), ["error", "error", "success"]);
    assert.deepEqual(requeuesSeen, [0, 1, 2], "failures accumulate until the success");
    assert.equal(queue.numRequeues("k"), 0, "success resets the backoff");
    queue.shutDown();
    await done;
  });

  it("requeueAfterMs schedules a re-check after that delay without counting a failure", async (t) => {
    fakeTime(t);
    const rec = new Recorder();
    const calls: string[] = [];
    const { queue, done } = start(scripted([() => ({ requeueAfterMs: 500 }), () => ({})], calls), rec);
    queue.add("k");
    await rec.count(1);
    assert.deepEqual(rec.kinds(), ["requeue"]);
    assert.equal(queue.numRequeues("k"), 0);
    assert.equal(queue.idle(), false, "a re-check is scheduled");
    t.mock.timers.tick(499);
    await flush();
    assert.equal(calls.length, 1, "not before the delay");
    t.mock.timers.tick(1);
    await rec.count(2);
    assert.deepEqual(rec.kinds(), ["requeue", "success"]);
    assert.equal(queue.idle(), true);
    queue.shutDown();
    await done;
  });

  it("recheckAfterMs counts as a success and schedules a follow-up after that delay", async (t) => {
    fakeTime(t);
    const rec = new Recorder();
    const calls: string[] = [];
    const { queue, done } = start(scripted([() => ({ recheckAfterMs: 200 }), () => ({})], calls), rec);
    queue.add("k");
    await rec.count(1);
    assert.deepEqual(rec.kinds(), ["success"]);
    assert.equal(queue.idle(), false, "a follow-up is scheduled");
    t.mock.timers.tick(199);
    await flush();
    assert.equal(calls.length, 1, "not before the delay");
    t.mock.timers.tick(1);
    await rec.count(2);
    assert.deepEqual(rec.kinds(), ["success", "success"]);
    assert.equal(queue.idle(), true);
    queue.shutDown();
    await done;
  });

  it("a retryable error is requeued with per-key exponential backoff and its reason", async (t) => {
    fakeTime(t);
    const rec = new Recorder();
    const calls: string[] = [];
    const unavailable = (): ReconcileResult => {
      throw new ReconcileError("ConsulUnavailable", "connection refused");
    };
    const { queue, done } = start(scripted([unavailable, unavailable, () => ({})], calls), rec);
    queue.add("k");
    await rec.count(1);
    assert.equal(rec.first().outcome, "error");
    assert.equal(rec.first().reason, "ConsulUnavailable");
    assert.equal(queue.numRequeues("k"), 1);
    t.mock.timers.tick(99);
    await flush();
    assert.equal(calls.length, 1, "first retry waits baseMs");
    t.mock.timers.tick(1);
    await rec.count(2);
    t.mock.timers.tick(199);
    await flush();
    assert.equal(calls.length, 2, "second retry waits 2*baseMs");
    t.mock.timers.tick(1);
    await rec.count(3);
    assert.deepEqual(rec.kinds(), ["error", "error", "success"]);
    queue.shutDown();
    await done;
  });

  it("a plain Error is retried with reason InternalError", async (t) => {
    fakeTime(t);
    const rec = new Recorder();
    const { queue, done } = start(
      scripted(
        [
          () => {
            throw new TypeError("bug");
          },
        ],
        [],
      ),
      rec,
    );
    queue.add("k");
    await rec.count(1);
    assert.equal(rec.first().outcome, "error");
    assert.equal(rec.first().reason, "InternalError");
    assert.equal(queue.numRequeues("k"), 1);
    queue.shutDown();
    await done;
  });

  it("a terminal ReconcileError is counted and not retried", async (t) => {
    fakeTime(t);
    const rec = new Recorder();
    const calls: string[] = [];
    const { queue, done } = start(
      scripted(
        [
          () => {
            throw new ReconcileError("InvalidKey", "no such key", true);
          },
        ],
        calls,
      ),
      rec,
    );
    queue.add("k");
    await rec.count(1);
    assert.equal(rec.first().outcome, "terminal");
    assert.equal(rec.first().reason, "InvalidKey");
    assert.equal(queue.numRequeues("k"), 0);
    assert.equal(queue.idle(), true, "nothing scheduled");
    t.mock.timers.tick(60_000);
    await flush();
    assert.deepEqual(calls, ["k"]);
    assert.equal(rec.outcomes.length, 1);
    queue.shutDown();
    await done;
  });

  it("a terminal error after retryable ones also resets the backoff", async (t) => {
    fakeTime(t);
    const rec = new Recorder();
    const { queue, done } = start(
      scripted(
        [
          () => {
            throw new Error("transient");
          },
          () => {
            throw new ReconcileError("Invalid", "bad input", true);
          },
        ],
        [],
      ),
      rec,
    );
    queue.add("k");
    await rec.count(1);
    t.mock.timers.tick(100);
    await rec.count(2);
    assert.deepEqual(rec.kinds(), ["error", "terminal"]);
    assert.equal(queue.numRequeues("k"), 0);
    queue.shutDown();
    await done;
  });

  it("a key re-added during its reconcile is reconciled again afterwards", async () => {
    const rec = new Recorder();
    const calls: string[] = [];
    const { queue, done } = start(
      (q) =>
        scripted(
          [
            () => {
              q.add("k");
              return {};
            },
          ],
          calls,
        ),
      rec,
    );
    queue.add("k");
    await rec.count(2);
    assert.deepEqual(calls, ["k", "k"]);
    queue.shutDown();
    await done;
  });

  it("never runs the same key concurrently, even with 4 workers", async () => {
    const rec = new Recorder();
    const inFlight = new Set<string>();
    const violations: string[] = [];
    let maxParallel = 0;
    const calls = new Map<string, number>();
    const gates: (() => void)[] = [];
    const reconciler: Reconciler = {
      async reconcile(key) {
        if (inFlight.has(key)) violations.push(key);
        inFlight.add(key);
        maxParallel = Math.max(maxParallel, inFlight.size);
        calls.set(key, (calls.get(key) ?? 0) + 1);
        const gate = new Promise<void>((resolve) => gates.push(resolve));
        rec.notify();
        await gate;
        inFlight.delete(key);
        return {};
      },
    };
    const { queue, done } = start(reconciler, rec, 4);
    for (const k of ["a", "b", "c", "d"]) queue.add(k);
    await rec.until(() => inFlight.size === 4);
    // Every key is being processed by some worker; hammer them with re-adds.
    for (let i = 0; i < 5; i++) for (const k of ["a", "b", "c", "d"]) queue.add(k);
    await flush();
    assert.equal(inFlight.size, 4);
    assert.equal(gates.length, 4, "no worker may pick up a key that is in flight");
    // Release the first round; each key is reconciled exactly once more.
    for (const release of gates.splice(0)) release();
    await rec.until(() => gates.length === 4);
    for (const release of gates.splice(0)) release();
    await rec.count(8);
    await flush();
    assert.deepEqual(violations, []);
    assert.equal(maxParallel, 4, "distinct keys do run in parallel");
    assert.deepEqual(Object.fromEntries(calls), { a: 2, b: 2, c: 2, d: 2 });
    assert.equal(queue.idle(), true);
    queue.shutDown();
    await done;
  });

  it("resolves once the queue is shut down and every worker returned", async () => {
    const rec = new Recorder();
    const { queue, done } = start(scripted([], []), rec, 3);
    let finished = false;
    void done.then(() => (finished = true));
    await flush();
    assert.equal(finished, false);
    queue.shutDown();
    await done;
    assert.equal(finished, true);
  });

  it("runs at least one worker when workers is 0", async () => {
    const rec = new Recorder();
    const calls: string[] = [];
    const { queue, done } = start(scripted([], calls), rec, 0);
    queue.add("k");
    await rec.count(1);
    assert.deepEqual(calls, ["k"]);
    queue.shutDown();
    await done;
  });
});
