import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { WorkQueue, type QueueObserver } from "../../src/runtime/workqueue.js";

const BACKOFF = { baseMs: 100, maxMs: 1000 };

function queue(observer?: QueueObserver): WorkQueue {
  return new WorkQueue({ name: "test", backoff: BACKOFF, ...(observer !== undefined ? { observer } : {}) });
}

/** Fake setTimeout/Date for this test only (restored automatically when the test ends). */
function fakeTime(t: TestContext): void {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 });
}

/** Lets every pending promise continuation run (setImmediate is not faked). */
function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Tracks whether a promise has settled, without awaiting it. */
function track<T>(p: Promise<T>): { settled: boolean; value: T | undefined } {
  const state: { settled: boolean; value: T | undefined } = { settled: false, value: undefined };
  void p.then((v) => {
    state.settled = true;
    state.value = v;
  });
  return state;
}

describe("WorkQueue: add/get/done", () => {
  it("hands out keys in FIFO order", async () => {
    const q = queue();
    q.add("a");
    q.add("b");
    q.add("c");
    assert.equal(await q.get(), "a");
    assert.equal(await q.get(), "b");
    assert.equal(await q.get(), "c");
  });

  it("dedups a key added several times while it waits", async () => {
    const q = queue();
    q.add("a");
    q.add("b");
    q.add("a");
    q.add("a");
    assert.equal(q.len(), 2);
    assert.equal(await q.get(), "a");
    assert.equal(await q.get(), "b");
    assert.equal(q.len(), 0);
  });

  it("a key that was processed and done can be queued again", async () => {
    const q = queue();
    q.add("a");
    assert.equal(await q.get(), "a");
    q.done("a");
    q.add("a");
    assert.equal(q.len(), 1);
    assert.equal(await q.get(), "a");
  });

  it("get() waits for the next add()", async () => {
    const q = queue();
    const pending = track(q.get());
    await flush();
    assert.equal(pending.settled, false);
    q.add("x");
    await flush();
    assert.equal(pending.settled, true);
    assert.equal(pending.value, "x");
    assert.equal(q.len(), 0, "a key handed to a waiting get() is not also queued");
  });

  it("waiting get() calls are served in order, one key each", async () => {
    const q = queue();
    const first = q.get();
    const second = q.get();
    q.add("a");
    q.add("b");
    assert.equal(await first, "a");
    assert.equal(await second, "b");
  });
});

describe("WorkQueue: a key being processed is never handed out twice", () => {
  it("re-adding a key while it is processed does not queue it", async () => {
    const q = queue();
    q.add("a");
    assert.equal(await q.get(), "a");
    q.add("a");
    assert.equal(q.len(), 0);
    const second = track(q.get());
    await flush();
    assert.equal(second.settled, false, "the processing key must not go to a second worker");
  });

  it("a key marked dirty while processing is re-queued on done()", async () => {
    const q = queue();
    q.add("a");
    assert.equal(await q.get(), "a");
    q.add("a");
    const second = track(q.get());
    q.done("a");
    await flush();
    assert.equal(second.settled, true);
    assert.equal(second.value, "a");
  });

  it("several re-adds while processing requeue the key once", async () => {
    const q = queue();
    q.add("a");
    await q.get();
    q.add("a");
    q.add("a");
    q.add("a");
    q.done("a");
    assert.equal(q.len(), 1);
    assert.equal(await q.get(), "a");
    q.done("a");
    assert.equal(q.len(), 0);
    assert.equal(q.idle(), true);
  });

  it("done() without a re-add does not requeue", async () => {
    const q = queue();
    q.add("a");
    await q.get();
    q.done("a");
    assert.equal(q.len(), 0);
    assert.equal(q.idle(), true);
  });

  it("other keys are handed out while one is processing", async () => {
    const q = queue();
    q.add("a");
    await q.get();
    q.add("a");
    q.add("b");
    assert.equal(await q.get(), "b", "a is processing, b is free");
  });
});

