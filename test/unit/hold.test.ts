/**
 * The hold rule (src/domain/hold.ts): a held instance is covered by a fresh
 * instance with the same service ID on any node that is at least as healthy;
 * uncovered ones replace their own node's fresh entry; all covered releases.
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

  it("releases when every held instance is back at least as healthy, on any node", () => {
    const r = mergeHeld(
      [a, b],
      [
        { ...a, node: "n2" },
        { ...b, status: "passing" },
      ],
    );
    assert.equal(r.released, true);
    assert.equal(r.substituted, 0);
    assert.deepEqual(show(r.instances), ["n1/b:passing", "n2/a:passing"]);
  });

  it("substitutes a missing instance and a less healthy one on the held node, keeps other nodes' copies", () => {
    const r = mergeHeld(
      [a, b],
      [
        { ...b, status: "critical" },
        { ...b, node: "n2", status: "critical" },
      ],
    );
    assert.equal(r.released, false);
    assert.equal(r.substituted, 2);
    assert.deepEqual(show(r.instances), ["n1/a:passing", "n1/b:warning", "n2/b:critical"]);
  });

  it("a warning held instance is covered by a fresh warning one; nothing held releases at once", () => {
    assert.equal(mergeHeld([b], [b]).released, true);
    assert.equal(mergeHeld([], []).released, true);
    assert.equal(mergeHeld([a], [{ ...a, status: "warning" }]).released, false);
  });
});
