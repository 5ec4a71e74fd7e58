/**
 * The hold rule (src/domain/hold.ts): a held instance is covered by a fresh
 * instance with the same service ID, at least as healthy, on any node after an
 * agent reset and only on another node after a failover; uncovered ones
 * replace their own node's fresh entry when it is missing or less healthy;
 * all covered releases.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mergeHeld } from "../../src/domain/hold.js";
import type { HealthInstance } from "../../src/domain/types.js";
import { makeInstance } from "../support/fakes.js";

const show = (xs: readonly HealthInstance[]): string[] => xs.map((i) => `${i.node}/${i.serviceId}:${i.status}`).sort();

describe("hold rule", () => {
  const a = makeInstance("a", "passing", { node: "n1" });
  const b = makeInstance("b", "warning", { node: "n1" });

  it("reset: released when every held instance is back at least as healthy, on any node", () => {
    const r = mergeHeld(
      [a, b],
      [
        { ...a, node: "n2" },
        { ...b, status: "passing" },
      ],
      "reset",
    );
    assert.equal(r.released, true);
    assert.deepEqual(show(r.instances), ["n1/b:passing", "n2/a:passing"]);
  });

  it("reset: substitutes a missing and a less healthy instance on the held node, keeps other nodes' copies", () => {
    const r = mergeHeld(
      [a, b],
      [
        { ...b, status: "critical" },
        { ...b, node: "n2", status: "critical" },
      ],
      "reset",
    );
    assert.equal(r.released, false);
    assert.deepEqual(show(r.instances), ["n1/a:passing", "n1/b:warning", "n2/b:critical"]);
  });

  it("failover: the old node's copy, however healthy, never covers; a copy on another node does", () => {
    const stillPassing = mergeHeld([a], [a, { ...a, node: "n2", status: "critical" }], "failover");
    assert.equal(stillPassing.released, false, "serf has not failed the old node yet: not a reason to release");
    assert.deepEqual(show(stillPassing.instances), ["n1/a:passing", "n2/a:critical"]);
    const oldFailed = mergeHeld(
      [a],
      [
        { ...a, status: "critical" },
        { ...a, node: "n2", status: "critical" },
      ],
      "failover",
    );
    assert.deepEqual(show(oldFailed.instances), ["n1/a:passing", "n2/a:critical"]);
    const moved = mergeHeld(
      [a],
      [
        { ...a, status: "critical" },
        { ...a, node: "n2" },
      ],
      "failover",
    );
    assert.equal(moved.released, true);
  });

  it("a warning held instance is covered by a fresh warning one; nothing held releases at once", () => {
    assert.equal(mergeHeld([b], [b], "reset").released, true);
    assert.equal(mergeHeld([], [], "failover").released, true);
    assert.equal(mergeHeld([a], [{ ...a, status: "warning" }], "reset").released, false);
  });
});
