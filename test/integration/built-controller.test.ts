/**
 * `make build` must produce a controller that runs: compile with tsc, then run
 * bin/controller.js (which loads dist/) on a real binding file. Guards against
 * sources that only work under tsx (e.g. data files tsc does not copy).
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { run } from "../support/exec.js";
import { ensureBedRoot } from "../support/procs.js";
import { bindingYaml } from "../support/world.js";

const REPO = join(import.meta.dirname, "..", "..");

test("the compiled controller (bin/controller.js) validates bindings", async () => {
  await run("npx", ["tsc", "-p", "tsconfig.json"], { cwd: REPO, check: true, timeoutMs: 240_000 });
  const dir = mkdtempSync(join(ensureBedRoot(), "built-"));
  writeFileSync(join(dir, "web.yaml"), bindingYaml({ name: "web", service: "web", app: "web", listenPort: 8080 }));
  writeFileSync(join(dir, "bad.yaml"), bindingYaml({ name: "bad", service: "bad", app: "bad" }).replace("port: 80", "port: 0"));
  const res = await run(process.execPath, [join(REPO, "bin/controller.js"), "validate", "-f", dir], { cwd: REPO });
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stdout, /bad\.yaml \(document 1\): spec\.backends\.port: must be >= 1/);
  assert.match(res.stdout, /1 valid binding\(s\), 1 problem\(s\)/);
  const help = await run(process.execPath, [join(REPO, "bin/controller.js"), "--help"], { cwd: REPO });
  assert.equal(help.code, 0);
  assert.match(help.stdout, /--docker-only/);
});
