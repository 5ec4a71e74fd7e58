/**
 * Renderer reconciler (Consul -> load balancer config). Key: the binding key
 * `<namespace>/<name>`.
 *
 * reconcile(key) re-reads the binding and the health snapshot of its service,
 * renders (pure) and hands the text to the LB writer, which compares bytes,
 * validates, swaps atomically and reloads. Contract:
 * - no health snapshot yet (Consul not answered since start) => nothing is
 *   written; the key is re-checked later, the existing file is untouched;
 * - render or validation failure => the last good file stays, the binding is
 *   Degraded, and the key is retried with backoff (the error is rethrown);
 * - a binding that is gone (or lost its loadBalancer) gets its generated file
 *   removed; a binding without a loadBalancer only gets its passing count
 *   (Consul's health of its service) recorded in status. Every generated
 *   file starts with OWNERSHIP_MARKER so files of
 *   bindings deleted while the controller was down are found at start-up;
 * - `loadBalancer.tls`: the pair is read from tlsDir and validated on every
 *   reconcile (tlsPair.ts), installed as a content-addressed managed copy and
 *   its hash rendered, so a renewed pair changes the config (validated,
 *   reloaded) and a broken one fails like a render (last good kept, Degraded
 *   with the Tls* reason, retried). Managed copies no live config names are
 *   pruned after each successful apply and with the binding's file.
 */
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import type { LbConfigWriter } from "../actuators/lb/configWriter.js";
import { readIfExists, removeStaleTemps, type FileOwner } from "../actuators/lb/atomicFile.js";
import { asLbError, fsErrorReason } from "../actuators/lb/errors.js";
import { installTlsPair, pruneTlsPairs, readTlsPair, type TlsPair } from "../actuators/lb/tlsPair.js";
import { OWNERSHIP_MARKER, renderFor, TLS_STORE_DIR, tlsPemPath, type OutputDirs, type RenderedFile } from "../render/renderFor.js";
import type { ReconcileResult } from "../runtime/controller.js";
import type { RendererRequest, RequestReconciler } from "../runtime/requests.js";
import { ReconcileError, reasonOf } from "../runtime/errors.js";
import { errorMessage, type Logger } from "../runtime/logger.js";
import type { BindingStore } from "../ports/bindingStore.js";
import { inMaintenance, passingCount } from "../domain/maintenance.js";
import { bindingKey, type HealthInstance, type LoadBalancerSpec, type ServiceBinding } from "../domain/types.js";
import { datacenterLookup, describeServed, servedDatacenter } from "../domain/failover.js";
import type { BindingStatusStore } from "./bindingStatus.js";
import type { HealthStore } from "../ports/healthStore.js";

export type RenderResultKind = "changed" | "unchanged" | "error";

/** Hooks for metrics; every method is optional and must not throw. */
export interface RendererObserver {
  /** One render of binding `key`: changed (file replaced and/or reloaded), unchanged, or error (with its reason). */
  onRender?(key: string, result: RenderResultKind, reason?: string): void;
}

export interface RendererOptions {
  readonly bindings: BindingStore;
  readonly health: HealthStore;
  readonly writer: LbConfigWriter;
  readonly status: BindingStatusStore;
  readonly logger: Logger;
  readonly outputDir: string;
  /** nginx `protocol: tcp|udp` files (written by `writer`, nginx's): included in nginx's top-level `stream {}`. */
  readonly streamDir?: string;
  readonly templateDir: string;
  readonly notSyncedRetryMs?: number;
  /** Reload pacing per load balancer (reloadPacer.ts): gap after a burst's first reload (default 0: no limit)... */
  readonly minReloadIntervalMs?: number;
  /** ...and after each later reload of the burst (default: minReloadIntervalMs, constant gap). */
  readonly maxReloadIntervalMs?: number;
  readonly observer?: RendererObserver;
  /** `loadBalancer.kind: haproxy` bindings: their own writer (HaproxyDriver) and output dir. */
  readonly haproxy?: { readonly writer: LbConfigWriter; readonly outputDir: string };
  /** Where `loadBalancer.tls` files are read (--tls-dir; default templateDir) and the owner of managed copies (--lb-file-owner). */
  readonly tls?: { readonly dir: string; readonly owner?: FileOwner };
}

/** A binding's rendered file and, with `loadBalancer.tls`, its validated pair and managed copy. */
interface Prepared {
  readonly file: RenderedFile;
  readonly tls?: { readonly pair: TlsPair; readonly path: string };
}

/** The `passing` and `maintenance` counts of a binding's service. */
function healthCounts(instances: readonly HealthInstance[]): { passing: number; maintenance: number } {
  return { passing: passingCount(instances), maintenance: instances.filter(inMaintenance).length };
}

