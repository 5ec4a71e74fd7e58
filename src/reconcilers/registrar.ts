/**
 * Registrar reconciler (Docker -> Consul). Keys:
 * - `binding/<namespace>/<name>`: registrations of one ServiceBinding;
 * - `container/<id>`: registrator-compat registrations of one container.
 *
 * reconcile(key) re-reads the binding, the container cache and the Consul
 * agent, computes desired (pure) and plan(current, desired) (pure) and applies
 * the plan. Converged => zero Consul writes. Only registrations carrying this
 * node's owner meta for this key are ever deregistered. While the Docker cache
 * is not synced (Docker unreachable) nothing is computed: the key is requeued.
 */
import { AgentServiceSnapshot } from "../actuators/consul/agentServiceSnapshot.js";
import type { ConsulApi } from "../actuators/consul/consulClient.js";
import { probeCheck, type CheckProbe } from "../actuators/probe/checkProbe.js";
import { desiredForBinding, type DesiredResult } from "../domain/desired.js";
import { desiredForSwarmBinding } from "../domain/swarm.js";
import { planRegistrations, withHash, type RegistrationPlan } from "../domain/plan.js";
import { parseDurationMs } from "../config/duration.js";
import { COMPAT_BINDING_KEY, compatRegistrations, type CompatOptions } from "../domain/registratorCompat.js";
import { matchesSelector } from "../domain/selector.js";
import { OWNER_META, type ContainerInfo, type RegisteredService, type Registration, type ServiceBinding } from "../domain/types.js";
import type { ReconcileResult, Reconciler } from "../runtime/controller.js";
import { ReconcileError, reasonOf } from "../runtime/errors.js";
import { errorMessage, type Logger } from "../runtime/logger.js";
import type { ContainerStore } from "../sources/docker/dockerWatcher.js";
import type { SwarmStore } from "../sources/docker/swarmWatcher.js";
import type { BindingStore } from "../sources/files/bindingStore.js";
import type { BindingStatusStore, NodeRegistration } from "./bindingStatus.js";

export const BINDING_PREFIX = "binding/";

/** How long a backend that failed its first probe is re-probed: one check interval (then Consul has run its own). */
function probeWindowMs(check: Registration["check"]): number {
  try {
    return check?.interval === undefined ? 0 : parseDurationMs(check.interval);
  } catch {
    return 0;
  }
}
export const CONTAINER_PREFIX = "container/";

export interface RegistrarOptions {
  readonly bindings: BindingStore;
  readonly containers: ContainerStore;
  readonly consul: ConsulApi;
  readonly status: BindingStatusStore;
  readonly logger: Logger;
  readonly node: string;
  readonly hostIP: string;
  /** Registrator-compat options; undefined when --registrator-compat is off. */
  readonly compat?: CompatOptions;
  /** Swarm services/tasks (bindings with spec.backends.swarm); undefined = Swarm unsupported. */
  readonly swarm?: SwarmStore;
  /** How long to wait before re-checking a key while a source is not synced. */
  readonly notSyncedRetryMs?: number;
  /** Max age of the shared agent-services view (default 1 s). */
  readonly agentServicesMaxAgeMs?: number;
  /** Runs a check once for healthCheck.probeBeforeRegister (default: probeCheck, a real HTTP/TCP probe). */
  readonly probe?: CheckProbe;
}

/** At most this many probes of one plan run at once. */
const PROBE_CONCURRENCY = 16;
/** Re-probe period of backends that did not answer their first probe (they may still be starting). */
const PROBE_RETRY_MS = 200;

/** Workqueue key for the registrations owned by one registered service (used by GC). */
export function ownerKey(meta: Readonly<Record<string, string>>): string | undefined {
  const binding = meta[OWNER_META.binding];
  if (binding === COMPAT_BINDING_KEY) {
    const container = meta[OWNER_META.container];
    return container === undefined ? undefined : CONTAINER_PREFIX + container;
  }
  return binding === undefined ? undefined : BINDING_PREFIX + binding;
}

export class RegistrarReconciler implements Reconciler {
  /** Shared agent-services view: one read per burst of reconciles, kept current with our own writes. */
  private readonly agentServices: AgentServiceSnapshot;
  /**
   * probeBeforeRegister follow-ups: service id -> until when (ms epoch) to re-probe. A backend that
   * did not answer its first probe was registered with initialStatus; once it answers within one
   * check interval (Consul may not have run its first check yet) it is re-registered passing.
   */
  private readonly probePending = new Map<string, number>();

  constructor(private readonly opts: RegistrarOptions) {
    this.agentServices = new AgentServiceSnapshot(opts.consul, opts.agentServicesMaxAgeMs ?? 1000);
  }

