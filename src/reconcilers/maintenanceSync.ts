/**
 * Converges the Consul service maintenance of one binding's registrations on
 * this node's agent to the declaration (domain/maintenance.ts): `spec.maintenance`
 * and the per-container KV entries `controller maint` writes.
 *
 * Contract:
 * - converged => no Consul write, and reads shared with the other reconciles: the agent's
 *   maintenance checks and the node's KV entries are read at most once per `maxAgeMs`
 *   (single flight), and re-read before any write is decided (a stale view never takes an
 *   instance out or puts one back);
 * - only maintenance carrying MAINTENANCE_MARK is ever disabled; anyone else's is kept;
 * - the KV entries cannot be read (e.g. an ACL token without KV read): `spec.maintenance`
 *   is still applied, nothing is taken out;
 * - `invalidate()` forces fresh reads (a restarted agent that lost its state is re-filled);
 * - while `watch()` runs and its blocking query on the node's KV prefix has a current answer,
 *   entering() decides registrations that nothing declares into maintenance from that answer
 *   alone: a new backend's registration waits for no read (the common case). Anything declared
 *   is still decided on the shared read, as without the watch;
 * - an answer of the watch that differs from the one before drops the cached read (a declaration
 *   made while it was cached, e.g. for a container about to be replaced under the same name, is
 *   never decided on the old read) and calls `onDeclared` (the caller re-queues its bindings, so a
 *   declaration written to KV by hand applies at once). The first answer drops the cache only.
 */
import {
  maintenanceActions,
  maintenanceEntries,
  maintenanceKvPrefix,
  registrationContainer,
  wantedMaintenance,
  type InstanceIdentity,
  type MaintenanceActions,
  type MaintenanceEntries,
} from "../domain/maintenance.js";
import type { Registration, ServiceBinding } from "../domain/types.js";
import type { ConsulMaintenance } from "../ports/consul.js";
import type { ContainerStore } from "../ports/containerStore.js";
import { backoffDelay, isAborted, sleep } from "../runtime/backoff.js";
import { errorMessage, type Logger } from "../runtime/logger.js";

/** Longest wait of the KV watch's blocking query: one request per wait while nothing changes. */
const WATCH_WAIT_MS = 300_000;
/** Retry pacing of a failing KV watch (e.g. a token without KV read: 403 until it changes). */
const WATCH_BACKOFF = { baseMs: 1_000, maxMs: 60_000 };

interface MaintenanceState {
  readonly current: Map<string, string>;
  /** Undefined: the KV entries could not be read. */
  readonly entries: MaintenanceEntries | undefined;
}

export class MaintenanceSync {
  private state: Promise<MaintenanceState> | undefined;
  private readAt = 0;
  /** The node's KV declarations as the watch's latest answer has them; undefined while the watch has none that is current. */
  private watched: MaintenanceEntries | undefined;

  constructor(
    private readonly api: ConsulMaintenance,
    private readonly node: string,
    private readonly containers: Pick<ContainerStore, "get">,
    private readonly logger: Logger,
    private readonly maxAgeMs: number,
    private readonly onDeclared?: () => void,
  ) {}

  invalidate(): void {
    this.state = undefined;
  }

  /** Starts the shared read entering() and converge() will use (if the cached one is too old); never rejects. */
  prefetch(): void {
    this.read(false).catch(() => undefined);
  }

  /**
   * IDs among `registrations` (about to be written) that the declaration puts into maintenance and
   * that are not in it yet, from the shared cached read. Never rejects: an unreadable state is an
   * empty set (converge() then reports the failure).
   */
  async entering(binding: ServiceBinding, registrations: readonly Registration[]): Promise<ReadonlySet<string>> {
    if (registrations.length === 0) return new Set();
    const watched = this.watched;
    if (watched !== undefined && registrations.every((r) => wantedMaintenance(binding, this.identity(r), watched) === undefined)) return new Set();
    try {
      return new Set(this.actions(binding, registrations, await this.read(false)).enable.map((e) => e.id));
    } catch {
      return new Set();
    }
  }

