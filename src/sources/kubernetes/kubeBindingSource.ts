/**
 * Kubernetes binding source: ServiceBinding objects (dockbind.io/v1alpha1)
 * from the API server through a list+watch informer, validated with the SAME
 * validateBinding as the file source. Implements the manager's
 * RunnableBindingSource, so the registrar and renderer do not know where
 * bindings come from.
 *
 * What reconcilers see (`get`/`list`), per object:
 * - valid, not being deleted, carrying dockbind's finalizer -> the binding
 *   (with metadata.generation, used for status.observedGeneration);
 * - invalid (a rule the CRD schema could not enforce, or an old CRD) -> the
 *   last valid version of the same object is kept (nothing converged is torn
 *   down); the object gets Ready=False/InvalidSpec with the field error;
 * - being deleted (deletionTimestamp) -> absent: reconcilers deregister and
 *   remove its LB file; the finalizer controller then releases the object;
 * - valid but without the finalizer yet -> absent until the finalizer is in
 *   place (so nothing can be registered for an object that could vanish
 *   without a cleanup);
 * - two bindings writing the same LB file or listen socket -> the one that
 *   was effective first keeps it, the other is rejected (problem), like files.
 *
 * Namespace scope: with watched namespaces, one informer per namespace (a
 * namespaced list+watch, allowed by a Role there) and nothing cluster-wide;
 * without, one cluster-wide informer. Every key this source hands out (to the
 * reconcilers, the status writer, the finalizer controller and so to Events)
 * is in a watched namespace: an object outside them is never stored.
 */
import type { KubeClient, KubeObject } from "../../clients/kubernetes/kubeClient.js";
import { validateBinding } from "../../api/v1alpha1/validate.js";
import type { ServiceBinding } from "../../domain/types.js";
import type { RunnableBindingSource } from "../../ports/bindingSource.js";
import type { Logger } from "../../runtime/logger.js";
import type { BindingProblem } from "../../ports/bindingStore.js";
import { formatProblem } from "../files/problems.js";
import { Informer, objectKey, type InformerEventType } from "./informer.js";

const GROUP = "dockbind.io";
const VERSION = "v1alpha1";
const PLURAL = "servicebindings";
const KIND = "ServiceBinding";
export const FINALIZER = "dockbind.io/finalizer";

/** Collection path of ServiceBindings, cluster-wide or in one namespace. */
function bindingsPath(namespace?: string): string {
  return namespace === undefined ? `/apis/${GROUP}/${VERSION}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/namespaces/${namespace}/${PLURAL}`;
}

export function bindingPath(namespace: string, name: string, subresource?: "status"): string {
  return `${bindingsPath(namespace)}/${name}${subresource === undefined ? "" : `/${subresource}`}`;
}

export function isDeleting(o: KubeObject): boolean {
  return o.metadata.deletionTimestamp !== undefined && o.metadata.deletionTimestamp !== "";
}

export function hasFinalizer(o: KubeObject): boolean {
  return (o.metadata.finalizers ?? []).includes(FINALIZER);
}

/** The namespace part of a binding key `<namespace>/<name>`. */
function keyNamespace(key: string): string {
  const slash = key.indexOf("/");
  return slash < 0 ? "" : key.slice(0, slash);
}

/** True when `namespace` is watched: every namespace when `watched` is empty. */
function inScope(watched: readonly string[], namespace: string | undefined): boolean {
  return watched.length === 0 || (namespace !== undefined && watched.includes(namespace));
}

export interface KubeBindingSourceOptions {
  readonly client: KubeClient;
  readonly logger: Logger;
  /** Watched namespaces (one informer each); empty = all namespaces (one cluster-wide informer). */
  readonly namespaces: readonly string[];
  /** Keys whose effective binding appeared, changed or vanished (the manager's queues). */
  readonly onChange: (keys: readonly string[]) => void;
  /** Every change of an object in the API (status writer, finalizer controller). */
  readonly onObject?: (key: string) => void;
  /** Informer watch timeout (tests); see Informer. */
  readonly watchTimeoutSeconds?: number;
  /** A stalled watch was detected and is being re-established (metrics). Must not throw. */
  readonly onWatchStalled?: () => void;
}

