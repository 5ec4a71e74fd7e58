/**
 * Swarm source: a cache of services, tasks and nodes.
 *
 * Swarm has no task events, so the cache is level-based: every refresh lists
 * services, tasks and nodes (three calls) and diffs them per service.
 * Refreshes are triggered by
 *   - `service`, `node` and task-container events (containers carrying
 *     com.docker.swarm.task.id) on its own event subscription;
 *   - a short resync (`--swarm-resync`, default 2 s), and 200 ms while any task
 *     is in transition (desired and observed state differ);
 * coalesced so that at most one refresh runs at a time.
 *
 * Idle cost: nothing while no binding selects Swarm services (`wanted()`).
 * Not a swarm manager: view() says why and the registrar reports it on the
 * binding's status. Docker unreachable: the last snapshot is kept and view()
 * is not ready (never "no tasks"), like DockerWatcher.
 */
import type Dockerode from "dockerode";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import type { SwarmService, SwarmSnapshot, SwarmView } from "../../domain/swarm.js";
import type { SwarmClusterStore } from "../../ports/swarmStore.js";
import { backoffDelay, isAborted, sleep, Wakeup, type BackoffOptions } from "../../runtime/backoff.js";
import { errorMessage, type Logger } from "../../runtime/logger.js";
import { nodeFromApi, serviceFromApi, taskFromApi } from "./swarmInspect.js";

/** One service whose spec or tasks changed (before/after for selector matching). */
export interface SwarmServiceChange {
  readonly id: string;
  readonly before?: SwarmService;
  readonly after?: SwarmService;
}

export interface SwarmWatcherOptions {
  readonly docker: Dockerode;
  readonly logger: Logger;
  /** Periodic re-list while in swarm mode. */
  readonly resyncMs: number;
  /** Re-check of swarm mode while the engine is not a swarm manager, and of `wanted` while idle (wantedChanged() wakes it sooner). */
  readonly recheckMs: number;
  readonly backoff: BackoffOptions;
  /** False while no binding selects Swarm services: nothing is listed. */
  readonly wanted: () => boolean;
  /** Services whose spec or tasks changed. Must not throw. */
  readonly onChange: (changes: readonly SwarmServiceChange[]) => void;
  /** The view's kind changed (swarm became available or unavailable). Must not throw. */
  readonly onAvailability: () => void;
}

const TRANSITION_POLL_MS = 200;
const BURST_MS = 2_000;
/**
 * The engine's swarm role from `docker info`: the cluster it manages (undefined unless it is an
 * active manager), and the view to report when it cannot list tasks (not in swarm mode, a worker).
 */
function swarmRole(rawInfo: unknown): { readonly cluster?: string; readonly unavailable?: SwarmView } {
  const info = rawInfo as { Swarm?: { LocalNodeState?: string; ControlAvailable?: boolean; Cluster?: { ID?: string } } } | null;
  const state = info?.Swarm?.LocalNodeState ?? "inactive";
  if (state !== "active")
    return {
      unavailable: {
        kind: "unavailable",
        reason: "SwarmNotActive",
        message: `the Docker engine is not in swarm mode (swarm state: ${state}); swarm bindings have no backends`,
      },
    };
  if (info?.Swarm?.ControlAvailable !== true)
    return {
      unavailable: { kind: "unavailable", reason: "SwarmNotManager", message: "the Docker engine is a swarm worker: tasks can only be listed on a manager" },
    };
  const cluster = info.Swarm.Cluster?.ID;
  return cluster !== undefined ? { cluster } : {};
}

/** One list of the swarm's services, tasks and nodes (a manager's API). Rejects when Docker does. */
async function listSwarm(d: Dockerode): Promise<SwarmSnapshot> {
  const [rawServices, rawTasks, rawNodes] = await Promise.all([d.listServices(), d.listTasks() as Promise<unknown[]>, d.listNodes() as Promise<unknown[]>]);
  return {
    services: rawServices.map((s: unknown) => serviceFromApi(s)).filter((s) => s !== undefined),
    tasks: rawTasks.map(taskFromApi).filter((t) => t !== undefined),
    nodes: rawNodes.map(nodeFromApi).filter((n) => n !== undefined),
  };
}

