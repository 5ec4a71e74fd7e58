/**
 * Issue #5 acceptance: `controller validate` (the real CLI, as a child
 * process) reports every broken sample of test/fixtures/bad-bindings with its
 * file, document and field, and exits 1; the valid samples of
 * test/fixtures/good-bindings exit 0. Each bad sample declares what must be
 * reported in its leading comment: `# expect: [document N: ]FIELD`.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { run, type RunResult } from "../support/exec.js";
import { controllerCommand } from "../support/controller.js";

const REPO = join(import.meta.dirname, "..", "..");
const BAD = join(REPO, "test/fixtures/bad-bindings");
const GOOD = join(REPO, "test/fixtures/good-bindings");

interface Expectation {
  readonly file: string;
  readonly document: number;
  readonly field: string;
}

function expectations(file: string): Expectation[] {
  const out: Expectation[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^# expect: (?:document (\d+): )?(\S+)\s*$/.exec(line);
    if (m?.[2] !== undefined) out.push({ file, document: Number(m[1] ?? "1"), field: m[2] });
  }
  return out;
}

function validate(...paths: string[]): Promise<RunResult> {
  return run(process.execPath, [...controllerCommand(), "validate", ...paths.flatMap((p) => ["-f", p])], { timeoutMs: 60_000 });
}

/** True when `stdout` has the problem line `<file> (document N): <field>: <message>`. */
function reported(stdout: string, e: Expectation): boolean {
  return stdout
    .split("\n")
    .some((l) => l.startsWith(`${e.file} (document ${e.document}): ${e.field}: `) && l.length > `${e.file} (document ${e.document}): ${e.field}: `.length);
}

async function inBatches<T, R>(items: readonly T[], size: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

const badFiles = readdirSync(BAD)
  .filter((n) => n.endsWith(".yaml"))
  .sort()
  .map((n) => join(BAD, n));
const goodFiles = readdirSync(GOOD)
  .filter((n) => n.endsWith(".yaml"))
  .sort()
  .map((n) => join(GOOD, n));

describe("controller validate on a corpus of bad bindings", () => {
  it("the corpus has at least 12 broken samples, each declaring the field it must be reported for", () => {
    assert.ok(badFiles.length >= 12, `${badFiles.length} samples`);
    for (const f of badFiles) assert.ok(expectations(f).length > 0, `${f} has no '# expect:' line`);
  });

  it("reports every broken sample with its file and field, exit 1, when given the directory", async () => {
    const r = await validate(BAD);
    assert.equal(r.code, 1, r.stderr);
    const missing = badFiles.flatMap(expectations).filter((e) => !reported(r.stdout, e));
    assert.deepEqual(missing, [], `not reported:\n${r.stdout}`);
    const m = /^(\d+) valid binding\(s\), (\d+) problem\(s\)$/m.exec(r.stdout);
    assert.ok(m !== null, r.stdout);
    assert.ok(Number(m[2]) >= badFiles.length);
  });

  it("reports each broken sample on its own (exit 1, only that file's problems)", async () => {
    const results = await inBatches(badFiles, 4, async (f) => ({ f, r: await validate(f) }));
    for (const { f, r } of results) {
      assert.equal(r.code, 1, `${f}: ${r.stdout}${r.stderr}`);
      for (const e of expectations(f)) assert.ok(reported(r.stdout, e), `${f}: expected ${e.field} in document ${e.document}:\n${r.stdout}`);
      const problemLines = r.stdout.split("\n").filter((l) => / \(document \d+\): /.test(l));
      assert.ok(
        problemLines.every((l) => l.startsWith(`${f} `)),
        `lines about other files:\n${r.stdout}`,
      );
    }
  });

  it("accepts the valid samples, each and together, exit 0", async () => {
    const all = await validate(GOOD);
    assert.equal(all.code, 0, all.stdout);
    // One binding per document of the corpus.
    const documents = goodFiles.reduce((n, f) => n + (readFileSync(f, "utf8").match(/^apiVersion:/gm)?.length ?? 0), 0);
    assert.match(all.stdout, new RegExp(`^${documents} valid binding\\(s\\), 0 problem\\(s\\)$`, "m"));
    const results = await inBatches(goodFiles, 4, async (f) => ({ f, r: await validate(f) }));
    for (const { f, r } of results) assert.equal(r.code, 0, `${f}: ${r.stdout}`);
  });

  it("documents usage errors with exit 2 and --help with exit 0", async () => {
    const none = await run(process.execPath, [...controllerCommand(), "validate"]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /usage: controller validate -f FILE\|DIR/i);
    const help = await run(process.execPath, [...controllerCommand(), "validate", "--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /controller validate -f FILE\|DIR/);
    const missing = await validate(join(BAD, "does-not-exist.yaml"));
    assert.equal(missing.code, 1);
    assert.match(missing.stdout, /does-not-exist\.yaml: ENOENT/);
  });
});