export class KubeBindingSource implements RunnableBindingSource {
  /** Informer per watched namespace; the key "" is the cluster-wide one (no namespaces given). */
  private readonly informers = new Map<string, Informer>();
  /** Last valid binding per object (kept across invalid edits). */
  private readonly valid = new Map<string, ServiceBinding>();
  private readonly invalid = new Map<string, BindingProblem[]>();
  private conflicts: BindingProblem[] = [];
  private effective = new Map<string, ServiceBinding>();
  private loggedProblems = new Set<string>();
  /** Keys to report on the first recompute after sync (deleting objects seen during the initial list). */
  private readonly pending = new Set<string>();

  constructor(private readonly opts: KubeBindingSourceOptions) {
    for (const ns of opts.namespaces.length > 0 ? opts.namespaces : [""]) {
      const informer = new Informer({
        client: opts.client,
        path: bindingsPath(ns === "" ? undefined : ns),
        logger: opts.logger,
        ...(opts.watchTimeoutSeconds !== undefined ? { watchTimeoutSeconds: opts.watchTimeoutSeconds } : {}),
        onStall: () => opts.onWatchStalled?.(),
        onEvent: (type, obj) => {
          this.handle(type, obj);
        },
        // recompute() waits until every informer has synced.
        onSynced: () => {
          this.recompute([]);
        },
      });
      this.informers.set(ns, informer);
    }
  }

  /** True once every informer has listed its collection. */
  synced(): boolean {
    return [...this.informers.values()].every((i) => i.synced());
  }

  get(key: string): ServiceBinding | undefined {
    return this.effective.get(key);
  }

  list(): readonly ServiceBinding[] {
    return [...this.effective.values()];
  }

  problems(): readonly BindingProblem[] {
    return [...[...this.invalid.values()].flat(), ...this.conflicts];
  }

  /** Problems of one object (validation or conflict), empty when it is fine. */
  problemsOf(key: string): readonly BindingProblem[] {
    return [...(this.invalid.get(key) ?? []), ...this.conflicts.filter((p) => p.key === key)];
  }

  /** The raw object as last seen in the API; undefined outside the watched namespaces. */
  object(key: string): KubeObject | undefined {
    return this.informers.get(this.opts.namespaces.length > 0 ? keyNamespace(key) : "")?.get(key);
  }

  objects(): readonly KubeObject[] {
    return [...this.informers.values()].flatMap((i) => i.list());
  }