  /** Forget the cached agent view (the agent restarted and may have lost registrations). */
  invalidateAgentView(): void {
    this.agentServices.invalidate();
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { bindings, containers } = this.opts;
    if (!bindings.synced() || !containers.synced()) return { requeueAfterMs: this.opts.notSyncedRetryMs ?? 1000 };
    if (key.startsWith(BINDING_PREFIX)) return this.reconcileBinding(key.slice(BINDING_PREFIX.length));
    if (key.startsWith(CONTAINER_PREFIX)) return this.reconcileContainer(key.slice(CONTAINER_PREFIX.length));
    throw new ReconcileError("InvalidKey", `unknown registrar key ${key}`, true);
  }

  private async reconcileBinding(bkey: string): Promise<ReconcileResult> {
    const binding = this.opts.bindings.get(bkey);
    const wanted = binding === undefined ? { desired: { registrations: [], skipped: [] } } : this.desired(bkey, binding);
    if (wanted === undefined) return { requeueAfterMs: 5_000 };
    const { desired, abstain } = wanted;
    for (const s of desired.skipped) {
      this.opts.logger.warn("backend skipped", { binding: bkey, container: s.containerId.slice(0, 12), reason: s.reason });
    }
    let recheck = false;
    try {
      // Reading the agent fails like writing to it: both leave the binding not Registered.
      const current = await this.owned((m) => m[OWNER_META.binding] === bkey);
      const plan = planRegistrations(current, desired.registrations);
      await this.apply(bkey, plan);
      recheck = await this.followUpProbes(bkey, desired.registrations, plan);
    } catch (err) {
      if (binding !== undefined) this.opts.status.setRegistration(bkey, this.opts.node, { status: "False", reason: reasonOf(err), message: errorMessage(err) });
      throw err;
    }
    if (binding === undefined) {
      this.opts.status.delete(bkey);
      return {};
    }
    if (abstain !== undefined) {
      this.opts.status.setRegistration(bkey, this.opts.node, abstain);
      return {};
    }
    const done = recheck ? { recheckAfterMs: PROBE_RETRY_MS } : {};
    const n = desired.registrations.length;
    const skippedMsg = desired.skipped.length > 0 ? `; ${desired.skipped.length} backend(s) skipped: ${desired.skipped[0]?.reason ?? ""}` : "";
    this.opts.status.setRegistration(bkey, this.opts.node, {
      status: "True",
      reason: "Registered",
      message: `${n} instance(s) registered${skippedMsg}`,
      counts: { desired: n + desired.skipped.length, registered: n },
    });
    return done;
  }

  /**
   * Re-probes this binding's registrations that are waiting for their backend to answer
   * (see probePending); a pass re-registers the same registration as passing (one write).
   * Entries end on a pass, at their deadline, or when the registration is no longer wanted.
   * True while any entry of the binding is left (the caller asks for a recheck).
   */
  private async followUpProbes(bkey: string, desired: readonly Registration[], plan: RegistrationPlan): Promise<boolean> {
    const justRegistered = new Set(plan.register.map((r) => r.id));
    const now = Date.now();
    const waiting = desired.filter((r) => {
      const until = this.probePending.get(r.id);
      if (until === undefined || justRegistered.has(r.id)) return false;
      if (now <= until) return true;
      this.probePending.delete(r.id);
      return false;
    });
    for (const id of plan.deregister) this.probePending.delete(id);
    if (waiting.length === 0) return desired.some((r) => this.probePending.has(r.id));
    const passed = await this.probed(waiting);
    for (const [i, r] of waiting.entries()) {
      if (passed[i] !== true || r.check === undefined) continue;
      const registration = withHash(r);
      await this.opts.consul.register({ ...registration, check: { ...r.check, status: "passing" } });
      this.probePending.delete(r.id);
      this.opts.logger.info("registered", { binding: bkey, action: "register", serviceId: r.id, address: `${r.address}:${r.port}`, probe: "passing (follow-up)" });
    }
    return desired.some((r) => this.probePending.has(r.id));
  }

