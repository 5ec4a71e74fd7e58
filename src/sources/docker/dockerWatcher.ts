/**
 * Docker source: keeps an informer-style cache of running containers and
 * tells the controller which containers changed.
 *
 * Contract:
 * - events are hints: an event marks a container dirty and the latest state is
 *   re-read (level-based, coalesces bursts); reads of one container that
 *   overlap are applied newest-issued last (ReadOrder);
 * - a network connect or disconnect re-reads the container it names (its
 *   addresses changed); a disconnect of a container neither cached nor being
 *   read (one that stopped) changes nothing and is not read. A connect is read
 *   at once with `inspect`, which dockerd answers only once a starting
 *   container's start has completed: a new container is read the moment it
 *   runs, without waiting for its start event. So the start event that follows
 *   a connect read which found the container running (with no other event of
 *   the container in between) is not read again; a connect read that finds it
 *   not running, fails or is overtaken leaves the start event its own read.
 *   Best effort: at most CONNECT_READS at once, each given up after
 *   CONNECT_READ_TIMEOUT_MS (the dirty queue re-reads the container then);
 * - subscribe first, then list (nothing is missed between the two); a full
 *   resync follows every (re)connect and runs every `resyncIntervalMs`;
 * - when the event stream is lost the cache is kept but `synced()` turns false
 *   until the next successful resync: "Docker unreachable" never reads as "no
 *   containers", so nothing is deregistered while Docker is away;
 * - reconnects back off exponentially;
 * - a stalled stream (connected, but silent about changes that happened) is
 *   detected by the periodic resync: a container the list shows started or
 *   gone that the stream never reported within STALL_GRACE_MS is a change
 *   the stream missed, so the stream is presumed stalled: it is aborted,
 *   reported (warn "docker event stream stalled; reconnecting",
 *   observer.onStall) and re-established like any lost stream (reconnect +
 *   full resync; the cache is kept meanwhile). An idle stream is not a stall:
 *   Docker is silent when nothing happens. Bound: the first missed change is
 *   detected within resyncIntervalMs + STALL_GRACE_MS (+ the list's own time),
 *   2 × resyncIntervalMs + STALL_GRACE_MS when the tick was deferred (below);
 * - a periodic resync is deferred by one interval when `backlog()` says the
 *   registrar queue still holds work (the start-up wave, or the previous full
 *   pass's re-checks): a list now would only re-queue keys that already wait.
 *   Never twice in a row, so a queue that stays busy (Consul slow or down)
 *   cannot postpone resyncs, and thus stall detection, for longer;
 * - Docker requests of the watcher (list, inspect) give up after
 *   REQUEST_TIMEOUT_MS: a connection that went dark cannot hang a resync or
 *   the inspect queue forever.
 */
import type Dockerode from "dockerode";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import type { ContainerInfo, LabelSelector } from "../../domain/types.js";
import type { ContainerChange, ContainerStore } from "../../ports/containerStore.js";
import { backoffDelay, isAborted, sleep, type BackoffOptions } from "../../runtime/backoff.js";
import { errorMessage, type Logger } from "../../runtime/logger.js";
import { DrainTracker, isStopEvent } from "./drain.js";
import { ContainerIndex } from "./containerIndex.js";
import { asListed, fromInspect, fromListEntry, healthFromListStatus, sameContainer } from "./inspect.js";
import { streamContainerList } from "../../clients/docker/listStream.js";
import { ReadOrder } from "./readOrder.js";

export interface DockerWatcherObserver {
  onEvent?(action: string): void;
  onReconnect?(): void;
  /** The event stream was found stalled and is being re-established. */
  onStall?(): void;
}

/** How long a change seen by a periodic resync may stay unreported by the event stream before it counts as stalled. */
export const STALL_GRACE_MS = 5_000;
/** Limit of one list or inspect request to Docker. */
export const REQUEST_TIMEOUT_MS = 60_000;
/** Most reads on a network connect in flight at once (each may wait for a container start to finish). */
const CONNECT_READS = 4;
/** A read on a network connect not answered by then is given up (a start this slow is read on its start event). */
const CONNECT_READ_TIMEOUT_MS = 5_000;