  /** True when the object is valid (now or before), not deleting, and lacks the finalizer. */
  needsFinalizer(key: string): boolean {
    const o = this.object(key);
    return o !== undefined && !isDeleting(o) && !hasFinalizer(o) && this.valid.has(key);
  }

  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([...this.informers.values()].map((i) => i.run(signal)));
  }

  private handle(type: InformerEventType, obj: KubeObject): void {
    const key = objectKey(obj);
    if (!inScope(this.opts.namespaces, obj.metadata.namespace)) {
      this.opts.logger.warn("ignoring a ServiceBinding outside the watched namespaces", { binding: key });
      return;
    }
    if (type === "DELETED" || isDeleting(obj)) {
      this.valid.delete(key);
      this.invalid.delete(key);
    } else {
      const result = validateBinding(trimmed(obj));
      if (result.ok) {
        const generation = obj.metadata.generation;
        const binding: ServiceBinding = {
          ...result.binding,
          metadata: { ...result.binding.metadata, ...(generation !== undefined ? { generation } : {}) },
        };
        this.valid.set(key, binding);
        this.invalid.delete(key);
      } else {
        const source = `${KIND} ${key}`;
        this.invalid.set(
          key,
          result.errors.map((e) => ({ source, document: 0, field: e.field, message: e.message, key })),
        );
      }
    }
    // A deleting object is reported even when its (absent) binding did not change:
    // after a restart nothing else would queue the cleanup of what it owns.
    this.recompute(type === "DELETED" || isDeleting(obj) ? [key] : []);
    this.opts.onObject?.(key);
  }

  /** Rebuilds the effective set (finalizer present, conflicts dropped) and reports what changed. */
  private recompute(extra: readonly string[]): void {
    if (!this.synced()) {
      for (const k of extra) this.pending.add(k);
      return;
    }
    const candidates = new Map<string, ServiceBinding>();
    for (const [key, binding] of this.valid) {
      const o = this.object(key);
      if (o !== undefined && !isDeleting(o) && hasFinalizer(o)) candidates.set(key, binding);
    }
    const { kept, problems } = dropConflicts(candidates, new Set(this.effective.keys()));
    const changed = new Set([...extra, ...this.pending]);
    this.pending.clear();
    for (const key of new Set([...this.effective.keys(), ...kept.keys()])) {
      if (JSON.stringify(this.effective.get(key)) !== JSON.stringify(kept.get(key))) changed.add(key);
    }
    this.effective = kept;
    this.conflicts = problems;
    this.logProblems();
    if (changed.size > 0) this.opts.onChange([...changed]);
  }

  private logProblems(): void {
    const now = new Set<string>();
    for (const p of this.problems()) {
      const text = formatProblem(p);
      now.add(text);
      if (!this.loggedProblems.has(text)) this.opts.logger.error("invalid binding", { source: p.source, field: p.field, error: p.message, binding: p.key });
    }
    this.loggedProblems = now;
  }
}

/** What validateBinding sees of an object: identity, labels and spec (not server-managed metadata). */
function trimmed(o: KubeObject): unknown {
  const m = o.metadata;
  return {
    apiVersion: o.apiVersion ?? `${GROUP}/${VERSION}`,
    kind: o.kind ?? KIND,
    metadata: { name: m.name, ...(m.namespace !== undefined ? { namespace: m.namespace } : {}), ...(m.labels !== undefined ? { labels: m.labels } : {}) },
    spec: o.spec,
  };
}

/**
 * Rejects one of two bindings that would write the same LB file or listen on
 * the same socket: bindings already effective win over new ones, then key order.
 */
function dropConflicts(
  next: ReadonlyMap<string, ServiceBinding>,
  existing: ReadonlySet<string>,
): { kept: Map<string, ServiceBinding>; problems: BindingProblem[] } {
  const kept = new Map<string, ServiceBinding>();
  const problems: BindingProblem[] = [];
  const outputs = new Map<string, string>();
  const sockets = new Map<string, string>();
  const keys = [...next.keys()].sort();
  for (const key of [...keys.filter((k) => existing.has(k)), ...keys.filter((k) => !existing.has(k))]) {
    const b = next.get(key);
    if (b === undefined) continue;
    const lb = b.spec.loadBalancer;
    if (lb !== undefined) {
      const socket = `${lb.listen.address}:${lb.listen.port}`;
      const owner = outputs.get(lb.output);
      const sockOwner = sockets.get(socket);
      const clash =
        owner !== undefined
          ? { field: "spec.loadBalancer.output", message: `output ${lb.output} is already used by binding ${owner}` }
          : sockOwner !== undefined && lb.serverName === undefined
            ? { field: "spec.loadBalancer.listen", message: `listen ${socket} is already used by binding ${sockOwner}; set serverName to share it` }
            : undefined;
      if (clash !== undefined) {
        problems.push({ source: `${KIND} ${key}`, document: 0, ...clash, key });
        continue;
      }
      outputs.set(lb.output, key);
      sockets.set(socket, key);
    }
    kept.set(key, b);
  }
  return { kept, problems };
}
