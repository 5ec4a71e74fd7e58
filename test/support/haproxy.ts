/**
 * A real haproxy master (master-worker mode, foreground) with its own config
 * directory, for tests of the haproxy renderer path.
 *
 * Layout under `<dir>` (/tmp/dockbind-testbed/haproxy-XXXX): haproxy.cfg (main:
 * global + defaults, written once), conf.d/*.cfg (generated files, loaded
 * after the main file by `-f conf.d`), master.sock (master CLI, `-S`),
 * haproxy.pid, haproxy.log (stdout+stderr: every reload logs
 * "Reloading HAProxy"). The master starts with no frontend: it listens on
 * nothing until a conf.d file defines one. Tracked by procs.ts.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { httpGet, type HttpResponse } from "./http.js";
import { startedAfterNewestFile } from "./loadedConfig.js";
import { ensureBedRoot, startManaged, type ManagedProcess } from "./procs.js";
import { waitFor } from "./wait.js";

export interface HaproxyHandle {
  readonly dir: string;
  readonly mainCfg: string;
  /** Directory of generated `*.cfg` files (`--haproxy-output-dir`). */
  readonly confDir: string;
  readonly masterSocket: string;
  readonly logFile: string;
  readonly proc: ManagedProcess;
  /** Controller flags pointing at this haproxy. */
  readonly controllerArgs: readonly string[];
  /** Reloads the master has started, counted from its "Reloading HAProxy" log lines. */
  reloadCount(): number;
  /** Master CLI command (e.g. "show proc"). */
  master(command: string): Promise<string>;
  /** Resolves once exactly one worker is left (old workers finished after a reload) and it started after the newest file in confDir was written. */
  settled(timeoutMs?: number): Promise<void>;
  get(port: number, path?: string): Promise<Pick<HttpResponse, "status" | "body">>;
  stop(): Promise<void>;
}

const MAIN_CFG = `# dockbind test bed (test/support/haproxy.ts)
global
    maxconn 512
    log stderr format short local0 notice

defaults
    mode http
    log global
    timeout connect 2s
    timeout client 10s
    timeout server 10s
`;

function masterCommand(socket: string, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const conn = createConnection(socket);
    conn.setTimeout(5_000, () => conn.destroy(new Error(`master CLI ${command}: timeout`)));
    conn.on("connect", () => conn.end(`${command}\n`));
    conn.on("data", (d: Buffer) => chunks.push(d));
    conn.on("error", reject);
    conn.on("close", (hadError) => {
      if (!hadError) resolve(Buffer.concat(chunks).toString("utf8"));
    });
  });
}

export async function startHaproxy(): Promise<HaproxyHandle> {
  const dir = mkdtempSync(join(ensureBedRoot(), "haproxy-"));
  const confDir = join(dir, "conf.d");
  mkdirSync(confDir);
  const mainCfg = join(dir, "haproxy.cfg");
  writeFileSync(mainCfg, MAIN_CFG);
  const masterSocket = join(dir, "master.sock");
  const pidFile = join(dir, "haproxy.pid");
  const logFile = join(dir, "haproxy.log");
  const proc = startManaged("haproxy", ["-W", "-db", "-S", masterSocket, "-p", pidFile, "-f", mainCfg, "-f", confDir], logFile);
  const died = new AbortController();
  void proc.exited.then(() => {
    died.abort(new Error(`haproxy exited early, see ${logFile}`));
  });
  try {
    await waitFor(async () => existsSync(masterSocket) && /\bworker\b/.test(await masterCommand(masterSocket, "show proc")), {
      timeoutMs: 10_000,
      what: `haproxy master CLI ${masterSocket}`,
      signal: died.signal,
    });
  } catch (err) {
    await proc.stop("SIGKILL");
    throw err;
  }
  const handle: HaproxyHandle = {
    dir,
    mainCfg,
    confDir,
    masterSocket,
    logFile,
    proc,
    controllerArgs: ["--haproxy-config", mainCfg, "--haproxy-output-dir", confDir, "--haproxy-master-socket", masterSocket],
    reloadCount: () =>
      readFileSync(logFile, "utf8")
        .split("\n")
        .filter((l) => l.includes("Reloading HAProxy")).length,
    master: (command) => masterCommand(masterSocket, command),
    settled: async (timeoutMs = 15_000) => {
      await waitFor(
        async () => {
          const text = await masterCommand(masterSocket, "show proc");
          const workers = text.split("\n").filter((l) => /^\d+\s+worker\b/.test(l));
          // `show proc` lists the current worker and, under "# old workers", those still finishing.
          return workers.length === 1 && startedAfterNewestFile(parseInt(workers[0] ?? "", 10), [confDir]) ? true : undefined;
        },
        { timeoutMs, intervalMs: 50, what: "haproxy reload settled (one worker, started after the newest generated file)" },
      );
    },
    get: async (port, path = "/") => {
      const r = await httpGet(`http://127.0.0.1:${port}${path}`);
      return { status: r.status, body: r.body };
    },
    stop: async () => {
      await proc.stop("SIGTERM", 10_000);
    },
  };
  return handle;
}
