/** The Swarm services and tasks of a Docker engine, as the registrar, the app and observability read them. */
import type { SwarmView } from "../domain/swarm.js";

/** Read side, used by the registrar. */
export interface SwarmStore {
  view(): SwarmView;
}

/** A SwarmStore that also tells which swarm it manages (of several Docker endpoints, one per swarm serves its services). */
export interface SwarmClusterStore extends SwarmStore {
  /**
   * ID of the swarm this engine was last seen managing; kept while the engine is
   * unreachable, cleared when it reports it is not (or no longer) a manager.
   */
  clusterId(): string | undefined;
}
