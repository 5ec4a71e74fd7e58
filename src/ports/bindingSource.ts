/**
 * A binding source as the manager runs it (files for --docker-only, the
 * Kubernetes CRD in cluster mode): the read side plus its watch loop.
 */
import type { BindingStore } from "./bindingStore.js";

export interface RunnableBindingSource extends BindingStore {
  /** Loads, then watches until `signal` aborts. Never rejects. */
  run(signal: AbortSignal): Promise<void>;
}

/** Builds the binding source (of type `S`); `onChange` must be called with the keys that appeared, changed or vanished. */
export type BindingSourceFactory<S extends RunnableBindingSource = RunnableBindingSource> = (onChange: (keys: readonly string[]) => void) => S;
