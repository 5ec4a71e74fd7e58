/**
 * The typed requests of the two work queues and their string keys. The queues
 * store keys (dedup and "never one key twice at once" hold per key); this
 * module is the only place a key is built or parsed.
 *
 * Keys (also what the logs show): registrar `binding/<ns>/<name>@<node>` and
 * `container/<id>@<node>`; renderer `<ns>/<name>`. Node names never contain
 * `@` (config.ts), binding keys never do either (DNS names).
 */
import { ReconcileError } from "./errors.js";
import type { ReconcileResult, Reconciler } from "./controller.js";

/** What one node's registrar converges: a binding's registrations, or one container's registrator-compat ones. */
export type RegistrarRequest = { readonly kind: "binding"; readonly binding: string } | { readonly kind: "container"; readonly container: string };

/** A registrar request for the Docker endpoint `node`. */
export interface NodeRequest {
  readonly node: string;
  readonly request: RegistrarRequest;
}

/** The renderer converges one binding's generated file (and passing count). */
export interface RendererRequest {
  readonly kind: "render";
  readonly binding: string;
}

/** A reconciler of typed requests. */
export interface RequestReconciler<R> {
  reconcile(request: R): Promise<ReconcileResult>;
}

const BINDING = "binding/";
const CONTAINER = "container/";

export function encodeNodeRequest(r: NodeRequest): string {
  const k = r.request.kind === "binding" ? BINDING + r.request.binding : CONTAINER + r.request.container;
  return `${k}@${r.node}`;
}

/** Inverse of encodeNodeRequest; undefined for a key it did not make. */
export function decodeNodeRequest(key: string): NodeRequest | undefined {
  const at = key.lastIndexOf("@");
  if (at <= 0) return undefined;
  const node = key.slice(at + 1);
  const inner = key.slice(0, at);
  if (inner.startsWith(BINDING) && inner.length > BINDING.length) return { node, request: { kind: "binding", binding: inner.slice(BINDING.length) } };
  if (inner.startsWith(CONTAINER) && inner.length > CONTAINER.length) return { node, request: { kind: "container", container: inner.slice(CONTAINER.length) } };
  return undefined;
}

export function encodeRendererRequest(r: RendererRequest): string {
  return r.binding;
}

export function decodeRendererRequest(key: string): RendererRequest {
  return { kind: "render", binding: key };
}

/** The queue-facing reconciler of `inner`: decodes each key once; a key `decode` rejects is a terminal InvalidKey error. */
export function keyed<R>(decode: (key: string) => R | undefined, inner: RequestReconciler<R>): Reconciler {
  return {
    reconcile(key) {
      const request = decode(key);
      if (request === undefined) return Promise.reject(new ReconcileError("InvalidKey", `work queue key ${key} is not a request this controller makes`, true));
      return inner.reconcile(request);
    },
  };
}
