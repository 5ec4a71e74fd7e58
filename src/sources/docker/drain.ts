/**
 * Graceful drain bookkeeping for the Docker source.
 *
 * `docker stop` / `docker kill` emit a `kill` event (with the signal) BEFORE
 * the container dies: the watcher marks the container as draining at once, so
 * desired() drops it and the registrar deregisters it while the container
 * still answers. The mark lasts `drainDelayMs`; a container still running
 * after that (it ignored or survived the signal) counts as a live backend
 * again. Pure except for the clock passed in.
 */

/** Signals that ask a process to terminate (numbers as the engine reports them, and names). */
const STOP_SIGNALS = new Set(["2", "3", "9", "15", "INT", "QUIT", "KILL", "TERM", "SIGINT", "SIGQUIT", "SIGKILL", "SIGTERM"]);

/**
 * True when a container event announces that the container is being stopped:
 * `kill` with a terminating signal (what `docker stop` and `docker kill` send
 * first), or `stop`. `kill -s HUP` (a reload) is not a stop.
 */
export function isStopEvent(action: string, attributes: Readonly<Record<string, string>> | undefined): boolean {
  if (action === "stop") return true;
  if (action !== "kill") return false;
  const signal = attributes?.signal;
  return signal === undefined || STOP_SIGNALS.has(signal.toUpperCase());
}

export class DrainTracker {
  /** Container id -> time (ms) the drain mark expires. */
  private readonly until = new Map<string, number>();

  constructor(private readonly drainDelayMs: number) {}

  /** False when draining is switched off (`--drain-delay 0s`). */
  enabled(): boolean {
    return this.drainDelayMs > 0;
  }

  /** Marks `id` as draining; returns false when it already was (or draining is off). */
  mark(id: string, now: number): boolean {
    if (!this.enabled() || this.isDraining(id, now)) return false;
    this.until.set(id, now + this.drainDelayMs);
    return true;
  }

  isDraining(id: string, now: number): boolean {
    const t = this.until.get(id);
    if (t === undefined) return false;
    if (now < t) return true;
    this.until.delete(id);
    return false;
  }

  /** The container is gone: forget it. */
  clear(id: string): void {
    this.until.delete(id);
  }

  get delayMs(): number {
    return this.drainDelayMs;
  }
}
