import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { JsonArraySplitter } from "../../src/clients/docker/jsonArraySplitter.js";

/** Splits `text` into chunks at `cuts` (byte offsets) and returns every element the splitter yields, parsed. */
function split(text: string, cuts: readonly number[]): unknown[] {
  const bytes = Buffer.from(text, "utf8");
  const s = new JsonArraySplitter();
  const out: unknown[] = [];
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    for (const e of s.push(bytes.subarray(prev, c))) out.push(JSON.parse(e));
    prev = c;
  }
  s.end();
  return out;
}

const TRICKY: unknown[] = [
  { Id: "a", Labels: { "x]": "}{", q: 'say "hi"', bs: "C:\\dir\\", both: '\\"', u: "héllo → 世界 😀" }, Ports: [{ PrivatePort: 80 }, []] },
  { Names: ["/n"], nested: { deep: [[{ a: [1, 2, { b: "]]]" }] }]] }, empty: {}, arr: [] },
  { s: "\\\\", t: '\\\\\\"', n: null, b: true, f: false, num: -1.5e3 },
  'top-level string with \\" and ] and }',
  42,
  null,
  [1, [2, [3]]],
];

describe("JsonArraySplitter", () => {
  it("yields exactly the elements JSON.parse sees, for every single cut point", () => {
    const text = ` \n[ ${TRICKY.map((v) => JSON.stringify(v)).join(" ,\n ")} ]\n `;
    const n = Buffer.byteLength(text);
    assert.deepEqual(split(text, []), TRICKY);
    for (let c = 1; c < n; c++) assert.deepEqual(split(text, [c]), TRICKY, `cut at ${c}`);
  });

  it("survives one-byte chunks (escapes and UTF-8 sequences cut anywhere)", () => {
    const text = JSON.stringify(TRICKY);
    const cuts = Array.from({ length: Buffer.byteLength(text) - 1 }, (_, i) => i + 1);
    assert.deepEqual(split(text, cuts), TRICKY);
  });

  it("yields each element as soon as its last byte arrived", () => {
    const s = new JsonArraySplitter();
    assert.deepEqual(s.push(Buffer.from('[{"a":1},{"b"')), ['{"a":1}']);
    assert.deepEqual(s.push(Buffer.from(":2}")), ['{"b":2}']);
    assert.deepEqual(s.push(Buffer.from("]")), []);
    s.end();
  });

  it("accepts an empty array", () => {
    assert.deepEqual(split("[]", []), []);
    assert.deepEqual(split(" [ ] ", [2]), []);
  });

  it("rejects input that is not one complete array", () => {
    assert.throws(() => split('{"a":1}', []), /JSON array expected/);
    assert.throws(() => split("", []), /empty input/);
    assert.throws(() => split('[{"a":1}', []), /truncated/);
    assert.throws(() => split('[{"a":"]"}', []), /truncated/);
    assert.throws(() => split("[1] [2]", []), /after the end/);
  });
});
