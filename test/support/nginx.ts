/**
 * A real nginx master (non-daemon) with its own prefix directory, for tests
 * that check rendered configs and reloads.
 *
 * Layout under `<prefix>` (/tmp/dockbind-testbed/nginx-XXXX): nginx.conf (main,
 * written once), conf.d/*.conf (included inside `http {}`; drop server blocks
 * there), error.log (level notice: every reload logs "reconfiguring"),
 * nginx.pid, temp/ (all temp paths, so nothing touches /var/lib/nginx).
 * The main conf defines no server: nginx listens on nothing until a conf.d
 * file does. The master is tracked by procs.ts (killed on test exit).
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { httpGet, type HttpResponse } from "./http.js";
import { ensureBedRoot, startManaged } from "./procs.js";
import { waitFor } from "./wait.js";
import { childPids } from "../../src/actuators/lb/procfs.js";
import { startedAfterNewestFile } from "./loadedConfig.js";
import { streamSupport } from "../../src/actuators/lb/nginxStream.js";

export interface NginxHandle {
  readonly prefix: string;
  /** Directory included as `conf.d/*.conf` inside `http {}`. */
  readonly confDir: string;
  /** With `startNginx({ stream: true })`: `stream.d/`, included as `stream { include stream.d/*.conf; }` at top level. */
  readonly streamDir?: string;
  readonly mainConf: string;
  readonly errorLog: string;
  /** The master's pid file (the main config's `pid`); it holds the master's pid once startNginx resolved. */
  readonly pidFile: string;
  /** `['-p', prefix, '-c', mainConf]`: append `-t` or `-s reload`. */
  readonly nginxArgs: readonly string[];
  /** Reloads (SIGHUPs) the master has taken, counted from its "reconfiguring" log lines. Reload is async: poll. */
  reloadCount(): Promise<number>;
  /** GET http://127.0.0.1:port{path} without keep-alive. */
  get(port: number, path?: string): Promise<Pick<HttpResponse, "status" | "body">>;
  /**
   * Resolves once no reload is in flight: the master has exactly one worker, no
   * worker of an older generation is still shutting down (they would answer
   * with the old upstream set and skew round-robin samples), and that worker
   * started after the newest file in conf.d/ (and stream.d/) was written, so a
   * file renamed into place whose reload is still coming is not taken as live.
   */
  settled(timeoutMs?: number): Promise<void>;
  /**
   * Resolves once the master has exactly one worker and it is not shutting down: no worker of an
   * older generation can answer from the old config. Unlike settled(), a file written since (a
   * rejected render's validation leaves the directory's mtime newer) is not waited for.
   */
  oneGeneration(timeoutMs?: number): Promise<void>;
  /** SIGTERM (fast shutdown), resolves when the master has exited. Idempotent. */
  stop(): Promise<void>;
}

export interface StartNginxOptions {
  /** Also a `stream {}` context including `stream.d/*.conf` (loads the dynamic stream module when nginx has one). */
  readonly stream?: boolean;
}

/** The main config's lines for `stream.d/`: `[load_module, stream {}]`; throws when nginx has no stream module. */
async function streamLines(streamDir: string): Promise<{ readonly head: string; readonly tail: string }> {
  const support = await streamSupport("nginx", 10_000);
  if (support.kind === "missing") throw new Error(`nginx has no stream module (${support.detail}); run make testbed (libnginx-mod-stream)`);
  return {
    head: support.kind === "dynamic" ? `load_module ${support.module};\n` : "",
    tail: `stream {\n  include ${streamDir}/*.conf;\n}\n`,
  };
}

