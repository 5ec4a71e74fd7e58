/**
 * LoadBalancerDriver for haproxy (tested with Debian's 2.6). Blocking: each
 * method spawns haproxy or talks to its master CLI and waits, up to
 * `timeoutMs`. No method touches generated files; all are idempotent.
 *
 * haproxy facts this relies on (verified with 2.6.12):
 * - `haproxy -c` parses and checks without binding any socket, so it is safe
 *   while haproxy runs. `-f DIR` loads only `*.cfg` files of DIR, in C-locale
 *   order, after the files named before it (the main config's `defaults`
 *   apply to them).
 * - Graceful reload = master-worker mode (`-W`/`-Ws`) with a master CLI socket
 *   (`-S PATH`, Debian's default `/run/haproxy-master.sock`). The master CLI
 *   command `reload` re-executes the master, which forks a new worker that
 *   takes over the listening sockets (`-x sockpair@N`: no refused connection)
 *   and soft-stops the old one (`-sf`): in-flight requests finish.
 * - 2.6's `reload` answers nothing, so completion is observed with
 *   `show proc`: the master's `<reloads>` counter increments once the new
 *   master is up, and `[failed: N]` counts reloads that did not load. reload()
 *   waits for that, which also serialises reloads (a second re-exec is never
 *   requested while one is in flight). SIGUSR2 to the master does the same
 *   but races with the re-exec (default action of an unhandled SIGUSR2 is to
 *   terminate), which is why it is not used.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LiveConfig, LoadBalancerDriver } from "./driver.js";
import { errorMessage, LbError } from "./errors.js";
import { runFile } from "./exec.js";

export interface HaproxyDriverOptions {
  /** Binary to run; default "haproxy" (looked up in PATH). */
  readonly haproxyBin?: string;
  /** The live configuration as `-f` paths in load order, e.g. [mainCfg, outputDir]. */
  readonly configPaths: readonly string[];
  /** The running master's CLI socket (`haproxy -W -S PATH`). */
  readonly masterSocket: string;
  /** Per-invocation timeout; default 10 s. */
  readonly timeoutMs?: number;
}

/** Throwaway config placed before a candidate: haproxy -c then checks the snippet on its own. */
const CANDIDATE_WRAPPER = [
  "# dockbind: isolated check of one generated snippet",
  "global",
  "    maxconn 256",
  "defaults",
  "    mode http",
  "    timeout connect 5s",
  "    timeout client 30s",
  "    timeout server 30s",
  "",
].join("\n");

export interface MasterProcState {
  readonly reloads: number;
  readonly failed: number;
}

/** Parses `show proc` of the master CLI: the master line carries `<reloads> [failed: N]`. */
export function parseShowProc(text: string): MasterProcState | undefined {
  const m = /^\d+\s+master\s+(\d+)(?:\s+\[failed:\s*(\d+)\])?/m.exec(text);
  if (m?.[1] === undefined) return undefined;
  return { reloads: Number(m[1]), failed: Number(m[2] ?? "0") };
}

/** Sends one command to a haproxy master CLI socket and resolves with the whole answer. */
function masterCommand(socket: string, command: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const conn = createConnection(socket);
    const timer = setTimeout(() => {
      conn.destroy(new Error(`no answer within ${timeoutMs}ms`));
    }, timeoutMs);
    conn.on("connect", () => {
      // Half-close: the master CLI answers and closes only once our side is done.
      conn.end(`${command}\n`);
    });
    conn.on("data", (d: Buffer) => chunks.push(d));
    conn.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    conn.on("close", (hadError) => {
      clearTimeout(timer);
      if (!hadError) resolve(Buffer.concat(chunks).toString("utf8"));
    });
  });
}

export class HaproxyDriver implements LoadBalancerDriver {
  readonly kind = "haproxy" as const;
  private readonly bin: string;
  private readonly live: readonly string[];
  private readonly timeoutMs: number;

  constructor(private readonly opts: HaproxyDriverOptions) {
    this.bin = opts.haproxyBin ?? "haproxy";
    this.live = opts.configPaths.flatMap((p) => ["-f", p]);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** `haproxy -c -f <wrapper: global + defaults> -f <candidate>` in a private mkdtemp dir. */
  async validateCandidate(candidatePath: string): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), "dockbind-haproxy-c-"));
    try {
      const wrapper = join(dir, "wrapper.cfg");
      await writeFile(wrapper, CANDIDATE_WRAPPER, { mode: 0o600 });
      const r = await runFile(this.bin, ["-c", "-f", wrapper, "-f", candidatePath], this.timeoutMs);
      if (!r.ok) throw new LbError("ValidationFailed", `haproxy -c rejected ${candidatePath}: ${r.detail}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** `haproxy -c -f <main> -f <dir>`: the whole live configuration. */
  async validateLive(): Promise<LiveConfig> {
    const r = await runFile(this.bin, ["-c", ...this.live], this.timeoutMs);
    if (!r.ok) throw new LbError("ValidationFailed", `haproxy -c (live config) failed: ${r.detail}`);
    return {}; // haproxy loads every file of the -f directory: nothing to find missing
  }

  /** Master CLI `reload`, then waits until `show proc` reports it done (and not failed). */
  async reload(): Promise<void> {
    const deadline = Date.now() + this.timeoutMs;
    const before = await this.state();
    try {
      await masterCommand(this.opts.masterSocket, "reload", this.timeoutMs);
    } catch (err) {
      throw new LbError("ReloadFailed", `haproxy master CLI ${this.opts.masterSocket}: reload: ${errorMessage(err)}`, { cause: err });
    }
    for (;;) {
      // While the master re-executes, its socket refuses connections: not an error yet.
      const now = await this.state().catch(() => undefined);
      if (now !== undefined && now.reloads > before.reloads) {
        if (now.failed > before.failed) throw new LbError("ReloadRejected", "haproxy master reported the reload as failed (old workers keep serving)");
        return;
      }
      if (Date.now() >= deadline) throw new LbError("ReloadFailed", `haproxy reload not confirmed by the master within ${this.timeoutMs}ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  private async state(): Promise<MasterProcState> {
    let text: string;
    try {
      text = await masterCommand(this.opts.masterSocket, "show proc", this.timeoutMs);
    } catch (err) {
      throw new LbError("ReloadFailed", `haproxy master CLI ${this.opts.masterSocket}: ${errorMessage(err)}`, { cause: err });
    }
    const s = parseShowProc(text);
    if (s === undefined) throw new LbError("ReloadFailed", `haproxy master CLI ${this.opts.masterSocket}: unexpected show proc answer`);
    return s;
  }
}
