/**
 * The health hold: what a load balancer serves while Consul has lost track of
 * instances it knew a moment ago. Two causes:
 * - "reset": the agent restarted with its state lost. Its services are gone
 *   until the registrar re-registers them, then critical until their first
 *   check. Every instance known before is held; the re-registered copy is on
 *   the same node, so a fresh instance with the same service ID on ANY node
 *   covers a held one.
 * - "failover": the controller moved to another agent. Only this
 *   controller's own instances are held (the caller picks them): the copies
 *   on the lost agent still look passing until serf fails its node, then turn
 *   critical, while the copies the registrar wrote on the new agent are
 *   critical until their first check passes there, in either order. Only a
 *   copy on ANOTHER node covers a held one: the old copy passing a moment
 *   longer proves nothing.
 *
 * Rule: a held instance is covered when the fresh answer has an instance with
 * the same service ID, on a node the kind allows, at least as healthy. An
 * uncovered held instance replaces the fresh entry of its own node and
 * service ID when that one is missing or less healthy; everything else is the
 * fresh answer as is. The hold is released as soon as every held instance is
 * covered. Pure; the health watcher applies it to each answer during a hold
 * and ends the hold on release or when its time is up.
 */
import { STATUS_RANK as RANK, type HealthInstance } from "./types.js";

export type HoldKind = "reset" | "failover";

const ABSENT = RANK.critical + 1;

export interface HoldMerge {
  /** What the health store reports while the hold lasts (the fresh answer once released). */
  readonly instances: readonly HealthInstance[];
  /** Every held instance is covered by the fresh answer: the hold is over. */
  readonly released: boolean;
}

/** An instance's identity across Consul answers: its node and service ID (the same ID may stand on several nodes). */
export function instanceKey(i: Pick<HealthInstance, "node" | "serviceId">): string {
  return `${i.node}\u0000${i.serviceId}`;
}

export function mergeHeld(held: readonly HealthInstance[], fresh: readonly HealthInstance[], kind: HoldKind): HoldMerge {
  const byId = new Map<string, HealthInstance[]>();
  for (const i of fresh) byId.set(i.serviceId, [...(byId.get(i.serviceId) ?? []), i]);
  const covered = (h: HealthInstance): boolean =>
    (byId.get(h.serviceId) ?? []).some((i) => (kind === "reset" || i.node !== h.node) && RANK[i.status] <= RANK[h.status]);
  const uncovered = held.filter((h) => !covered(h));
  if (uncovered.length === 0) return { instances: fresh, released: true };
  const rank = new Map(fresh.map((i) => [instanceKey(i), RANK[i.status]]));
  const substitutes = uncovered.filter((h) => (rank.get(instanceKey(h)) ?? ABSENT) > RANK[h.status]);
  const replaced = new Set(substitutes.map(instanceKey));
  return { instances: [...fresh.filter((i) => !replaced.has(instanceKey(i))), ...substitutes], released: false };
}
