/** Consul health of the services bindings render, as the renderer and observability read it. */
import type { HealthInstance, ServiceRef } from "../domain/types.js";

export interface HealthSnapshot {
  readonly instances: readonly HealthInstance[];
  /** When the last successful query returned (ms since epoch). */
  readonly updatedAt: number;
  /** The latest query failed (e.g. the datacenter's servers are unreachable): `instances` are the last known ones. */
  readonly stale?: boolean;
}

export interface HealthStore {
  /** Undefined until the first query for `ref` succeeded. */
  get(ref: ServiceRef): HealthSnapshot | undefined;
  /** True while the latest query for `ref` failed (before or after a first answer). */
  failing?(ref: ServiceRef): boolean;
}
