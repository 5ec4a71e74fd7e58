/**
 * The controller loop: N workers take keys from one WorkQueue and call the
 * reconciler's single entry point. Results and errors are recorded here, in
 * the framework, not in reconcilers (controller-runtime's contract):
 * - success: forget the key's backoff; `requeueAfter` (not done yet) or
 *   `recheckAfter` (done, follow up later) schedules a re-check;
 * - retryable error: requeue with per-key exponential backoff, capped by the
 *   error's own bound when it has one (retryCapOf);
 * - terminal error: counted and logged, not retried.
 */
import type { Logger } from "./logger.js";
import { errorMessage } from "./logger.js";
import { isTerminal, reasonOf, retryCapOf } from "./errors.js";
import { aborted, type Runnable } from "./manager.js";
import type { WorkQueue } from "./workqueue.js";

export interface ReconcileResult {
  /** Not done: re-check this key after the given delay (e.g. waiting for a source to sync). */
  readonly requeueAfterMs?: number;
  /**
   * Done (a success for status and finalizers), but look again after this delay:
   * a follow-up, e.g. re-probing backends that were not answering yet.
   */
  readonly recheckAfterMs?: number;
}

export interface Reconciler {
  /** Converges the world for `key`. Idempotent; re-reads all state it needs. */
  reconcile(key: string): Promise<ReconcileResult>;
}

export type ReconcileOutcome = "success" | "requeue" | "error" | "terminal";

/** Hooks for metrics and liveness; every method is optional and must not throw. */
export interface ControllerObserver {
  /** A worker took `key` and is about to call reconcile(). Always followed by onReconcile for the same key. */
  onReconcileStart?(controller: string, key: string): void;
  onReconcile?(controller: string, outcome: ReconcileOutcome, seconds: number, reason?: string, key?: string): void;
}

export interface ControllerOptions {
  readonly name: string;
  readonly queue: WorkQueue;
  readonly reconciler: Reconciler;
  readonly workers: number;
  readonly logger: Logger;
  readonly observer?: ControllerObserver;
}

/** Starts the workers; resolves when the queue is shut down and all workers returned. */
export async function runController(opts: ControllerOptions): Promise<void> {
  const workers = Array.from({ length: Math.max(1, opts.workers) }, () => worker(opts));
  await Promise.all(workers);
}

/**
 * runController() as a Runnable that needs leadership: `before` (e.g. adopting
 * state found on disk) runs first, then the workers until the runnable's
 * signal aborts; then the queue shuts down and in-flight reconciles finish.
 */
export function controllerRunnable(opts: ControllerOptions, before?: () => Promise<void>): Runnable {
  return {
    name: opts.name,
    needsLeadership: true,
    start: async (signal) => {
      await before?.();
      const run = runController(opts);
      await aborted(signal);
      opts.queue.shutDown();
      await run;
    },
  };
}

async function worker(opts: ControllerOptions): Promise<void> {
  const { queue, logger, name } = opts;
  for (;;) {
    const key = await queue.get();
    if (key === undefined) return;
    const started = performance.now();
    opts.observer?.onReconcileStart?.(name, key);
    let outcome: ReconcileOutcome = "success";
    let reason: string | undefined;
    try {
      const result = await opts.reconciler.reconcile(key);
      queue.forget(key);
      if (result.requeueAfterMs !== undefined) {
        outcome = "requeue";
        queue.addAfter(key, result.requeueAfterMs);
      } else if (result.recheckAfterMs !== undefined) {
        queue.addAfter(key, result.recheckAfterMs);
      }
    } catch (err) {
      reason = reasonOf(err);
      if (isTerminal(err)) {
        outcome = "terminal";
        queue.forget(key);
        logger.error("reconcile failed (terminal, not retried)", {
          controller: name,
          key,
          reason,
          error: errorMessage(err),
          durationMs: Math.round(performance.now() - started),
        });
      } else {
        outcome = "error";
        const delay = queue.addRateLimited(key, retryCapOf(err));
        logger.warn("reconcile failed, will retry", {
          controller: name,
          key,
          reason,
          error: errorMessage(err),
          retryInMs: delay,
          durationMs: Math.round(performance.now() - started),
        });
      }
    } finally {
      queue.done(key);
    }
    const seconds = (performance.now() - started) / 1000;
    opts.observer?.onReconcile?.(name, outcome, seconds, reason, key);
    if (outcome === "success" || outcome === "requeue") {
      logger.debug("reconciled", { controller: name, key, outcome, durationMs: Math.round(seconds * 1000) });
    }
  }
}