describe("WorkQueue: addAfter", () => {
  it("queues the key only once the delay elapsed", (t) => {
    fakeTime(t);
    const q = queue();
    q.addAfter("a", 100);
    assert.equal(q.len(), 0);
    t.mock.timers.tick(99);
    assert.equal(q.len(), 0);
    t.mock.timers.tick(1);
    assert.equal(q.len(), 1);
  });

  it("a non-positive delay queues immediately", (t) => {
    fakeTime(t);
    const q = queue();
    q.addAfter("a", 0);
    q.addAfter("b", -5);
    assert.equal(q.len(), 2);
  });

  it("an earlier deadline replaces a later pending one", async (t) => {
    fakeTime(t);
    const q = queue();
    q.addAfter("a", 500);
    q.addAfter("a", 100);
    t.mock.timers.tick(100);
    assert.equal(q.len(), 1);
    assert.equal(await q.get(), "a");
    q.done("a");
    t.mock.timers.tick(1000);
    assert.equal(q.len(), 0, "the replaced 500 ms timer must not fire");
    assert.equal(q.idle(), true);
  });

  it("a later deadline does not postpone an earlier pending one", async (t) => {
    fakeTime(t);
    const q = queue();
    q.addAfter("a", 100);
    q.addAfter("a", 500);
    t.mock.timers.tick(100);
    assert.equal(q.len(), 1);
    assert.equal(await q.get(), "a");
    q.done("a");
    t.mock.timers.tick(1000);
    assert.equal(q.len(), 0, "the later request is absorbed by the earlier timer");
  });

  it("deadlines are per key", (t) => {
    fakeTime(t);
    const q = queue();
    q.addAfter("a", 100);
    q.addAfter("b", 200);
    t.mock.timers.tick(100);
    assert.equal(q.len(), 1);
    t.mock.timers.tick(100);
    assert.equal(q.len(), 2);
  });

  it("a delayed key that fires while the key is processing is requeued on done()", async (t) => {
    fakeTime(t);
    const q = queue();
    q.add("a");
    await q.get();
    q.addAfter("a", 50);
    t.mock.timers.tick(50);
    assert.equal(q.len(), 0, "still processing");
    q.done("a");
    assert.equal(q.len(), 1);
  });
});

describe("WorkQueue: addRateLimited / forget", () => {
  it("backs off exponentially per key, capped at maxMs", (t) => {
    fakeTime(t);
    const q = queue();
    const delays = [1, 2, 3, 4, 5].map(() => q.addRateLimited("a"));
    assert.deepEqual(delays, [100, 200, 400, 800, 1000]);
    assert.equal(q.numRequeues("a"), 5);
    assert.equal(q.addRateLimited("b"), 100, "another key has its own failure count");
    assert.equal(q.numRequeues("b"), 1);
  });

  it("schedules the key after the returned delay", (t) => {
    fakeTime(t);
    const q = queue();
    const delay = q.addRateLimited("a");
    t.mock.timers.tick(delay - 1);
    assert.equal(q.len(), 0);
    t.mock.timers.tick(1);
    assert.equal(q.len(), 1);
  });

  it("forget() resets the key's backoff", (t) => {
    fakeTime(t);
    const q = queue();
    q.addRateLimited("a");
    q.addRateLimited("a");
    q.addRateLimited("a");
    q.forget("a");
    assert.equal(q.numRequeues("a"), 0);
    assert.equal(q.addRateLimited("a"), 100);
  });

  it("forget() leaves other keys' backoff alone", (t) => {
    fakeTime(t);
    const q = queue();
    q.addRateLimited("a");
    q.addRateLimited("b");
    q.addRateLimited("b");
    q.forget("a");
    assert.equal(q.numRequeues("b"), 2);
    assert.equal(q.addRateLimited("b"), 400);
  });
});

describe("WorkQueue: shutDown", () => {
  it("resolves pending get() calls with undefined", async () => {
    const q = queue();
    const a = q.get();
    const b = q.get();
    q.shutDown();
    assert.equal(await a, undefined);
    assert.equal(await b, undefined);
  });

  it("get() after shutDown on an empty queue resolves undefined", async () => {
    const q = queue();
    q.shutDown();
    assert.equal(await q.get(), undefined);
  });

  it("ignores add/addAfter after shutDown", (t) => {
    fakeTime(t);
    const q = queue();
    q.shutDown();
    q.add("a");
    q.addAfter("b", 10);
    t.mock.timers.tick(10);
    assert.equal(q.len(), 0);
    assert.equal(q.idle(), true);
  });

  it("cancels scheduled keys", (t) => {
    fakeTime(t);
    const q = queue();
    q.addAfter("a", 100);
    q.addRateLimited("b");
    assert.equal(q.idle(), false);
    q.shutDown();
    assert.equal(q.idle(), true);
    t.mock.timers.tick(10_000);
    assert.equal(q.len(), 0);
  });
});

