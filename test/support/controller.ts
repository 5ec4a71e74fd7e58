/**
 * Runs the real controller (`src/cli/main.ts`) as a child process with JSON
 * logs in a file, tracked by procs.ts so it never outlives the test.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBedRoot, startManaged, type ManagedProcess } from "./procs.js";
import { waitFor } from "./wait.js";

const REPO = join(import.meta.dirname, "..", "..");

export interface ControllerOptions {
  readonly bindingsDir: string;
  readonly consulAddr: string;
  readonly outputDir: string;
  /** nginx `-p PREFIX -c CONF` args (NginxHandle.nginxArgs). */
  readonly nginxArgs: readonly string[];
  readonly node: string;
  readonly extraArgs?: readonly string[];
  /** Log file name inside the bed root; several runs may append to one file. */
  readonly logName?: string;
  /** The log message startController() waits for (default "controller started"; a standby logs "leader election: waiting for the lease"). */
  readonly readyLog?: string;
  /** Overrides DOCKBIND_TEST_ENTRY (see controllerCommand): "built" for RSS/CPU figures of the controller as deployed. */
  readonly entry?: "source" | "built";
}

/**
 * The node arguments that run the controller's CLI, before its own arguments.
 * - "built" (or, when `entry` is not given, DOCKBIND_TEST_ENTRY=built): `dist/src/cli/main.js`. make's
 *   integration target builds dist/ first and sets it: a compiled start costs about half the CPU of a
 *   start through tsx (0.7 s against 1.3 s, measured), and dozens of controllers start per run.
 * - otherwise `src/cli/main.ts` through tsx, so a file run by hand tests the sources as they are.
 * Throws when the compiled entry is asked for and dist/ has not been built.
 */
export function controllerCommand(entry?: "source" | "built"): string[] {
  const which = entry ?? (process.env.DOCKBIND_TEST_ENTRY === "built" ? "built" : "source");
  if (which === "source") return ["--import", "tsx", join(REPO, "src/cli/main.ts")];
  const main = join(REPO, "dist/src/cli/main.js");
  if (!existsSync(main)) throw new Error(`${main} is missing: run \`make build\` (or unset DOCKBIND_TEST_ENTRY)`);
  return [main];
}

export interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly [field: string]: unknown;
}

export interface ControllerHandle {
  readonly proc: ManagedProcess;
  readonly logFile: string;
  /** JSON log lines written by THIS run (earlier runs sharing the file are skipped). */
  logs(): LogLine[];
  /** Resolves with the first log line of this run matching `pred`. */
  waitForLog(pred: (l: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  stop(): Promise<void>;
}

/** The winston JSON lines of `logFile` from byte `offset` on (other output is skipped). */
export function readJsonLog(logFile: string, offset: number): LogLine[] {
  return readFileSync(logFile)
    .subarray(offset)
    .toString("utf8")
    .split("\n")
    .flatMap((line) => {
      try {
        const v = JSON.parse(line) as LogLine;
        return typeof v.message === "string" ? [v] : [];
      } catch {
        return [];
      }
    });
}

/**
 * Resolves once BOTH loops have finished `times` successful reconciles of
 * binding `key` (`<ns>/<name>`) in this run's log — proof that full resyncs
 * happened, for "converged => zero writes" assertions. Needs --log-level debug.
 */
export async function waitForReconciles(handle: Pick<ControllerHandle, "logs">, key: string, times: number, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    () => {
      const done = handle.logs().filter((l) => l.message === "reconciled" && l.outcome === "success");
      const registrar = done.filter((l) => String(l.key).startsWith(`binding/${key}@`)).length;
      const renderer = done.filter((l) => l.key === key).length;
      return registrar >= times && renderer >= times ? true : undefined;
    },
    { timeoutMs, what: `${times} registrar and ${times} renderer reconciles of ${key}` },
  );
}

export function controllerArgs(o: ControllerOptions): string[] {
  const prefix = o.nginxArgs[o.nginxArgs.indexOf("-p") + 1] ?? "";
  const conf = o.nginxArgs[o.nginxArgs.indexOf("-c") + 1] ?? "";
  return [
    "--docker-only",
    "--bindings",
    o.bindingsDir,
    "--consul-addr",
    o.consulAddr,
    "--lb-output-dir",
    o.outputDir,
    "--nginx-prefix",
    prefix,
    "--nginx-conf",
    conf,
    "--node",
    o.node,
    "--log-format",
    "json",
    // Any free port unless extraArgs says otherwise (the last --metrics-addr wins): runs never clash on 9464.
    "--metrics-addr",
    "127.0.0.1:0",
    ...(o.extraArgs ?? []),
  ];
}

export async function startController(o: ControllerOptions): Promise<ControllerHandle> {
  const logFile = join(ensureBedRoot(), o.logName ?? `controller-${o.node}-${process.pid}.log`);
  let offset = 0;
  try {
    offset = readFileSync(logFile).length;
  } catch {
    offset = 0;
  }
  // DOCKBIND_TEST_NODE_FLAGS: extra node flags for controllers under test, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"
  // (node refuses --cpu-prof in NODE_OPTIONS).
  const nodeFlags = (process.env.DOCKBIND_TEST_NODE_FLAGS ?? "").split(/\s+/).filter((f) => f !== "");
  const proc = startManaged(process.execPath, [...nodeFlags, ...controllerCommand(o.entry), ...controllerArgs(o)], logFile);
  const logs = (): LogLine[] => readJsonLog(logFile, offset);
  const handle: ControllerHandle = {
    proc,
    logFile,
    logs,
    waitForLog: (pred, what, timeoutMs = 20_000) =>
      waitFor(
        () => {
          if (!proc.alive()) throw new Error(`controller exited; log: ${logFile}`);
          return logs().find(pred);
        },
        { timeoutMs, what },
      ),
    stop: async () => {
      await proc.stop("SIGTERM", 10_000);
    },
  };
  const ready = o.readyLog ?? "controller started";
  await handle.waitForLog((l) => l.message === ready, ready);
  return handle;
}
