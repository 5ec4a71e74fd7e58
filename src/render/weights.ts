/**
 * Server weights of a rendered upstream/backend. Pure and deterministic: the
 * result depends only on the (already validated) weights and groups given, in
 * their order, so renders stay byte-stable.
 *
 * Without a split, a server's weight is its instance weight (1..100).
 *
 * With a split, each group that has at least one server gets its percent of
 * the requests, renormalised over the groups that have servers (a group with
 * no server gives its share to the others), divided among its servers in
 * proportion to their instance weights. A server's exact share is turned into
 * an integer weight: the largest becomes MAX_SERVER_WEIGHT, the others are
 * rounded on that scale (at least 1), then all are divided by their greatest
 * common divisor. Share error is at most 0.5/MAX_SERVER_WEIGHT of the largest
 * server's share. Servers of a 0 % group get weight 0 (not rendered) unless
 * only 0 % groups have servers: then they share the requests by instance weight.
 */
import type { SplitGroup } from "../domain/types.js";

/** haproxy's largest server weight (0..256); nginx weights are any positive integer, so both get the same integers. */
export const MAX_SERVER_WEIGHT = 256;

export interface WeightInput {
  /** Validated instance weight (1..100). */
  readonly weight: number;
  /** Split group index (required when a split is given). */
  readonly group?: number;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** One integer weight per server (same order); 0 = leave the server out. */
export function serverWeights(servers: readonly WeightInput[], split: readonly SplitGroup[] | undefined): number[] {
  if (split === undefined) return servers.map((s) => s.weight);
  const groupTotal = new Map<number, number>();
  for (const s of servers) if (s.group !== undefined) groupTotal.set(s.group, (groupTotal.get(s.group) ?? 0) + s.weight);
  const percentOf = (g: number | undefined): number => (g === undefined ? 0 : (split[g]?.percent ?? 0));
  const anyPercent = servers.some((s) => percentOf(s.group) > 0);
  const shares = servers.map((s) => {
    if (s.group === undefined) return 0;
    return anyPercent ? (percentOf(s.group) * s.weight) / (groupTotal.get(s.group) ?? s.weight) : s.weight;
  });
  const largest = Math.max(0, ...shares);
  if (largest === 0) return shares.map(() => 0);
  const scaled = shares.map((f) => (f === 0 ? 0 : Math.max(1, Math.round((f / largest) * MAX_SERVER_WEIGHT))));
  const divisor = scaled.reduce((acc, w) => gcd(acc, w), 0);
  return scaled.map((w) => w / divisor);
}
