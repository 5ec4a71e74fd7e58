/**
 * The container cache with an index by label pair: selecting a
 * binding's backends looks at the containers carrying one of its matchLabels
 * pairs instead of scanning every container, so a resync of B bindings over
 * C containers costs ~B × (matching containers), not B × C.
 *
 * Only label KEYS that some select() asked for are indexed (key -> value ->
 * ids): the first select() on a new key indexes it with one scan, later
 * set()/delete() keep it current. Containers carry many labels no selector
 * reads (Compose adds six, some unique per container); indexing those would
 * cost more memory than the containers themselves (mostly single-element sets).
 */
import { matchesSelector } from "../../domain/selector.js";
import type { ContainerInfo, LabelSelector } from "../../domain/types.js";

/** Own label `key` only: "constructor" or "toString" are not labels. */
const labelOf = (c: ContainerInfo, key: string): string | undefined => (Object.hasOwn(c.labels, key) ? c.labels[key] : undefined);

export class ContainerIndex {
  private readonly byId = new Map<string, ContainerInfo>();
  /** Indexed label key -> label value -> ids of the containers carrying that pair. */
  private readonly byLabel = new Map<string, Map<string, Set<string>>>();

  get(id: string): ContainerInfo | undefined {
    return this.byId.get(id);
  }

  keys(): IterableIterator<string> {
    return this.byId.keys();
  }

  values(): IterableIterator<ContainerInfo> {
    return this.byId.values();
  }

  /** Label keys currently indexed (those select() was asked about). */
  indexedKeys(): string[] {
    return [...this.byLabel.keys()];
  }

  set(id: string, c: ContainerInfo): void {
    this.delete(id);
    this.byId.set(id, c);
    for (const [key, values] of this.byLabel) {
      const v = labelOf(c, key);
      if (v !== undefined) add(values, v, id);
    }
  }

  delete(id: string): void {
    const c = this.byId.get(id);
    if (c === undefined) return;
    this.byId.delete(id);
    for (const [key, values] of this.byLabel) {
      const v = labelOf(c, key);
      if (v === undefined) continue;
      const ids = values.get(v);
      ids?.delete(id);
      if (ids?.size === 0) values.delete(v);
    }
  }

  /** Containers matching `selector` (same result as filtering values() with matchesSelector). */
  select(selector: LabelSelector): ContainerInfo[] {
    let candidates: ReadonlySet<string> | undefined;
    for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
      const ids = this.indexed(k).get(v);
      if (ids === undefined) return [];
      if (candidates === undefined || ids.size < candidates.size) candidates = ids;
    }
    const out: ContainerInfo[] = [];
    if (candidates === undefined) {
      for (const c of this.byId.values()) if (matchesSelector(selector, c.labels)) out.push(c);
      return out;
    }
    for (const id of candidates) {
      const c = this.byId.get(id);
      if (c !== undefined && matchesSelector(selector, c.labels)) out.push(c);
    }
    return out;
  }

  /** The value -> ids index of label `key`, built with one scan the first time `key` is asked for. */
  private indexed(key: string): Map<string, Set<string>> {
    let values = this.byLabel.get(key);
    if (values !== undefined) return values;
    values = new Map();
    for (const [id, c] of this.byId) {
      const v = labelOf(c, key);
      if (v !== undefined) add(values, v, id);
    }
    this.byLabel.set(key, values);
    return values;
  }
}

function add(values: Map<string, Set<string>>, value: string, id: string): void {
  let ids = values.get(value);
  if (ids === undefined) values.set(value, (ids = new Set()));
  ids.add(id);
}
