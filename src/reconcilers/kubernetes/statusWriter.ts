/**
 * Status writer: BindingStatusStore (what the reconcilers found) + the
 * source's validation problems -> ServiceBinding `.status` through the status
 * subresource, only when it differs from what the object already carries.
 *
 * A Reconciler keyed by binding key (`<namespace>/<name>`), run on its own
 * workqueue; keys are queued on status-store changes, object changes and
 * reconciler completions. Shape (Kubernetes conventions):
 *
 *   status:
 *     observedGeneration: N      # generation both reconcilers finished (or rejected)
 *     conditions: [Ready, Registered, LoadBalancerConfigured, Degraded]
 *       # CamelCase reasons; lastTransitionTime kept from the object while the
 *       # condition's status is unchanged (also across controller restarts)
 *     backends: {desired, registered, passing}
 *
 * Events: Ready gained (Normal), Ready lost or spec rejected (Warning).
 */
import type { BindingStatusStore, Condition, ConditionType } from "../bindingStatus.js";
import type { ReconcileResult, Reconciler } from "../../runtime/controller.js";
import { ReconcileError } from "../../runtime/errors.js";
import type { Logger } from "../../runtime/logger.js";
import type { BindingProblem } from "../../ports/bindingStore.js";
import { bindingPath, isDeleting } from "../../sources/kubernetes/kubeBindingSource.js";
import type { ServiceBinding } from "../../domain/types.js";
import type { EventRecorder } from "../../actuators/kubernetes/events.js";
import { isKubeApiError, type KubeClient, type KubeObject } from "../../clients/kubernetes/kubeClient.js";

/** The part of the Kubernetes binding source the status writer reads. */
export interface StatusSource {
  object(key: string): KubeObject | undefined;
  get(key: string): ServiceBinding | undefined;
  problemsOf(key: string): readonly BindingProblem[];
}

export interface KubeCondition {
  readonly type: string;
  readonly status: string;
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
  readonly observedGeneration?: number;
}

export interface KubeBindingStatus {
  readonly observedGeneration?: number;
  readonly conditions: readonly KubeCondition[];
  readonly backends: { readonly desired: number; readonly registered: number; readonly passing: number };
}

export interface StatusWriterOptions {
  readonly client: KubeClient;
  readonly source: StatusSource;
  readonly status: BindingStatusStore;
  readonly events: EventRecorder;
  readonly logger: Logger;
}

