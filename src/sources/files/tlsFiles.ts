/**
 * Change detection for `loadBalancer.tls` files: every `intervalMs` the
 * certificate and key of each binding with tls are stat()ed (following
 * symlinks, so a Kubernetes Secret volume's `..data` swap counts) and the keys
 * whose files changed (inode, size, mtime, ctime, or appearing/vanishing) are
 * reported. A binding seen for the first time is only recorded: its own
 * binding change renders it. While no binding has tls, the poll slows to
 * `idleIntervalMs`. Never reads file content (the key stays out of
 * this process's memory until the renderer validates the pair).
 */
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { BindingStore } from "../../ports/bindingStore.js";
import { bindingKey } from "../../domain/types.js";

export interface TlsFilesOptions {
  readonly bindings: BindingStore;
  /** --tls-dir. */
  readonly dir: string;
  readonly intervalMs: number;
  /** Poll period while no binding has tls (a binding that gains tls is only recorded by its first scan anyway). */
  readonly idleIntervalMs: number;
  readonly onChange: (keys: readonly string[]) => void;
}

async function fileSignature(path: string): Promise<string> {
  try {
    const s = await stat(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
  } catch (err) {
    return `error:${typeof err === "object" && err !== null && "code" in err ? String(err.code) : "unknown"}`;
  }
}

/** One pass: the keys whose signature differs from `last` (which is updated). */
export async function scanTlsFiles(bindings: BindingStore, dir: string, last: Map<string, string>): Promise<string[]> {
  const changed: string[] = [];
  const seen = new Set<string>();
  for (const b of bindings.list()) {
    const tls = b.spec.loadBalancer?.tls;
    if (tls === undefined) continue;
    const key = bindingKey(b);
    seen.add(key);
    // Names are schema-checked relative paths; the renderer refuses any that leaves dir before reading.
    const sig = `${await fileSignature(resolve(dir, tls.certificate))}|${await fileSignature(resolve(dir, tls.key))}`;
    const before = last.get(key);
    last.set(key, sig);
    if (before !== undefined && before !== sig) changed.push(key);
  }
  for (const key of [...last.keys()]) if (!seen.has(key)) last.delete(key);
  return changed;
}

/** Polls until `signal` aborts. */
export async function watchTlsFiles(opts: TlsFilesOptions, signal: AbortSignal): Promise<void> {
  const last = new Map<string, string>();
  while (!signal.aborted) {
    const changed = await scanTlsFiles(opts.bindings, opts.dir, last);
    if (changed.length > 0) opts.onChange(changed);
    try {
      await sleep(last.size > 0 ? opts.intervalMs : opts.idleIntervalMs, undefined, { signal });
    } catch {
      return; // aborted
    }
  }
}
