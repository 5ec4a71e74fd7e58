/**
 * Consul health source: one blocking-query loop on /v1/health/service/<name>
 * per (service, datacenter) that some binding renders.
 *
 * Contract:
 * - X-Consul-Index handling per Consul's docs: block on the last index; an
 *   index that goes backwards (agent restarted) resets the query; index 0 is
 *   treated as 1;
 * - errors back off exponentially and KEEP the last known instances (the
 *   snapshot is flagged `stale` until the next answer), so a Consul outage
 *   (or an unreachable datacenter) never empties a rendered config;
 * - a changed instance set triggers `onChange(refKey)` through a min/max
 *   debouncer (consul-template's wait), so bursts render once; a change that
 *   only adds passing instances to a quiet key triggers it at once;
 * - agent restart with lost state: after any failed query the next
 *   one is a fresh non-blocking read (a blocking query on an index from the
 *   previous agent life would block for the whole wait: Consul blocks while
 *   its index is below the one asked for). An index that went backwards
 *   starts a HOLD: for up to `holdMs`, instances known before the reset that
 *   are missing from (or less healthy in) the fresh answer are kept, so the
 *   rendered config is not emptied while the registrar re-asserts; the hold
 *   ends as soon as the fresh answer covers every held instance, or on expiry
 *   (then the fresh answer wins: a registration really gone is dropped).
 *   `onIndexReset` lets the manager re-assert every registration at once.
 *   holdAll() starts a hold of this controller's own instances of every ref
 *   when the client fails over to another agent; they are released once
 *   passing on another node (both rules: domain/hold.ts).
 * - connections: a blocking query holds one HTTP connection to the agent for
 *   its whole wait, and Consul refuses more than `limits.http_max_conns_per_client`
 *   (default 200) from one client address. At most `maxBlocking` refs are
 *   watched with blocking queries — those `setWanted` marks rendered first;
 *   every other ref is polled (a non-blocking read every `pollMs`, spread
 *   with jitter), so the registrar's own calls always find a connection.
 * - wake-ups: Consul also ends a blocking query when something else on the
 *   same node changed (every registration on a busy agent wakes every query
 *   on it), so the answer is often unchanged. A rendered ref blocks again at
 *   once (its changes reach the load balancer without delay); a ref that is
 *   only reported (status) waits `quietMs` after an unchanged answer before
 *   blocking again, so a change to it shows at most `quietMs` late and a
 *   registration storm costs one read per ref per `quietMs`, not one per
 *   registration.
 */
import { instanceKey, mergeHeld, type HoldKind } from "../../domain/hold.js";
import { onlyAddsPassing } from "../../domain/maintenance.js";
import { sameVisible } from "../../domain/plan.js";
import type { EditedInstance, HealthInstance, ServiceRef } from "../../domain/types.js";
import { backoffDelay, isAborted, sleep, type BackoffOptions } from "../../runtime/backoff.js";
import { Debouncer } from "../../runtime/debouncer.js";
import { Limiter } from "../../runtime/limiter.js";
import { errorMessage, type Logger } from "../../runtime/logger.js";
import type { ConsulApi } from "../../ports/consul.js";
import type { HealthSnapshot, HealthStore } from "../../ports/healthStore.js";

export function refKey(ref: ServiceRef): string {
  return `${ref.dc ?? ""}/${ref.service}`;
}

export interface HealthWatcherOptions {
  readonly consul: ConsulApi;
  readonly logger: Logger;
  readonly waitMs: number;
  readonly backoff: BackoffOptions;
  readonly debounce: { readonly minMs: number; readonly maxMs: number };
  readonly onChange: (refKey: string) => void;
  /** Called when a query's index went backwards (agent restarted, state possibly lost). Must not throw. */
  readonly onIndexReset?: (refKey: string) => void;
  /**
   * Instances the previous answer of `refKey` had (same node and service ID) and this one lacks,
   * called synchronously with each such answer, before any debounce: the registrar uses it to notice
   * a registration removed behind its back (by hand, by another tool, by an agent that lost its state)
   * without waiting for a full resync. Compares raw answers, so a hold does not repeat a loss.
   */
  readonly onLost?: (refKey: string, lost: readonly HealthInstance[]) => void;
  /**
   * Instances both answers have whose registration changed in place (address, port, tags, meta or
   * weight: `sameVisible`), called like onLost: the registrar tells its own rewrites from an edit
   * behind its back (another tool re-registering the ID) and restores the latter without waiting
   * for a full resync. Must not throw.
   */
  readonly onEdited?: (refKey: string, edited: readonly EditedInstance[]) => void;
  /** Max time instances lost by an index reset are kept (default 30 s: re-registration + first passing check). */
  readonly holdMs?: number;
  /** Max refs watched with blocking queries (default MAX_BLOCKING_QUERIES); the rest are polled. */
  readonly maxBlocking?: number;
  /** Period of a polled ref's non-blocking read (default 10 s). */
  readonly pollMs?: number;
  /** Pause of a blocking, not rendered ref after an answer that changed nothing (default 2 s). */
  readonly quietMs?: number;
}

