import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Limiter } from "../../src/runtime/limiter.js";

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

describe("Limiter", () => {
  it("runs at most max tasks at once, the others in arrival order as slots free up", async () => {
    const limiter = new Limiter(2);
    const signal = new AbortController().signal;
    const gates = [deferred(), deferred(), deferred(), deferred()];
    const started: number[] = [];
    let running = 0;
    let peak = 0;
    const runs = gates.map((g, i) =>
      limiter.run(signal, async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await g.promise;
        running--;
        return i;
      }),
    );
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1], "two start, two wait");
    gates[1]?.resolve();
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(started, [0, 1, 2], "the first waiting task takes the freed slot");
    for (const g of gates) g.resolve();
    assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3]);
    assert.equal(peak, 2);
  });

  it("a waiting caller whose signal aborts rejects without running, and its place goes to the next", async () => {
    const limiter = new Limiter(1);
    const hold = deferred();
    const first = limiter.run(new AbortController().signal, () => hold.promise);
    const abort = new AbortController();
    let ranAborted = false;
    const aborted = limiter.run(abort.signal, () => {
      ranAborted = true;
      return Promise.resolve();
    });
    let ranThird = false;
    const third = limiter.run(new AbortController().signal, () => {
      ranThird = true;
      return Promise.resolve();
    });
    abort.abort(new Error("stop"));
    await assert.rejects(aborted, /stop/);
    hold.resolve();
    await first;
    await third;
    assert.equal(ranAborted, false, "the aborted task never ran");
    assert.equal(ranThird, true);
  });
});
