import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { matchesSelector } from "../../src/domain/selector.js";
import type { LabelSelector } from "../../src/domain/types.js";

const labels = { app: "web", tier: "frontend", env: "prod" };

describe("matchesSelector: matchLabels", () => {
  it("matches when every label is equal", () => {
    assert.equal(matchesSelector({ matchLabels: { app: "web", tier: "frontend" } }, labels), true);
  });

  it("fails on a different value", () => {
    assert.equal(matchesSelector({ matchLabels: { app: "api" } }, labels), false);
  });

  it("fails on a missing label", () => {
    assert.equal(matchesSelector({ matchLabels: { team: "a" } }, labels), false);
  });

  it("requires all labels (AND)", () => {
    assert.equal(matchesSelector({ matchLabels: { app: "web", tier: "backend" } }, labels), false);
  });

  it("compares values exactly (case, empty string)", () => {
    assert.equal(matchesSelector({ matchLabels: { app: "Web" } }, labels), false);
    assert.equal(matchesSelector({ matchLabels: { flag: "" } }, { flag: "" }), true);
    assert.equal(matchesSelector({ matchLabels: { flag: "" } }, {}), false);
  });

  it("an empty selector matches everything", () => {
    assert.equal(matchesSelector({}, labels), true);
    assert.equal(matchesSelector({ matchLabels: {}, matchExpressions: [] }, {}), true);
  });
});

describe("matchesSelector: matchExpressions", () => {
  const expr = (e: NonNullable<LabelSelector["matchExpressions"]>[number]): LabelSelector => ({ matchExpressions: [e] });

  it("In: the label exists with one of the values", () => {
    assert.equal(matchesSelector(expr({ key: "env", operator: "In", values: ["staging", "prod"] }), labels), true);
    assert.equal(matchesSelector(expr({ key: "env", operator: "In", values: ["staging"] }), labels), false);
    assert.equal(matchesSelector(expr({ key: "missing", operator: "In", values: ["x"] }), labels), false);
  });

  it("In with no values matches nothing", () => {
    assert.equal(matchesSelector(expr({ key: "env", operator: "In" }), labels), false);
  });

  it("NotIn: the label is absent or has none of the values", () => {
    assert.equal(matchesSelector(expr({ key: "env", operator: "NotIn", values: ["staging"] }), labels), true);
    assert.equal(matchesSelector(expr({ key: "env", operator: "NotIn", values: ["prod"] }), labels), false);
    assert.equal(matchesSelector(expr({ key: "missing", operator: "NotIn", values: ["x"] }), labels), true);
    assert.equal(matchesSelector(expr({ key: "missing", operator: "NotIn", values: [""] }), labels), true, "absent is not the empty value");
    assert.equal(matchesSelector(expr({ key: "flag", operator: "NotIn", values: [""] }), { flag: "" }), false);
  });

  it("Exists / DoesNotExist look at the key only", () => {
    assert.equal(matchesSelector(expr({ key: "tier", operator: "Exists" }), labels), true);
    assert.equal(matchesSelector(expr({ key: "team", operator: "Exists" }), labels), false);
    assert.equal(matchesSelector(expr({ key: "team", operator: "DoesNotExist" }), labels), true);
    assert.equal(matchesSelector(expr({ key: "tier", operator: "DoesNotExist" }), labels), false);
    assert.equal(matchesSelector(expr({ key: "flag", operator: "Exists" }), { flag: "" }), true, "an empty value still exists");
  });

  it("requires every expression (AND)", () => {
    const sel: LabelSelector = {
      matchExpressions: [
        { key: "app", operator: "Exists" },
        { key: "env", operator: "In", values: ["staging"] },
      ],
    };
    assert.equal(matchesSelector(sel, labels), false);
  });

  it("combines matchLabels AND matchExpressions", () => {
    const sel = (app: string, env: string): LabelSelector => ({
      matchLabels: { app },
      matchExpressions: [{ key: "env", operator: "In", values: [env] }],
    });
    assert.equal(matchesSelector(sel("web", "prod"), labels), true);
    assert.equal(matchesSelector(sel("web", "dev"), labels), false);
    assert.equal(matchesSelector(sel("api", "prod"), labels), false);
  });

  it("does not match inherited object properties as labels", () => {
    assert.equal(matchesSelector(expr({ key: "toString", operator: "Exists" }), {}), false);
    assert.equal(matchesSelector(expr({ key: "constructor", operator: "DoesNotExist" }), {}), true);
  });
});