/** Default cap on concurrent blocking queries (--consul-blocking-queries). */
const MAX_BLOCKING_QUERIES = 64;
const DEFAULT_POLL_MS = 10_000;
const DEFAULT_QUIET_MS = 2_000;
const MAX_CONCURRENT_READS = 16;

/** rendered: blocking, at once again; reported: blocking, paused after unchanged answers; polled: non-blocking reads. */
type WatchMode = "rendered" | "reported" | "polled";

interface Hold {
  readonly kind: HoldKind;
  /** Instances known just before the hold started (domain/hold.ts). */
  readonly instances: readonly HealthInstance[];
  readonly timer: NodeJS.Timeout;
  /** Last fresh answer from Consul (applied as is when the hold expires). */
  fresh: readonly HealthInstance[];
}

interface Loop {
  readonly ref: ServiceRef;
  readonly abort: AbortController;
  readonly done: Promise<void>;
  readonly mode: WatchMode;
}

export class HealthWatcher implements HealthStore {
  private readonly snapshots = new Map<string, HealthSnapshot>();
  /** The last raw answer of each key (before any hold), for onLost and onEdited. */
  private readonly answers = new Map<string, readonly HealthInstance[]>();
  private readonly loops = new Map<string, Loop>();
  private readonly holds = new Map<string, Hold>();
  /** Refs whose latest query failed. */
  private readonly failingKeys = new Set<string>();
  /** Wakes loops sleeping in error backoff (see kick()). */
  private wake = new AbortController();
  private readonly debouncer: Debouncer;
  /** Non-blocking reads in flight at once (first reads, polls, reads after a failure): a start with hundreds of refs queues them here, not as hundreds of pending HTTP requests. */
  private readonly reads = new Limiter(MAX_CONCURRENT_READS);

  constructor(private readonly opts: HealthWatcherOptions) {
    this.debouncer = new Debouncer(opts.debounce.minMs, opts.debounce.maxMs, opts.onChange);
  }

  get(ref: ServiceRef): HealthSnapshot | undefined {
    return this.snapshots.get(refKey(ref));
  }

  failing(ref: ServiceRef): boolean {
    return this.failingKeys.has(refKey(ref));
  }

  /**
   * Starts loops for new refs and stops loops for refs no binding needs any
   * more; `rendered(ref)` refs get blocking queries first (see the contract on
   * connections). A ref whose mode changes keeps its snapshot. Idempotent.
   */
  setWanted(refs: readonly ServiceRef[], rendered: (ref: ServiceRef) => boolean = () => true): void {
    const wanted = new Map(refs.map((r) => [refKey(r), r]));
    const modes = this.modes(wanted, rendered);
    for (const [key, loop] of this.loops) {
      const mode = modes.get(key);
      if (mode === loop.mode) continue;
      loop.abort.abort();
      this.loops.delete(key);
      if (mode !== undefined) continue;
      this.snapshots.delete(key);
      this.answers.delete(key);
      this.failingKeys.delete(key);
      this.endHold(key);
      this.debouncer.cancel(key);
    }
    for (const [key, ref] of wanted) {
      if (this.loops.has(key)) continue;
      const abort = new AbortController();
      const mode = modes.get(key) ?? "polled";
      this.loops.set(key, { ref, abort, mode, done: this.watch(key, ref, abort.signal, mode) });
    }
  }

