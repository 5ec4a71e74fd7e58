import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseDurationMs } from "../../src/runtime/duration.js";

describe("parseDurationMs", () => {
  const valid: [string, number][] = [
    ["500ms", 500],
    ["0s", 0],
    ["1s", 1000],
    ["10s", 10_000],
    ["1m", 60_000],
    ["2h", 7_200_000],
    ["1m30s", 90_000],
    ["1h1m1s1ms", 3_661_001],
    ["1.5s", 1500],
    ["0.25m", 15_000],
  ];
  for (const [text, ms] of valid) {
    it(`parses ${text}`, () => {
      assert.equal(parseDurationMs(text), ms);
    });
  }

  const invalid = ["", "10", "s", "ms", "10x", "1d", "10S", " 10s", "10s ", "-1s", "+1s", "1 s", "1s2", ".5s", "1.s", "1e3ms", "10s;"];
  for (const text of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => {
      assert.throws(() => parseDurationMs(text), { message: /invalid duration/ });
    });
  }

  it("names the offending text in the error", () => {
    assert.throws(() => parseDurationMs("5 minutes"), { message: /"5 minutes"/ });
  });
});
