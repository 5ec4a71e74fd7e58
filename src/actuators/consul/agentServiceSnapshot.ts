/**
 * A shared view of the Consul agent's services for the registrar: a burst of
 * reconciles (a resync of hundreds of bindings) costs one agent read, and a
 * reconcile between reads (a container event) costs none.
 *
 * Contract:
 * - `list()` returns a snapshot younger than `maxAgeMs` (0: always re-read); callers that arrive
 *   while a read is in flight share it (single flight), so a resync burst of N
 *   reconciles costs ~1 read instead of N;
 * - this controller's own writes are applied to the snapshot as they succeed
 *   (`recordRegister` / `recordDeregister`), so its view never lags its writes;
 * - `ofBinding(binding)` serves the same snapshot indexed by the `dockbind_binding`
 *   meta, so a reconcile costs O(its own registrations), not O(agent services);
 * - `invalidate()` forces the next `list()` to re-read (e.g. the agent
 *   restarted and may have lost registrations). Writes by other parties are
 *   seen after at most `maxAgeMs`, like an informer cache's resync.
 */
import type { AgentServices } from "../../domain/ownership.js";
import { OWNER_META, type RegisteredService, type Registration } from "../../domain/types.js";
import type { ConsulApi } from "../../ports/consul.js";

/** The agent's services by ID, and by binding key (the `dockbind_binding` meta; "" when absent). */
class Index {
  readonly byId = new Map<string, RegisteredService>();
  private readonly byBinding = new Map<string, Map<string, RegisteredService>>();

  constructor(services: Iterable<RegisteredService>) {
    for (const s of services) this.set(s);
  }

  set(s: RegisteredService): void {
    this.delete(s.id);
    this.byId.set(s.id, s);
    const key = s.meta[OWNER_META.binding] ?? "";
    const group = this.byBinding.get(key) ?? new Map<string, RegisteredService>();
    group.set(s.id, s);
    this.byBinding.set(key, group);
  }

  delete(id: string): void {
    const old = this.byId.get(id);
    if (old === undefined) return;
    this.byId.delete(id);
    const key = old.meta[OWNER_META.binding] ?? "";
    const group = this.byBinding.get(key);
    group?.delete(id);
    if (group?.size === 0) this.byBinding.delete(key);
  }

  ofBinding(binding: string): readonly RegisteredService[] {
    return [...(this.byBinding.get(binding)?.values() ?? [])];
  }
}

export class AgentServiceSnapshot {
  private services: Index | undefined;
  private readAt = 0;
  private inflight: Promise<Index> | undefined;
  private generation = 0;
  /** Writes recorded while a read is in flight, replayed onto its result (it may predate them). */
  private journal: ((m: Index) => void)[] = [];

  constructor(
    private readonly consul: Pick<ConsulApi, "listAgentServices">,
    private readonly maxAgeMs: number,
  ) {}

  async list(): Promise<readonly RegisteredService[]> {
    return [...(await this.current()).byId.values()];
  }

  /** The snapshot for one planning step: candidates are the services whose binding meta is `binding`. */
  async ofBinding(binding: string): Promise<AgentServices> {
    const index = await this.current();
    return { candidates: index.ofBinding(binding), byId: (id) => index.byId.get(id) };
  }

  private async current(): Promise<Index> {
    if (this.services !== undefined && Date.now() - this.readAt < this.maxAgeMs) return this.services;
    this.inflight ??= this.read().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  /** Whether the current view has service `id`, without reading the agent; undefined while no view is loaded. */
  holds(id: string): boolean | undefined {
    return this.services?.byId.has(id);
  }

  /** Service `id` as the current view holds it (this controller's last write of it, or the last read), without reading the agent. */
  viewed(id: string): RegisteredService | undefined {
    return this.services?.byId.get(id);
  }

  recordRegister(r: Registration): void {
    const s: RegisteredService = {
      id: r.id,
      name: r.name,
      address: r.address,
      port: r.port,
      tags: [...r.tags],
      meta: { ...r.meta },
      ...(r.weight !== undefined ? { weight: r.weight } : {}),
    };
    this.record((m) => {
      m.set(s);
    });
  }

  recordDeregister(id: string): void {
    this.record((m) => {
      m.delete(id);
    });
  }

  private record(change: (m: Index) => void): void {
    if (this.services !== undefined) change(this.services);
    if (this.inflight !== undefined) this.journal.push(change);
  }

  invalidate(): void {
    this.services = undefined;
    this.generation++;
  }

  private async read(): Promise<Index> {
    const generation = this.generation;
    const started = Date.now();
    this.journal = [];
    const fresh = new Index(await this.consul.listAgentServices());
    for (const change of this.journal.splice(0)) change(fresh);
    // An invalidate() during the read means the result may predate it: serve it, but do not keep it.
    if (generation === this.generation) {
      this.services = fresh;
      this.readAt = started;
    }
    return fresh;
  }
}
