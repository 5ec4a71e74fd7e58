/**
 * Completion reports of the registrar and renderer for Kubernetes status and
 * finalizers: which binding key a reconcile finished, with which generation
 * and presence, and whether it succeeded. Reporting never changes a result.
 */
import type { RequestReconciler } from "../runtime/requests.js";
import type { BindingStore } from "../ports/bindingStore.js";

export interface ReconciledEvent {
  readonly controller: "registrar" | "renderer";
  /** Binding key `<namespace>/<name>`. */
  readonly key: string;
  /** metadata.generation of the binding when the reconcile started; undefined = binding absent. */
  readonly generation: number | undefined;
  readonly present: boolean;
  readonly outcome: "success" | "error";
}

/**
 * Wraps a reconciler to report the binding keys it finished to `hook`: an
 * error as "error" (then rethrown), a result without requeueAfterMs as
 * "success"; a requeue reports nothing. Requests of no binding report nothing.
 */
export function reportingReconciler<R>(
  controller: ReconciledEvent["controller"],
  inner: RequestReconciler<R>,
  bindingKeyOf: (request: R) => string | undefined,
  bindings: BindingStore,
  hook: ((e: ReconciledEvent) => void) | undefined,
): RequestReconciler<R> {
  if (hook === undefined) return inner;
  return {
    async reconcile(request) {
      const bkey = bindingKeyOf(request);
      const b = bkey === undefined ? undefined : bindings.get(bkey);
      const report = (outcome: ReconciledEvent["outcome"]): void => {
        if (bkey !== undefined) hook({ controller, key: bkey, generation: b?.metadata.generation, present: b !== undefined, outcome });
      };
      let result;
      try {
        result = await inner.reconcile(request);
      } catch (err) {
        report("error");
        throw err;
      }
      if (result.requeueAfterMs === undefined) report("success");
      return result;
    },
  };
}

/**
 * A binding's registrar pass is finished (for status and finalizers) once
 * every Docker endpoint's registrar finished it with the same generation and
 * presence; an error of any endpoint is reported at once.
 */
export function allNodesReporter(nodes: readonly string[], hook: (e: ReconciledEvent) => void): (node: string, e: ReconciledEvent) => void {
  const last = new Map<string, Map<string, ReconciledEvent>>();
  return (node, e) => {
    const byNode = last.get(e.key) ?? new Map<string, ReconciledEvent>();
    last.set(e.key, byNode);
    byNode.set(node, e);
    if (e.outcome === "error") {
      hook(e);
      return;
    }
    const same = nodes.every((n) => {
      const x = byNode.get(n);
      return x?.outcome === "success" && x.generation === e.generation && x.present === e.present;
    });
    if (same) hook(e);
    if (same && !e.present) last.delete(e.key);
  };
}
