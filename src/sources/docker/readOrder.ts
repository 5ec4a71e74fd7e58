/**
 * Orders concurrent reads of one container (Docker source). Pure bookkeeping.
 *
 * Reads of one container may overlap: an event re-reads a container while an
 * earlier read of it is still in flight (a read issued on a network connect
 * waits for the container's start to finish), and answers can come back in
 * any order. Rule: a read's result is applied only if no read issued after it
 * has been applied already. Every change emits an event and every event
 * issues a read, so the newest-issued read's result is the one left in the
 * cache whatever order the answers arrive in.
 *
 * Tickets increase across all containers. Entries live only while reads of
 * their container are in flight: memory is bounded by the reads in flight,
 * not by every container ever seen. (A full resync's list is ordered against
 * event reads by the watcher itself: see DockerWatcher.resync.)
 */
interface Reads {
  inFlight: number;
  /** Ticket of the newest read whose result was applied while this entry lived (0: none). */
  applied: number;
}

export class ReadOrder {
  private last = 0;
  private readonly byId = new Map<string, Reads>();

  /** Starts a read of `id`; returns its ticket. Every begin must be followed by one end. */
  begin(id: string): number {
    const reads = this.byId.get(id) ?? { inFlight: 0, applied: 0 };
    reads.inFlight++;
    this.byId.set(id, reads);
    return ++this.last;
  }

  /** True while a read of `id` is in flight. */
  inFlight(id: string): boolean {
    return this.byId.has(id);
  }

  /**
   * Ends read `ticket` of `id`. With `answered` (the read returned a state),
   * returns true when that state is to be applied: no read issued after it
   * was applied. A failed read (`answered` false) applies nothing: false.
   */
  end(id: string, ticket: number, answered: boolean): boolean {
    const reads = this.byId.get(id);
    if (reads === undefined) return answered;
    reads.inFlight--;
    const apply = answered && ticket > reads.applied;
    if (apply) reads.applied = ticket;
    if (reads.inFlight <= 0) this.byId.delete(id);
    return apply;
  }
}