describe("WorkQueue: idle", () => {
  it("is true only when nothing is queued, processing or scheduled", async (t) => {
    fakeTime(t);
    const q = queue();
    assert.equal(q.idle(), true);
    q.add("a");
    assert.equal(q.idle(), false, "queued");
    await q.get();
    assert.equal(q.idle(), false, "processing");
    q.done("a");
    assert.equal(q.idle(), true);
    q.addAfter("a", 100);
    assert.equal(q.idle(), false, "scheduled");
    t.mock.timers.tick(100);
    assert.equal(q.idle(), false, "queued after the timer fired");
    await q.get();
    q.done("a");
    assert.equal(q.idle(), true);
  });
});

describe("WorkQueue: observer", () => {
  it("reports adds, depth, latency, work duration and retries", async (t) => {
    fakeTime(t);
    const events: string[] = [];
    const latencies: number[] = [];
    const durations: number[] = [];
    const q = queue({
      onAdd: (name) => events.push(`add:${name}`),
      onDepth: (_name, depth) => events.push(`depth:${depth}`),
      onQueueLatency: (_name, s) => latencies.push(s),
      onWorkDuration: (_name, s) => durations.push(s),
      onRetry: () => events.push("retry"),
    });
    q.add("a");
    q.add("a"); // deduped: no second onAdd
    assert.deepEqual(events, ["add:test", "depth:1"]);
    await q.get();
    assert.deepEqual(events, ["add:test", "depth:1", "depth:0"]);
    assert.equal(latencies.length, 1);
    assert.ok((latencies[0] ?? -1) >= 0);
    q.done("a");
    assert.equal(durations.length, 1);
    assert.ok((durations[0] ?? -1) >= 0);
    q.addRateLimited("a");
    assert.equal(events.at(-1), "retry");
  });
});

describe("WorkQueue: priorities", () => {
  it("hands out every high key before any low key, whatever the order of adds", async () => {
    const q = queue();
    for (const k of ["r1", "r2", "r3"]) q.add(k, "low");
    q.add("e1");
    q.add("r4", "low");
    q.add("e2", "high");
    const got: string[] = [];
    for (let i = 0; i < 6; i++) {
      const k = await q.get();
      if (k === undefined) break;
      got.push(k);
      q.done(k);
    }
    assert.deepEqual(got, ["e1", "e2", "r1", "r2", "r3", "r4"]);
    assert.equal(q.idle(), true);
  });

  it("a waiting low key added high is promoted and handed out once", async () => {
    const q = queue();
    q.add("a", "low");
    q.add("b", "low");
    assert.equal(q.len(), 2);
    q.add("b", "high");
    assert.equal(q.len(), 2, "a promoted key is counted once");
    assert.equal(await q.get(), "b", "the promoted key is handed out before the low one");
    q.done("b");
    assert.equal(await q.get(), "a");
    assert.equal(q.len(), 0, "a taken key no longer waits");
    q.done("a");
    assert.equal(q.len(), 0);
    assert.equal(q.idle(), true, "the stale low entry of b is never handed out");
  });

  it("adding a waiting high key low keeps it high", async () => {
    const q = queue();
    q.add("r", "low");
    q.add("e");
    q.add("e", "low");
    assert.equal(await q.get(), "e");
  });

  it("a low key re-added while processing is queued again after done, still low", async () => {
    const q = queue();
    q.add("r", "low");
    assert.equal(await q.get(), "r");
    q.add("r", "low");
    q.add("e");
    q.done("r");
    assert.equal(await q.get(), "e");
    q.done("e");
    assert.equal(await q.get(), "r");
    q.done("r");
    assert.equal(q.idle(), true);
  });
});
