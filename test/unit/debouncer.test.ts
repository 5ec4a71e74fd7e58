import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { Debouncer } from "../../src/runtime/debouncer.js";

function setup(t: TestContext, minMs: number, maxMs: number): { d: Debouncer; fired: { key: string; at: number }[] } {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
  const fired: { key: string; at: number }[] = [];
  const d = new Debouncer(minMs, maxMs, (key) => fired.push({ key, at: Date.now() }));
  return { d, fired };
}

const times = (fired: readonly { at: number }[]): number[] => fired.map((f) => f.at);

describe("Debouncer", () => {
  it("fires minMs after a single trigger", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    d.trigger("a");
    t.mock.timers.tick(99);
    assert.deepEqual(fired, []);
    t.mock.timers.tick(1);
    assert.deepEqual(fired, [{ key: "a", at: 100 }]);
  });

  it("waits for minMs of quiescence after the last trigger, and fires once for a burst", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    for (let i = 0; i < 5; i++) {
      d.trigger("a");
      t.mock.timers.tick(10);
    }
    t.mock.timers.tick(89);
    assert.deepEqual(fired, [], "a new trigger restarts the quiet period");
    t.mock.timers.tick(1);
    t.mock.timers.tick(1000);
    assert.deepEqual(times(fired), [140]);
  });

  it("never fires later than maxMs after the first trigger of a burst, and fires at least minMs apart", (t) => {
    const { d, fired } = setup(t, 100, 250);
    // A trigger every 60 ms would postpone a min-only debouncer forever.
    // Tick 1 ms at a time: mock tick() reports the end of the tick as Date.now().
    for (let now = 0; now < 1000; now++) {
      if (now % 60 === 0) d.trigger("a", now % 120 === 0);
      t.mock.timers.tick(1);
    }
    assert.ok(fired.length >= 3, JSON.stringify(fired));
    assert.deepEqual(fired[0], { key: "a", at: 0 }, "urgent on a quiet key: at once");
    assert.deepEqual(fired[1], { key: "a", at: 310 }, "the next trigger (60) waits at most maxMs");
    for (let i = 1; i < fired.length; i++) assert.ok((fired[i]?.at ?? 0) - (fired[i - 1]?.at ?? 0) >= 100, JSON.stringify(fired));
  });

  it("an urgent trigger on a quiet key fires at once; one within minMs of a fire is collected", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    d.trigger("a", true);
    assert.deepEqual(times(fired), [0]);
    t.mock.timers.tick(40);
    d.trigger("a", true);
    t.mock.timers.tick(99);
    assert.deepEqual(times(fired), [0]);
    t.mock.timers.tick(1);
    assert.deepEqual(times(fired), [0, 140]);
    t.mock.timers.tick(100); // the window after that fire closes quiet
    d.trigger("a", true);
    assert.deepEqual(times(fired), [0, 140, 240]);
  });

  it("an urgent trigger while a plain one waits joins it (no earlier fire)", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    d.trigger("a");
    t.mock.timers.tick(50);
    d.trigger("a", true);
    t.mock.timers.tick(99);
    assert.deepEqual(fired, []);
    t.mock.timers.tick(1);
    assert.deepEqual(times(fired), [150]);
  });

  it("a plain trigger right after a fire waits minMs like any other", (t) => {
    const { d, fired } = setup(t, 100, 250);
    d.trigger("a");
    t.mock.timers.tick(100);
    assert.equal(fired.length, 1);
    t.mock.timers.tick(400); // now = 500
    d.trigger("a");
    t.mock.timers.tick(60);
    d.trigger("a"); // 560: a fresh burst and a fresh max window
    t.mock.timers.tick(99);
    assert.equal(fired.length, 1);
    t.mock.timers.tick(1);
    assert.deepEqual(fired[1], { key: "a", at: 660 });
  });

  it("debounces keys independently", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    d.trigger("a");
    t.mock.timers.tick(50);
    d.trigger("b");
    t.mock.timers.tick(50);
    assert.deepEqual(fired, [{ key: "a", at: 100 }]);
    t.mock.timers.tick(50);
    assert.deepEqual(fired, [
      { key: "a", at: 100 },
      { key: "b", at: 150 },
    ]);
  });

  it("cancel() drops a pending key only", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    d.trigger("a");
    d.trigger("b");
    d.cancel("a");
    t.mock.timers.tick(100);
    t.mock.timers.tick(1000);
    assert.deepEqual(
      fired.map((f) => f.key),
      ["b"],
    );
  });

  it("stop() drops every pending key", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    d.trigger("a");
    d.trigger("b");
    d.stop();
    t.mock.timers.tick(1000);
    assert.deepEqual(fired, []);
  });

  it("min 0 fires on the next timer turn", (t) => {
    const { d, fired } = setup(t, 0, 0);
    d.trigger("a");
    assert.deepEqual(fired, []);
    t.mock.timers.tick(0);
    assert.deepEqual(fired, [{ key: "a", at: 0 }]);
  });
});
