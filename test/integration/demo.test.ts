/** `make demo` must keep working: run the walkthrough once, non-interactively, and check what it shows. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { run } from "../support/exec.js";

test("make demo's walkthrough registers 4 containers and round-robins across them", async () => {
  const repo = join(import.meta.dirname, "..", "..");
  const res = await run(process.execPath, ["--import", "tsx", join(repo, "test/demo/demo.ts")], {
    cwd: repo,
    env: { ...process.env, DOCKBIND_DEMO_ONESHOT: "1" },
    timeoutMs: 120_000,
  });
  assert.equal(res.code, 0, res.stderr);
  const rr = res.stdout.split("\n").filter((l) => l.includes("curl http://127.0.0.1:"));
  assert.equal(rr.length, 5);
  const fourth = rr[3] ?? "";
  for (const name of ["docker01:81", "docker01:82", "docker02:83", "docker02:84"]) assert.equal(fourth.split(name).length - 1, 2, `${name} twice in: ${fourth}`);
  assert.ok(!(rr[4] ?? "").includes("docker01:81"), "stopped container no longer served");
  assert.match(res.stdout, /demo complete/);
});
