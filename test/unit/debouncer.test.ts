import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { Debouncer } from "../../src/runtime/debouncer.js";

function setup(t: TestContext, minMs: number, maxMs: number): { d: Debouncer; fired: { key: string; at: number }[] } {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 0 });
  const fired: { key: string; at: number }[] = [];
  const d = new Debouncer(minMs, maxMs, (key) => fired.push({ key, at: Date.now() }));
  return { d, fired };
}

describe("Debouncer", () => {
  it("a trigger after a quiet period fires at once, and only once", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    d.trigger("a");
    assert.deepEqual(fired, [{ key: "a", at: 0 }]);
    t.mock.timers.tick(1000);
    assert.deepEqual(fired, [{ key: "a", at: 0 }]);
  });

  it("triggers within minMs of a fire are collected until minMs of quiet after the last of them", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    d.trigger("a"); // fires at 0
    t.mock.timers.tick(50);
    d.trigger("a");
    t.mock.timers.tick(50);
    d.trigger("a"); // 100: restarts the quiet period
    t.mock.timers.tick(99);
    assert.equal(fired.length, 1);
    t.mock.timers.tick(1);
    assert.deepEqual(fired, [
      { key: "a", at: 0 },
      { key: "a", at: 200 },
    ]);
  });

  it("a burst fires twice: its first trigger, then the rest together", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    for (let i = 0; i < 5; i++) {
      d.trigger("a");
      t.mock.timers.tick(10);
    }
    t.mock.timers.tick(90); // the last trigger (40) + minMs
    t.mock.timers.tick(1000); // the window after that fire closes quiet
    assert.deepEqual(
      fired.map((f) => f.at),
      [0, 140],
    );
  });

  it("two fires are always at least minMs apart, and a collected trigger waits at most maxMs", (t) => {
    const { d, fired } = setup(t, 100, 250);
    // A trigger every 60 ms would postpone a min-only debouncer forever.
    // Tick 1 ms at a time: mock tick() reports the end of the tick as Date.now().
    for (let now = 0; now < 1000; now++) {
      if (now % 60 === 0) d.trigger("a");
      t.mock.timers.tick(1);
    }
    assert.ok(fired.length >= 3, JSON.stringify(fired));
    assert.deepEqual(fired[0], { key: "a", at: 0 });
    // The first collected trigger (60) fires by 60 + 250.
    assert.deepEqual(fired[1], { key: "a", at: 310 });
    for (let i = 1; i < fired.length; i++) assert.ok((fired[i]?.at ?? 0) - (fired[i - 1]?.at ?? 0) >= 100, JSON.stringify(fired));
  });

  it("a trigger after a fire's window closed quiet fires at once again", (t) => {
    const { d, fired } = setup(t, 100, 250);
    d.trigger("a");
    t.mock.timers.tick(100); // the window closes with nothing collected
    d.trigger("a");
    assert.deepEqual(
      fired.map((f) => f.at),
      [0, 100],
    );
  });

  it("after a collected fire, the next trigger within minMs is collected again (a new window and max)", (t) => {
    const { d, fired } = setup(t, 100, 250);
    d.trigger("a"); // 0
    t.mock.timers.tick(10);
    d.trigger("a"); // collected, fires at 110
    t.mock.timers.tick(100);
    assert.equal(fired.length, 2);
    t.mock.timers.tick(50); // 160: inside the window after the collected fire
    d.trigger("a");
    t.mock.timers.tick(99);
    assert.equal(fired.length, 2);
    t.mock.timers.tick(1);
    assert.deepEqual(
      fired.map((f) => f.at),
      [0, 110, 260],
    );
  });

  it("debounces keys independently", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    d.trigger("a");
    t.mock.timers.tick(50);
    d.trigger("b");
    d.trigger("a");
    t.mock.timers.tick(100);
    assert.deepEqual(fired, [
      { key: "a", at: 0 },
      { key: "b", at: 50 },
      { key: "a", at: 150 },
    ]);
  });

  it("cancel() drops a key's collected triggers only", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    d.trigger("a");
    d.trigger("b");
    d.trigger("a");
    d.trigger("b");
    d.cancel("a");
    t.mock.timers.tick(100);
    t.mock.timers.tick(1000);
    assert.deepEqual(
      fired.map((f) => `${f.key}@${f.at}`),
      ["a@0", "b@0", "b@100"],
    );
  });

  it("stop() drops every collected trigger", (t) => {
    const { d, fired } = setup(t, 100, 1000);
    d.trigger("a");
    d.trigger("a");
    d.stop();
    t.mock.timers.tick(1000);
    assert.deepEqual(fired, [{ key: "a", at: 0 }]);
  });

  it("min 0: every trigger fires at once", (t) => {
    const { d, fired } = setup(t, 0, 0);
    d.trigger("a");
    d.trigger("a");
    assert.equal(fired.length, 1, "the second trigger is collected for the next timer turn");
    t.mock.timers.tick(0);
    assert.equal(fired.length, 2);
  });
});