  /** Puts `registrations` (this node's, of `binding`, already on the agent) into or out of dockbind maintenance. */
  async converge(binding: ServiceBinding, registrations: readonly Registration[]): Promise<void> {
    if (registrations.length === 0) return;
    const cached = this.actions(binding, registrations, await this.read(false));
    if (cached.enable.length === 0 && cached.disable.length === 0) return;
    const state = await this.read(true);
    const actions = this.actions(binding, registrations, state);
    for (const { id, reason } of actions.enable) {
      await this.api.setMaintenance(id, true, reason);
      state.current.set(id, reason);
      this.logger.info("maintenance enabled", { binding: `${binding.metadata.namespace}/${binding.metadata.name}`, serviceId: id });
    }
    for (const id of actions.disable) {
      await this.api.setMaintenance(id, false);
      state.current.delete(id);
      this.logger.info("maintenance disabled", { binding: `${binding.metadata.namespace}/${binding.metadata.name}`, serviceId: id });
    }
  }

  /**
   * Keeps the watched KV declarations current with a blocking query on the node's prefix until
   * `signal` aborts. Never rejects: while it fails (Consul down, no KV read permission) there is
   * no watched answer and entering() reads as it would without the watch.
   */
  async watch(signal: AbortSignal): Promise<void> {
    const prefix = maintenanceKvPrefix(this.node);
    let index: string | undefined;
    let failures = 0;
    let last: string | undefined;
    while (!signal.aborted) {
      try {
        const answer = await this.api.kvListWatch(prefix, { ...(index !== undefined ? { index, waitMs: WATCH_WAIT_MS } : {}), signal });
        const raw = JSON.stringify(answer.entries);
        if (raw !== last) {
          this.invalidate();
          if (last !== undefined) this.onDeclared?.();
          last = raw;
        }
        this.watched = maintenanceEntries(this.node, answer.entries);
        failures = 0;
        const next = Number(answer.index);
        if (!(next > 0)) {
          // No index to block on (Consul always sends one; a proxy may drop it): read again later, not in a loop.
          index = undefined;
          await sleep(WATCH_BACKOFF.maxMs, signal);
          continue;
        }
        // An index that went backwards (a restarted agent or cluster): start again without blocking.
        index = index === undefined || next >= Number(index) ? answer.index : undefined;
      } catch (err) {
        this.watched = undefined;
        index = undefined;
        if (isAborted(signal)) break;
        this.logger.debug("maintenance declarations not watched; new registrations read them first", { error: errorMessage(err) });
        await sleep(backoffDelay(failures++, WATCH_BACKOFF), signal);
      }
    }
    this.watched = undefined;
  }

  private identity(r: Registration): InstanceIdentity | undefined {
    const id = registrationContainer(r);
    if (id === undefined) return undefined;
    return { id, name: this.containers.get(id)?.name ?? "" };
  }

  private actions(binding: ServiceBinding, registrations: readonly Registration[], s: MaintenanceState): MaintenanceActions {
    return maintenanceActions(registrations, (r) => wantedMaintenance(binding, this.identity(r), s.entries), s.current, s.entries !== undefined);
  }

  private read(fresh: boolean): Promise<MaintenanceState> {
    if (!fresh && this.state !== undefined && Date.now() - this.readAt < this.maxAgeMs) return this.state;
    const started = Date.now();
    const next = this.load();
    this.state = next;
    this.readAt = started;
    // A failed read is not cached.
    next.catch(() => {
      if (this.state === next) this.state = undefined;
    });
    return next;
  }

  private async load(): Promise<MaintenanceState> {
    const [current, kv] = await Promise.all([
      this.api.agentMaintenance(),
      this.api.kvList(maintenanceKvPrefix(this.node)).catch((err: unknown) => {
        this.logger.debug("maintenance entries not readable; declared maintenance is applied, none is taken out", { error: errorMessage(err) });
        return undefined;
      }),
    ]);
    return { current: new Map(current), entries: kv === undefined ? undefined : maintenanceEntries(this.node, kv) };
  }
}