export interface DockerWatcherOptions {
  readonly docker: Dockerode;
  readonly logger: Logger;
  readonly resyncIntervalMs: number;
  readonly backoff: BackoffOptions;
  /**
   * Called for every container whose cached state changed, except the
   * changes a full resync reads from the list: onResync() follows those and
   * stands for all of them (so a list of N containers costs one report, not
   * N reports each matched against every binding).
   * Must not throw.
   */
  readonly onChange: (change: ContainerChange) => void;
  /** Called after every full resync (the controller re-queues everything). */
  readonly onResync: () => void;
  readonly observer?: DockerWatcherObserver;
  /** How many inspects run at once while draining dirty containers. */
  readonly concurrency?: number;
  /**
   * Inspect containers (needed for Config.Env, i.e. registrator-compat). When
   * false the cache is built from `GET /containers/json` alone: far cheaper.
   */
  readonly needsEnv?: boolean;
  /** Graceful drain: how long a container stays `draining` after a kill/stop event (0 or absent = off). */
  readonly drainDelayMs?: number;
  /** True while the registrar queue still holds work (start-up wave, previous pass): the next periodic resync waits one interval (see the contract above). */
  readonly backlog?: () => boolean;
}

const EVENT_ACTIONS = new Set(["start", "die", "kill", "stop", "destroy", "pause", "unpause", "rename", "update", "restart"]);
/** Network events that change a container's addresses; the container's id is in Actor.Attributes.container. */
const NETWORK_ACTIONS = new Set(["connect", "disconnect"]);

/** A read on a network connect: `found` settles true when it applied a running container; `answered` once it settled. */
interface ConnectRead {
  readonly found: Promise<boolean>;
  answered: boolean;
}

/** One container's state as read: `after` undefined = not running or gone; `fingerprint` for inspected containers when env is needed. */
interface Read {
  readonly after: ContainerInfo | undefined;
  readonly fingerprint?: string;
}

interface DockerEvent {
  readonly Type?: string;
  readonly Action?: string;
  readonly status?: string;
  readonly id?: string;
  readonly Actor?: { readonly ID?: string; readonly Attributes?: Readonly<Record<string, string>> };
}

export class DockerWatcher implements ContainerStore {
  private readonly cache = new ContainerIndex();
  /** Fingerprint (state + health) of each container at its last inspect, for cheap resync diffs. */
  private readonly fingerprints = new Map<string, string>();
  private readonly dirty = new Set<string>();
  private readonly reads = new ReadOrder();
  /** Reads on a network connect in flight (at most CONNECT_READS). */
  private connectReads = 0;
  /** The connect read of each container since its last other event (see the contract above). */
  private readonly connectReadOf = new Map<string, ConnectRead>();
  /** While a resync streams the list: containers re-read since it started (their state is newer than the list's). */
  private rereadDuringList: Set<string> | undefined;
  private draining: Promise<void> | undefined;
  private connected = false;
  private listed = false;
  /** Changes a periodic resync saw that the stream has not reported yet: container id -> when seen. */
  private readonly unreported = new Map<string, number>();
  /** Aborts the current event stream (stall detection); undefined while not connected. */
  private stream: AbortController | undefined;
  private readonly drainMarks: DrainTracker;

  constructor(private readonly opts: DockerWatcherOptions) {
    this.drainMarks = new DrainTracker(opts.drainDelayMs ?? 0);
  }

  synced(): boolean {
    return this.connected && this.listed;
  }

  list(): readonly ContainerInfo[] {
    return [...this.cache.values()];
  }

  get(id: string): ContainerInfo | undefined {
    return this.cache.get(id);
  }

  select(selector: LabelSelector): readonly ContainerInfo[] {
    return this.cache.select(selector);
  }

