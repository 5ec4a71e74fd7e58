/**
 * Read side of a binding source (files or the Kubernetes CRD). Reconcilers,
 * observability and the app read bindings only through this.
 */
import type { ServiceBinding } from "../domain/types.js";

export interface BindingProblem {
  /** File path (file source) or object reference (Kubernetes). */
  readonly source: string;
  readonly document: number;
  readonly field: string;
  readonly message: string;
  readonly key?: string;
}

/** A binding that vanished from its source and is kept until `deleteAt` (see FileBindingSource). */
export interface PendingDeletion {
  readonly key: string;
  /** Where the binding was last defined. */
  readonly file: string;
  /** When it was first seen missing (ms since epoch). */
  readonly since: number;
  /** When it is deleted unless it comes back first (ms since epoch). */
  readonly deleteAt: number;
  /** True when it vanished in a scan that would have deleted more than half of all bindings. */
  readonly mass: boolean;
}

export interface BindingStore {
  synced(): boolean;
  get(key: string): ServiceBinding | undefined;
  list(): readonly ServiceBinding[];
  /** Current validation problems (empty when every document is valid). */
  problems(): readonly BindingProblem[];
  /** Bindings still served but about to be deleted (sources without a deletion hold omit this). */
  deletions?(): readonly PendingDeletion[];
}
