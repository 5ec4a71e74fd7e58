/**
 * Liveness of the worker loops, for /healthz. Fed by the controller and queue
 * observer hooks (observers.ts); answers "is any loop wedged?".
 *
 * A loop is wedged when, for longer than `wedgeAfterMs`:
 * - one reconcile has been running (a worker is stuck in reconcile()), or
 * - its queue has had waiting keys while no worker took one (workers gone).
 * An idle loop is healthy however long it idles, and an unreachable dependency
 * (Docker, Consul) is not a wedge: reconciles against it fail and retry, which
 * is progress. Dependencies are /readyz's business, not /healthz's.
 */

export interface LivenessReport {
  readonly ok: boolean;
  /** One line per wedged loop; empty when ok. */
  readonly problems: readonly string[];
}

export class LoopMonitor {
  /** controller -> key -> start time (ms). */
  private readonly inflight = new Map<string, Map<string, number>>();
  /** queue -> since when keys have been waiting without a take (ms). */
  private readonly waitingSince = new Map<string, number>();
  private readonly depths = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  reconcileStarted(controller: string, key: string): void {
    let m = this.inflight.get(controller);
    if (m === undefined) this.inflight.set(controller, (m = new Map<string, number>()));
    m.set(key, this.now());
  }

  reconcileFinished(controller: string, key: string | undefined): void {
    if (key !== undefined) this.inflight.get(controller)?.delete(key);
  }

  /** A worker took a key from `queue`: the queue made progress. */
  taken(queue: string): void {
    if (this.waitingSince.has(queue)) this.waitingSince.set(queue, this.now());
  }

  depth(queue: string, depth: number): void {
    this.depths.set(queue, depth);
    if (depth === 0) this.waitingSince.delete(queue);
    else if (!this.waitingSince.has(queue)) this.waitingSince.set(queue, this.now());
  }

  check(wedgeAfterMs: number): LivenessReport {
    const now = this.now();
    const problems: string[] = [];
    for (const [controller, keys] of this.inflight) {
      for (const [key, since] of keys) {
        if (now - since > wedgeAfterMs) problems.push(`controller ${controller}: reconcile of ${key} running for ${Math.round((now - since) / 1000)}s`);
      }
    }
    for (const [queue, since] of this.waitingSince) {
      if (now - since > wedgeAfterMs) {
        problems.push(`queue ${queue}: ${this.depths.get(queue) ?? 0} key(s) waiting, none taken for ${Math.round((now - since) / 1000)}s`);
      }
    }
    return { ok: problems.length === 0, problems };
  }
}