export async function startNginx(opts: StartNginxOptions = {}): Promise<NginxHandle> {
  const prefix = mkdtempSync(join(ensureBedRoot(), "nginx-"));
  // Workers run as `nobody` when the master is root: let them reach temp/.
  chmodSync(prefix, 0o755);
  const confDir = join(prefix, "conf.d");
  const temp = join(prefix, "temp");
  mkdirSync(confDir);
  mkdirSync(temp);
  const streamDir = opts.stream === true ? join(prefix, "stream.d") : undefined;
  if (streamDir !== undefined) mkdirSync(streamDir);
  const stream = streamDir === undefined ? { head: "", tail: "" } : await streamLines(streamDir);
  const mainConf = join(prefix, "nginx.conf");
  const errorLog = join(prefix, "error.log");
  const pidFile = join(prefix, "nginx.pid");
  writeFileSync(mainConf, stream.head + mainConfig(confDir, temp, errorLog, pidFile) + stream.tail);
  const nginxArgs = ["-p", prefix, "-c", mainConf];

  const proc = startManaged("nginx", nginxArgs, join(prefix, "stderr.log"));
  const died = new AbortController();
  void proc.exited.then(() => {
    died.abort(new Error(`nginx exited early, see ${join(prefix, "stderr.log")} and ${errorLog}`));
  });
  try {
    await waitFor(() => existsSync(pidFile) && readFileSync(pidFile, "utf8").trim() === String(proc.pid), {
      timeoutMs: 10_000,
      what: `nginx master pid file ${pidFile}`,
      signal: died.signal,
    });
  } catch (err) {
    await proc.stop("SIGKILL");
    throw err;
  }

  return {
    prefix,
    confDir,
    ...(streamDir !== undefined ? { streamDir } : {}),
    mainConf,
    errorLog,
    pidFile,
    nginxArgs,
    reloadCount: () => Promise.resolve(countReloads(errorLog)),
    get: async (port, path = "/") => {
      const r = await httpGet(`http://127.0.0.1:${port}${path}`);
      return { status: r.status, body: r.body };
    },
    settled: async (timeoutMs = 10_000) => {
      const dirs = streamDir === undefined ? [confDir] : [confDir, streamDir];
      await waitFor(
        () => {
          const pid = soleWorker(proc.pid);
          return pid !== undefined && startedAfterNewestFile(pid, dirs) ? true : undefined;
        },
        { timeoutMs, intervalMs: 20, what: "nginx reload settled (one live worker, started after the newest included file)" },
      );
    },
    oneGeneration: async (timeoutMs = 10_000) => {
      await waitFor(() => (soleWorker(proc.pid) !== undefined ? true : undefined), {
        timeoutMs,
        intervalMs: 20,
        what: "one nginx worker generation (no old worker shutting down)",
      });
    },
    stop: async () => {
      await proc.stop("SIGTERM", 10_000);
    },
  };
}

/** The master's only worker when it has exactly one and that one is not shutting down, else undefined. */
function soleWorker(masterPid: number): number | undefined {
  const pids = childPids(masterPid);
  const workers = pids.map(cmdline);
  if (workers.length !== 1 || workers[0]?.includes("worker process") !== true || workers[0].includes("shutting down")) return undefined;
  return pids[0];
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}

function countReloads(errorLog: string): number {
  if (!existsSync(errorLog)) return 0;
  // Each SIGHUP logs "signal 1 (SIGHUP) received from N, reconfiguring" and then a bare "...: reconfiguring".
  return readFileSync(errorLog, "utf8")
    .split("\n")
    .filter((l) => l.endsWith(": reconfiguring")).length;
}

function mainConfig(confDir: string, temp: string, errorLog: string, pidFile: string): string {
  return `# dockbind test bed (test/support/nginx.ts)
daemon off;
worker_processes 1;
pid ${pidFile};
error_log ${errorLog} notice;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${temp}/client_body;
  proxy_temp_path ${temp}/proxy;
  fastcgi_temp_path ${temp}/fastcgi;
  uwsgi_temp_path ${temp}/uwsgi;
  scgi_temp_path ${temp}/scgi;
  include ${confDir}/*.conf;
}
`;
}
