import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelay, isAborted, sleep } from "../../src/runtime/backoff.js";

function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe("backoffDelay", () => {
  it("doubles from baseMs for each failure", () => {
    const opts = { baseMs: 50, maxMs: 1_000_000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((n) => backoffDelay(n, opts)),
      [50, 100, 200, 400, 800],
    );
  });

  it("is capped at maxMs", () => {
    const opts = { baseMs: 100, maxMs: 1000 };
    assert.equal(backoffDelay(3, opts), 800);
    assert.equal(backoffDelay(4, opts), 1000);
    assert.equal(backoffDelay(10, opts), 1000);
  });

  it("stays finite for huge failure counts", () => {
    const opts = { baseMs: 1, maxMs: Number.MAX_SAFE_INTEGER };
    const d = backoffDelay(10_000, opts);
    assert.ok(Number.isFinite(d));
    assert.equal(d, 2 ** 30, "the exponent is clamped at 30");
  });

  it("is deterministic (no jitter)", () => {
    const opts = { baseMs: 7, maxMs: 10_000 };
    assert.equal(backoffDelay(5, opts), backoffDelay(5, opts));
    assert.equal(backoffDelay(5, opts), 224);
  });
});

describe("sleep", () => {
  it("resolves after the given delay", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    let done = false;
    void sleep(100).then(() => (done = true));
    t.mock.timers.tick(99);
    await flush();
    assert.equal(done, false);
    t.mock.timers.tick(1);
    await flush();
    assert.equal(done, true);
  });

  it("resolves early when the signal aborts", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const ac = new AbortController();
    let done = false;
    void sleep(60_000, ac.signal).then(() => (done = true));
    await flush();
    assert.equal(done, false);
    ac.abort();
    await flush();
    assert.equal(done, true);
  });

  it("resolves immediately when the signal is already aborted", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    const ac = new AbortController();
    ac.abort();
    let done = false;
    void sleep(60_000, ac.signal).then(() => (done = true));
    await flush();
    assert.equal(done, true);
  });
});

describe("isAborted", () => {
  it("reads the signal's current state", () => {
    const ac = new AbortController();
    assert.equal(isAborted(ac.signal), false);
    ac.abort();
    assert.equal(isAborted(ac.signal), true);
  });
});
