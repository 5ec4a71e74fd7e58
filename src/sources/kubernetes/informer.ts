/**
 * A list+watch informer for one resource collection (client-go's Reflector +
 * Store, reduced to what dockbind needs):
 *
 * - list (paginated) -> replace the cache -> watch from the list's
 *   resourceVersion with bookmarks;
 * - a watch that ends normally (server timeout) is resumed from the last
 *   resourceVersion seen; a broken one (API server restart, network error)
 *   too, after a backoff;
 * - a stalled watch (open, but no event and no bookmark for the server
 *   timeout + WATCH_STALL_GRACE_SECONDS) is aborted, reported (warn log
 *   "kubernetes watch stalled; re-establishing" and onStall) and resumed from
 *   the last resourceVersion at once: the server replays what changed
 *   meanwhile. With the default timeout a stall is detected at most
 *   WATCH_STALL_BOUND_SECONDS after the last data the watch delivered;
 * - 410 Gone / "Expired" (resourceVersion too old, as an HTTP status or an
 *   ERROR event) -> re-list; the diff against the old cache is delivered as
 *   ADDED/MODIFIED/DELETED, so a deletion missed while disconnected is seen;
 * - list failures back off exponentially (capped), never give up.
 *
 * The cache survives outages: while the API server is unreachable the last
 * known objects stay (unreachable is not "no objects").
 */
import {
  isKubeApiError,
  isKubeObject,
  isKubeStatus,
  type KubeClient,
  type KubeList,
  type KubeObject,
  type WatchEvent,
} from "../../clients/kubernetes/kubeClient.js";
import { backoffDelay, isAborted, sleep, type BackoffOptions } from "../../runtime/backoff.js";
import { errorMessage, type Logger } from "../../runtime/logger.js";

export type InformerEventType = "ADDED" | "MODIFIED" | "DELETED";

/**
 * Default server-side watch timeout: uniformly WATCH_TIMEOUT_MIN_SECONDS to
 * + WATCH_TIMEOUT_JITTER_SECONDS (replicas do not re-watch in step). The API
 * server ends the watch then, so a healthy watch never stays silent longer
 * than its timeout. The deadline does not rely on bookmarks: kube-apiserver
 * 1.33 ends an idle watch with timeoutSeconds=30 after ~30.4 s without
 * sending any.
 */
export const WATCH_TIMEOUT_MIN_SECONDS = 25;
export const WATCH_TIMEOUT_JITTER_SECONDS = 10;
/** A watch silent for its timeout + this long is stalled (the server should have ended it). */
export const WATCH_STALL_GRACE_SECONDS = 20;
/** Upper bound of stall detection with the default timeout: max timeout + grace, rounded up. */
export const WATCH_STALL_BOUND_SECONDS = 60;

export interface InformerOptions {
  readonly client: KubeClient;
  /** Collection path, e.g. /apis/dockbind.io/v1alpha1/servicebindings. */
  readonly path: string;
  readonly logger: Logger;
  readonly backoff?: BackoffOptions;
  /** Server-side watch timeout (seconds); default WATCH_TIMEOUT_MIN_SECONDS + jitter. */
  readonly watchTimeoutSeconds?: number;
  /** Page size of lists; default 500. */
  readonly pageSize?: number;
  /** Called for every cache change (after the cache was updated). */
  readonly onEvent: (type: InformerEventType, obj: KubeObject, old: KubeObject | undefined) => void;
  /** Called after each successful (re-)list, once its events were delivered. */
  readonly onSynced?: () => void;
  /** Stall grace (seconds, tests); default WATCH_STALL_GRACE_SECONDS. */
  readonly stallGraceSeconds?: number;
  /** Called when a stalled watch was aborted (before it is re-established). Must not throw. */
  readonly onStall?: (idleMs: number) => void;
}

/** Raised inside watchLoop when the idle deadline of one watch passed. */
class StalledError extends Error {}

