/**
 * The layering of src/ is enforced by `make lint`: eslint.config.js's
 * per-folder no-restricted-imports (which layer may import which) and the
 * Makefile's madge cycle check. These tests run both as configured on probe
 * code, so they fail when either is removed or stops matching this code
 * base's imports (relative, `.js`-suffixed ESM specifiers; `import type`
 * included). That src itself passes both is `make lint`'s job.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ESLint, type Linter } from "eslint";
import tseslint from "typescript-eslint";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The effective no-restricted-imports entry of eslint.config.js for a file at `path` (relative to the repo). */
async function layerRule(path: string): Promise<Linter.RuleEntry> {
  const config: unknown = await new ESLint({ cwd: ROOT }).calculateConfigForFile(join(ROOT, path));
  const rules = (config as { rules?: Record<string, Linter.RuleEntry> } | null)?.rules;
  const entry = rules?.["no-restricted-imports"];
  assert.ok(entry !== undefined, `eslint.config.js sets no no-restricted-imports for ${path}`);
  return entry;
}

/**
 * Lints `code` as if it were the file `path` with only that file's effective
 * no-restricted-imports (no type information is needed for it, so no
 * TypeScript program is built). Returns the messages of that rule.
 */
async function restrictedImports(path: string, code: string): Promise<readonly string[]> {
  const eslint = new ESLint({
    cwd: ROOT,
    overrideConfigFile: true,
    overrideConfig: [{ files: ["**/*.ts"], languageOptions: { parser: tseslint.parser }, rules: { "no-restricted-imports": await layerRule(path) } }],
  });
  const [result] = await eslint.lintText(code, { filePath: join(ROOT, path) });
  assert.ok(result !== undefined);
  const fatal = result.messages.filter((m) => m.fatal === true);
  assert.deepEqual(fatal, [], "the probe must parse");
  return result.messages.filter((m) => m.ruleId === "no-restricted-imports" && m.severity === 2).map((m) => m.message);
}

describe("import layers (eslint.config.js)", () => {
  it("names every folder of src/ (api/ by its subfolders), and no folder twice in a path", async () => {
    const dirs = (path: string): string[] =>
      readdirSync(join(ROOT, path), { withFileTypes: true })
        .filter((d) => d.isDirectory())
        .map((d) => d.name);
    const layers = dirs("src").flatMap((d) => (d === "api" ? dirs("src/api").map((s) => `api/${s}`) : [d]));
    const config: unknown = await import(pathToFileURL(join(ROOT, "eslint.config.js")).href);
    const table = (config as { LAYERS?: unknown }).LAYERS;
    assert.ok(typeof table === "object" && table !== null, "eslint.config.js exports LAYERS");
    assert.deepEqual([...layers].sort(), Object.keys(table).sort());
    const top = new Set(dirs("src"));
    const nested = dirs("src")
      .flatMap((d) => dirs(`src/${d}`))
      .filter((s) => top.has(s));
    assert.deepEqual(nested, [], "a subfolder named like a layer would be mistaken for it");
  });

  it("forbids src/domain to import src/app, type-only imports included", async () => {
    const messages = await restrictedImports("src/domain/layerProbe.ts", 'import type { Manager } from "../app/manager.js";\nexport type M = Manager;\n');
    assert.equal(messages.length, 1);
    assert.match(messages[0] ?? "", /src\/domain may not import src\/app/);
  });

  it("forbids the pure layers I/O modules but allows node:net's address checks", async () => {
    const code = 'import { readFileSync } from "node:fs";\nimport { connect, isIP } from "node:net";\nexport const f = [readFileSync, connect, isIP];\n';
    const messages = await restrictedImports("src/domain/layerProbe.ts", code);
    assert.equal(messages.length, 2, messages.join("\n"));
    assert.ok(messages.some((m) => m.includes("'node:fs'")));
    assert.ok(messages.some((m) => m.includes("'connect'")));
    assert.deepEqual(
      await restrictedImports("src/ports/layerProbe.ts", 'import type { Dirent } from "fs";\nexport type D = Dirent;\n').then((m) => m.length),
      1,
    );
  });

  it("keeps siblings apart: sources may not import actuators, nor read config", async () => {
    const code =
      'import type { LoadBalancerDriver } from "../../actuators/lb/driver.js";\nimport type { Config } from "../../config/config.js";\nexport type X = [LoadBalancerDriver, Config];\n';
    const messages = await restrictedImports("src/sources/docker/layerProbe.ts", code);
    assert.equal(messages.length, 2, messages.join("\n"));
    assert.match(messages[0] ?? "", /src\/sources may not import src\/actuators/);
    assert.match(messages[1] ?? "", /src\/sources may not import src\/config/);
  });

  it("allows imports down the layers and within a layer", async () => {
    const reconciler = [
      'import type { ConsulApi } from "../../ports/consul.js";',
      'import { bindingPath } from "../../sources/kubernetes/kubeBindingSource.js";',
      'import type { KubeClient } from "../../clients/kubernetes/kubeClient.js";',
      'import { ownedFiles } from "../renderer.js";',
      "export const x = [bindingPath, ownedFiles];",
      "export type Y = [ConsulApi, KubeClient];",
      "",
    ].join("\n");
    assert.deepEqual(await restrictedImports("src/reconcilers/kubernetes/layerProbe.ts", reconciler), []);
    const client =
      'import type { DockerTls } from "../../config/config.js";\nimport { parseDurationMs } from "../../runtime/duration.js";\nexport const d = parseDurationMs;\nexport type T = DockerTls;\n';
    assert.deepEqual(await restrictedImports("src/clients/docker/layerProbe.ts", client), []);
  });

  it("lets cli import every layer, and nothing import cli", async () => {
    assert.deepEqual(
      await restrictedImports("src/cli/layerProbe.ts", 'import { startManager } from "../app/manager.js";\nexport const s = startManager;\n'),
      [],
    );
    const messages = await restrictedImports("src/app/layerProbe.ts", 'import { runPlan } from "./../cli/plan.js";\nexport const r = runPlan;\n');
    assert.equal(messages.length, 1, "a ./../ specifier is caught too");
  });
});