export class RendererReconciler implements RequestReconciler<RendererRequest> {
  /** Output path last written per binding, to remove the old file when `output` changes. */
  private readonly outputs = new Map<string, string>();
  /**
   * `address:port` of the servers last applied per binding. A render that drops
   * one of them is a removal, which reload pacing never holds back for a burst's
   * long gap (reloadPacer.ts). Unknown (not rendered since start) counts as a removal.
   */
  private readonly served = new Map<string, ReadonlySet<string>>();

  /** Datacenter last applied per `datacenters` binding (failover logging). */
  private readonly servedDc = new Map<string, string>();

  constructor(private readonly opts: RendererOptions) {}

  /** The binding whose generated file is `path` (as last written or adopted); undefined for any other file. No I/O. */
  ownerOf(path: string): string | undefined {
    const abs = resolve(path);
    for (const [key, p] of this.outputs) if (resolve(p) === abs) return key;
    return undefined;
  }

  async reconcile(request: RendererRequest): Promise<ReconcileResult> {
    const key = request.binding;
    const { bindings, status } = this.opts;
    if (!bindings.synced()) return { requeueAfterMs: this.opts.notSyncedRetryMs ?? 500 };
    const binding = bindings.get(key);
    const lb = binding?.spec.loadBalancer;
    const previous = this.outputs.get(key);
    const snapshot = binding === undefined ? undefined : servedDatacenter(binding, datacenterLookup(this.opts.health));
    if (binding === undefined || lb === undefined) {
      this.served.delete(key);
      this.servedDc.delete(key);
      if (previous !== undefined) await this.remove(key, previous);
      // No load balancer: only the passing count is kept (a later health change re-queues the key).
      if (snapshot !== undefined) status.setBackends(key, healthCounts(snapshot.instances));
      return {};
    }
    if (snapshot === undefined) return { requeueAfterMs: this.opts.notSyncedRetryMs ?? 500 };
    const haproxy = lb.kind === "haproxy" ? this.opts.haproxy : undefined;
    try {
      const prepared = await this.prepare(binding, lb, snapshot.instances);
      if (prepared === undefined) return {};
      const { file, tls } = prepared;
      const { path, result } = file;
      for (const r of result.rejected) this.opts.logger.warn("instance not rendered", { binding: key, serviceId: r.serviceId, reason: r.reason });
      const servers = new Set(result.servers.map((sv) => `${sv.address}:${String(sv.port)}`));
      const before = this.served.get(key);
      const applied = await (haproxy?.writer ?? this.opts.writer).apply({
        path,
        text: file.text,
        minReloadIntervalMs: this.opts.minReloadIntervalMs ?? 0,
        ...(this.opts.maxReloadIntervalMs !== undefined ? { maxReloadIntervalMs: this.opts.maxReloadIntervalMs } : {}),
        removesServers: before === undefined || [...before].some((sv) => !servers.has(sv)),
      });
      // Paced: nothing written; re-render then (level-based: with the health of that moment).
      if (applied.deferredMs !== undefined) return { requeueAfterMs: applied.deferredMs };
      this.outputs.set(key, path);
      this.served.set(key, servers);
      if (previous !== undefined && previous !== path) await this.remove(key, previous);
      await pruneTlsPairs(join(dirname(path), TLS_STORE_DIR), key, tls?.path);
      status.setBackends(key, healthCounts(snapshot.instances));
      if (applied.changed || applied.reloaded) {
        status.setLastRender(key, applied.reloaded ? "Reloaded" : "Written", result.servers.length);
        this.opts.logger.info("load balancer config updated", {
          binding: key,
          action: "render",
          file: path,
          servers: result.servers.length,
          reloaded: applied.reloaded,
          ...(tls !== undefined ? { tlsSerial: tls.pair.serial, tlsNotAfter: tls.pair.notAfter } : {}),
        });
      }
      this.noteServed(key, describeServed(snapshot), snapshot.dc);
      const from = snapshot.candidates.length > 0 ? ` from datacenter ${snapshot.dc ?? ""}` : "";
      const tlsNote = tls === undefined ? "" : `; TLS certificate serial ${tls.pair.serial} (${tls.pair.subject}) valid until ${tls.pair.notAfter}`;
      status.setCondition(key, "LoadBalancerConfigured", "True", "Rendered", `${result.servers.length} server(s) in ${lb.output}${from}${tlsNote}`);
      status.setCondition(key, "Degraded", "False", "AsExpected", "");
      this.opts.observer?.onRender?.(key, applied.changed || applied.reloaded ? "changed" : "unchanged");
      return {};
    } catch (err) {
      const reason = reasonOf(err);
      status.setLastRender(key, reason, 0);
      status.setCondition(key, "LoadBalancerConfigured", "False", reason, errorMessage(err));
      status.setCondition(key, "Degraded", "True", reason, `last good config kept: ${errorMessage(err)}`);
      this.opts.observer?.onRender?.(key, "error", reason);
      throw err;
    }
  }

