/**
 * The load-balancer output directory full or read-only, on a real 64 KiB
 * tmpfs mounted as --lb-output-dir (nginx includes it): a change that needs a
 * new file keeps the last good file byte-identical, the binding is Degraded
 * with OutputDirFull / OutputDirReadOnly (conditions in /api/status), no temp
 * file is left in the directory, nginx keeps serving (0 failed requests), and
 * once space is freed / the file system is read-write again the new config is
 * written and reloaded by itself within seconds. The failure is held longer
 * than the renderer's uncapped backoff would wait, so a recovery within the
 * bound proves the retry cap; the renderer resync is slowed to 60 s so it
 * cannot be what brings the change.
 */
import assert from "node:assert/strict";
import { closeSync, openSync, readdirSync, readFileSync, statfsSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { controllerGet } from "../support/controllerHttp.js";
import { runBackend } from "../support/docker.js";
import { run } from "../support/exec.js";
import { cleanupAll } from "../support/teardown.js";
import { startLoad } from "../support/traffic.js";
import { delay, freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const KEY = "default/disk";
const FILE = "disk.conf";
/** The writer's temp sibling of FILE (atomicFile.ts: `.<basename>.<pid>.<12 hex>.tmp`). */
const TEMP_SIBLING = /^\.disk\.conf\.\d+\.[0-9a-f]{12}\.tmp$/;
/** Longer than the renderer's backoff sum over the first failures (0.2+0.4+…+6.4 s): without the cap the next retry would come > 6 s later. */
const HOLD_MS = 13_000;
/** Recovery bound: the 2 s retry cap plus a render, validation and confirmed reload on this loaded 2-core machine. */
const RECOVERY_LIMIT_MS = 6_000;

let world: World;
let port = 0;
let mounted = false;
const figures: string[] = [];

interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
}

async function conditions(): Promise<readonly Condition[]> {
  const c = world.controller;
  assert.ok(c);
  const doc = JSON.parse((await controllerGet(c, "/api/status")).body) as { bindings: readonly { key: string; conditions: readonly Condition[] }[] };
  return doc.bindings.find((b) => b.key === KEY)?.conditions ?? [];
}

/** Fills the tmpfs with `filler.bin` (not matched by nginx's `*.conf` include) until ENOSPC. */
function fill(dir: string): string {
  const path = join(dir, "filler.bin");
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(4096, 0x61);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err: unknown) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
  assert.equal(statfsSync(dir).bavail, 0, "the output dir has no free block");
  return path;
}

async function mount(...args: string[]): Promise<void> {
  await run("mount", args, { check: true });
}

function dirNames(): string[] {
  return readdirSync(world.nginx.confDir).sort();
}

/**
 * The directory holds `allowed` plus at most the temp siblings of attempts in flight: on ENOSPC the
 * writer's temp file exists from its open() until its unlink() a moment later, so a poll may catch
 * one. A temp name still there at the next poll (250 ms later) was left behind. Returns the temp
 * names seen now.
 */
function assertNoLeftover(allowed: readonly string[], tempsBefore: ReadonlySet<string>): Set<string> {
  const names = dirNames();
  const temps = names.filter((n) => TEMP_SIBLING.test(n));
  const others = names.filter((n) => !TEMP_SIBLING.test(n));
  assert.deepEqual(others, [...allowed].sort(), `no partial or foreign file in the output dir: ${names.join(", ")}`);
  const left = temps.filter((n) => tempsBefore.has(n));
  assert.deepEqual(left, [], `temp files left in the output dir: ${left.join(", ")}`);
  return new Set(temps);
}

/** Asserts the live file, the condition reason and the directory while the failure lasts; returns when HOLD_MS passed. */
async function holdFailure(reason: string, lastGood: string, allowed: readonly string[]): Promise<void> {
  const seen = await waitFor(
    async () => {
      const d = (await conditions()).find((c) => c.type === "Degraded");
      return d?.status === "True" && d.reason === reason ? d : undefined;
    },
    { timeoutMs: 30_000, what: `Degraded=True ${reason}` },
  );
  figures.push(`${reason}: Degraded message: ${seen.message}`);
  const lb = (await conditions()).find((c) => c.type === "LoadBalancerConfigured");
  assert.equal(lb?.status, "False");
  assert.equal(lb.reason, reason);
  const until = Date.now() + HOLD_MS;
  let tempsBefore = new Set<string>();
  while (Date.now() < until) {
    assert.equal(world.lbFile(FILE), lastGood, "the last good file stays byte-identical");
    tempsBefore = assertNoLeftover(allowed, tempsBefore);
    await delay(250);
  }
  const failures = world.controller?.logs().filter((l) => l.message === "reconcile failed, will retry" && l.key === KEY && l.reason === reason) ?? [];
  const delays = failures.map((l) => Number(l.retryInMs));
  figures.push(`${reason}: ${failures.length} failed attempts while held, retry delays ${delays.join(",")} ms`);
  assert.ok(delays.length >= 5 && delays.every((d) => d <= 2_000), `retries capped at 2 s: ${delays.join(",")}`);
}

