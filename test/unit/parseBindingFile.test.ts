import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_FILE_BYTES, parseBindingFile, type ParsedDocument } from "../../src/sources/files/parseBindingFile.js";

function yamlDoc(name: string, extra = "", namespace?: string): string {
  return [
    "apiVersion: dockbind.io/v1alpha1",
    "kind: ServiceBinding",
    "metadata:",
    `  name: ${name}`,
    ...(namespace !== undefined ? [`  namespace: ${namespace}`] : []),
    "spec:",
    "  service:",
    `    name: ${name}`,
    "  backends:",
    "    selector:",
    "      matchLabels:",
    `        app: ${name}`,
    "    port: 8080",
    extra,
  ].join("\n");
}

function doc(docs: readonly ParsedDocument[], n: number): ParsedDocument {
  const d = docs.find((x) => x.document === n);
  assert.ok(d !== undefined, `document ${n} missing in ${JSON.stringify(docs)}`);
  return d;
}

describe("parseBindingFile: valid input", () => {
  it("parses a single document with defaults applied", () => {
    const parsed = parseBindingFile(yamlDoc("web"));
    assert.equal(parsed.readable, true);
    assert.equal(parsed.documents.length, 1);
    const d = doc(parsed.documents, 1);
    assert.deepEqual(d.errors, []);
    assert.equal(d.key, "default/web");
    assert.equal(d.binding?.spec.backends.protocol, "tcp");
  });

  it("parses multi-document YAML in order, numbering documents from 1", () => {
    const parsed = parseBindingFile([yamlDoc("web"), yamlDoc("api", "", "shop"), yamlDoc("db")].join("\n---\n"));
    assert.equal(parsed.readable, true);
    assert.deepEqual(
      parsed.documents.map((d) => [d.document, d.key, d.errors.length]),
      [
        [1, "default/web", 0],
        [2, "shop/api", 0],
        [3, "default/db", 0],
      ],
    );
  });

  it("accepts JSON", () => {
    const json = JSON.stringify({
      apiVersion: "dockbind.io/v1alpha1",
      kind: "ServiceBinding",
      metadata: { name: "web" },
      spec: { service: { name: "web" }, backends: { selector: { matchLabels: { app: "web" } }, port: 80 } },
    });
    const parsed = parseBindingFile(json);
    assert.equal(parsed.readable, true);
    assert.equal(doc(parsed.documents, 1).binding?.spec.backends.port, 80);
  });

  it("skips empty documents (leading/trailing ---, comments only)", () => {
    const parsed = parseBindingFile(["---", yamlDoc("web"), "---", "# just a comment", "---", yamlDoc("api"), "---", ""].join("\n"));
    assert.equal(parsed.readable, true);
    assert.deepEqual(
      parsed.documents.map((d) => d.key),
      ["default/web", "default/api"],
    );
    assert.ok(parsed.documents.every((d) => d.errors.length === 0));
  });

  it("a zero-length or whitespace-only file is invalid (a truncating writer's transient state); a comment-only file holds no bindings", () => {
    for (const text of ["", "\n", "  \n\t\n"]) {
      const parsed = parseBindingFile(text);
      assert.equal(parsed.readable, false, JSON.stringify(text));
      const error = parsed.documents[0]?.errors[0];
      assert.ok(error !== undefined);
      assert.equal(error.field, "(file)");
      assert.match(error.message, /file is empty/);
    }
    assert.deepEqual(parseBindingFile("# nothing\n"), { readable: true, documents: [] });
  });
});