  /** Blocking for the first `maxBlocking` refs (rendered ones first, then by key), polled for the rest. */
  private modes(wanted: ReadonlyMap<string, ServiceRef>, rendered: (ref: ServiceRef) => boolean): Map<string, WatchMode> {
    const max = this.opts.maxBlocking ?? MAX_BLOCKING_QUERIES;
    const keys = [...wanted.keys()].sort();
    const isRendered = (key: string): boolean => {
      const ref = wanted.get(key);
      return ref !== undefined && rendered(ref);
    };
    const order = [...keys.filter(isRendered), ...keys.filter((k) => !isRendered(k))];
    return new Map(order.map((key, i): [string, WatchMode] => [key, i >= max ? "polled" : isRendered(key) ? "rendered" : "reported"]));
  }

  /** Consul is reachable again: loops waiting in error backoff retry now instead of at their next step. */
  kick(): void {
    const w = this.wake;
    this.wake = new AbortController();
    w.abort();
  }

  async stop(): Promise<void> {
    const loops = [...this.loops.values()];
    this.loops.clear();
    for (const key of [...this.holds.keys()]) this.endHold(key);
    this.debouncer.stop();
    for (const l of loops) l.abort.abort();
    await Promise.all(loops.map((l) => l.done));
  }

  private async watch(key: string, ref: ServiceRef, signal: AbortSignal, mode: WatchMode): Promise<void> {
    let index: string | undefined;
    let failures = 0;
    const pollMs = this.opts.pollMs ?? DEFAULT_POLL_MS;
    // A polled ref starts at a random point of its period, so polls spread evenly.
    if (mode === "polled" && this.snapshots.has(key)) await sleep(Math.random() * pollMs, signal);
    while (!signal.aborted) {
      try {
        if (mode === "polled" && index !== undefined && failures === 0) await sleep(pollMs * (0.9 + Math.random() * 0.2), signal);
        if (isAborted(signal)) return;
        // After a failure, read without blocking: the agent may have restarted with a lower index.
        const block = mode !== "polled" && index !== undefined && failures === 0;
        const query = {
          service: ref.service,
          ...(ref.dc !== undefined ? { dc: ref.dc } : {}),
          ...(block ? { index } : {}),
          waitMs: this.opts.waitMs,
          signal,
        };
        const res = block ? await this.opts.consul.healthService(query) : await this.reads.run(signal, () => this.opts.consul.healthService(query));
        if (isAborted(signal)) return;
        if (failures > 0) this.opts.logger.info("consul health query recovered", { service: ref.service, dc: ref.dc, afterFailures: failures });
        failures = 0;
        this.failingKeys.delete(key);
        const next = BigInt(res.index) > 0n ? res.index : "1";
        const reset = index !== undefined && BigInt(next) < BigInt(index);
        // A blocking query that ended at its wait with the index it was given: nothing changed, nothing to compare.
        const unchanged = block && next === index && !this.holds.has(key);
        index = next;
        if (reset) {
          this.opts.onIndexReset?.(key);
          if (this.startHold(key, ref, "reset", () => true))
            this.opts.logger.warn("consul index went backwards (agent restarted?); holding last known instances until re-registered", {
              service: ref.service,
              dc: ref.dc,
              holdMs: this.holdMs(),
            });
        }
        const changed = !unchanged && this.update(key, res.instances);
        if (mode === "reported" && !changed) await sleep(this.opts.quietMs ?? DEFAULT_QUIET_MS, signal);
      } catch (err) {
        if (isAborted(signal)) return;
        this.opts.logger.warn("consul health query failed; keeping last known instances", {
          service: ref.service,
          dc: ref.dc,
          error: errorMessage(err),
          failures,
        });
        this.markStale(key);
        await this.backoffSleep(backoffDelay(failures++, this.opts.backoff), signal);
      }
    }
  }

  /** sleep() that also ends early on kick(). */
  private async backoffSleep(ms: number, signal: AbortSignal): Promise<void> {
    const both = new AbortController();
    const wake = this.wake.signal;
    const stop = (): void => {
      both.abort();
    };
    signal.addEventListener("abort", stop, { once: true });
    wake.addEventListener("abort", stop, { once: true });
    if (signal.aborted || wake.aborted) both.abort();
    try {
      await sleep(ms, both.signal);
    } finally {
      signal.removeEventListener("abort", stop);
      wake.removeEventListener("abort", stop);
    }
  }

  /**
   * The client failed over to another agent: each instance `ours` picks (this controller's
   * registrations, re-registered on the new agent) is held until Consul reports it, as healthy, on
   * another node (domain/hold.ts, kind "failover"). Returns how many refs are held.
   */
  holdAll(ours: (i: HealthInstance) => boolean): number {
    let held = 0;
    for (const [key, loop] of this.loops) if (this.startHold(key, loop.ref, "failover", ours)) held++;
    return held;
  }