export function objectKey(o: KubeObject): string {
  return `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
}

class ExpiredError extends Error {}

export class Informer {
  private readonly cache = new Map<string, KubeObject>();
  private hasSynced = false;
  private resourceVersion = "";
  private failures = 0;

  constructor(private readonly opts: InformerOptions) {}

  synced(): boolean {
    return this.hasSynced;
  }

  get(key: string): KubeObject | undefined {
    return this.cache.get(key);
  }

  list(): readonly KubeObject[] {
    return [...this.cache.values()];
  }

  /** Lists and watches until `signal` aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    const backoff = this.opts.backoff ?? { baseMs: 200, maxMs: 10_000 };
    while (!isAborted(signal)) {
      try {
        await this.relist(signal);
        this.failures = 0;
        await this.watchLoop(signal, backoff);
      } catch (err) {
        if (isAborted(signal)) break;
        const delay = backoffDelay(this.failures++, backoff);
        this.opts.logger.warn("kubernetes list failed; retrying", { path: this.opts.path, error: errorMessage(err), retryInMs: delay });
        await sleep(delay, signal);
      }
    }
  }

  private async relist(signal: AbortSignal): Promise<void> {
    const items: KubeObject[] = [];
    let cont: string | undefined;
    let rv = "";
    do {
      const page = await this.opts.client.request<KubeList>("GET", this.opts.path, {
        query: { limit: this.opts.pageSize ?? 500, continue: cont },
        signal,
        timeoutMs: 60_000,
      });
      for (const it of page.items) if (isKubeObject(it)) items.push(it);
      cont = page.metadata.continue !== undefined && page.metadata.continue !== "" ? page.metadata.continue : undefined;
      rv = page.metadata.resourceVersion ?? "";
    } while (cont !== undefined);
    const next = new Map(items.map((o) => [objectKey(o), o]));
    const events: [InformerEventType, KubeObject, KubeObject | undefined][] = [];
    for (const [key, old] of this.cache) {
      if (!next.has(key)) events.push(["DELETED", old, old]);
    }
    for (const [key, obj] of next) {
      const old = this.cache.get(key);
      if (old === undefined) events.push(["ADDED", obj, undefined]);
      else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) events.push(["MODIFIED", obj, old]);
    }
    this.cache.clear();
    for (const [k, v] of next) this.cache.set(k, v);
    this.resourceVersion = rv;
    const first = !this.hasSynced;
    // The first list's events are delivered before synced() turns true (consumers
    // can process the whole initial state at once in onSynced).
    for (const [type, obj, old] of events) this.opts.onEvent(type, obj, old);
    this.hasSynced = true;
    this.opts.logger.info(first ? "kubernetes cache synced" : "kubernetes cache re-listed", {
      path: this.opts.path,
      objects: next.size,
      changes: events.length,
      resourceVersion: rv,
    });
    this.opts.onSynced?.();
  }

  /** Watches from the current resourceVersion until expiry (returns, caller re-lists) or abort. */
  private async watchLoop(signal: AbortSignal, backoff: BackoffOptions): Promise<void> {
    let failures = 0;
    while (!isAborted(signal)) {
      const got = { event: false }; // set from the event callback
      try {
        await this.watchOnce(signal, () => {
          got.event = true;
        });
        failures = 0;
      } catch (err) {
        if (isAborted(signal)) return;
        if (err instanceof ExpiredError || isKubeApiError(err, 410)) {
          this.opts.logger.info("kubernetes watch expired; re-listing", { path: this.opts.path, resourceVersion: this.resourceVersion });
          return;
        }
        if (err instanceof StalledError) continue; // reported in watchOnce; resume at once
        if (got.event) failures = 0;
        const delay = backoffDelay(failures++, backoff);
        this.opts.logger.warn("kubernetes watch failed; resuming", { path: this.opts.path, error: errorMessage(err), retryInMs: delay });
        await sleep(delay, signal);
      }
    }
  }

  /**
   * One watch request. Resolves when the server ends it; rejects with
   * StalledError when neither an event nor a bookmark arrived for the server
   * timeout + grace (the request is aborted, its connection destroyed), else
   * with the watch's error.
   */
  private async watchOnce(signal: AbortSignal, onEvent: () => void): Promise<void> {
    const timeoutSeconds = this.opts.watchTimeoutSeconds ?? WATCH_TIMEOUT_MIN_SECONDS + Math.floor(Math.random() * WATCH_TIMEOUT_JITTER_SECONDS);
    const idleMs = (timeoutSeconds + (this.opts.stallGraceSeconds ?? WATCH_STALL_GRACE_SECONDS)) * 1000;
    const idle = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const poke = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        idle.abort();
      }, idleMs);
    };
    poke();
    try {
      await this.opts.client.watch(
        this.opts.path,
        (ev) => {
          poke();
          onEvent();
          this.apply(ev);
        },
        // The client's own idle limit stays a safety net behind this one.
        {
          query: { resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds },
          signal: AbortSignal.any([signal, idle.signal]),
          idleTimeoutMs: idleMs + 5_000,
        },
      );
    } catch (err) {
      if (!idle.signal.aborted || isAborted(signal)) throw err;
      this.stalled(idleMs, err);
    } finally {
      clearTimeout(timer);
    }
    if (idle.signal.aborted && !isAborted(signal)) this.stalled(idleMs, undefined);
  }

  /** Reports a stalled watch (log, onStall) and throws StalledError. */
  private stalled(idleMs: number, cause: unknown): never {
    this.opts.logger.warn("kubernetes watch stalled; re-establishing", { path: this.opts.path, idleMs, resourceVersion: this.resourceVersion });
    this.opts.onStall?.(idleMs);
    throw new StalledError(`watch ${this.opts.path}: no event or bookmark for ${idleMs} ms`, { cause });
  }

  private apply(ev: WatchEvent): void {
    const obj = ev.object;
    if (ev.type === "ERROR") {
      if (isKubeStatus(obj) && (obj.code === 410 || obj.reason === "Expired" || obj.reason === "Gone")) throw new ExpiredError(obj.message ?? "expired");
      throw new Error(`watch error event: ${isKubeStatus(obj) ? (obj.message ?? obj.reason ?? "") : "unknown"}`);
    }
    if (!isKubeObject(obj)) return;
    if (obj.metadata.resourceVersion !== undefined) this.resourceVersion = obj.metadata.resourceVersion;
    if (ev.type === "BOOKMARK") return;
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (ev.type === "DELETED") {
      this.cache.delete(key);
      this.opts.onEvent("DELETED", obj, old);
      return;
    }
    this.cache.set(key, obj);
    this.opts.onEvent(old === undefined ? "ADDED" : "MODIFIED", obj, old);
  }
}