/** Waits until nginx serves `name` (by its body) and returns the elapsed ms since `since`. */
async function recovered(name: string, since: number): Promise<number> {
  await waitFor(async () => ((await world.sample(port, 6)).includes(name) ? true : undefined), {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: `${name} served after the fix`,
  });
  const ms = Date.now() - since;
  await waitFor(async () => ((await conditions()).find((c) => c.type === "Degraded")?.status === "False" ? true : undefined), {
    timeoutMs: 10_000,
    what: "Degraded=False",
  });
  return ms;
}

before(async () => {
  world = await startWorld("disks");
  await mount("-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", world.nginx.confDir);
  mounted = true;
  port = await freePort();
  world.writeFile("disk.yaml", bindingYaml({ name: "disk", service: "disk-web", app: "disk-web", listenPort: port }));
  await world.startController(["--resync", "60s"]);
  await runBackend({ name: `disk-1-${process.pid}`, labels: { app: "disk-web" }, env: { NAME: "d1" } });
  await world.servedExactly(port, ["d1"]);
});

after(async () => {
  await world.controller?.stop();
  if (mounted) {
    const r = await run("umount", [world.nginx.confDir]);
    if (r.code !== 0) await run("umount", ["-l", world.nginx.confDir]);
  }
  await world.proxy.close();
  await cleanupAll();
  for (const f of figures) process.stdout.write(`# ${f}\n`);
});

describe("output directory full or read-only", () => {
  it("full (ENOSPC): last good file kept, Degraded OutputDirFull, no temp file, recovers by itself once space is freed", async () => {
    const traffic = startLoad(world.nginx, port, { maxMs: 120_000 });
    const lastGood = readFileSync(join(world.nginx.confDir, FILE), "utf8");
    const filler = fill(world.nginx.confDir);
    try {
      await runBackend({ name: `disk-2-${process.pid}`, labels: { app: "disk-web" }, env: { NAME: "d2" } });
      await holdFailure("OutputDirFull", lastGood, [FILE, "filler.bin"]);
      assert.ok(!(await world.sample(port, 6)).includes("d2"), "d2 is not served while its config cannot be written");
    } finally {
      // Freed on failure too, so the next test starts from a directory with space.
      unlinkSync(filler);
    }
    const ms = await recovered("d2", Date.now());
    figures.push(`OutputDirFull: served the new backend ${ms} ms after the filler was deleted`);
    assert.ok(ms <= RECOVERY_LIMIT_MS, `recovered in ${ms} ms`);
    assert.deepEqual(dirNames(), [FILE]);
    const r = await traffic.stop();
    figures.push(`OutputDirFull: ${r.failed} of ${r.sent} requests failed`);
    assert.ok(r.sent >= 200, `the load ran (${r.sent})`);
    assert.deepEqual(r.failures, []);
  });

  it("read-only (EROFS): last good file kept, Degraded OutputDirReadOnly, recovers by itself once read-write", async () => {
    const traffic = startLoad(world.nginx, port, { maxMs: 120_000 });
    const lastGood = readFileSync(join(world.nginx.confDir, FILE), "utf8");
    await mount("-o", "remount,ro", world.nginx.confDir);
    await runBackend({ name: `disk-3-${process.pid}`, labels: { app: "disk-web" }, env: { NAME: "d3" } });
    await holdFailure("OutputDirReadOnly", lastGood, [FILE]);

    await mount("-o", "remount,rw", world.nginx.confDir);
    const ms = await recovered("d3", Date.now());
    figures.push(`OutputDirReadOnly: served the new backend ${ms} ms after the remount rw`);
    assert.ok(ms <= RECOVERY_LIMIT_MS, `recovered in ${ms} ms`);
    assert.deepEqual(dirNames(), [FILE]);
    const r = await traffic.stop();
    figures.push(`OutputDirReadOnly: ${r.failed} of ${r.sent} requests failed`);
    assert.ok(r.sent >= 200, `the load ran (${r.sent})`);
    assert.deepEqual(r.failures, []);
  });
});
