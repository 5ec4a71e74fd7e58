/**
 * nginx's stream module, which `protocol: tcp|udp` files need: whether the
 * nginx binary has it, built in or as a dynamic module (Debian:
 * libnginx-mod-stream, loaded by `load_module`), read from `nginx -V`.
 * parseStreamSupport is pure; streamSupport spawns `nginx -V` (execFile).
 */
import { access } from "node:fs/promises";
import { join } from "node:path";
import { LbError } from "./errors.js";
import { runFileOutput } from "./exec.js";

export type StreamSupport =
  | { readonly kind: "static" }
  /** `module`: the absolute path a `load_module` directive must name. */
  | { readonly kind: "dynamic"; readonly module: string }
  /** `ran`: false when `nginx -V` itself could not run (so nothing is known about the module). */
  | { readonly kind: "missing"; readonly detail: string; readonly ran: boolean };

const STREAM_MODULE_FILE = "ngx_stream_module.so";

/** How to install the module, for every error that says it is missing. */
export const STREAM_MODULE_HINT = "install nginx's stream module (Debian: apt-get install libnginx-mod-stream) or use an nginx built --with-stream";

function configureArg(vOutput: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|\\s)--${name}=(\\S+)`).exec(vOutput);
  return m?.[1];
}

/**
 * From `nginx -V` output: `--with-stream` (static), `--with-stream=dynamic`
 * (module file in `--modules-path`, default `<prefix>/modules`), or neither.
 * Does not check that the module file exists (streamSupport does).
 */
export function parseStreamSupport(vOutput: string): StreamSupport {
  if (/(?:^|\s)--with-stream(?:\s|$)/.test(vOutput)) return { kind: "static" };
  if (!/(?:^|\s)--with-stream=dynamic(?:\s|$)/.test(vOutput)) {
    return { kind: "missing", detail: "nginx -V: built without the stream module", ran: true };
  }
  const modules = configureArg(vOutput, "modules-path") ?? join(configureArg(vOutput, "prefix") ?? "/usr/local/nginx", "modules");
  return { kind: "dynamic", module: join(modules, STREAM_MODULE_FILE) };
}

/** Runs `bin -V` and checks the dynamic module's file. Never throws: a failure is `missing`. */
export async function streamSupport(bin: string, timeoutMs: number): Promise<StreamSupport> {
  const r = await runFileOutput(bin, ["-V"], timeoutMs);
  if (!r.ok) return { kind: "missing", detail: `${bin} -V failed: ${r.detail}`, ran: false };
  const support = parseStreamSupport(`${r.stdout}\n${r.stderr}`);
  if (support.kind !== "dynamic") return support;
  try {
    await access(support.module);
    return support;
  } catch {
    return { kind: "missing", detail: `nginx is built with a dynamic stream module but ${support.module} is not installed`, ran: true };
  }
}

/** The typed error of a stream file on an nginx without the stream module. */
export function streamModuleMissing(detail: string): LbError {
  return new LbError("StreamModuleMissing", `nginx has no stream module (${detail}): ${STREAM_MODULE_HINT}`);
}

/** nginx -t's complaint when the live config uses `stream {}` without the module loaded. */
export function isUnknownStreamDirective(nginxStderr: string): boolean {
  return nginxStderr.includes('unknown directive "stream"');
}
