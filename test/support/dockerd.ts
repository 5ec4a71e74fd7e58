/**
 * Shared Docker engine for integration tests.
 *
 * `ensureDockerd` reuses a running daemon, otherwise starts exactly one
 * `dockerd` detached (it outlives the test process on purpose: it is shared by
 * all test files and by later runs). Safe to call concurrently from several
 * processes: starting is serialised by an atomic lock directory, and a daemon
 * whose pid file is held by a live process is never started a second time.
 */
import { spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { run } from "./exec.js";
import { ensureBedRoot } from "./procs.js";
import { delay, waitFor } from "./wait.js";

const SOCKET = "unix:///var/run/docker.sock";
const DOCKERD_PIDFILE = "/var/run/docker.pid";
const READY_TIMEOUT_MS = 60_000;
const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Log file of a dockerd started by the test bed. */
export const DOCKERD_LOG = "/tmp/dockbind-testbed/dockerd.log";

/** True when the docker CLI can talk to a daemon. */
export async function dockerReady(): Promise<boolean> {
  const r = await run("docker", ["info", "--format", "{{.ServerVersion}}"], { timeoutMs: 15_000 });
  return r.code === 0 && r.stdout.trim() !== "";
}

let pending: Promise<void> | undefined;

/** Resolves once `docker info` succeeds; starts the daemon if needed (see module doc). */
export function ensureDockerd(): Promise<void> {
  pending ??= startIfNeeded().catch((err: unknown) => {
    pending = undefined;
    throw err;
  });
  return pending;
}

async function startIfNeeded(): Promise<void> {
  if (await dockerReady()) return;
  if ((await run("sh", ["-c", "command -v dockerd"])).code !== 0) {
    await run("bash", [join(REPO_ROOT, "test/bed/install.sh")], { check: true, timeoutMs: 600_000 });
  }
  const lock = join(ensureBedRoot(), "dockerd.lock");
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!tryLock(lock)) {
    // Someone else is starting it: wait for the daemon or for a stale lock.
    if (await dockerReady()) return;
    if (Date.now() > deadline) throw new Error(`dockerd not ready after ${READY_TIMEOUT_MS} ms; lock ${lock} held; ${daemonState()}`);
    await delay(250);
  }
  try {
    if (await dockerReady()) return;
    if (!pidFileAlive(DOCKERD_PIDFILE)) spawnDockerd();
    await waitFor(async () => (await dockerReady()) || undefined, {
      timeoutMs: READY_TIMEOUT_MS,
      intervalMs: 250,
      what: `docker info (dockerd log: ${DOCKERD_LOG})`,
    }).catch((err: unknown) => {
      throw new Error(`${err instanceof Error ? err.message : String(err)}; ${daemonState()}`);
    });
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

function spawnDockerd(): void {
  const fd = openSync(DOCKERD_LOG, "a");
  try {
    const child = spawn("dockerd", ["--host", SOCKET], { detached: true, stdio: ["ignore", fd, fd] });
    child.on("error", () => undefined); // reported through the readiness timeout and the log
    child.unref();
  } finally {
    closeSync(fd);
  }
}

/** "dockerd pid N: state D (disk sleep), wchan X" — why a daemon that does not answer is stuck; "no dockerd process" when none. */
function daemonState(): string {
  const pid = readPid(DOCKERD_PIDFILE);
  if (pid === undefined || !pidFileAlive(DOCKERD_PIDFILE)) return "no dockerd process";
  try {
    const state = /^State:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? "?";
    return `dockerd pid ${pid}: state ${state}, wchan ${readFileSync(`/proc/${pid}/wchan`, "utf8") || "-"}`;
  } catch {
    return `dockerd pid ${pid}: state unreadable`;
  }
}

/** mkdir is atomic: success means we own the lock. A lock whose owner died is broken. */
function tryLock(dir: string): boolean {
  try {
    mkdirSync(dir);
    writeFileSync(join(dir, "pid"), String(process.pid));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    if (!pidFileAlive(join(dir, "pid"))) {
      // Owner died (or has not written its pid yet: give it a moment before breaking).
      const stale = readPid(join(dir, "pid")) !== undefined || lockAgeMs(dir) > 5_000;
      if (stale) rmSync(dir, { recursive: true, force: true });
    }
    return false;
  }
}

function lockAgeMs(dir: string): number {
  try {
    return Date.now() - statSync(dir).mtimeMs;
  } catch {
    return Infinity;
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, "utf8").trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function pidFileAlive(file: string): boolean {
  const pid = readPid(file);
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Makes the engine a single-node swarm manager (advertising 127.0.0.1) unless
 * it already is one. Concurrent callers: a losing `swarm init` is tolerated.
 */
export async function ensureSwarm(): Promise<void> {
  await ensureDockerd();
  const state = async (): Promise<string> => (await run("docker", ["info", "--format", "{{.Swarm.LocalNodeState}}"], { check: true })).stdout.trim();
  if ((await state()) === "active") return;
  const init = await run("docker", ["swarm", "init", "--advertise-addr", "127.0.0.1"]);
  if (init.code !== 0 && (await state()) !== "active") {
    throw new Error(`docker swarm init failed: ${init.stderr.trim()}`);
  }
}

/**
 * after() of a Swarm test: waits (up to 30 s, never throws) until the task
 * containers of `service` (already `docker service rm`ed) are gone, so that
 * `swarm leave` does not race them, then leaves the swarm if `leave` (the
 * test initialised it).
 */
export async function finishSwarm(service: string, leave: boolean): Promise<void> {
  await waitFor(
    async () => (await run("docker", ["ps", "-aq", "--filter", `label=com.docker.swarm.service.name=${service}`])).stdout.trim() === "" || undefined,
    {
      timeoutMs: 30_000,
      what: "task containers removed",
    },
  ).catch(() => undefined);
  if (leave) await run("docker", ["swarm", "leave", "--force"]);
}

/**
 * Issue #6 fault suite: stops the shared dockerd (SIGTERM to the pid in its
 * pid file; it stops its containers first) and resolves once the process is
 * gone. Callers MUST call startDockerd() afterwards (in an after() hook too).
 */
export async function stopDockerd(timeoutMs = 60_000): Promise<void> {
  const pid = readPid(DOCKERD_PIDFILE);
  if (pid === undefined || !pidFileAlive(DOCKERD_PIDFILE)) return;
  process.kill(pid, "SIGTERM");
  await waitFor(() => !pidFileAlive(DOCKERD_PIDFILE) || undefined, { timeoutMs, intervalMs: 100, what: `dockerd (pid ${pid}) to exit` });
  pending = undefined;
}

/**
 * Starts dockerd again after stopDockerd() (no-op when a daemon answers) and waits for `docker info`,
 * up to `timeoutMs`: a swarm manager under load can take well over ensureDockerd's 60 s to answer.
 */
export async function startDockerd(timeoutMs = 240_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  pending = undefined;
  try {
    await ensureDockerd();
  } catch (err) {
    if (Date.now() >= deadline) throw err;
    await waitFor(async () => (await dockerReady()) || undefined, {
      timeoutMs: deadline - Date.now(),
      intervalMs: 500,
      what: `docker info after restart (log ${DOCKERD_LOG})`,
    });
  }
}
