import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { afterDeferral, afterReload, INITIAL_PACER, reloadDelayMs, type PacerState, type ReloadPacing } from "../../src/actuators/lb/reloadPacer.js";

/**
 * Replays `changes` (clock values, ms) the way the renderer does: a change
 * reloads at once when the pacer allows it, else one reload happens when the
 * delay ends and carries every change that arrived meanwhile. Returns the
 * reload times.
 */
function replay(changes: readonly number[], pacing: ReloadPacing, removals: ReadonlySet<number> = new Set()): number[] {
  let state: PacerState = INITIAL_PACER;
  const reloads: number[] = [];
  let due: number | undefined;
  const reload = (t: number): void => {
    reloads.push(t);
    state = afterReload(state, t, pacing);
  };
  for (const t of changes) {
    if (due !== undefined && due <= t) {
      reload(due);
      const carried = due === t; // the deferred reload renders the state of that moment, this change included
      due = undefined;
      if (carried) continue;
    }
    const wait = reloadDelayMs(state, t, pacing, removals.has(t));
    if (wait > 0) state = afterDeferral(state, removals.has(t));
    if (due !== undefined && t + wait >= due) continue; // a deferred reload will carry this change
    if (wait === 0) {
      reload(t);
      due = undefined; // that reload carried what was deferred too
    } else due = t + wait;
  }
  if (due !== undefined) reload(due);
  return reloads;
}

/** A change every `every` ms from `from` to `to` (inclusive). */
const burst = (from: number, to: number, every: number): number[] => Array.from({ length: Math.floor((to - from) / every) + 1 }, (_, i) => from + i * every);

const P: ReloadPacing = { minMs: 1000, maxMs: 4000 };

describe("reload pacing", () => {
  it("the first change reloads at once", () => {
    assert.equal(reloadDelayMs(INITIAL_PACER, 123, P), 0);
    assert.equal(reloadDelayMs(INITIAL_PACER, 123, P, true), 0);
    assert.deepEqual(replay([5000], P), [5000]);
  });

  it("spaces reloads of a burst 1, 4, 4 s apart: a burst shorter than 5 s costs 3 reloads", () => {
    assert.deepEqual(replay(burst(0, 2900, 50), P), [0, 1000, 5000]);
    assert.deepEqual(replay(burst(0, 4950, 50), P), [0, 1000, 5000]);
    assert.deepEqual(replay(burst(0, 12_000, 50), P), [0, 1000, 5000, 9000, 13_000]);
  });

  it("with max = min it is the constant --min-reload-interval spacing", () => {
    assert.deepEqual(replay(burst(0, 4000, 50), { minMs: 1000, maxMs: 1000 }), [0, 1000, 2000, 3000, 4000]);
    assert.deepEqual(replay(burst(0, 4000, 50), { minMs: 1000, maxMs: 10 }), [0, 1000, 2000, 3000, 4000], "max below min counts as min");
  });

  it("a quiet period resets the gap: the next burst starts at min again, its first change at once", () => {
    const first = burst(0, 2900, 50); // reloads 0, 1000, 5000 -> gap now 4000
    const later = burst(20_000, 21_500, 50);
    assert.deepEqual(replay([...first, ...later], P), [0, 1000, 5000, 20_000, 21_000, 25_000]);
  });

  it("a change after a pause longer than the gap is not delayed, even mid-burst", () => {
    // reloads at 0 and 1000 (gap now 4000); a lone change at 9500 is 8500 after the last reload.
    assert.deepEqual(replay([0, 500, 9500], P), [0, 1000, 9500]);
    // within the gap it waits for it: 0, 1000, then a change at 3000 waits until 5000.
    assert.deepEqual(replay([0, 500, 3000], P), [0, 1000, 5000]);
  });

  it("the gap is max after a reload that ended a wait, min after one that went at once; min 0 disables pacing", () => {
    const pacing = { minMs: 500, maxMs: 3000 };
    const atOnce = { lastReloadAt: 0, gapMs: 500, additionWaiting: false };
    assert.deepEqual(afterReload(atOnce, 100, pacing), { lastReloadAt: 100, gapMs: 500, additionWaiting: false });
    const waited = afterDeferral(atOnce, false);
    assert.equal(waited.additionWaiting, true);
    assert.deepEqual(afterReload(waited, 100, pacing), { lastReloadAt: 100, gapMs: 3000, additionWaiting: false });
    assert.equal(afterDeferral(atOnce, true).additionWaiting, false, "a waiting removal does not start a burst");
    assert.equal(afterReload(waited, 100, { minMs: 500, maxMs: 10 }).gapMs, 500, "max below min counts as min");
    assert.deepEqual(replay([0, 10, 20], { minMs: 0, maxMs: 4000 }), [0, 10, 20]);
  });

  it("changes seconds apart (a stop, then the next start) never wait for the long gap", () => {
    // add, remove 2 s later, add 0.6 s after that, ...: each addition waits for min after the removal's
    // reload (which went at once and so reset the gap), never for the 4 s gap.
    const adds = [0, 2600, 5600, 8600];
    const removals = [2000, 5000, 8000];
    assert.deepEqual(
      replay(
        [...adds, ...removals].sort((a, b) => a - b),
        P,
        new Set(removals),
      ),
      [0, 2000, 3000, 5000, 6000, 8000, 9000],
    );
    // A removal that had to wait for min (it came 900 ms after an addition's reload) does not start a
    // burst either: the start 600 ms after it waits for min, not for 4 s.
    assert.deepEqual(replay([0, 900, 2100], P, new Set([900])), [0, 1000, 2100]);
    // An addition that waited still makes one: here the removal's reload at 2000 carries the addition
    // of 1700 (rendering is level-based), so the next addition waits for 2000 + 4000.
    assert.deepEqual(replay([0, 500, 1100, 1700, 2500], P, new Set([1100])), [0, 1000, 2000, 6000]);
  });

  it("a removal waits at most min after the last reload, never the burst's long gap; additions keep the long gap", () => {
    // Additions every 50 ms until 2900 ms: reloads at 0, 1000, 5000. A removal at 2000 reloads at 2000
    // (1000 after the last reload) instead of waiting for 5000; later additions then wait for 2000 + 4000.
    const changes = [...burst(0, 2900, 50)];
    assert.deepEqual(replay(changes, P, new Set([2000])), [0, 1000, 2000, 6000]);
    // A removal right after a reload waits min, not the gap.
    const s = afterReload(afterDeferral(afterReload(INITIAL_PACER, 0, P), false), 1000, P); // a burst's second reload: gap now 4000
    assert.equal(s.gapMs, 4000);
    assert.equal(reloadDelayMs(s, 1200, P, true), 800);
    assert.equal(reloadDelayMs(s, 1200, P, false), 3800);
    assert.equal(reloadDelayMs(s, 2500, P, true), 0);
    // Constant spacing: a removal is not faster than the gap already is.
    const c = afterReload(INITIAL_PACER, 0, { minMs: 1000, maxMs: 1000 });
    assert.equal(reloadDelayMs(c, 200, { minMs: 1000, maxMs: 1000 }, true), 800);
  });
});