  /** Runs until `signal` aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    let deferred = false;
    const timer = setInterval(() => {
      if (!this.connected) return;
      if (!deferred && this.opts.backlog?.() === true) {
        deferred = true;
        this.opts.logger.debug("periodic docker resync deferred: the registrar queue still holds work");
        return;
      }
      deferred = false;
      void this.resync(true).catch((err: unknown) => this.opts.logger.warn("docker resync failed", { error: errorMessage(err) }));
    }, this.opts.resyncIntervalMs);
    timer.unref();
    let failures = 0;
    try {
      while (!isAborted(signal)) {
        // This connection's signal: aborted by `signal` (shutdown) or by stall detection.
        const ctl = new AbortController();
        const streamSignal = ctl.signal;
        const stop = (): void => {
          ctl.abort();
        };
        signal.addEventListener("abort", stop, { once: true });
        try {
          // dockerode types getEvents as NodeJS.ReadableStream; it is a node:stream Readable at run time.
          const stream = (await this.opts.docker.getEvents({
            filters: { type: ["container", "network"] },
            abortSignal: streamSignal,
          } as object)) as unknown as Readable;
          this.connected = true;
          this.stream = ctl;
          this.unreported.clear();
          await this.resync();
          if (failures > 0) this.opts.logger.info("docker event stream reconnected", { afterFailures: failures });
          failures = 0;
          await this.consume(stream, streamSignal);
          if (!isAborted(signal) && !isAborted(streamSignal)) this.opts.logger.warn("docker event stream ended; reconnecting");
        } catch (err) {
          if (isAborted(signal)) break;
          if (!isAborted(streamSignal)) this.opts.logger.warn("docker unreachable; keeping last known containers", { error: errorMessage(err), failures });
        }
        this.stream = undefined;
        signal.removeEventListener("abort", stop);
        ctl.abort();
        this.connected = false;
        this.listed = false;
        if (isAborted(signal)) break;
        this.opts.observer?.onReconnect?.();
        await sleep(backoffDelay(failures++, this.opts.backoff), signal);
      }
    } finally {
      clearInterval(timer);
    }
  }

  /**
   * Lists running containers and reconciles the cache with the list. In list
   * mode (default) the list entries ARE the new state: no inspect at all. With
   * `needsEnv` (registrator-compat reads Config.Env) new or changed containers
   * are inspected. Vanished containers are dropped either way.
   * The list is streamed: each entry is applied as it arrives
   * and never retained; an entry for a container re-read by an event since
   * the list started is skipped (the re-read is newer than the list).
   * Changes read from the list are not reported one by one (see onChange);
   * containers that vanished are re-read and reported as usual.
   */
  async resync(periodic = false): Promise<void> {
    const seen = new Set<string>();
    const reread = new Set<string>();
    const missed: string[] = [];
    this.rereadDuringList = reread;
    try {
      await streamContainerList(this.opts.docker, { all: false, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }, (c) => {
        seen.add(c.Id);
        if (reread.has(c.Id)) return;
        if (periodic && c.State === "running" && this.cache.get(c.Id) === undefined) missed.push(c.Id);
        if (this.opts.needsEnv === true) {
          if (this.fingerprints.get(c.Id) !== `${c.State}/${healthFromListStatus(c.Status)}`) this.dirty.add(c.Id);
        } else {
          this.store(c.Id, c.State === "running" ? fromListEntry(c) : undefined, false);
        }
      });
    } finally {
      if (this.rereadDuringList === reread) this.rereadDuringList = undefined;
    }
    for (const id of this.cache.keys()) {
      if (seen.has(id)) continue;
      this.dirty.add(id);
      if (periodic && !reread.has(id)) missed.push(id);
    }
    if (missed.length > 0) this.suspectStall(missed);
    // An answered connect read whose start event has not come by now never had one coming (a connect
    // of a running container): forget it, so entries live one resync at most.
    for (const [id, c] of this.connectReadOf) if (c.answered) this.connectReadOf.delete(id);
    await this.drain();
    this.listed = true;
    this.opts.onResync();
  }

  /**
   * A periodic resync found changes the stream did not report: if no event
   * about any of them arrives within STALL_GRACE_MS (an event in flight while
   * the list ran clears its container), the stream is aborted as stalled.
   */
  private suspectStall(ids: readonly string[]): void {
    const stream = this.stream;
    if (stream === undefined) return;
    const now = Date.now();
    for (const id of ids) if (!this.unreported.has(id)) this.unreported.set(id, now);
    setTimeout(() => {
      if (this.stream !== stream || stream.signal.aborted) return;
      const stale = [...this.unreported].filter(([, at]) => Date.now() - at >= STALL_GRACE_MS);
      if (stale.length === 0) return;
      this.opts.logger.warn("docker event stream stalled; reconnecting", {
        unreportedChanges: stale.length,
        containers: stale
          .slice(0, 5)
          .map(([id]) => id.slice(0, 12))
          .join(","),
        graceMs: STALL_GRACE_MS,
      });
      this.opts.observer?.onStall?.();
      stream.abort();
    }, STALL_GRACE_MS + 10).unref();
  }