/** The swarm as one read sees it (`controller plan`): the same role rule and lists the watcher uses. */
export async function readSwarmOnce(d: Dockerode): Promise<{ readonly view: SwarmView; readonly cluster?: string }> {
  const role = swarmRole(await d.info());
  const cluster = role.cluster !== undefined ? { cluster: role.cluster } : {};
  return { view: role.unavailable ?? { kind: "ready", snapshot: await listSwarm(d) }, ...cluster };
}

const NOT_SYNCED: SwarmView = { kind: "unavailable", reason: "SwarmNotSynced", message: "Swarm services and tasks not listed yet" };

interface SwarmEvent {
  readonly Type?: string;
  readonly Action?: string;
  readonly Actor?: { readonly ID?: string; readonly Attributes?: Readonly<Record<string, string>> };
}

function parseEvent(line: string): SwarmEvent | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return v !== null && typeof v === "object" ? v : undefined;
  } catch {
    return undefined;
  }
}

export class SwarmWatcher implements SwarmClusterStore {
  private current: SwarmView = NOT_SYNCED;
  private cluster: string | undefined;
  private snapshot: SwarmSnapshot = { services: [], tasks: [], nodes: [] };
  /** Per service id: fingerprint of its spec and tasks at the last refresh. */
  private fingerprints = new Map<string, string>();
  private refreshing: Promise<void> | undefined;
  private again = false;
  private wake: (() => void) | undefined;
  /** The wait while nothing wants Swarm (wantedChanged ends it). */
  private readonly idle = new Wakeup();
  /** After a service/node event the orchestrator updates tasks over the next moments: poll fast until then. */
  private burstUntil = 0;

  constructor(private readonly opts: SwarmWatcherOptions) {}

  view(): SwarmView {
    return this.current;
  }

  /** `wanted()` may have turned true (bindings changed): an idle watcher starts now instead of at its next recheck. */
  wantedChanged(): void {
    this.idle.wake();
  }

  clusterId(): string | undefined {
    return this.cluster;
  }

