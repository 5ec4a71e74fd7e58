/**
 * Who gets how much traffic: per-instance weights and split groups. Pure.
 *
 * - Weight: the container label `dockbind.io/weight` (an integer 1..100) is the
 *   instance's Consul `Weights.Passing` and, within its group, its relative
 *   share of requests. No label: weight 1 (Consul's default). A label that is
 *   not such an integer keeps the container out (skipped with the reason):
 *   an unreadable weight would silently change every other instance's share.
 * - Split group (`loadBalancer.split`): the first group whose selector matches
 *   the container's labels. The group travels with the registration as the
 *   service meta SPLIT_META (the group's index in the split), so the renderer,
 *   which only sees Consul, knows it; the renderer validates it when reading
 *   it back (splitGroupFromMeta). A container in no group is registered
 *   without the key and is not rendered while the binding has a split.
 */
import { matchesSelector } from "./selector.js";
import type { LabelSelector, ServiceBinding, SplitGroup } from "./types.js";

/** Container label carrying an instance weight. */
export const WEIGHT_LABEL = "dockbind.io/weight";
/** Service meta key carrying the split group index (decimal) of an instance. */
export const SPLIT_META = "dockbind_split";
export const MIN_WEIGHT = 1;
export const MAX_WEIGHT = 100;

/** True for an integer weight in MIN_WEIGHT..MAX_WEIGHT (Consul data or a parsed label). */
export function isValidWeight(n: unknown): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= MIN_WEIGHT && n <= MAX_WEIGHT;
}

/** A weight written as plain decimal digits (no sign, exponent, spaces or leading zero): "1e9", "0x10", " 5" are refused. */
export function parseWeight(text: string): number | undefined {
  if (!/^[1-9][0-9]{0,2}$/.test(text)) return undefined;
  const n = Number(text);
  return isValidWeight(n) ? n : undefined;
}

/** The index of the first group whose selector matches `labels`; undefined in none. */
export function splitGroupOf(split: readonly SplitGroup[], labels: Readonly<Record<string, string>>): number | undefined {
  const i = split.findIndex((g) => matchesSelector(g.selector, labels));
  return i === -1 ? undefined : i;
}

/** The group index an instance's (untrusted) meta names, when it is a group of `split`. */
export function splitGroupFromMeta(split: readonly SplitGroup[], meta: Readonly<Record<string, string>> | undefined): number | undefined {
  const raw = meta !== undefined && Object.hasOwn(meta, SPLIT_META) ? meta[SPLIT_META] : undefined;
  if (raw === undefined || !/^(0|[1-9][0-9]{0,2})$/.test(raw)) return undefined;
  const i = Number(raw);
  return i < split.length ? i : undefined;
}

/** A selector in one line for plan/status (`track=canary`, `tier in (a,b)`). */
export function describeSelector(sel: LabelSelector): string {
  const labels = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  const exprs = (sel.matchExpressions ?? []).map((x) =>
    x.operator === "In" || x.operator === "NotIn"
      ? `${x.key} ${x.operator.toLowerCase()} (${(x.values ?? []).join(",")})`
      : `${x.operator === "Exists" ? "" : "!"}${x.key}`,
  );
  return [...labels, ...exprs].join(",");
}

export type BackendTraffic = { readonly weight?: number; readonly meta: Readonly<Record<string, string>> } | { readonly skip: string };

/** The weight and split-group meta of a backend with these labels (container or Swarm service labels). */
export function backendTraffic(binding: ServiceBinding, labels: Readonly<Record<string, string>>): BackendTraffic {
  const raw = Object.hasOwn(labels, WEIGHT_LABEL) ? labels[WEIGHT_LABEL] : undefined;
  const weight = raw === undefined ? undefined : parseWeight(raw);
  if (raw !== undefined && weight === undefined)
    return { skip: `label ${WEIGHT_LABEL}: ${JSON.stringify(raw.slice(0, 40))} is not an integer in ${MIN_WEIGHT}..${MAX_WEIGHT}` };
  const split = binding.spec.loadBalancer?.split;
  const group = split === undefined ? undefined : splitGroupOf(split, labels);
  return { ...(weight !== undefined ? { weight } : {}), meta: group === undefined ? {} : { [SPLIT_META]: String(group) } };
}
