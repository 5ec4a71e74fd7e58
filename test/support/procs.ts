/**
 * Long-running child processes of a test file (consul agents, nginx masters).
 *
 * Contract: every process started with `startManaged` is tracked until it
 * exits; when the test process exits (normally, or on SIGINT/SIGTERM/SIGHUP)
 * all tracked processes still alive are SIGKILLed, so a test can never leave
 * agents behind. Each child leads its own process group and "kill" means the
 * whole group (a SIGKILLed nginx master would otherwise orphan its workers).
 * Children are unref'd: a forgotten handle does not keep the test process
 * alive (the exit hook then kills it).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, writeFileSync } from "node:fs";

/** Root of everything the test bed writes; teardown.sh kills processes whose command line contains it. */
export const BED_ROOT = "/tmp/dockbind-testbed";

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly pid: number;
  readonly logFile: string;
  /** Resolves once the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** True until the process has exited. */
  alive(): boolean;
  /**
   * Sends `signal` (default SIGTERM) to the process, SIGKILLs its group after
   * `graceMs` (default 10 s); resolves when it has exited, leftovers in its group killed.
   */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<ExitInfo>;
  /** SIGKILL the process group now, synchronously; does not wait. */
  kill(): void;
}

const live = new Set<ManagedProcess>();

/** All managed processes still running in this test process. */
export function liveProcesses(): readonly ManagedProcess[] {
  return [...live];
}

export function ensureBedRoot(): string {
  mkdirSync(BED_ROOT, { recursive: true, mode: 0o755 });
  return BED_ROOT;
}

/**
 * Raises the CPU share of `pid`'s autogroup to `nice` (sched(7), "The autogroup feature"). A managed
 * process leads its own session, hence its own autogroup, which competes with every other session as a
 * whole whatever the process's own nice value: a test that asserts a child's timing (the churn soak's
 * controller) raises that group. Needs CAP_SYS_NICE (the test bed runs as root). Returns false when the
 * kernel or the permissions refuse; the process then keeps the normal share.
 */
export function raiseCpuShare(pid: number, nice = -10): boolean {
  try {
    writeFileSync(`/proc/${String(pid)}/autogroup`, String(nice));
    return true;
  } catch {
    return false;
  }
}

/** Spawns `cmd args` with stdout+stderr appended to `logFile`, tracked as described above. */
export function startManaged(cmd: string, args: readonly string[], logFile: string): ManagedProcess {
  ensureBedRoot();
  installExitHook();
  const fd = openSync(logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { stdio: ["ignore", fd, fd], detached: true });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) {
    child.once("error", () => undefined); // spawn failure (ENOENT...): reported by the throw below
    throw new Error(`could not spawn ${cmd}: is it installed? (test/bed/install.sh)`);
  }
  let running = true;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once("exit", (code, signal) => {
      running = false;
      live.delete(proc);
      killGroup(pid);
      resolve({ code, signal });
    });
    child.once("error", () => {
      running = false;
      live.delete(proc);
      resolve({ code: null, signal: null });
    });
  });
  const proc: ManagedProcess = {
    pid,
    logFile,
    exited,
    alive: () => running,
    kill: () => {
      if (running) killGroup(pid);
    },
    stop: async (signal = "SIGTERM", graceMs = 10_000) => {
      if (!running) return exited;
      child.ref(); // keep the event loop alive while we wait
      child.kill(signal);
      const timer = setTimeout(() => {
        killGroup(pid);
      }, graceMs);
      const info = await exited;
      clearTimeout(timer);
      return info;
    },
  };
  live.add(proc);
  child.unref();
  return proc;
}

function killGroup(pgid: number): void {
  try {
    process.kill(-pgid, "SIGKILL");
  } catch {
    // ESRCH: the group is already gone
  }
}

let hooked = false;
function installExitHook(): void {
  if (hooked) return;
  hooked = true;
  const killAll = (): void => {
    for (const p of live) p.kill();
  };
  process.once("exit", killAll);
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      killAll();
      process.kill(process.pid, sig); // re-raise with the default action (listener is gone)
    });
  }
}
