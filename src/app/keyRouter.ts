/**
 * Event handlers of the manager (controller-runtime's handler + predicate
 * step): maps what a source saw to the requests that must be reconciled
 * (runtime/requests.ts). Identity only: reconcilers re-read all state.
 * Non-blocking.
 */
import { matchesSelector } from "../domain/selector.js";
import { swarmServiceMatches, type SwarmService } from "../domain/swarm.js";
import { bindingKey, serviceRef, type ServiceBinding } from "../domain/types.js";
import type { RegistrarRequest, RendererRequest } from "../runtime/requests.js";
import { refKey } from "../sources/consul/healthWatcher.js";
import type { BindingStore } from "../ports/bindingStore.js";
import type { ContainerChange, ContainerStore } from "../ports/containerStore.js";
import type { SwarmStore } from "../ports/swarmStore.js";

const SWARM_SERVICE_LABEL = "com.docker.swarm.service.id";

export interface KeyRouterOptions {
  readonly bindings: BindingStore;
  readonly containers: ContainerStore;
  readonly swarm: SwarmStore;
  /** Where registrar keys go (one endpoint's view of the shared queue, see dockerEndpoint.ts). */
  readonly registrar: { add(request: RegistrarRequest): void };
  readonly renderer: { add(request: RendererRequest): void };
  /** --registrator-compat: containers are registrar keys of their own. */
  readonly compat: boolean;
}

export class KeyRouter {
  constructor(private readonly o: KeyRouterOptions) {}

  swarmBindings(): ServiceBinding[] {
    return this.o.bindings.list().filter((b) => b.spec.backends.swarm !== undefined);
  }

  /** Bindings appeared, changed or vanished: both loops, plus compat containers (port claims may have moved, issue #6). */
  bindingsChanged(keys: readonly string[]): void {
    for (const key of keys) {
      this.o.registrar.add({ kind: "binding", binding: key });
      this.o.renderer.add({ kind: "render", binding: key });
    }
    this.allContainers();
  }

  /** A container changed: the bindings whose selector matches it before or after, its Swarm service's bindings, itself (compat). */
  containerChanged(change: ContainerChange): void {
    const labels = [change.before?.labels, change.after?.labels].filter((l) => l !== undefined);
    for (const b of this.o.bindings.list()) {
      const sel = b.spec.backends.selector;
      if (sel !== undefined && labels.some((l) => matchesSelector(sel, l))) this.registrar(b);
    }
    const taskService = (change.after ?? change.before)?.labels[SWARM_SERVICE_LABEL];
    const view = this.o.swarm.view();
    if (taskService !== undefined && view.kind === "ready") this.swarmChanged(view.snapshot.services.filter((s) => s.id === taskService));
    if (this.o.compat) this.o.registrar.add({ kind: "container", container: change.id });
  }

  /** Swarm services changed (before/after versions): the bindings selecting any of them. */
  swarmChanged(services: readonly (SwarmService | undefined)[]): void {
    for (const b of this.swarmBindings()) {
      const spec = b.spec.backends.swarm;
      if (spec !== undefined && services.some((s) => s !== undefined && swarmServiceMatches(spec, s))) this.registrar(b);
    }
  }

  /** Health of one (dc, service) changed: every binding of that service (rendered, or only reported in status). */
  healthChanged(changedRef: string): void {
    for (const b of this.o.bindings.list()) if (refKey(serviceRef(b)) === changedRef) this.render(b);
  }

  /** Every registrar key this controller knows from its sources (resync, Consul came back). */
  allRegistrations(): void {
    for (const b of this.o.bindings.list()) this.registrar(b);
    this.allContainers();
  }

  allSwarm(): void {
    for (const b of this.swarmBindings()) this.registrar(b);
  }

  /** Every binding's renderer key (the renderer also keeps the passing count of bindings without a load balancer). */
  allRendered(): void {
    for (const b of this.o.bindings.list()) this.render(b);
  }

  private allContainers(): void {
    if (this.o.compat) for (const c of this.o.containers.list()) this.o.registrar.add({ kind: "container", container: c.id });
  }

  private registrar(b: ServiceBinding): void {
    this.o.registrar.add({ kind: "binding", binding: bindingKey(b) });
  }

  private render(b: ServiceBinding): void {
    this.o.renderer.add({ kind: "render", binding: bindingKey(b) });
  }
}
