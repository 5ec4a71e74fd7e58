/**
 * The container cache with an index by label pair (issue #6, P5): selecting a
 * binding's backends looks at the containers carrying one of its matchLabels
 * pairs instead of scanning every container, so a resync of B bindings over
 * C containers costs ~B × (matching containers), not B × C.
 */
import { matchesSelector } from "../../domain/selector.js";
import type { ContainerInfo, LabelSelector } from "../../domain/types.js";

const pairKey = (k: string, v: string): string => `${k}\u0000${v}`;

export class ContainerIndex {
  private readonly byId = new Map<string, ContainerInfo>();
  private readonly byLabel = new Map<string, Set<string>>();

  get(id: string): ContainerInfo | undefined {
    return this.byId.get(id);
  }

  keys(): IterableIterator<string> {
    return this.byId.keys();
  }

  values(): IterableIterator<ContainerInfo> {
    return this.byId.values();
  }

  set(id: string, c: ContainerInfo): void {
    this.delete(id);
    this.byId.set(id, c);
    for (const [k, v] of Object.entries(c.labels)) {
      const key = pairKey(k, v);
      let ids = this.byLabel.get(key);
      if (ids === undefined) this.byLabel.set(key, (ids = new Set()));
      ids.add(id);
    }
  }

  delete(id: string): void {
    const c = this.byId.get(id);
    if (c === undefined) return;
    this.byId.delete(id);
    for (const [k, v] of Object.entries(c.labels)) {
      const key = pairKey(k, v);
      const ids = this.byLabel.get(key);
      ids?.delete(id);
      if (ids?.size === 0) this.byLabel.delete(key);
    }
  }

  /** Containers matching `selector` (same result as filtering values() with matchesSelector). */
  select(selector: LabelSelector): ContainerInfo[] {
    let candidates: Iterable<string> | undefined;
    for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
      const ids = this.byLabel.get(pairKey(k, v));
      if (ids === undefined) return [];
      if (candidates === undefined || ids.size < [...candidates].length) candidates = ids;
    }
    const pool = candidates === undefined ? this.byId.values() : [...candidates].flatMap((id) => this.byId.get(id) ?? []);
    return [...pool].filter((c) => matchesSelector(selector, c.labels));
  }
}