  /** Runs until `signal` aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!isAborted(signal)) {
      if (!this.opts.wanted()) {
        await this.idle.sleep(this.opts.recheckMs, signal);
        continue;
      }
      const stream = new AbortController();
      const onAbort = (): void => {
        stream.abort();
      };
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        const role = swarmRole(await this.opts.docker.info());
        this.cluster = role.cluster;
        if (role.unavailable !== undefined) {
          this.setView(role.unavailable);
        } else {
          const events = (await this.opts.docker.getEvents({
            filters: { type: ["service", "node", "container"] },
            abortSignal: stream.signal,
          } as object)) as unknown as Readable;
          await this.refresh();
          if (failures > 0) this.opts.logger.info("swarm event stream reconnected", { afterFailures: failures });
          failures = 0;
          await Promise.race([this.consume(events, stream.signal), this.ticker(stream.signal)]);
          if (!isAborted(signal) && this.opts.wanted()) {
            this.opts.logger.warn("swarm event stream ended; reconnecting");
            failures++;
          }
        }
      } catch (err) {
        if (isAborted(signal)) break;
        this.opts.logger.warn("swarm unreachable; keeping last known tasks", { error: errorMessage(err), failures });
        this.setView({ kind: "unavailable", reason: "SwarmUnreachable", message: `Docker (swarm) unreachable: ${errorMessage(err)}` });
        failures++;
      } finally {
        stream.abort();
        signal.removeEventListener("abort", onAbort);
      }
      if (isAborted(signal)) break;
      // Not in swarm mode: re-check at the slow period; errors back off.
      const notSwarm = this.current.kind === "unavailable" && (this.current.reason === "SwarmNotActive" || this.current.reason === "SwarmNotManager");
      await sleep(notSwarm ? this.opts.recheckMs : backoffDelay(Math.max(0, failures - 1), this.opts.backoff), signal);
    }
  }

  /** Periodic refresh: fast while tasks are in transition. Resolves when a refresh fails (the run loop reconnects) or on abort. */
  private async ticker(signal: AbortSignal): Promise<void> {
    while (!isAborted(signal)) {
      const transitioning = Date.now() < this.burstUntil || this.snapshot.tasks.some((t) => (t.desiredState === "running") !== (t.state === "running"));
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          signal.removeEventListener("abort", done);
          this.wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, transitioning ? TRANSITION_POLL_MS : this.opts.resyncMs);
        signal.addEventListener("abort", done, { once: true });
        this.wake = done;
      });
      if (isAborted(signal)) return;
      if (!this.opts.wanted()) return;
      await this.refresh();
    }
  }

  private async consume(stream: Readable, signal: AbortSignal): Promise<void> {
    const lines = createInterface({ input: stream, crlfDelay: Infinity });
    const onAbort = (): void => {
      lines.close();
      stream.destroy();
    };
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      for await (const line of lines) {
        const e = parseEvent(line);
        if (e === undefined) continue;
        // Plain containers are DockerWatcher's business; task containers hint at task state changes.
        if (e.Type === "container" && e.Actor?.Attributes?.["com.docker.swarm.task.id"] === undefined) continue;
        if (e.Type !== "container") this.burstUntil = Date.now() + BURST_MS;
        // The ticker refreshes now; a refresh already running runs once more (it may have listed before this event).
        if (this.wake !== undefined) this.wake();
        else
          void this.refresh().catch((err: unknown) => {
            this.opts.logger.debug("swarm refresh failed", { error: errorMessage(err) });
          });
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }

  /** Lists services, tasks and nodes; reports services whose spec or tasks changed. Concurrent callers share one run. */
  refresh(): Promise<void> {
    if (this.refreshing !== undefined) {
      this.again = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      for (let more = true; more; more = this.takeAgain()) {
        this.again = false;
        await this.refreshOnce();
      }
    })().finally(() => {
      this.refreshing = undefined;
    });
    return this.refreshing;
  }

  private async refreshOnce(): Promise<void> {
    const { services, tasks, nodes } = await listSwarm(this.opts.docker);
    const before = new Map(this.snapshot.services.map((s) => [s.id, s]));
    const nodesKey = JSON.stringify([...nodes].sort((a, b) => (a.id < b.id ? -1 : 1)));
    const fingerprints = new Map<string, string>();
    for (const s of services) {
      const own = tasks.filter((t) => t.serviceId === s.id).sort((a, b) => (a.id < b.id ? -1 : 1));
      fingerprints.set(s.id, JSON.stringify([s, own, nodesKey]));
    }
    const changes: SwarmServiceChange[] = [];
    for (const s of services) {
      if (this.fingerprints.get(s.id) !== fingerprints.get(s.id)) {
        const b = before.get(s.id);
        changes.push({ id: s.id, ...(b !== undefined ? { before: b } : {}), after: s });
      }
    }
    for (const [id, b] of before) if (!fingerprints.has(id)) changes.push({ id, before: b });
    this.snapshot = { services, tasks, nodes };
    this.fingerprints = fingerprints;
    this.setView({ kind: "ready", snapshot: this.snapshot });
    if (changes.length > 0) this.opts.onChange(changes);
  }

  private takeAgain(): boolean {
    const again = this.again;
    this.again = false;
    return again;
  }

  private setView(v: SwarmView): void {
    const changed = v.kind !== this.current.kind || (v.kind === "unavailable" && this.current.kind === "unavailable" && v.reason !== this.current.reason);
    this.current = v;
    if (changed) {
      if (v.kind === "unavailable") this.opts.logger.warn("swarm backends unavailable", { reason: v.reason, detail: v.message });
      else this.opts.logger.info("swarm backends available", { services: v.snapshot.services.length, tasks: v.snapshot.tasks.length });
      this.opts.onAvailability();
    }
  }
}
