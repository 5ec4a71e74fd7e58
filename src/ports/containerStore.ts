/** The containers of the Docker engine(s) as the reconcilers, the app and observability read them. */
import type { ContainerInfo, LabelSelector } from "../domain/types.js";

/** One container whose cached state changed (before/after for selector matching). */
export interface ContainerChange {
  readonly id: string;
  readonly before?: ContainerInfo;
  readonly after?: ContainerInfo;
}

/** Read side of a container cache (one Docker engine, or several merged), used by reconcilers. */
export interface ContainerStore {
  /** True once a full list succeeded and the event stream is connected. */
  synced(): boolean;
  list(): readonly ContainerInfo[];
  get(id: string): ContainerInfo | undefined;
  /** Containers whose labels match `selector` (indexed: no full scan for matchLabels). */
  select(selector: LabelSelector): readonly ContainerInfo[];
}
