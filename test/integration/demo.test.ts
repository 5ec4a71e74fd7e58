/**
 * `make demo` must keep working: run the live walkthrough as a user would,
 * check what it shows, then do what `make demo | tee demo.log` + Ctrl-C does
 * (the reader of stdout goes away, SIGINT arrives) and check that the teardown
 * still removed every container, the Consul agent and the nginx master.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { run } from "../support/exec.js";
import { waitFor } from "../support/wait.js";

const REPO = join(import.meta.dirname, "..", "..");
const NAMES = ["docker01:81", "docker01:82", "docker02:83", "docker02:84"];

/** The controller, consul agent and nginx master the demo process `pid` started (its children), by name. */
async function bedChildren(pid: number): Promise<Map<string, number>> {
  const ps = await run("ps", ["--ppid", String(pid), "-o", "pid=,args="]);
  const out = new Map<string, number>();
  for (const line of ps.stdout.split("\n")) {
    const child = Number(line.trim().split(/\s+/)[0]);
    if (line.includes("consul agent")) out.set("consul", child);
    else if (line.includes("nginx: master")) out.set("nginx", child);
    else if (/src\/cli\/main\.(ts|js)/.test(line)) out.set("controller", child); // source or dist/ (controllerCommand)
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("make demo's walkthrough round-robins across 4 containers, never shows a 503, and Ctrl-C tears down with stdout gone", async () => {
  const demo = spawn(process.execPath, ["--import", "tsx", join(REPO, "test/demo/demo.ts")], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
  const pid = demo.pid;
  assert.ok(pid !== undefined);
  let out = "";
  let err = "";
  demo.stdout.on("data", (b: Buffer) => (out += b.toString("utf8")));
  demo.stderr.on("data", (b: Buffer) => (err += b.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => {
    demo.once("exit", (code) => {
      resolve(code);
    });
  });
  try {
    await waitFor(() => (out.includes("live round-robin") ? true : undefined), {
      timeoutMs: 180_000,
      intervalMs: 200,
      what: `the live round-robin (stderr: ${err.slice(-500)})`,
    });
    const rr = out.split("\n").filter((l) => l.includes("curl http://127.0.0.1:"));
    assert.equal(rr.length, 5, out);
    assert.doesNotMatch(out, /HTTP \d{3}/, "no error answer is ever shown as served");
    rr.forEach((line, i) => {
      const started = NAMES.slice(0, Math.min(i + 1, 4));
      for (const name of started) assert.equal(line.split(name).length - 1, i < 4 ? 2 : name === NAMES[0] ? 0 : 2, `${name} in: ${line}`);
    });
    const containers = async (): Promise<string> => (await run("docker", ["ps", "-aq", "--filter", `label=dockbind-test.pid=${pid}`])).stdout.trim();
    assert.notEqual(await containers(), "", "the demo's containers are running");
    const children = await bedChildren(pid);
    assert.deepEqual([...children.keys()].sort(), ["consul", "controller", "nginx"], "the demo's controller, consul agent and nginx master are running");
    // `| tee` + Ctrl-C: the reader is gone first, then SIGINT.
    demo.stdout.destroy();
    demo.kill("SIGINT");
    const code = await exited;
    assert.equal(code, 0, err.slice(-2000));
    assert.equal(await containers(), "", "every demo container removed");
    assert.deepEqual(
      [...children].filter(([, p]) => alive(p)),
      [],
      "controller, consul agent and nginx master stopped",
    );
  } finally {
    if (demo.exitCode === null) demo.kill("SIGKILL");
    await run("docker", [
      "rm",
      "-f",
      ...(await run("docker", ["ps", "-aq", "--filter", `label=dockbind-test.pid=${pid}`])).stdout.split("\n").filter(Boolean),
    ]).catch(() => undefined);
  }
});
