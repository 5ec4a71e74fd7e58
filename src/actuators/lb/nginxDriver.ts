/**
 * LoadBalancerDriver for nginx. Blocking: each method spawns the nginx binary
 * (execFile, never a shell) and waits for it, up to `timeoutMs`. No method
 * touches generated files; all are idempotent.
 *
 * nginx facts this relies on:
 * - `nginx -t` really binds listen sockets; EADDRINUSE is tolerated in test
 *   mode (so a running nginx does not break it) but EADDRNOTAVAIL / EACCES are
 *   fatal: a listen address not configured on this host fails validation.
 * - `nginx -s reload` only signals the master (SIGHUP via the pid file) and
 *   exits 0 even if the master then rejects the new config and keeps the old
 *   one; that is why the writer runs validateLive() before reload().
 * - `-s reload` parses the config to find the pid file, so `args`
 *   (-p/-c) must match the running master.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LoadBalancerDriver } from "./driver.js";
import { LbError } from "./errors.js";
import { runFile } from "./exec.js";

export interface NginxDriverOptions {
  /** Binary to run; default "nginx" (looked up in PATH). */
  readonly nginxBin?: string;
  /** Extra args for the live config, e.g. ['-p', prefix, '-c', mainConf]; used by validateLive and reload. */
  readonly args?: readonly string[];
  /** Per-invocation timeout; default 10 s. */
  readonly timeoutMs?: number;
}

/** nginx double-quoted string: `\` and `"` escaped; control chars refused. */
export function nginxQuote(s: string): string {
  // eslint-disable-next-line no-control-regex -- we are rejecting control chars on purpose
  if (/[\u0000-\u001f\u007f]/.test(s)) throw new LbError("ValidationFailed", "path contains control characters");
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** Throwaway main config that includes one snippet in `http {}`; everything nginx writes stays in `dir`. */
export function wrapperConfig(dir: string, candidatePath: string): string {
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

export class NginxDriver implements LoadBalancerDriver {
  readonly kind = "nginx" as const;
  private readonly bin: string;
  private readonly args: readonly string[];
  private readonly timeoutMs: number;

  constructor(opts: NginxDriverOptions = {}) {
    this.bin = opts.nginxBin ?? "nginx";
    this.args = opts.args ?? [];
    this.timeoutMs = opts.timeoutMs ?? 10_000;
  }

  /** `nginx -t` on a wrapper config in a private mkdtemp dir that includes only `candidatePath`. */
  async validateCandidate(candidatePath: string): Promise<void> {
    const dir = await mkdtemp(join(tmpdir(), "dockbind-nginx-t-"));
    try {
      const conf = join(dir, "nginx.conf");
      await writeFile(conf, wrapperConfig(dir, candidatePath), { mode: 0o600 });
      const r = await runFile(this.bin, ["-t", "-e", "stderr", "-p", `${dir}/`, "-c", conf], this.timeoutMs);
      if (!r.ok) throw new LbError("ValidationFailed", `nginx -t rejected ${candidatePath}: ${r.detail}`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** `nginx -t <args>`: the whole live configuration. */
  async validateLive(): Promise<void> {
    const r = await runFile(this.bin, ["-t", ...this.args], this.timeoutMs);
    if (!r.ok) throw new LbError("ValidationFailed", `nginx -t (live config) failed: ${r.detail}`);
  }

  /** `nginx -s reload <args>`. */
  async reload(): Promise<void> {
    const r = await runFile(this.bin, ["-s", "reload", ...this.args], this.timeoutMs);
    if (!r.ok) throw new LbError("ReloadFailed", `nginx -s reload failed: ${r.detail}`);
  }
}
