/** ReadOrder: overlapping reads of one container are applied newest-issued last, whatever order they answer in. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ReadOrder } from "../../src/sources/docker/readOrder.js";

describe("ReadOrder", () => {
  it("answers in issue order are all applied", () => {
    const o = new ReadOrder();
    const a = o.begin("c");
    const b = o.begin("c");
    assert.equal(o.end("c", a, true), true);
    assert.equal(o.end("c", b, true), true);
  });

  it("an older read answering after a newer one was applied is dropped", () => {
    const o = new ReadOrder();
    const older = o.begin("c");
    const newer = o.begin("c");
    assert.equal(o.end("c", newer, true), true);
    assert.equal(o.end("c", older, true), false);
  });

  it("a failed read applies nothing and does not block an older answer", () => {
    const o = new ReadOrder();
    const older = o.begin("c");
    const newer = o.begin("c");
    assert.equal(o.end("c", newer, false), false);
    assert.equal(o.end("c", older, true), true);
  });

  it("containers are ordered independently, and an entry ends with its last read", () => {
    const o = new ReadOrder();
    const c1 = o.begin("c");
    const d1 = o.begin("d");
    assert.equal(o.end("d", d1, true), true);
    assert.equal(o.end("c", c1, true), true, "a newer read of another container does not count");
    const c2 = o.begin("c");
    assert.equal(o.inFlight("c"), true);
    assert.equal(o.end("c", c2, true), true, "a read after all earlier ones ended starts afresh");
    assert.equal(o.inFlight("c"), false);
  });
});
