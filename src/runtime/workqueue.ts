/**
 * A rate-limited work queue with client-go semantics:
 * - a key queued several times before it is taken is processed once (dedup);
 * - a key is never handed to two workers at once: re-adding a key that is
 *   being processed marks it dirty, and it is queued again when `done` is called;
 * - `addRateLimited` requeues with per-key exponential backoff; `forget`
 *   resets that key's failure count;
 * - two priorities: a key added "low" (a periodic resync re-checking
 *   everything) is handed out only when no "high" key (an event) waits, so a
 *   resync of thousands of keys never delays an event; adding a waiting low key
 *   "high" promotes it. Dedup holds across priorities.
 * Keys carry identity only; workers re-read state for each key.
 */
import { backoffDelay, type BackoffOptions } from "./backoff.js";

/** Hooks for metrics; every method is optional and must not throw. */
export interface QueueObserver {
  onAdd?(queue: string): void;
  onDepth?(queue: string, depth: number): void;
  onQueueLatency?(queue: string, seconds: number): void;
  onWorkDuration?(queue: string, seconds: number): void;
  onRetry?(queue: string): void;
}

export interface WorkQueueOptions {
  readonly name: string;
  readonly backoff: BackoffOptions;
  readonly observer?: QueueObserver;
}

export type Priority = "high" | "low";

export class WorkQueue {
  private readonly queue: string[] = [];
  /** Low-priority order; may hold stale entries (promoted or already taken keys), skipped by `nextLow`. */
  private readonly lowQueue: string[] = [];
  /** Waiting keys whose priority is low (a subset of `dirty`). */
  private readonly low = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly addedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private stopped = false;

  constructor(private readonly opts: WorkQueueOptions) {}

  get name(): string {
    return this.opts.name;
  }

  /** Queues `key` now. Non-blocking, idempotent while the key waits (a waiting low key added high is promoted). */
  add(key: string, priority: Priority = "high"): void {
    if (this.stopped) return;
    if (this.dirty.has(key)) {
      if (priority === "high" && this.low.delete(key) && !this.processing.has(key)) this.push(key);
      return;
    }
    this.dirty.add(key);
    if (priority === "low") this.low.add(key);
    this.addedAt.set(key, performance.now());
    this.opts.observer?.onAdd?.(this.name);
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Queues `key` after `ms`; an earlier pending deadline for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + ms;
    const pending = this.timers.get(key);
    if (pending !== undefined && pending.at <= at) return;
    if (pending !== undefined) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /**
   * Requeues after this key's next backoff step (failure count + 1), never
   * later than `capMs` when given (a failure that clears by itself outside
   * the controller must be retried within that bound, however long it lasted).
   */
  addRateLimited(key: string, capMs?: number): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const delay = Math.min(backoffDelay(n, this.opts.backoff), capMs ?? Number.POSITIVE_INFINITY);
    this.opts.observer?.onRetry?.(this.name);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the key's failure count (call after a success or a terminal error). */
  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Resolves with the next key, or undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift() ?? this.nextLow();
    if (key !== undefined) return Promise.resolve(this.take(key));
    if (this.stopped) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks a key taken by `get` as finished; requeues it if it was re-added meanwhile. */
  done(key: string): void {
    this.processing.delete(key);
    const started = this.startedAt.get(key);
    this.startedAt.delete(key);
    if (started !== undefined) this.opts.observer?.onWorkDuration?.(this.name, (performance.now() - started) / 1000);
    if (this.dirty.has(key)) this.push(key);
  }

  len(): number {
    return this.queue.length + this.low.size;
  }

  /** True when nothing is queued, processing or scheduled. */
  idle(): boolean {
    return this.queue.length === 0 && this.low.size === 0 && this.processing.size === 0 && this.timers.size === 0;
  }

  shutDown(): void {
    this.stopped = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) {
      waiter(this.take(key));
      return;
    }
    (this.low.has(key) ? this.lowQueue : this.queue).push(key);
    this.opts.observer?.onDepth?.(this.name, this.len());
  }

  /** The next live low-priority key, dropping stale entries. */
  private nextLow(): string | undefined {
    for (let key = this.lowQueue.shift(); key !== undefined; key = this.lowQueue.shift()) {
      if (this.low.has(key) && !this.processing.has(key)) return key;
    }
    return undefined;
  }

  private take(key: string): string {
    this.dirty.delete(key);
    this.low.delete(key);
    this.processing.add(key);
    const added = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (added !== undefined) this.opts.observer?.onQueueLatency?.(this.name, (performance.now() - added) / 1000);
    this.startedAt.set(key, performance.now());
    this.opts.observer?.onDepth?.(this.name, this.len());
    return key;
  }
}