describe("parseBindingFile: invalid documents", () => {
  it("an invalid document among valid ones affects only itself", () => {
    const bad = yamlDoc("bad").replace("port: 8080", "port: 0");
    const parsed = parseBindingFile([yamlDoc("web"), bad, yamlDoc("api")].join("\n---\n"));
    assert.equal(parsed.readable, true);
    assert.ok(doc(parsed.documents, 1).binding !== undefined);
    assert.ok(doc(parsed.documents, 3).binding !== undefined);
    const d2 = doc(parsed.documents, 2);
    assert.equal(d2.binding, undefined);
    assert.deepEqual(
      d2.errors.map((e) => e.field),
      ["spec.backends.port"],
    );
  });

  it("extracts the key of an invalid document so its last good version can be kept", () => {
    const parsed = parseBindingFile(yamlDoc("web", "    bogus: 1", "shop"));
    const d = doc(parsed.documents, 1);
    assert.equal(d.binding, undefined);
    assert.equal(d.key, "shop/web");
    assert.deepEqual(
      d.errors.map((e) => e.field),
      ["spec.backends.bogus"],
    );
  });

  it("defaults the namespace of an invalid document's key", () => {
    const d = doc(parseBindingFile(yamlDoc("web").replace("port: 8080", "port: x")).documents, 1);
    assert.equal(d.key, "default/web");
  });

  it("has no key when the name cannot be read", () => {
    const d = doc(parseBindingFile("apiVersion: dockbind.io/v1alpha1\nmetadata:\n  name: 42\n").documents, 1);
    assert.equal(d.key, undefined);
    assert.ok(d.errors.length > 0);
    const scalar = doc(parseBindingFile("just a string").documents, 1);
    assert.equal(scalar.key, undefined);
    assert.deepEqual(
      scalar.errors.map((e) => e.field),
      ["(document)"],
    );
  });
});

describe("parseBindingFile: unreadable files", () => {
  it("a YAML syntax error makes the file unreadable with a one-line message", () => {
    const parsed = parseBindingFile(`${yamlDoc("web")}\n---\nspec: [unclosed\n`);
    assert.equal(parsed.readable, false);
    const yamlErrors = parsed.documents.flatMap((d) => d.errors).filter((e) => e.field === "(yaml)");
    assert.ok(yamlErrors.length > 0, JSON.stringify(parsed));
    for (const e of yamlErrors) assert.doesNotMatch(e.message, /\n/);
  });

  it("duplicate keys are an error, not last-one-wins", () => {
    const parsed = parseBindingFile(yamlDoc("web").replace("    port: 8080", "    port: 8080\n    port: 9090"));
    assert.equal(parsed.readable, false);
    const d = doc(parsed.documents, 1);
    assert.equal(d.binding, undefined);
    assert.deepEqual(
      d.errors.map((e) => e.field),
      ["(yaml)"],
    );
    assert.match(d.errors.map((e) => e.message).join(" "), /unique/i);
  });

  it("rejects a file over the size limit without parsing it", () => {
    const parsed = parseBindingFile(`#${"x".repeat(MAX_FILE_BYTES)}`);
    assert.equal(parsed.readable, false);
    const errs = parsed.documents.flatMap((d) => d.errors);
    assert.deepEqual(
      errs.map((e) => e.field),
      ["(file)"],
    );
    assert.match(errs.map((e) => e.message).join(" "), /larger than/);
  });

  it("accepts a file of exactly the size limit", () => {
    const parsed = parseBindingFile(`#${"x".repeat(MAX_FILE_BYTES - 1)}`);
    assert.deepEqual(parsed, { readable: true, documents: [] });
  });

  it("measures the limit in bytes, not characters", () => {
    // 2 bytes per character in UTF-8: about 1.5 MiB on disk, fewer characters than the limit.
    const text = `# ${"é".repeat(Math.floor(MAX_FILE_BYTES * 0.75))}`;
    assert.ok(text.length < MAX_FILE_BYTES);
    const parsed = parseBindingFile(text);
    assert.equal(parsed.readable, false);
    assert.equal(parsed.documents[0]?.errors[0]?.field, "(file)");
  });

  it("an alias bomb is reported, not thrown", () => {
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
    ].join("\n");
    const parsed = parseBindingFile(`${yamlDoc("web")}\n---\n${bomb}\n`);
    assert.equal(parsed.readable, false);
    assert.ok(
      parsed.documents.some((d) => d.document === 2 && d.errors.some((e) => e.field === "(yaml)")),
      JSON.stringify(parsed.documents.map((d) => d.errors)),
    );
  });

  it("a few ordinary aliases are fine", () => {
    const text = yamlDoc("web").replace("  service:\n    name: web", "  service:\n    name: &n web\n    tags: [*n]");
    const d = doc(parseBindingFile(text).documents, 1);
    assert.deepEqual(d.errors, []);
    assert.deepEqual(d.binding?.spec.service.tags, ["web"]);
  });
});