describe("import cycles (Makefile lint: madge)", () => {
  let fixture = "";
  /** The madge arguments of the Makefile's CYCLE_CHECK (what `make lint` runs on src). */
  let args: readonly string[] = [];

  before(() => {
    const line = readFileSync(join(ROOT, "Makefile"), "utf8")
      .split("\n")
      .find((l) => l.startsWith("CYCLE_CHECK :="));
    assert.ok(line !== undefined, "Makefile defines CYCLE_CHECK");
    const words = line.slice("CYCLE_CHECK :=".length).trim().split(/\s+/);
    assert.deepEqual(words.slice(0, 2), ["npx", "madge"]);
    args = words.slice(2);
    const makefile = readFileSync(join(ROOT, "Makefile"), "utf8");
    // `make lint` and `make test` (PRE_INTEGRATION) both run the lint-cycles target, whose recipe is the check on src.
    assert.match(makefile, /^lint-cycles:.*\n\t\$\(CYCLE_CHECK\) src\n/m);
    assert.match(makefile, /^lint:.*\blint-cycles\b/m);
    assert.match(makefile, /^PRE_INTEGRATION :=.*\blint-cycles\b/m);
    fixture = mkdtempSync(join(tmpdir(), "dockbind-cycle-"));
    writeFileSync(join(fixture, "a.ts"), 'import { b } from "./b.js";\nexport const a = (): number => b() + 1;\n');
    writeFileSync(join(fixture, "b.ts"), 'import type { C } from "./c.js";\nexport const b = (): number => 1;\nexport type B = C;\n');
    writeFileSync(join(fixture, "c.ts"), 'import type { a } from "./a.js";\nexport type C = typeof a;\n');
  });
  after(() => {
    if (fixture !== "") rmSync(fixture, { recursive: true, force: true });
  });

  it("fails on a cycle through .js-suffixed and type-only imports", () => {
    const r = spawnSync(process.execPath, [join(ROOT, "node_modules", "madge", "bin", "cli.js"), ...args, fixture], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 50_000,
    });
    const output = `${r.stdout}${r.stderr}`;
    assert.equal(r.status, 1, output);
    assert.match(output, /a\.ts > b\.ts > c\.ts/);
  });
});