  private holdMs(): number {
    return this.opts.holdMs ?? 30_000;
  }

  /** Starts (or restarts) the hold of `key` on the instances of its snapshot `pick` selects; false when there are none. */
  private startHold(key: string, ref: ServiceRef, kind: HoldKind, pick: (i: HealthInstance) => boolean): boolean {
    const prev = this.snapshots.get(key);
    this.endHold(key);
    const instances = prev?.instances.filter(pick) ?? [];
    if (prev === undefined || instances.length === 0) return false;
    const timer = setTimeout(() => {
      const hold = this.holds.get(key);
      if (hold === undefined) return;
      this.endHold(key);
      this.opts.logger.warn("consul hold expired; rendering what the agent reports", { service: ref.service, dc: ref.dc, kind, instances: hold.fresh.length });
      this.update(key, hold.fresh);
    }, this.holdMs());
    timer.unref();
    this.holds.set(key, { kind, instances, timer, fresh: prev.instances });
    return true;
  }

  private endHold(key: string): void {
    const hold = this.holds.get(key);
    if (hold === undefined) return;
    clearTimeout(hold.timer);
    this.holds.delete(key);
  }

  /** During a hold: the fresh answer with uncovered held instances substituted (domain/hold.ts); ends the hold once all are covered. */
  private merge(key: string, fresh: readonly HealthInstance[]): readonly HealthInstance[] {
    const hold = this.holds.get(key);
    if (hold === undefined) return fresh;
    hold.fresh = fresh;
    const merged = mergeHeld(hold.instances, fresh, hold.kind);
    if (merged.released) {
      this.endHold(key);
      this.opts.logger.info("consul hold released: every held instance is back", { key, kind: hold.kind, instances: fresh.length });
    }
    return merged.instances;
  }

  /** The latest query for `key` failed: its last known instances stay, flagged stale (cleared by the next answer). */
  private markStale(key: string): void {
    const first = !this.failingKeys.has(key);
    this.failingKeys.add(key);
    // A ref that never answered becomes "unreachable": a failover decision waiting for it goes on.
    if (first && !this.snapshots.has(key)) this.opts.onChange(key);
    const prev = this.snapshots.get(key);
    if (prev !== undefined && prev.stale !== true) this.snapshots.set(key, { ...prev, stale: true });
  }

  /**
   * Reports the instances of the previous raw answer of `key` that `fresh` lacks (onLost) or holds
   * with other registration content (onEdited), and keeps `fresh` for the next one.
   */
  private reportChanges(key: string, fresh: readonly HealthInstance[]): void {
    const prev = this.answers.get(key);
    this.answers.set(key, fresh);
    if (prev === undefined) return;
    const now = new Map(fresh.map((i) => [instanceKey(i), i]));
    const lost: HealthInstance[] = [];
    const edited: EditedInstance[] = [];
    for (const before of prev) {
      const after = now.get(instanceKey(before));
      if (after === undefined) lost.push(before);
      else if (!sameVisible(before, after)) edited.push({ before, after });
    }
    if (lost.length > 0) this.opts.onLost?.(key, lost);
    if (edited.length > 0) this.opts.onEdited?.(key, edited);
  }

  /** Stores the answer; true when it differs from the last one (or is the first). */
  private update(key: string, fresh: readonly HealthInstance[]): boolean {
    this.reportChanges(key, fresh);
    const instances = this.merge(key, fresh);
    const sorted = [...instances].sort((a, b) => (a.serviceId < b.serviceId ? -1 : a.serviceId > b.serviceId ? 1 : 0));
    const prev = this.snapshots.get(key);
    this.snapshots.set(key, { instances: sorted, updatedAt: Date.now() });
    if (prev === undefined) {
      this.opts.onChange(key); // first data: render now, nothing to debounce
      return true;
    }
    if (JSON.stringify(prev.instances) === JSON.stringify(sorted)) return false;
    // New capacity is rendered at once when the key was quiet; anything that takes an instance out
    // (or may move a failover) waits for the debounce, so a transient state is not rendered.
    this.debouncer.trigger(key, onlyAddsPassing(prev.instances, sorted));
    return true;
  }
}
