/**
 * Issue #3: the committed CRD (crds/ and the chart's copy) is exactly what
 * `make crds` generates from the JSON Schema, and it is a structural schema
 * (what the API server requires) carrying the CEL rules for what OpenAPI
 * cannot say.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { CRD_FILES, patternToCel, renderCrd } from "../../scripts/gen-crd.js";

type Node = Record<string, unknown>;

function walk(node: unknown, path: string, visit: (n: Node, path: string) => void): void {
  if (typeof node !== "object" || node === null || Array.isArray(node)) return;
  const n = node as Node;
  visit(n, path);
  const props = n.properties as Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(props ?? {})) walk(v, `${path}.${k}`, visit);
  if (n.items !== undefined) walk(n.items, `${path}[]`, visit);
  if (typeof n.additionalProperties === "object") walk(n.additionalProperties, `${path}.*`, visit);
}

describe("generated CRD", () => {
  const text = renderCrd();

  for (const file of CRD_FILES) {
    it(`${relative(join(import.meta.dirname, "..", ".."), file)} matches the generator output (run 'make crds' after changing the schema)`, () => {
      assert.equal(readFileSync(file, "utf8"), text);
    });
  }

  it("is structural: every node typed, no $ref / additionalProperties:false / propertyNames / format ip left", () => {
    const crd = parse(text) as {
      spec: {
        versions: { schema: { openAPIV3Schema: unknown }; subresources: unknown; additionalPrinterColumns: { name: string }[] }[];
        names: { shortNames: string[] };
      };
    };
    const v = crd.spec.versions[0];
    assert.ok(v);
    walk(v.schema.openAPIV3Schema, "", (n, path) => {
      assert.equal(typeof n.type, "string", `${path} has a type`);
      for (const k of ["$ref", "$defs", "$id", "propertyNames"]) assert.equal(n[k], undefined, `${path}: ${k}`);
      assert.notEqual(n.additionalProperties, false, `${path}: additionalProperties false`);
      assert.ok(!(n.properties !== undefined && n.additionalProperties !== undefined), `${path}: properties and additionalProperties`);
      assert.notEqual(n.format, "ip", path);
    });
    assert.deepEqual(v.subresources, { status: {} });
    assert.deepEqual(crd.spec.names.shortNames, ["sb"]);
    assert.deepEqual(
      v.additionalPrinterColumns.map((c) => c.name),
      ["Service", "Desired", "Registered", "Passing", "Ready", "Reason", "Age"],
    );
  });

  it("translates negative lookaheads (no lookaround in RE2) into startsWith checks", () => {
    assert.equal(
      patternToCel("^(?!consul-)(?!dockbind_)[A-Za-z0-9_-]{1,128}$", "k"),
      "k.matches('^[A-Za-z0-9_-]{1,128}$') && !k.startsWith('consul-') && !k.startsWith('dockbind_')",
    );
    assert.throws(() => patternToCel("^a(?=b)$", "k"), /lookaround/);
  });
});