  private async consume(stream: Readable, signal: AbortSignal): Promise<void> {
    // Aborted while the (re)connect resync ran: the listener below would never fire, and iterating
    // a readline interface closed before iteration starts never ends.
    if (signal.aborted) {
      stream.destroy();
      return;
    }
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    const onAbort = (): void => {
      lines.close(); // ends the async iterator; destroying the stream alone does not
      stream.destroy();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const line of lines) {
        const event = parseEvent(line);
        if (event !== undefined) this.onEvent(event);
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Handles one event of the stream (see the contract above). */
  private onEvent(event: DockerEvent): void {
    const action = (event.Action ?? event.status ?? "").split(":")[0] ?? "";
    if (event.Type === "network") {
      const id = event.Actor?.Attributes?.container;
      if (id === undefined || !NETWORK_ACTIONS.has(action)) return;
      this.opts.observer?.onEvent?.(action);
      this.unreported.delete(id);
      this.connectReadOf.delete(id);
      if (action === "connect") this.connectRead(id);
      else if (this.cache.get(id) !== undefined || this.reads.inFlight(id)) this.markDirty(id);
      return;
    }
    const id = event.Actor?.ID ?? event.id;
    if (id === undefined || (event.Type !== undefined && event.Type !== "container")) return;
    this.opts.observer?.onEvent?.(action);
    this.unreported.delete(id);
    const connect = this.connectReadOf.get(id);
    this.connectReadOf.delete(id);
    if (!EVENT_ACTIONS.has(action) && action !== "health_status") return;
    if (isStopEvent(action, event.Actor?.Attributes)) this.markDraining(id);
    if (action === "start" && connect !== undefined) this.afterConnectRead(id, connect);
    else this.markDirty(id);
  }

  /** A start event after connect read `c`: read again only if `c` did not find the container running. */
  private afterConnectRead(id: string, c: ConnectRead): void {
    void c.found.then((found) => {
      if (!found) this.markDirty(id);
    });
  }

  private markDirty(id: string): void {
    this.dirty.add(id);
    void this.drain();
  }

  /** Reads a container named by a network connect at once, with inspect (see the contract above). Never throws. */
  private connectRead(id: string): void {
    if (this.connectReads >= CONNECT_READS) {
      this.markDirty(id);
      return;
    }
    this.connectReads++;
    const found = this.refresh(id, "inspect", CONNECT_READ_TIMEOUT_MS)
      .catch((err: unknown) => {
        this.opts.logger.debug("docker read on network connect failed; re-reading through the queue", { container: id.slice(0, 12), error: errorMessage(err) });
        this.markDirty(id);
        return false;
      })
      .finally(() => {
        // Runs after this method returned (refresh is async): `c` below exists by then.
        this.connectReads--;
        c.answered = true;
      });
    const c: ConnectRead = { found, answered: false };
    this.connectReadOf.set(id, c);
  }

  /**
   * Graceful drain: a kill/stop event arrives before `die`. The cached
   * container is marked draining at once (no inspect round trip) so the
   * registrar deregisters it while it still answers. When the mark expires
   * the container is re-inspected: one that is still running is a backend again.
   */
  private markDraining(id: string): void {
    const before = this.cache.get(id);
    if (before === undefined || !this.drainMarks.mark(id, Date.now())) return;
    const after: ContainerInfo = { ...before, draining: true };
    this.cache.set(id, after);
    this.opts.logger.debug("container draining", { container: id.slice(0, 12), drainDelayMs: this.drainMarks.delayMs });
    this.opts.onChange({ id, before, after });
    setTimeout(() => {
      this.markDirty(id);
    }, this.drainMarks.delayMs + 10).unref();
  }

  /**
   * Re-reads dirty containers (bounded concurrency). Concurrent callers share
   * one drain; it resolves once the dirty set is empty, and a container marked
   * dirty while the drain ends is read by it or by a new drain (the drain is
   * cleared synchronously after its last check of the set).
   */
  private drain(): Promise<void> {
    this.draining ??= this.drainLoop();
    return this.draining;
  }

  private async drainLoop(): Promise<void> {
    try {
      do {
        await Promise.all(Array.from({ length: this.opts.concurrency ?? 8 }, () => this.drainWorker()));
      } while (this.dirty.size > 0);
    } finally {
      this.draining = undefined;
    }
  }

  private async drainWorker(): Promise<void> {
    for (let id = this.nextDirty(); id !== undefined; id = this.nextDirty()) {
      try {
        await this.refresh(id);
      } catch (err) {
        // Docker went away mid-drain: the stream loop notices and resyncs on reconnect.
        this.opts.logger.warn("docker read failed", { container: id.slice(0, 12), error: errorMessage(err) });
      }
    }
  }

  private nextDirty(): string | undefined {
    const first = this.dirty.values().next();
    if (first.done === true) return undefined;
    this.dirty.delete(first.value);
    return first.value;
  }

  /**
   * Re-reads one container and applies its state unless a read of it issued
   * later was applied first (ReadOrder). `how`: inspect when env is needed,
   * else a list filtered by id (cheaper); a connect read inspects either way.
   * Resolves true when the state read was applied and the container runs.
   * Rejects when Docker fails to answer (nothing applied).
   */
  private async refresh(
    id: string,
    how: "inspect" | "list" = this.opts.needsEnv === true ? "inspect" : "list",
    timeoutMs = REQUEST_TIMEOUT_MS,
  ): Promise<boolean> {
    const ticket = this.reads.begin(id);
    let read: Read | undefined;
    try {
      read = how === "inspect" ? await this.inspect(id, timeoutMs) : await this.listOne(id, timeoutMs);
    } finally {
      if (!this.reads.end(id, ticket, read !== undefined)) read = undefined;
    }
    if (read === undefined) return false;
    if (read.fingerprint !== undefined) this.fingerprints.set(id, read.fingerprint);
    this.rereadDuringList?.add(id);
    this.store(id, read.after);
    return read.after !== undefined;
  }

  private async inspect(id: string, timeoutMs: number): Promise<Read> {
    try {
      const info = await this.opts.docker.getContainer(id).inspect({ abortSignal: AbortSignal.timeout(timeoutMs) });
      if (!info.State.Running) return { after: undefined };
      const after = fromInspect(info);
      if (this.opts.needsEnv !== true) return { after: asListed(after) };
      return { after, fingerprint: `${info.State.Status}/${info.State.Health?.Status ?? "none"}` };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      return { after: undefined };
    }
  }

  private async listOne(id: string, timeoutMs: number): Promise<Read> {
    const [entry] = await this.opts.docker.listContainers({ all: true, filters: { id: [id] }, abortSignal: AbortSignal.timeout(timeoutMs) });
    return { after: entry !== undefined && entry.Id === id && entry.State === "running" ? fromListEntry(entry) : undefined };
  }

  /**
   * Puts the new state of one container in the cache and reports a change
   * unless `report` is false (draining marks kept). An unchanged container
   * keeps its cached object: nothing is re-indexed, nothing reported.
   */
  private store(id: string, next: ContainerInfo | undefined, report = true): void {
    const after = next !== undefined && this.drainMarks.isDraining(id, Date.now()) ? { ...next, draining: true } : next;
    const before = this.cache.get(id);
    if (after === undefined) {
      this.drainMarks.clear(id);
      this.cache.delete(id);
      this.fingerprints.delete(id);
      if (before === undefined) return;
    } else {
      if (before !== undefined && sameContainer(before, after)) return;
      this.cache.set(id, after);
    }
    if (report) this.opts.onChange({ id, ...(before !== undefined ? { before } : {}), ...(after !== undefined ? { after } : {}) });
  }
}

function parseEvent(line: string): DockerEvent | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return v !== null && typeof v === "object" ? v : undefined;
  } catch {
    return undefined;
  }
}
