/**
 * The soak's "upward trend beyond noise" criterion (test/support/trend.ts) on
 * synthetic series shaped like the samples of a 5-minute soak (10 s apart,
 * 4 minutes after warm-up): noise, a GC sawtooth and a one-time step pass;
 * steady growth of a leak fails.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fitTrend, judgeTrend, t975, type Point } from "../support/trend.js";

const MB = 1024 * 1024;

/** Deterministic uniform [-1, 1) (mulberry32). */
function noise(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

function series(seconds: number, f: (t: number) => number): Point[] {
  const out: Point[] = [];
  for (let t = 60; t <= 60 + seconds; t += 10) out.push({ t, v: f(t) });
  return out;
}

describe("trend fit", () => {
  it("recovers an exact slope with a zero-width interval", () => {
    const fit = fitTrend(series(240, (t) => 5 + 2 * t));
    assert.ok(Math.abs(fit.slopePerHour - 7200) < 1e-6);
    assert.ok(Math.abs(fit.ciLowPerHour - 7200) < 1e-6 && Math.abs(fit.ciHighPerHour - 7200) < 1e-6);
  });

  it("t quantiles: table and expansion agree at the seam", () => {
    assert.equal(t975(1), 12.706);
    assert.equal(t975(30), 2.042);
    assert.ok(Math.abs(t975(31) - 2.04) < 0.002);
    assert.ok(Math.abs(t975(1000) - 1.962) < 0.002);
  });

  it("noise and a GC sawtooth are not a trend", () => {
    for (let seed = 1; seed <= 50; seed++) {
      const r = noise(seed);
      const phase = seed * 7;
      // Heap: 30 MB rising 20 MB over each 70 s, then collected, plus ±2 MB jitter.
      const heap = series(240, (t) => 30 * MB + (((t + phase) % 70) / 70) * 20 * MB + 2 * MB * r());
      assert.equal(judgeTrend(heap, 4 * MB).growing, false, `heap sawtooth, seed ${seed}`);
      const rss = series(240, () => 120 * MB + 3 * MB * r());
      assert.equal(judgeTrend(rss, 8 * MB).growing, false, `rss noise, seed ${seed}`);
    }
  });

  it("a one-time step smaller than the allowance is not a trend", () => {
    const fds = series(240, (t) => (t < 180 ? 21 : 24));
    const v = judgeTrend(fds, 5);
    assert.equal(v.growing, false, JSON.stringify(v));
  });

  it("a leak is: 1 fd per 6 s, 60 MB/h of RSS under noise, 40 MB/h of heap under a sawtooth", () => {
    assert.equal(
      judgeTrend(
        series(240, (t) => 21 + Math.floor(t / 6)),
        5,
      ).growing,
      true,
      "fd leak",
    );
    for (let seed = 1; seed <= 20; seed++) {
      const r = noise(seed);
      const rss = series(240, (t) => 120 * MB + (60 * MB * t) / 3600 + 1 * MB * r());
      assert.equal(judgeTrend(rss, 1 * MB).growing, true, `rss leak, seed ${seed}`);
    }
    // Over an hour (360 samples) a slower leak under the same sawtooth shows.
    const r = noise(99);
    const heap: Point[] = [];
    for (let t = 600; t <= 3600; t += 10) heap.push({ t, v: 30 * MB + ((t % 70) / 70) * 20 * MB + 2 * MB * r() + (40 * MB * t) / 3600 });
    const v = judgeTrend(heap, 8 * MB);
    assert.equal(v.growing, true, JSON.stringify(v.fit));
  });
});
