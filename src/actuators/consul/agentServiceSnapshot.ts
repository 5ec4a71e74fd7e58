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
 * - `invalidate()` forces the next `list()` to re-read (e.g. the agent
 *   restarted and may have lost registrations). Writes by other parties are
 *   seen after at most `maxAgeMs`, like an informer cache's resync.
 */
import type { RegisteredService, Registration } from "../../domain/types.js";
import type { ConsulApi } from "../../clients/consul/types.js";

export class AgentServiceSnapshot {
  private services: Map<string, RegisteredService> | undefined;
  private readAt = 0;
  private inflight: Promise<Map<string, RegisteredService>> | undefined;
  private generation = 0;
  /** Writes recorded while a read is in flight, replayed onto its result (it may predate them). */
  private journal: ((m: Map<string, RegisteredService>) => void)[] = [];

  constructor(
    private readonly consul: Pick<ConsulApi, "listAgentServices">,
    private readonly maxAgeMs: number,
  ) {}

  async list(): Promise<readonly RegisteredService[]> {
    if (this.services !== undefined && Date.now() - this.readAt < this.maxAgeMs) return [...this.services.values()];
    this.inflight ??= this.read().finally(() => {
      this.inflight = undefined;
    });
    return [...(await this.inflight).values()];
  }

  recordRegister(r: Registration): void {
    const s: RegisteredService = { id: r.id, name: r.name, address: r.address, port: r.port, tags: [...r.tags], meta: { ...r.meta } };
    this.record((m) => m.set(r.id, s));
  }

  recordDeregister(id: string): void {
    this.record((m) => m.delete(id));
  }

  private record(change: (m: Map<string, RegisteredService>) => void): void {
    if (this.services !== undefined) change(this.services);
    if (this.inflight !== undefined) this.journal.push(change);
  }

  invalidate(): void {
    this.services = undefined;
    this.generation++;
  }

  private async read(): Promise<Map<string, RegisteredService>> {
    const generation = this.generation;
    const started = Date.now();
    this.journal = [];
    const fresh = new Map((await this.consul.listAgentServices()).map((s) => [s.id, s]));
    for (const change of this.journal.splice(0)) change(fresh);
    // An invalidate() during the read means the result may predate it: serve it, but do not keep it.
    if (generation === this.generation) {
      this.services = fresh;
      this.readAt = started;
    }
    return fresh;
  }
}