const CONDITION_ORDER: readonly ConditionType[] = ["Ready", "Registered", "LoadBalancerConfigured", "Degraded"];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function text(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function num(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

/** The status an object carries, in the writer's canonical form (unknown fields dropped). */
function currentStatus(obj: KubeObject): KubeBindingStatus | undefined {
  const s = obj.status;
  if (!isRecord(s)) return undefined;
  const conditions = Array.isArray(s.conditions)
    ? s.conditions.filter(isRecord).map((c) => ({
        type: text(c.type),
        status: text(c.status),
        reason: text(c.reason),
        message: text(c.message),
        lastTransitionTime: text(c.lastTransitionTime),
        ...(typeof c.observedGeneration === "number" ? { observedGeneration: c.observedGeneration } : {}),
      }))
    : [];
  const b = isRecord(s.backends) ? s.backends : {};
  return {
    ...(typeof s.observedGeneration === "number" ? { observedGeneration: s.observedGeneration } : {}),
    conditions,
    backends: { desired: num(b.desired), registered: num(b.registered), passing: num(b.passing) },
  };
}

function canonical(s: KubeBindingStatus | undefined): string {
  if (s === undefined) return "";
  const conditions = [...s.conditions]
    .sort((a, b) => a.type.localeCompare(b.type))
    .map((c) => [c.type, c.status, c.reason, c.message, c.lastTransitionTime, c.observedGeneration ?? null]);
  return JSON.stringify([s.observedGeneration ?? null, conditions, [s.backends.desired, s.backends.registered, s.backends.passing]]);
}

function numericRv(rv: string | undefined): number | undefined {
  return rv !== undefined && /^\d+$/.test(rv) ? Number(rv) : undefined;
}

export class StatusWriter implements Reconciler {
  /** Generation each reconciler last finished, per key. */
  private readonly finished = new Map<string, { registrar?: number; renderer?: number }>();
  /** Our last write per key: skip rewriting it until the informer has caught up with it. */
  private readonly written = new Map<string, { readonly canonical: string; readonly rv: string | undefined }>();

  constructor(private readonly opts: StatusWriterOptions) {}

  /** A reconciler finished `key` having seen binding generation `generation`. */
  noteReconciled(controller: "registrar" | "renderer", key: string, generation: number | undefined): void {
    if (generation === undefined) return;
    const f = this.finished.get(key) ?? {};
    this.finished.set(key, { ...f, [controller]: generation });
  }

  forget(key: string): void {
    this.finished.delete(key);
    this.written.delete(key);
  }

  /** The status `obj` should carry now, given its current status `cur`. */
  desired(key: string, obj: KubeObject, cur: KubeBindingStatus | undefined): KubeBindingStatus {
    const problems = this.opts.source.problemsOf(key);
    const store = this.opts.status.get(key);
    const f = this.finished.get(key);
    const gen = obj.metadata.generation;
    let observedGeneration: number | undefined;
    if (problems.length > 0) observedGeneration = gen;
    else if (f?.registrar !== undefined && f.renderer !== undefined) observedGeneration = Math.min(f.registrar, f.renderer);
    else observedGeneration = cur?.observedGeneration;
    const byType = new Map<string, Omit<Condition, "type"> & { type: string }>();
    for (const c of store.conditions) byType.set(c.type, c);
    if (problems.length > 0) {
      const reason =
        problems.some((p) => p.field === "spec.loadBalancer.output" || p.field === "spec.loadBalancer.listen") &&
        problems.every((p) => p.message.includes("already used"))
          ? "Conflict"
          : "InvalidSpec";
      const message = problems.map((p) => `${p.field}: ${p.message}`).join("; ");
      const kept =
        this.opts.source.get(key) !== undefined ? ` (still serving generation ${String(this.opts.source.get(key)?.metadata.generation ?? "?")})` : "";
      const now = new Date().toISOString();
      byType.set("Ready", { type: "Ready", status: "False", reason, message: message + kept, lastTransitionTime: now });
      byType.set("Degraded", { type: "Degraded", status: "True", reason, message, lastTransitionTime: now });
    } else if (!byType.has("Ready")) {
      byType.set("Ready", {
        type: "Ready",
        status: "Unknown",
        reason: "Reconciling",
        message: "waiting for the first reconcile",
        lastTransitionTime: new Date().toISOString(),
      });
    }
    const conditions: KubeCondition[] = [];
    for (const type of CONDITION_ORDER) {
      const c = byType.get(type);
      if (c === undefined) continue;
      const prev = cur?.conditions.find((p) => p.type === type);
      const lastTransitionTime =
        prev !== undefined && prev.status === c.status && prev.lastTransitionTime !== "" ? prev.lastTransitionTime : c.lastTransitionTime;
      conditions.push({
        type,
        status: c.status,
        reason: c.reason,
        message: c.message.slice(0, 32_768),
        lastTransitionTime: lastTransitionTime.replace(/\.\d+Z$/, "Z"),
        ...(observedGeneration !== undefined ? { observedGeneration } : {}),
      });
    }
    // The CRD's status schema has these three counts (maintenance is shown by /api/status and the status page).
    const { desired, registered, passing } = store.backends;
    return { ...(observedGeneration !== undefined ? { observedGeneration } : {}), conditions, backends: { desired, registered, passing } };
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const obj = this.opts.source.object(key);
    if (obj === undefined || isDeleting(obj)) {
      this.forget(key);
      return {};
    }
    const cur = currentStatus(obj);
    const want = this.desired(key, obj, cur);
    const wantC = canonical(want);
    if (wantC === canonical(cur)) return {};
    const last = this.written.get(key);
    if (last?.canonical === wantC) {
      const a = numericRv(obj.metadata.resourceVersion);
      const b = numericRv(last.rv);
      const caughtUp = obj.metadata.resourceVersion === last.rv || (a !== undefined && b !== undefined && a > b);
      if (!caughtUp) return {}; // our write is on its way through the watch
    }
    const ns = obj.metadata.namespace ?? "default";
    let res: KubeObject;
    try {
      res = await this.opts.client.request<KubeObject>("PATCH", bindingPath(ns, obj.metadata.name, "status"), {
        body: { status: want },
        contentType: "application/merge-patch+json",
      });
    } catch (err) {
      if (isKubeApiError(err, 404)) return {}; // deleted meanwhile
      throw new ReconcileError("StatusWriteFailed", `status of ${key}: ${err instanceof Error ? err.message : String(err)}`, false, { cause: err });
    }
    this.written.set(key, { canonical: wantC, rv: res.metadata.resourceVersion });
    this.opts.logger.debug("status written", { binding: key, observedGeneration: want.observedGeneration });
    this.emitEvents(obj, cur, want);
    return {};
  }

  private emitEvents(obj: KubeObject, cur: KubeBindingStatus | undefined, want: KubeBindingStatus): void {
    const before = cur?.conditions.find((c) => c.type === "Ready");
    const after = want.conditions.find((c) => c.type === "Ready");
    if (after === undefined || (before?.status === after.status && before.reason === after.reason)) return;
    if (after.status === "True") this.opts.events.record(obj, "Normal", "Ready", after.message);
    else if (after.status === "False") this.opts.events.record(obj, "Warning", after.reason, after.message);
  }
}
