/**
 * A Manager of Runnables (controller-runtime's Manager): the process's
 * long-running parts are added in declaration order and run by one Manager.
 *
 * Contract:
 * - start: runnables without `needsLeadership` start first, in the order they
 *   were added; runnables with it start (in order) once leadership is held:
 *   at once without an election, after the lock is acquired with one;
 * - stop (the run signal aborts): leader runnables, then the others, each
 *   group in reverse order of addition; each runnable's signal aborts only
 *   after the one added after it has returned, and run() resolves once all
 *   have returned. With an election the lock is released after the leader
 *   runnables returned;
 * - leadership lost: every leader runnable's signal aborts at once (a replica
 *   that lost the lock must stop writing now), they are not awaited, the
 *   other runnables are stopped in reverse order, and run() resolves "lost":
 *   the caller exits, a new process campaigns again;
 * - failure: a runnable whose start() rejects is logged and stops the whole
 *   manager (as a stop, in order), and run() resolves "failed". A runnable
 *   that resolves before its signal aborted has simply ended (nothing else
 *   stops, nothing restarts).
 * Runnables are never restarted. run() never rejects and may be called once.
 */
import { runElection, type ElectionHooks, type LeadershipLock } from "./leaderElection.js";
import { errorMessage, type Logger } from "./logger.js";

export interface Runnable {
  /** Name in logs. */
  readonly name: string;
  /** Runs only while this process holds the leadership lock. */
  readonly needsLeadership: boolean;
  /** Runs until `signal` aborts, then stops and resolves. A rejection is a failure (see the module contract). */
  start(signal: AbortSignal): Promise<void>;
}

export interface ManagerElection {
  readonly lock: LeadershipLock;
  readonly hooks: ElectionHooks;
}

export interface ManagerOptions {
  readonly logger: Logger;
  /** The lock leader runnables need; absent: this process always leads. */
  readonly election?: ManagerElection;
}

/** How run() ended: a requested stop, leadership lost, or a runnable failed. */
export type ManagerOutcome = "stopped" | "lost" | "failed";

/** Resolves when `signal` aborts (at once if it already has). Never rejects. */
export function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    signal.addEventListener(
      "abort",
      () => {
        resolve();
      },
      { once: true },
    );
  });
}

interface Running {
  readonly name: string;
  readonly abort: AbortController;
  readonly done: Promise<void>;
}

/** Runnables started together; stopped in reverse order. */
class Group {
  private readonly running: Running[] = [];

  constructor(
    runnables: readonly Runnable[],
    private readonly logger: Logger,
    onFailure: () => void,
  ) {
    for (const r of runnables) {
      const abort = new AbortController();
      logger.debug("starting runnable", { runnable: r.name });
      const done = Promise.resolve()
        .then(() => r.start(abort.signal))
        .catch((err: unknown) => {
          logger.error("runnable failed; stopping the manager", { runnable: r.name, error: errorMessage(err) });
          onFailure();
        });
      this.running.push({ name: r.name, abort, done });
    }
  }

  /** Aborts the last-added runnable, awaits it, then the one before, and so on. */
  async stop(): Promise<void> {
    for (const r of [...this.running].reverse()) {
      r.abort.abort();
      await r.done;
      this.logger.debug("runnable stopped", { runnable: r.name });
    }
  }

  /** Aborts every runnable at once, awaiting none. */
  abortAll(): void {
    for (const r of this.running) r.abort.abort();
  }
}

export class Manager {
  private readonly runnables: Runnable[] = [];
  private running = false;

  constructor(private readonly opts: ManagerOptions) {}

  /** Adds a runnable after those already added. Throws once run() was called. */
  add(...runnables: readonly Runnable[]): void {
    if (this.running) throw new Error("manager: runnables must be added before run()");
    this.runnables.push(...runnables);
  }

  /** Runs every runnable until `signal` aborts, leadership is lost or a runnable fails (module contract). */
  async run(signal: AbortSignal): Promise<ManagerOutcome> {
    if (this.running) throw new Error("manager: run() called twice");
    this.running = true;
    const failed = new AbortController();
    const stop = AbortSignal.any([signal, failed.signal]);
    const onFailure = (): void => {
      failed.abort();
    };
    const always = new Group(
      this.runnables.filter((r) => !r.needsLeadership),
      this.opts.logger,
      onFailure,
    );
    const leaders = this.runnables.filter((r) => r.needsLeadership);
    const lead = async (leaderSignal: AbortSignal): Promise<void> => {
      const group = new Group(leaders, this.opts.logger, onFailure);
      await aborted(leaderSignal);
      // The lock is still ours when the stop was requested; otherwise it is lost: stop writing at once.
      if (stop.aborted) await group.stop();
      else group.abortAll();
    };
    const election = this.opts.election;
    let outcome: "stopped" | "lost" = "stopped";
    if (election === undefined) await lead(stop);
    else outcome = await runElection(election.lock, election.hooks, stop, lead);
    await always.stop();
    if (outcome === "lost") return "lost";
    return failed.signal.aborted ? "failed" : "stopped";
  }
}
