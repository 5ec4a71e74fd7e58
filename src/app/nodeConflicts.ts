/**
 * The node identity conflicts one Docker endpoint currently sees: other
 * controllers (another engine or instance) registering under its node name.
 * Replaced at every full agent listing (garbage-collection pass), so a
 * conflict that ends disappears within one resync. Each peer is logged at
 * warn once per process. Values come from safeIdentityValue() (never raw meta).
 */
import { conflictMessage, type NodeConflict } from "../domain/ownership.js";
import type { Logger } from "../runtime/logger.js";

/** Bounds the warned-peer memory (peers are counted, never labels). */
const MAX_WARNED = 256;

export class NodeConflictTracker {
  private current: readonly NodeConflict[] = [];
  private readonly warned = new Set<string>();

  constructor(private readonly logger: Logger) {}

  /** The conflicts of the latest listing. */
  list(): readonly NodeConflict[] {
    return this.current;
  }

  update(found: readonly NodeConflict[]): void {
    this.current = found;
    for (const c of found) {
      const key = `${c.node}/${c.peer.engine}/${c.peer.instance}`;
      if (this.warned.has(key) || this.warned.size >= MAX_WARNED) continue;
      this.warned.add(key);
      this.logger.warn("node identity conflict", {
        node: c.node,
        reason: "NodeIdentityConflict",
        peerEngine: c.peer.engine,
        peerInstance: c.peer.instance,
        registrations: c.registrations,
        detail: conflictMessage(c),
      });
    }
  }
}
