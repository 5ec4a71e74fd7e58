/**
 * Event handlers of the manager (controller-runtime's handler + predicate
 * step): map what a source saw to the typed requests that must be reconciled
 * (runtime/requests.ts). Identity only: reconcilers re-read all state. Every
 * method is non-blocking and only adds requests to its sink.
 *
 * Two routers:
 * - RegistrarRouter, one per Docker endpoint: binding, container and Swarm
 *   events -> that endpoint's registrar requests (its node's queue view);
 * - RendererRouter, one per manager: binding and Consul health changes ->
 *   renderer requests. The renderer is shared by every endpoint, so health
 *   changes never pass through an endpoint's router.
 */
import { matchesSelector } from "../domain/selector.js";
import { swarmServiceMatches, type SwarmService } from "../domain/swarm.js";
import { bindingKey, serviceRefs, type ServiceBinding } from "../domain/types.js";
import type { RegistrarRequest, RendererRequest } from "../runtime/requests.js";
import { refKey } from "../sources/consul/healthWatcher.js";
import type { BindingStore } from "../ports/bindingStore.js";
import type { ContainerChange, ContainerStore } from "../ports/containerStore.js";
import type { SwarmStore } from "../ports/swarmStore.js";
import type { Priority } from "../runtime/workqueue.js";

const SWARM_SERVICE_LABEL = "com.docker.swarm.service.id";

export interface RegistrarRouterOptions {
  readonly bindings: BindingStore;
  /** This endpoint's containers. */
  readonly containers: ContainerStore;
  /** This endpoint's Swarm view. */
  readonly swarm: SwarmStore;
  /** This endpoint's registrar requests (its node's view of the shared queue, see dockerEndpoint.ts); `low`: a periodic re-check that must not delay event-driven requests. */
  readonly registrar: { add(request: RegistrarRequest, priority?: Priority): void };
  /** --registrator-compat: containers are registrar requests of their own. */
  readonly compat: boolean;
}

/** One Docker endpoint's registrar routing. */
export class RegistrarRouter {
  constructor(private readonly o: RegistrarRouterOptions) {}

  /** The bindings whose backends are Swarm services. */
  swarmBindings(): ServiceBinding[] {
    return this.o.bindings.list().filter((b) => b.spec.backends.swarm !== undefined);
  }

  /** Bindings appeared, changed or vanished: each one, plus every compat container (port claims may have moved). */
  bindingsChanged(keys: readonly string[]): void {
    for (const key of keys) this.o.registrar.add({ kind: "binding", binding: key });
    this.allContainers("high");
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

  /** Every registrar request this endpoint knows from its sources (resync: `low`; Consul came back, engine changed: `high`). */
  allRegistrations(priority: Priority = "high"): void {
    for (const b of this.o.bindings.list()) this.registrar(b, priority);
    this.allContainers(priority);
  }

  /** Every Swarm binding (an endpoint's Swarm availability changed). */
  allSwarm(): void {
    for (const b of this.swarmBindings()) this.registrar(b);
  }

  private allContainers(priority: Priority): void {
    if (this.o.compat) for (const c of this.o.containers.list()) this.o.registrar.add({ kind: "container", container: c.id }, priority);
  }

  private registrar(b: ServiceBinding, priority: Priority = "high"): void {
    this.o.registrar.add({ kind: "binding", binding: bindingKey(b) }, priority);
  }
}

export interface RendererRouterOptions {
  readonly bindings: BindingStore;
  readonly renderer: { add(request: RendererRequest): void };
}

/** The manager's renderer routing. */
export class RendererRouter {
  /** Each binding object's health refs (refKey): bindings are immutable values, replaced when they change. */
  private readonly refsOf = new WeakMap<ServiceBinding, readonly string[]>();

  constructor(private readonly o: RendererRouterOptions) {}

  /** Bindings appeared, changed or vanished: each one's render request. */
  bindingsChanged(keys: readonly string[]): void {
    for (const key of keys) this.o.renderer.add({ kind: "render", binding: key });
  }

  /** Health of one (dc, service) changed: every binding of that service (rendered, or only reported in status). */
  healthChanged(changedRef: string): void {
    for (const b of this.o.bindings.list()) if (this.refKeys(b).includes(changedRef)) this.render(b);
  }

  private refKeys(b: ServiceBinding): readonly string[] {
    let keys = this.refsOf.get(b);
    if (keys === undefined) {
      keys = serviceRefs(b).map(refKey);
      this.refsOf.set(b, keys);
    }
    return keys;
  }

  /** Every binding's render request (the renderer also keeps the passing count of bindings without a load balancer). */
  allRendered(): void {
    for (const b of this.o.bindings.list()) this.render(b);
  }

  private render(b: ServiceBinding): void {
    this.o.renderer.add({ kind: "render", binding: bindingKey(b) });
  }
}
