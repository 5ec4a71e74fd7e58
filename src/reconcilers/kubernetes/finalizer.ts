/**
 * Finalizer controller for `dockbind.io/finalizer` (key: `<namespace>/<name>`).
 *
 * - A valid ServiceBinding that is not being deleted gets the finalizer (the
 *   source only hands a binding to the reconcilers once it is there).
 * - A deleting one is absent for the reconcilers, which deregister what it
 *   owns and remove its generated LB file. This controller removes the
 *   finalizer only once both have converged, checked against the world
 *   itself: no Consul registration this controller owns (domain/ownership.ts,
 *   the registrar's rule: another controller's are not ours to wait for) for the key, no
 *   generated file for the key in the LB output directories. Until then it
 *   re-checks (the reconcilers are working on it; a controller that was down
 *   at delete time finds the object still there when it comes back).
 *
 * Finalizer patches carry the object's resourceVersion (optimistic lock).
 */
import { isOwned, type OwnerIdentity } from "../../domain/ownership.js";
import { OWNER_META } from "../../domain/types.js";
import { ownedFiles } from "../renderer.js";
import type { ReconcileResult, Reconciler } from "../../runtime/controller.js";
import { ReconcileError } from "../../runtime/errors.js";
import { errorMessage, type Logger } from "../../runtime/logger.js";
import { bindingPath, FINALIZER, hasFinalizer, isDeleting } from "../../sources/kubernetes/kubeBindingSource.js";
import type { EventRecorder } from "../../actuators/kubernetes/events.js";
import { isKubeApiError, type KubeClient, type KubeObject } from "../../clients/kubernetes/kubeClient.js";
import type { ConsulApi } from "../../ports/consul.js";

export interface FinalizerSource {
  object(key: string): KubeObject | undefined;
  needsFinalizer(key: string): boolean;
}

export interface FinalizerOptions {
  readonly client: KubeClient;
  readonly source: FinalizerSource;
  readonly consul: ConsulApi;
  /** Each Docker endpoint's owner identity; an undefined entry (engine ID not known yet) means ownership cannot be judged yet. */
  readonly owners: () => readonly (OwnerIdentity | undefined)[];
  /** Directories the renderer writes generated LB files to (nginx, haproxy). */
  readonly outputDirs: readonly string[];
  readonly events: EventRecorder;
  readonly logger: Logger;
  /** Re-check period while the reconcilers are still cleaning up; default 1 s. */
  readonly recheckMs?: number;
}

export class FinalizerController implements Reconciler {
  /** Reconcilers that finished a pass over the key while its binding was absent. */
  private readonly absentPasses = new Map<string, Set<string>>();

  constructor(private readonly opts: FinalizerOptions) {}

  /**
   * A reconciler finished `key`; `present` = the binding existed when it
   * started. A pass with the binding absent means it converged the key to
   * "nothing owned" (registrations deregistered / file removed). A pass that
   * started while the binding was present withdraws only that reconciler's own
   * absent pass: it may finish after the other reconciler's absent pass, which
   * still counts (clearing both left the finalizer waiting for a renderer pass
   * that nothing would queue until the next full resync).
   */
  noteReconciled(controller: "registrar" | "renderer", key: string, present: boolean): void {
    if (present) {
      const passes = this.absentPasses.get(key);
      passes?.delete(controller);
      if (passes?.size === 0) this.absentPasses.delete(key);
      return;
    }
    const s = this.absentPasses.get(key) ?? new Set<string>();
    s.add(controller);
    this.absentPasses.set(key, s);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const obj = this.opts.source.object(key);
    if (obj === undefined) return {};
    if (!isDeleting(obj)) {
      this.absentPasses.delete(key); // passes of an earlier deletion (the name recreated) do not count for the next one
      if (this.opts.source.needsFinalizer(key) && !(await this.patchFinalizers(obj, [...(obj.metadata.finalizers ?? []), FINALIZER])))
        return { requeueAfterMs: 100 };
      return {};
    }
    if (!hasFinalizer(obj)) {
      this.absentPasses.delete(key);
      return {};
    }
    // Both reconcilers must have run since the binding became absent (a reconcile
    // that started before could still be registering), then the world must be clean.
    const passes = this.absentPasses.get(key);
    if (passes?.has("registrar") !== true || !passes.has("renderer")) return { requeueAfterMs: this.opts.recheckMs ?? 1000 };
    const left = await this.leftovers(key);
    if (left.length > 0) {
      this.opts.logger.debug("binding deleting; waiting for cleanup", { binding: key, left });
      return { requeueAfterMs: this.opts.recheckMs ?? 1000 };
    }
    if (
      !(await this.patchFinalizers(
        obj,
        (obj.metadata.finalizers ?? []).filter((f) => f !== FINALIZER),
      ))
    )
      return { requeueAfterMs: 100 };
    this.opts.events.record(obj, "Normal", "CleanedUp", "registrations deregistered and load balancer config removed");
    this.absentPasses.delete(key);
    this.opts.logger.info("finalizer removed", { binding: key, action: "finalize" });
    return {};
  }

  /** What the binding still owns: Consul service ids and generated files. */
  private async leftovers(key: string): Promise<string[]> {
    let services;
    try {
      services = await this.opts.consul.listAgentServices();
    } catch (err) {
      throw new ReconcileError("ConsulUnavailable", `cannot check registrations of ${key}: ${errorMessage(err)}`, false, { cause: err });
    }
    const owners = this.opts.owners();
    const known = owners.filter((o): o is OwnerIdentity => o !== undefined);
    if (owners.length === 0 || known.length < owners.length) return ["docker:engine identity not known yet"];
    const left = services.filter((s) => s.meta[OWNER_META.binding] === key && known.some((o) => isOwned(s.meta, o))).map((s) => `consul:${s.id}`);
    for (const dir of this.opts.outputDirs) {
      const file = (await ownedFiles(dir)).get(key);
      if (file !== undefined) left.push(`file:${file}`);
    }
    return left;
  }

  /** Patches metadata.finalizers; false on a conflict (the object changed since we read it: re-check soon). */
  private async patchFinalizers(obj: KubeObject, finalizers: readonly string[]): Promise<boolean> {
    const ns = obj.metadata.namespace ?? "default";
    try {
      await this.opts.client.request("PATCH", bindingPath(ns, obj.metadata.name), {
        body: { metadata: { resourceVersion: obj.metadata.resourceVersion, finalizers } },
        contentType: "application/merge-patch+json",
      });
      return true;
    } catch (err) {
      if (isKubeApiError(err, 404)) return true;
      if (isKubeApiError(err, 409)) return false;
      throw new ReconcileError("FinalizerPatchFailed", `finalizer of ${ns}/${obj.metadata.name}: ${errorMessage(err)}`, false, { cause: err });
    }
  }
}