  /**
   * Containers, or the running tasks of Swarm services. Undefined when Swarm
   * cannot be read: the status says why and nothing is deregistered.
   * `abstain`: this node has no say on the binding (issue #3 item 6), reported instead of counts.
   */
  private desired(bkey: string, binding: ServiceBinding): { readonly desired: DesiredResult; readonly abstain?: NodeRegistration } | undefined {
    const selector = binding.spec.backends.selector;
    if (binding.spec.backends.swarm === undefined) return { desired: desiredForBinding(binding, selector === undefined ? [] : this.opts.containers.select(selector), this.opts) };
    const view = this.opts.swarm?.view() ?? { kind: "unavailable", reason: "SwarmUnsupported", message: "this controller does not read Swarm services" };
    if (view.kind !== "ready") {
      const noSay = view.reason === "SwarmNotActive" || view.reason === "SwarmNotManager" || view.reason === "SwarmServedByOtherEndpoint";
      const report: NodeRegistration = { status: "False", reason: view.reason, message: view.message, ...(noSay ? { abstain: true, counts: { desired: 0, registered: 0 } } : {}) };
      // Another endpoint serves this swarm: copies this node made (before it knew) are removed.
      if (view.reason === "SwarmServedByOtherEndpoint") return { desired: { registrations: [], skipped: [] }, abstain: report };
      this.opts.status.setRegistration(bkey, this.opts.node, report);
      return undefined;
    }
    return {
      desired: desiredForSwarmBinding(binding, view.snapshot, {
        ...this.opts,
        isDraining: (id) => this.opts.containers.get(id)?.draining === true,
        localContainer: (id) => this.opts.containers.get(id),
      }),
    };
  }

  /**
   * Issue #6: a container port selected by a ServiceBinding belongs to that binding; registrator-compat
   * (which registers every published port, like registrator) must not register it a second time.
   */
  private withoutBindingPorts(container: ContainerInfo): ContainerInfo {
    const claims = this.opts.bindings
      .list()
      .filter((b) => b.spec.backends.selector !== undefined && matchesSelector(b.spec.backends.selector, container.labels))
      .map((b) => `${b.spec.backends.port}/${b.spec.backends.protocol}`);
    if (claims.length === 0) return container;
    return { ...container, ports: container.ports.filter((p) => !claims.includes(`${p.privatePort}/${p.protocol}`)) };
  }

  private async reconcileContainer(id: string): Promise<ReconcileResult> {
    const container = this.opts.containers.get(id);
    const compat = this.opts.compat;
    let desired: readonly Registration[] = [];
    if (container !== undefined && compat !== undefined) {
      const result = compatRegistrations(this.withoutBindingPorts(container), compat);
      for (const issue of result.issues) {
        this.opts.logger.warn("registrator label ignored", { container: issue.containerId.slice(0, 12), field: issue.field, reason: issue.message });
      }
      desired = result.registrations;
    }
    const current = await this.owned((m) => m[OWNER_META.binding] === COMPAT_BINDING_KEY && m[OWNER_META.container] === id);
    await this.apply(`${COMPAT_BINDING_KEY}:${id.slice(0, 12)}`, planRegistrations(current, desired));
    return {};
  }

  /** Agent services owned by this node that match `filter`. */
  private async owned(filter: (meta: Readonly<Record<string, string>>) => boolean): Promise<RegisteredService[]> {
    const all = await this.agentServices.list();
    return all.filter((s) => s.meta[OWNER_META.node] === this.opts.node && filter(s.meta));
  }

  private async apply(label: string, plan: RegistrationPlan): Promise<void> {
    for (const id of plan.deregister) {
      await this.opts.consul.deregister(id);
      this.agentServices.recordDeregister(id);
      this.opts.logger.info("deregistered", { binding: label, action: "deregister", serviceId: id });
    }
    const probed = await this.probed(plan.register);
    for (const [i, r] of plan.register.entries()) {
      const passed = probed[i] === true;
      // The probe sets only the status sent with this registration; the hash in meta stays that of the
      // configured check, so the next pass finds it converged (Consul owns the status from here on).
      await this.opts.consul.register(passed && r.check !== undefined ? { ...r, check: { ...r.check, status: "passing" } } : r);
      this.agentServices.recordRegister(r);
      if (probed[i] === false) this.probePending.set(r.id, Date.now() + probeWindowMs(r.check));
      else this.probePending.delete(r.id);
      this.opts.logger.info("registered", { binding: label, action: "register", serviceId: r.id, address: `${r.address}:${r.port}`, ...(probed[i] !== undefined ? { probe: passed ? "passing" : "failed" } : {}) });
    }
  }

  /**
   * healthCheck.probeBeforeRegister (issue #6 P2): one run of each such check, at most
   * PROBE_CONCURRENCY at once; per registration true/false, undefined when not probed.
   */
  private async probed(registrations: readonly Registration[]): Promise<(boolean | undefined)[]> {
    const out = new Array<boolean | undefined>(registrations.length);
    const todo = registrations.flatMap((r, i) => (r.check?.probeBeforeRegister === true ? [i] : []));
    const probe = this.opts.probe ?? probeCheck;
    const worker = async (): Promise<void> => {
      for (let i = todo.shift(); i !== undefined; i = todo.shift()) {
        const check = registrations[i]?.check;
        out[i] = check === undefined ? undefined : await probe(check);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PROBE_CONCURRENCY, todo.length) }, worker));
    return out;
  }
}
