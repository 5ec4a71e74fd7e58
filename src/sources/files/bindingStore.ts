/**
 * Read side of a binding source, shared by the file and (issue #3)
 * Kubernetes sources. Reconcilers read bindings only through this.
 */
import type { ServiceBinding } from "../../domain/types.js";

export interface BindingProblem {
  /** File path (file source) or object reference (Kubernetes). */
  readonly source: string;
  readonly document: number;
  readonly field: string;
  readonly message: string;
  readonly key?: string;
}

export interface BindingStore {
  synced(): boolean;
  get(key: string): ServiceBinding | undefined;
  list(): readonly ServiceBinding[];
  /** Current validation problems (empty when every document is valid). */
  problems(): readonly BindingProblem[];
}

export function formatProblem(p: BindingProblem): string {
  return `${p.source} (document ${p.document}): ${p.field}: ${p.message}`;
}
