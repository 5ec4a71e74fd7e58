/**
 * Which datacenter's instances a binding's load balancer serves. Pure: the renderer, `controller
 * plan` and the status document all call servedDatacenter(), so they never disagree.
 *
 * Rule (`spec.service.datacenters`, ordered, the local datacenter first): serve the first
 * datacenter that has a passing instance (not in Consul maintenance); when none has, the first
 * listed one (its instances, none passing, are rendered as they are). A datacenter whose latest
 * query failed (its servers unreachable) keeps its last known instances (none if it never
 * answered): "no fresh data" is not "no instances", so an unreachable datacenter that was serving stays served and one that
 * had no passing instance stays skipped. A datacenter listed before the chosen one that has
 * neither answered nor failed yet makes the decision wait (undefined): a start-up never renders
 * a fallback, or an empty upstream, only because the preferred datacenter answers a little later.
 * Without `datacenters`, the binding's one service ref is served as it is.
 */
import { passingCount } from "./maintenance.js";
import { serviceRefs, type HealthInstance, type ServiceBinding, type ServiceRef } from "./types.js";

/** What the health source knows of one (service, datacenter). */
export interface DatacenterSnapshot {
  readonly instances: readonly HealthInstance[];
  /** The latest query failed: `instances` are the last known ones. */
  readonly stale?: boolean;
}

export type DatacenterState = "fresh" | "stale" | "unknown";

export interface DatacenterCandidate {
  readonly dc: string;
  readonly state: DatacenterState;
  readonly passing: number;
}

export interface ServedDatacenter {
  /** The served datacenter; undefined for a binding without `datacenters` and `datacenter` (the agent's own). */
  readonly dc?: string;
  readonly instances: readonly HealthInstance[];
  /** True when a datacenter other than the first listed one is served. */
  readonly failover: boolean;
  /** Every listed datacenter in order (empty without `datacenters`). */
  readonly candidates: readonly DatacenterCandidate[];
}

/** What servedDatacenter() reads of a health store: its snapshot, and whether its latest query failed. */
export interface DatacenterHealthSource {
  get(ref: ServiceRef): DatacenterSnapshot | undefined;
  failing?(ref: ServiceRef): boolean;
}

/** A store's view of `ref` for servedDatacenter(): a failed query without any answer yet is "unreachable, nothing known". */
export function datacenterLookup(store: DatacenterHealthSource): (ref: ServiceRef) => DatacenterSnapshot | undefined {
  return (ref) => store.get(ref) ?? (store.failing?.(ref) === true ? { instances: [], stale: true } : undefined);
}

/** Every listed datacenter in order, as `lookup` knows it (empty without `datacenters`). */
export function datacenterCandidates(b: Pick<ServiceBinding, "spec">, lookup: (ref: ServiceRef) => DatacenterSnapshot | undefined): DatacenterCandidate[] {
  if (b.spec.service.datacenters === undefined) return [];
  return serviceRefs(b).map((ref) => {
    const snap = lookup(ref);
    return {
      dc: ref.dc ?? "",
      state: snap === undefined ? "unknown" : snap.stale === true ? "stale" : "fresh",
      passing: snap === undefined ? 0 : passingCount(snap.instances),
    };
  });
}

/** The served datacenter and its instances; undefined while the decision waits for a datacenter's first answer. */
export function servedDatacenter(b: Pick<ServiceBinding, "spec">, lookup: (ref: ServiceRef) => DatacenterSnapshot | undefined): ServedDatacenter | undefined {
  const snaps = serviceRefs(b).map((ref) => ({ ref, snap: lookup(ref) }));
  const candidates = datacenterCandidates(b, lookup);
  const firstUnknown = snaps.findIndex(({ snap }) => snap === undefined);
  const withPassing = snaps.findIndex(({ snap }) => snap !== undefined && passingCount(snap.instances) > 0);
  if (firstUnknown !== -1 && (withPassing === -1 || firstUnknown < withPassing)) return undefined;
  const chosen = snaps[withPassing === -1 ? 0 : withPassing];
  if (chosen?.snap === undefined) return undefined;
  return {
    ...(chosen.ref.dc !== undefined ? { dc: chosen.ref.dc } : {}),
    instances: chosen.snap.instances,
    failover: chosen !== snaps[0],
    candidates,
  };
}

/** `dc1 0 passing; dc2 3 passing (unreachable, last known); dc3 not answered`: the listed datacenters for logs, status and `plan`. */
export function describeCandidates(candidates: readonly DatacenterCandidate[]): string {
  return candidates
    .map((c) => `${c.dc} ${c.state === "unknown" ? "not answered" : `${c.passing} passing${c.state === "stale" ? " (unreachable, last known)" : ""}`}`)
    .join("; ");
}

/** `dc2 (failover: dc1 0 passing; dc2 3 passing)`; "" without `datacenters`. */
export function describeServed(s: ServedDatacenter): string {
  if (s.candidates.length === 0) return "";
  return `${s.dc ?? ""} (${s.failover ? "failover" : "preferred"}: ${describeCandidates(s.candidates)})`;
}
