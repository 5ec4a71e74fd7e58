/**
 * Read-only union of several Docker endpoints' container caches,
 * for the observers (status page, /readyz, metrics) that look at "the
 * containers of this controller". Reconcilers never use it: each endpoint's
 * registrar reads its own cache. Synced only when every endpoint is synced.
 */
import type { ContainerInfo, LabelSelector } from "../domain/types.js";
import type { ContainerStore } from "../ports/containerStore.js";

export function mergedContainers(stores: readonly ContainerStore[]): ContainerStore {
  const only = stores.length === 1 ? stores[0] : undefined;
  if (only !== undefined) return only;
  return {
    synced: () => stores.every((s) => s.synced()),
    list: (): readonly ContainerInfo[] => stores.flatMap((s) => s.list()),
    get: (id: string): ContainerInfo | undefined => {
      for (const s of stores) {
        const c = s.get(id);
        if (c !== undefined) return c;
      }
      return undefined;
    },
    select: (selector: LabelSelector): readonly ContainerInfo[] => stores.flatMap((s) => s.select(selector)),
  };
}
