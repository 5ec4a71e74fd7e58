/**
 * LoadBalancerDriver for nginx. Blocking: the validations spawn the nginx
 * binary (execFile, never a shell) and wait for it, up to `timeoutMs`; a
 * reload signals the master itself. No method touches generated files; all
 * are idempotent.
 *
 * nginx facts this relies on:
 * - `nginx -t` really binds listen sockets; EADDRINUSE is tolerated in test
 *   mode (so a running nginx does not break it) but EADDRNOTAVAIL / EACCES are
 *   fatal: a listen address not configured on this host fails validation.
 * - `nginx -s reload` only sends SIGHUP to the master named by the pid file,
 *   after parsing the whole configuration to find that file; reload() sends
 *   the signal itself (the pid file is found once, see pidFile). Either way
 *   the master may reject the new config and keep the old one (e.g. a listen
 *   address taken by another process, which `nginx -t` tolerates); that is
 *   why the writer runs validateLive() before reload(), and why reload()
 *   confirms it: a master that applied a new config starts new worker
 *   processes, one that rejected it keeps the old ones.
 * - The pid file is found from `args` (-p/-c), so they must match the
 *   running master.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { LiveConfig, LoadBalancerDriver } from "./driver.js";
import { errorMessage, LbError } from "./errors.js";
import { runFile, runFileOutput } from "./exec.js";
import { isUnknownStreamDirective, streamModuleMissing, streamSupport, type StreamSupport } from "./nginxStream.js";
import { childPids, processAlive } from "./procfs.js";

export interface NginxDriverOptions {
  /** Binary to run; default "nginx" (looked up in PATH). */
  readonly nginxBin?: string;
  /** Extra args for the live config, e.g. ['-p', prefix, '-c', mainConf]; used by validateLive and reload. */
  readonly args?: readonly string[];
  /** Per-invocation timeout; default 10 s. */
  readonly timeoutMs?: number;
  /** How long reload() waits for the master's new worker processes; default 3 s. */
  readonly reloadConfirmMs?: number;
  /** Candidates in this directory are `stream {}` snippets (`protocol: tcp|udp`), checked in a stream wrapper. */
  readonly streamDir?: string;
}

const CONFIRM_POLL_MS = 25;

