/** Kubernetes-style label selector matching (matchLabels AND matchExpressions). Pure. */
import type { LabelSelector } from "./types.js";

export function matchesSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[k] !== v) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    // Own keys only: "constructor" or "toString" are not labels.
    const value = Object.hasOwn(labels, req.key) ? labels[req.key] : undefined;
    const values = req.values ?? [];
    switch (req.operator) {
      case "In":
        if (value === undefined || !values.includes(value)) return false;
        break;
      case "NotIn":
        if (value !== undefined && values.includes(value)) return false;
        break;
      case "Exists":
        if (value === undefined) return false;
        break;
      case "DoesNotExist":
        if (value !== undefined) return false;
        break;
    }
  }
  return true;
}
