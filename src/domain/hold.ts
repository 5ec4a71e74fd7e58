/**
 * The health hold: what a load balancer serves while Consul has lost track of
 * instances it knew a moment ago. Two causes, one rule:
 * - the agent restarted with its state lost: its services are gone until the
 *   registrar re-registers them, and then critical until their first check;
 * - the controller failed over to another agent: the copies on the dead
 *   agent turn critical once serf notices, and the copies the registrar wrote
 *   on the new agent are critical until their first check passes there.
 *
 * Rule: an instance known before the hold (`held`) is "covered" when the
 * fresh answer has an instance with the same service ID, on any node, at
 * least as healthy. Uncovered held instances replace the fresh entry of the
 * same node and service ID (or are added); everything else is the fresh
 * answer as is. The hold is released as soon as every held instance is
 * covered. Pure; the health watcher applies it to each answer during a hold
 * and ends the hold on release or when its time is up.
 */
import type { CheckStatus, HealthInstance } from "./types.js";

const RANK: Readonly<Record<CheckStatus, number>> = { passing: 0, warning: 1, critical: 2 };

export interface HoldMerge {
  /** What the health store reports while the hold lasts (the fresh answer once released). */
  readonly instances: readonly HealthInstance[];
  /** Every held instance is covered by the fresh answer: the hold is over. */
  readonly released: boolean;
  /** How many held instances were substituted (0 when released). */
  readonly substituted: number;
}

function nodeKey(i: HealthInstance): string {
  return `${i.node}\u0000${i.serviceId}`;
}

export function mergeHeld(held: readonly HealthInstance[], fresh: readonly HealthInstance[]): HoldMerge {
  const best = new Map<string, number>();
  for (const i of fresh) best.set(i.serviceId, Math.min(best.get(i.serviceId) ?? RANK.critical + 1, RANK[i.status]));
  const uncovered = held.filter((h) => (best.get(h.serviceId) ?? RANK.critical + 1) > RANK[h.status]);
  if (uncovered.length === 0) return { instances: fresh, released: true, substituted: 0 };
  const replaced = new Set(uncovered.map(nodeKey));
  return { instances: [...fresh.filter((i) => !replaced.has(nodeKey(i))), ...uncovered], released: false, substituted: uncovered.length };
}