  /** Reads the template, validates and installs the TLS pair (when configured), renders. */
  private async prepare(binding: ServiceBinding, lb: LoadBalancerSpec, instances: readonly HealthInstance[]): Promise<Prepared | undefined> {
    const template = lb.template === undefined ? undefined : await this.readTemplate(lb.template);
    const tls = lb.tls === undefined ? undefined : await this.installTls(bindingKey(binding), lb);
    const file = renderFor(binding, instances, template, this.dirs(), tls?.pair.hash);
    if (file === undefined) return undefined;
    return { file, ...(tls !== undefined ? { tls } : {}) };
  }

  /** `lb.tls`'s pair, validated now, and its managed copy (written when new). */
  private async installTls(key: string, lb: LoadBalancerSpec): Promise<{ readonly pair: TlsPair; readonly path: string } | undefined> {
    if (lb.tls === undefined) return undefined;
    const pair = await readTlsPair(this.opts.tls?.dir ?? this.opts.templateDir, lb.tls, Date.now());
    const path = tlsPemPath(lb, this.dirs(), key, pair.hash);
    try {
      await installTlsPair(path, pair, this.opts.tls?.owner);
    } catch (err) {
      throw asLbError(err, fsErrorReason(err), `install TLS pair ${path}`);
    }
    return { pair, path };
  }

  /** Logs a change of the datacenter a `datacenters` binding serves (the first render logs it too). */
  private noteServed(key: string, description: string, dc: string | undefined): void {
    if (description === "" || dc === undefined || this.servedDc.get(key) === dc) return;
    this.servedDc.set(key, dc);
    this.opts.logger.info("serving datacenter", { binding: key, datacenter: dc, detail: description });
  }

  /** Where this controller's generated files go. */
  private dirs(): OutputDirs {
    return {
      nginx: this.opts.outputDir,
      ...(this.opts.haproxy !== undefined ? { haproxy: this.opts.haproxy.outputDir } : {}),
      ...(this.opts.streamDir !== undefined ? { nginxStream: this.opts.streamDir } : {}),
    };
  }

  private async readTemplate(name: string): Promise<string> {
    try {
      return await readFile(join(this.opts.templateDir, name), "utf8");
    } catch (err) {
      throw new ReconcileError("TemplateNotFound", `template ${name} in ${this.opts.templateDir}: ${errorMessage(err)}`, false, { cause: err });
    }
  }

  private async remove(key: string, path: string): Promise<void> {
    const head = (await readIfExists(path))?.subarray(0, 512).toString("utf8") ?? "";
    if (!head.startsWith(`${OWNERSHIP_MARKER}${key}\n`)) {
      this.opts.logger.warn("not removing a file dockbind does not own", { binding: key, file: path });
    } else {
      await this.writerFor(path).remove(path);
      await pruneTlsPairs(join(dirname(path), TLS_STORE_DIR), key);
      this.opts.logger.info("load balancer config removed", { binding: key, action: "remove", file: path });
    }
    if (this.outputs.get(key) === path) this.outputs.delete(key);
  }

  /** The writer owning files in `path`'s directory (haproxy output dir or the nginx one). */
  private writerFor(path: string): LbConfigWriter {
    const hx = this.opts.haproxy;
    return hx !== undefined && resolve(dirname(path)) === resolve(hx.outputDir) ? hx.writer : this.opts.writer;
  }

  /**
   * Adopts generated files found on disk at start-up (see ownedFiles) and
   * returns their keys, which the caller queues: a file whose binding no
   * longer exists is then removed by reconcile().
   */
  async adoptExisting(): Promise<readonly string[]> {
    // A writer killed mid-write leaves its temp sibling behind; remove those of dead writers.
    const stale = await removeStaleTemps(this.opts.outputDir);
    if (stale.length > 0) this.opts.logger.info("removed temp files of an interrupted write", { dir: this.opts.outputDir, files: stale.length });
    const found = await ownedFiles(this.opts.outputDir);
    if (this.opts.streamDir !== undefined) {
      await removeStaleTemps(this.opts.streamDir);
      for (const [key, path] of await ownedFiles(this.opts.streamDir)) found.set(key, path);
    }
    if (this.opts.haproxy !== undefined) for (const [key, path] of await ownedFiles(this.opts.haproxy.outputDir)) found.set(key, path);
    for (const [key, path] of found) if (!this.outputs.has(key)) this.outputs.set(key, path);
    return [...found.keys()];
  }
}

/** Generated files in `dir`, by binding key (read from their ownership marker). */
export async function ownedFiles(dir: string): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return found;
  }
  for (const name of names.filter((n) => (n.endsWith(".conf") || n.endsWith(".cfg")) && !n.startsWith("."))) {
    const path = join(dir, name);
    const head = (await readIfExists(path))?.subarray(0, 512).toString("utf8") ?? "";
    if (head.startsWith(OWNERSHIP_MARKER)) {
      const key = head.slice(OWNERSHIP_MARKER.length).split("\n")[0];
      if (key !== undefined && key !== "") found.set(key, path);
    }
  }
  return found;
}
