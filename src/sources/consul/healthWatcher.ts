/**
 * Consul health source: one blocking-query loop on /v1/health/service/<name>
 * per (service, datacenter) that some binding renders.
 *
 * Contract:
 * - X-Consul-Index handling per Consul's docs: block on the last index; an
 *   index that goes backwards (agent restarted) resets the query; index 0 is
 *   treated as 1;
 * - errors back off exponentially and KEEP the last known instances, so a
 *   Consul outage never empties a rendered config;
 * - a changed instance set triggers `onChange(refKey)` through a min/max
 *   debouncer (consul-template's wait), so bursts render once.
 */
import type { ConsulApi } from "../../actuators/consul/consulClient.js";
import type { HealthInstance } from "../../domain/types.js";
import { backoffDelay, isAborted, sleep, type BackoffOptions } from "../../runtime/backoff.js";
import { Debouncer } from "../../runtime/debouncer.js";
import { errorMessage, type Logger } from "../../runtime/logger.js";

export interface ServiceRef {
  readonly service: string;
  readonly dc?: string;
}

export function refKey(ref: ServiceRef): string {
  return `${ref.dc ?? ""}/${ref.service}`;
}

export interface HealthSnapshot {
  readonly instances: readonly HealthInstance[];
  /** When the last successful query returned (ms since epoch). */
  readonly updatedAt: number;
}

export interface HealthStore {
  /** Undefined until the first query for `ref` succeeded. */
  get(ref: ServiceRef): HealthSnapshot | undefined;
}

export interface HealthWatcherOptions {
  readonly consul: ConsulApi;
  readonly logger: Logger;
  readonly waitMs: number;
  readonly backoff: BackoffOptions;
  readonly debounce: { readonly minMs: number; readonly maxMs: number };
  readonly onChange: (refKey: string) => void;
}

interface Loop {
  readonly abort: AbortController;
  readonly done: Promise<void>;
}

export class HealthWatcher implements HealthStore {
  private readonly snapshots = new Map<string, HealthSnapshot>();
  private readonly loops = new Map<string, Loop>();
  private readonly debouncer: Debouncer;

  constructor(private readonly opts: HealthWatcherOptions) {
    this.debouncer = new Debouncer(opts.debounce.minMs, opts.debounce.maxMs, opts.onChange);
  }

  get(ref: ServiceRef): HealthSnapshot | undefined {
    return this.snapshots.get(refKey(ref));
  }

  /** Starts loops for new refs and stops loops for refs no binding needs any more. Idempotent. */
  setWanted(refs: readonly ServiceRef[]): void {
    const wanted = new Map(refs.map((r) => [refKey(r), r]));
    for (const [key, loop] of this.loops) {
      if (wanted.has(key)) continue;
      loop.abort.abort();
      this.loops.delete(key);
      this.snapshots.delete(key);
      this.debouncer.cancel(key);
    }
    for (const [key, ref] of wanted) {
      if (this.loops.has(key)) continue;
      const abort = new AbortController();
      this.loops.set(key, { abort, done: this.watch(key, ref, abort.signal) });
    }
  }

  async stop(): Promise<void> {
    const loops = [...this.loops.values()];
    this.loops.clear();
    this.debouncer.stop();
    for (const l of loops) l.abort.abort();
    await Promise.all(loops.map((l) => l.done));
  }

  private async watch(key: string, ref: ServiceRef, signal: AbortSignal): Promise<void> {
    let index: string | undefined;
    let failures = 0;
    while (!signal.aborted) {
      try {
        const res = await this.opts.consul.healthService({
          service: ref.service,
          ...(ref.dc !== undefined ? { dc: ref.dc } : {}),
          ...(index !== undefined ? { index } : {}),
          waitMs: this.opts.waitMs,
          signal,
        });
        if (isAborted(signal)) return;
        if (failures > 0) this.opts.logger.info("consul health query recovered", { service: ref.service, dc: ref.dc, afterFailures: failures });
        failures = 0;
        const next = BigInt(res.index) > 0n ? res.index : "1";
        index = index !== undefined && BigInt(next) < BigInt(index) ? undefined : next;
        this.update(key, res.instances);
      } catch (err) {
        if (isAborted(signal)) return;
        this.opts.logger.warn("consul health query failed; keeping last known instances", {
          service: ref.service,
          dc: ref.dc,
          error: errorMessage(err),
          failures,
        });
        await sleep(backoffDelay(failures++, this.opts.backoff), signal);
      }
    }
  }

  private update(key: string, instances: readonly HealthInstance[]): void {
    const sorted = [...instances].sort((a, b) => (a.serviceId < b.serviceId ? -1 : a.serviceId > b.serviceId ? 1 : 0));
    const prev = this.snapshots.get(key);
    this.snapshots.set(key, { instances: sorted, updatedAt: Date.now() });
    if (prev === undefined) {
      this.opts.onChange(key); // first data: render now, nothing to debounce
      return;
    }
    if (JSON.stringify(prev.instances) !== JSON.stringify(sorted)) this.debouncer.trigger(key);
  }
}