/** The value after `flag` in an nginx argument list (`-p DIR`, `-c FILE`). */
function argAfter(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The main-context `pid` directive of an nginx config text (comments stripped), if any. */
export function pidDirective(conf: string): string | undefined {
  const text = conf.replace(/#[^\n]*/g, "");
  const m = /(?:^|[;{}\s])pid\s+(?:"([^"]+)"|'([^']+)'|([^\s;]+))\s*;/.exec(text);
  return m?.[1] ?? m?.[2] ?? m?.[3];
}

/** nginx double-quoted string: `\` and `"` escaped; control chars refused. */
function nginxQuote(s: string): string {
  // eslint-disable-next-line no-control-regex -- we are rejecting control chars on purpose
  if (/[\u0000-\u001f\u007f]/.test(s)) throw new LbError("ValidationFailed", "path contains control characters");
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Throwaway main config that includes one snippet in `stream {}` (loading the module first when it is dynamic). */
function streamWrapperConfig(dir: string, candidatePath: string, support: StreamSupport): string {
  return [
    "# dockbind: isolated check of one generated stream snippet",
    ...(support.kind === "dynamic" ? [`load_module ${nginxQuote(support.module)};`] : []),
    `pid ${nginxQuote(join(dir, "nginx.pid"))};`,
    "error_log stderr;",
    "events {}",
    "stream {",
    `    include ${nginxQuote(candidatePath)};`,
    "}",
    "",
  ].join("\n");
}

/** Throwaway main config that includes one snippet in `http {}`; everything nginx writes stays in `dir`. */
function wrapperConfig(dir: string, candidatePath: string): string {
  const q = (name: string): string => nginxQuote(join(dir, name));
  return [
    "# dockbind: isolated check of one generated snippet",
    `pid ${q("nginx.pid")};`,
    "error_log stderr;",
    "events {}",
    "http {",
    "    access_log off;",
    `    client_body_temp_path ${q("client_body")};`,
    `    proxy_temp_path ${q("proxy")};`,
    `    fastcgi_temp_path ${q("fastcgi")};`,
    `    uwsgi_temp_path ${q("uwsgi")};`,
    `    scgi_temp_path ${q("scgi")};`,
    `    include ${nginxQuote(candidatePath)};`,
    "}",
    "",
  ].join("\n");
}

/** Bound of `nginx -T`'s dump (the whole configuration, every included file). */
const LIVE_DUMP_MAX_BYTES = 64 * 1024 * 1024;

/** The `# configuration file PATH:` headers of `nginx -T`'s dump: every file nginx loaded. Pure. */
export function loadedFiles(dump: string): ReadonlySet<string> {
  const files = new Set<string>();
  for (const m of dump.matchAll(/^# configuration file (.+):$/gm)) if (m[1] !== undefined) files.add(m[1]);
  return files;
}

export class NginxDriver implements LoadBalancerDriver {
  readonly kind = "nginx" as const;
  private readonly bin: string;
  private readonly args: readonly string[];
  private readonly timeoutMs: number;
  private readonly confirmMs: number;
  /** Resolved once (see pidFile); null = cannot be known, reloads are not confirmed. */
  private pidPath: string | null | undefined;
  private readonly streamDir: string | undefined;
  /** `nginx -V` read once, on the first stream candidate. */
  private stream: Promise<StreamSupport> | undefined;

  constructor(opts: NginxDriverOptions = {}) {
    this.bin = opts.nginxBin ?? "nginx";
    this.args = opts.args ?? [];
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.confirmMs = opts.reloadConfirmMs ?? 3_000;
    this.streamDir = opts.streamDir === undefined ? undefined : resolve(opts.streamDir);
  }

  /**
   * `nginx -t` on a wrapper config in a private mkdtemp dir that includes only `candidatePath`
   * (in `stream {}` for a candidate in the stream dir; StreamModuleMissing without the module).
   */
  async validateCandidate(candidatePath: string): Promise<void> {
    const isStream = this.streamDir !== undefined && resolve(dirname(candidatePath)) === this.streamDir;
    const support = isStream ? await this.streamSupport() : undefined;
    if (support?.kind === "missing") throw support.ran ? streamModuleMissing(support.detail) : new LbError("ValidationFailed", support.detail);
    const dir = await mkdtemp(join(tmpdir(), "dockbind-nginx-t-"));
    try {
      const conf = join(dir, "nginx.conf");
      await writeFile(conf, support === undefined ? wrapperConfig(dir, candidatePath) : streamWrapperConfig(dir, candidatePath, support), { mode: 0o600 });
      const r = await runFile(this.bin, ["-t", "-e", "stderr", "-p", `${dir}/`, "-c", conf], this.timeoutMs);
      if (!r.ok) throw new LbError("ValidationFailed", `nginx -t rejected ${candidatePath}: ${r.detail}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** `nginx -T <args>`: checks the whole live configuration and lists the files it loaded. */
  async validateLive(): Promise<LiveConfig> {
    const r = await runFileOutput(this.bin, ["-T", ...this.args], this.timeoutMs, LIVE_DUMP_MAX_BYTES);
    if (!r.ok && isUnknownStreamDirective(r.detail)) throw streamModuleMissing(`nginx -t (live config): ${r.detail}`);
    if (!r.ok) throw new LbError("ValidationFailed", `nginx -t (live config) failed: ${r.detail}`);
    return { files: loadedFiles(r.stdout) };
  }

  /** Cached once found; a missing module is looked for again next time (the operator may install it). */
  private async streamSupport(): Promise<StreamSupport> {
    this.stream ??= streamSupport(this.bin, this.timeoutMs);
    const support = await this.stream;
    if (support.kind === "missing") this.stream = undefined;
    return support;
  }

  /**
   * SIGHUP to the master named by the pid file, confirmed: resolves once the master has
   * started a new worker process; ReloadRejected when it kept its old workers for
   * `reloadConfirmMs` (it rejected the config), ReloadFailed when the signal could not
   * be sent or the master died. When the pid file names no live process it runs
   * `nginx -s reload <args>` (nginx's own lookup) and, if that succeeds, resolves unconfirmed.
   */
  async reload(): Promise<void> {
    const master = await this.masterPid();
    if (master === undefined) {
      const r = await runFile(this.bin, ["-s", "reload", ...this.args], this.timeoutMs);
      if (!r.ok) throw new LbError("ReloadFailed", `nginx -s reload failed: ${r.detail}`);
      return;
    }
    const before = new Set(childPids(master));
    try {
      process.kill(master, "SIGHUP");
    } catch (err) {
      throw new LbError("ReloadFailed", `reload signal to the nginx master ${master} failed: ${errorMessage(err)}`);
    }
    await this.confirm(master, before);
  }

  private async confirm(master: number, before: ReadonlySet<number>): Promise<void> {
    const deadline = performance.now() + this.confirmMs;
    for (;;) {
      if (!processAlive(master)) throw new LbError("ReloadFailed", `nginx master ${master} exited during the reload`);
      if (childPids(master).some((pid) => !before.has(pid))) return;
      if (performance.now() >= deadline) {
        throw new LbError(
          "ReloadRejected",
          `nginx kept its previous configuration: no new worker process within ${this.confirmMs} ms of the reload signal (the master rejected the new config, e.g. a listen address in use; nginx's error log says why)`,
        );
      }
      await sleep(CONFIRM_POLL_MS);
    }
  }

  /** The running master's pid from its pid file; undefined when it cannot be read. */
  private async masterPid(): Promise<number | undefined> {
    const path = await this.pidFile();
    if (path === undefined) return undefined;
    try {
      const pid = Number.parseInt((await readFile(path, "utf8")).trim(), 10);
      return Number.isInteger(pid) && pid > 0 && processAlive(pid) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Where nginx keeps the master's pid (as `nginx -s reload` finds it): the `pid` directive of the main
   * config (-c, else the compiled --conf-path), else the compiled --pid-path;
   * relative to the prefix (-p, else --prefix). Resolved once.
   */
  private async pidFile(): Promise<string | undefined> {
    if (this.pidPath === undefined) {
      const v = await runFileOutput(this.bin, ["-V"], this.timeoutMs);
      const built = (name: string): string | undefined => new RegExp(`--${name}=(\\S+)`).exec(v.stderr)?.[1];
      const prefix = argAfter(this.args, "-p") ?? built("prefix") ?? "/";
      const conf = argAfter(this.args, "-c") ?? built("conf-path");
      const text = conf === undefined ? "" : await readFile(resolve(prefix, conf), "utf8").catch(() => "");
      const pid = pidDirective(text) ?? built("pid-path");
      this.pidPath = pid === undefined ? null : resolve(prefix, pid);
    }
    return this.pidPath ?? undefined;
  }
}
