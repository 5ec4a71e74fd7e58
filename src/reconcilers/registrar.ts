/**
 * Registrar reconciler (Docker -> Consul) of one node. Requests
 * (runtime/requests.ts): a binding (its registrations), or a container (its
 * registrator-compat registrations).
 *
 * reconcile(request) re-reads the binding, the container cache and the Consul
 * agent, computes desired (pure) and plan(current, desired) (pure) and applies
 * the plan. Converged => zero Consul writes. Only registrations this
 * controller owns (domain/ownership.ts) for this key are ever rewritten or
 * deregistered; a desired ID another controller with our node name holds is
 * left alone. While the Docker cache is not synced (Docker unreachable) or the
 * engine's identity is not known yet, nothing is computed: the key is requeued.
 */
import { AgentServiceSnapshot } from "../actuators/consul/agentServiceSnapshot.js";
import { DockerHealthTtl, serviceCheckId } from "../actuators/consul/dockerHealthTtl.js";
import type { CheckProbe } from "../actuators/probe/checkProbe.js";
import { compatDesired, desiredRegistrations, type NodeWorld } from "../domain/decisions.js";
import { NO_DOCKER_HEALTHCHECK, type DesiredResult } from "../domain/desired.js";
import { ownedView, type OwnedView, type OwnerIdentity } from "../domain/ownership.js";
import { planRegistrations, sameVisible, withHash, type RegistrationPlan } from "../domain/plan.js";
import { COMPAT_BINDING_KEY, type CompatOptions } from "../domain/registratorCompat.js";
import { OWNER_META, type HealthInstance, type RegisteredService, type Registration, type ServiceBinding } from "../domain/types.js";
import type { ReconcileResult } from "../runtime/controller.js";
import type { RegistrarRequest, RequestReconciler } from "../runtime/requests.js";
import { ReconcileError, reasonOf } from "../runtime/errors.js";
import { errorMessage, type Logger } from "../runtime/logger.js";
import type { BindingStore } from "../ports/bindingStore.js";
import type { BindingStatusStore, NodeRegistration } from "./bindingStatus.js";
import { asPassing, RegistrationProber, withCheckStatus } from "./registrationProber.js";
import type { ConsulApi, ConsulMaintenance } from "../ports/consul.js";
import { MaintenanceSync } from "./maintenanceSync.js";
import type { ContainerStore } from "../ports/containerStore.js";
import type { SwarmStore } from "../ports/swarmStore.js";

export interface RegistrarOptions {
  readonly bindings: BindingStore;
  readonly containers: ContainerStore;
  readonly consul: ConsulApi;
  readonly status: BindingStatusStore;
  readonly logger: Logger;
  readonly node: string;
  /** This endpoint's owner identity (node, engine, instance, adopt); undefined until the engine ID is known. */
  readonly identity: () => OwnerIdentity | undefined;
  readonly hostIP: string;
  /** Registrator-compat options; undefined when --registrator-compat is off. */
  readonly compat?: CompatOptions;
  /** Swarm services/tasks (bindings with spec.backends.swarm); undefined = Swarm unsupported. */
  readonly swarm?: SwarmStore;
  /** How long to wait before re-checking a key while a source is not synced. */
  readonly notSyncedRetryMs?: number;
  /**
   * Max age of the shared agent-services view (default 1 s). The view follows this controller's own
   * writes, so only changes made by others (a registration removed by hand) wait for it; the
   * controller passes its resync period and invalidates the view at every full resync, so an event
   * costs no agent read.
   */
  readonly agentServicesMaxAgeMs?: number;
  /** Runs a check once for healthCheck.probeBeforeRegister (default: probeCheck, a real HTTP/TCP probe). */
  readonly probe?: CheckProbe;
  /** Service maintenance (spec.maintenance, `controller maint`); undefined = maintenance is not managed. */
  readonly maintenance?: ConsulMaintenance;
  /** The node's maintenance declarations in KV changed (watchMaintenance): re-queue what they may concern. */
  readonly onMaintenanceDeclared?: () => void;
}

/** Re-probe period of backends that did not answer their first probe (they may still be starting). */
const PROBE_RETRY_MS = 200;

/** The registrar request that converges the registrations of one registered service (garbage collection). */
export function ownerRequest(meta: Readonly<Record<string, string>>): RegistrarRequest | undefined {
  const binding = meta[OWNER_META.binding];
  if (binding === COMPAT_BINDING_KEY) {
    const container = meta[OWNER_META.container];
    return container === undefined ? undefined : { kind: "container", container };
  }
  return binding === undefined ? undefined : { kind: "binding", binding };
}

/** Shown skipped reasons in the Registered condition: every one would make a long message for a large binding. */
const SKIPPED_SHOWN = 5;

/** The Registered condition's words on skipped backends: the first reason; for containers without a Docker HEALTHCHECK, which ones. */
function skippedMessage(desired: DesiredResult): string {
  if (desired.skipped.length === 0) return "";
  const noHc = desired.skipped.filter((s) => s.code === NO_DOCKER_HEALTHCHECK);
  const shown = (noHc.length > 0 ? noHc : desired.skipped).slice(0, SKIPPED_SHOWN).map((s) => s.reason);
  const more = noHc.length > SKIPPED_SHOWN ? `; and ${noHc.length - SKIPPED_SHOWN} more` : "";
  return `; ${desired.skipped.length} backend(s) skipped: ${(noHc.length > 0 ? shown : shown.slice(0, 1)).join("; ")}${more}`;
}

/** `r` as sent: a docker check is registered with the status of the container's Docker health (its meta hash stays that of the configured check). */
function withDockerHealth(r: Registration): Registration {
  const status = r.check?.dockerHealth;
  return status === undefined ? r : withCheckStatus(r, status);
}

export class RegistrarReconciler implements RequestReconciler<RegistrarRequest> {
  /** Shared agent-services view: one read per burst of reconciles, kept current with our own writes. */
  private readonly agentServices: AgentServiceSnapshot;
  /** healthCheck.probeBeforeRegister: probes before registering, follow-ups for backends still starting. */
  private readonly prober: RegistrationProber;
  /** healthCheck.type docker: the TTL checks this registrar sets from Docker's health and keeps alive. */
  private readonly dockerChecks: DockerHealthTtl;
  /** Declared maintenance of each binding's registrations (after they are written). */
  private readonly maintenance: MaintenanceSync | undefined;

  constructor(private readonly opts: RegistrarOptions) {
    this.agentServices = new AgentServiceSnapshot(opts.consul, opts.agentServicesMaxAgeMs ?? 1000);
    this.prober = new RegistrationProber(opts.probe);
    this.dockerChecks = new DockerHealthTtl({ consul: opts.consul, logger: opts.logger });
    const m = opts.maintenance;
    this.maintenance =
      m === undefined
        ? undefined
        : new MaintenanceSync(m, opts.node, opts.containers, opts.logger, opts.agentServicesMaxAgeMs ?? 1000, opts.onMaintenanceDeclared);
  }

  /** Keeps the Docker health TTL checks of this registrar's registrations alive until `signal` aborts (a leader-only runnable). */
  refreshDockerChecks(signal: AbortSignal): Promise<void> {
    return this.dockerChecks.run(signal);
  }

  /** Watches this node's maintenance declarations in KV until `signal` aborts (MaintenanceSync.watch; none without maintenance). */
  async watchMaintenance(signal: AbortSignal): Promise<void> {
    await this.maintenance?.watch(signal);
  }

  /**
   * Rewrite epoch: a Consul agent keeps the ACL token a service was registered
   * with and uses it for every later catalog sync of that service (check
   * status, deregistration). After the token changed, each key's owned
   * registrations are therefore registered once more (same content, the new
   * token; Consul keeps the checks' current status), even when converged, so
   * that none is left syncing with a revoked token.
   */
  private epoch = 0;
  private readonly rewrittenAt = new Map<string, number>();

  /** Forget the cached agent view (the agent restarted and may have lost registrations). */
  invalidateAgentView(): void {
    this.agentServices.invalidate();
    this.maintenance?.invalidate();
  }

  /**
   * False when this registrar is deregistering service `id` or its view of the agent says it is not
   * registered (it deregistered it, or never registered it); true when the view has it or is not
   * loaded. No I/O.
   */
  believesRegistered(id: string): boolean {
    return !this.leaving.has(id) && this.agentServices.holds(id) !== false;
  }

  /**
   * Whether `seen` (an instance a health answer shows changed in place) differs from what this
   * registrar last wrote or read for that ID: true means another party rewrote the registration.
   * False when it is the registrar's own write showing up (the view, or a write not answered yet:
   * Consul's watchers may see it first), when the view does not hold the ID or is not loaded
   * (nothing to compare: the full resync decides), or while the ID is being deregistered. No I/O.
   */
  editedBehindBack(seen: HealthInstance): boolean {
    const id = seen.serviceId;
    const mine = this.agentServices.viewed(id);
    if (mine === undefined || this.leaving.has(id)) return false;
    const sending = this.writing.get(id);
    return !sameVisible(mine, seen) && (sending === undefined || !sameVisible(sending, seen));
  }

  /** Deregistrations sent and not answered yet: the agent may report them gone before it answers. */
  private readonly leaving = new Set<string>();

  /** Registrations sent and not answered yet, by ID: the agent may report them before it answers. */
  private readonly writing = new Map<string, Registration>();

  /** The agent's services from this registrar's view (one read shared with its reconciles; re-read after `invalidateAgentView`). */
  agentView(): Promise<readonly RegisteredService[]> {
    return this.agentServices.list();
  }

  /** The ACL token changed: the next reconcile of each key re-registers what it owns (see `epoch`). */
  rewriteAll(): void {
    this.epoch++;
  }

  /** The plan for `key`, plus, once per epoch, every owned registration still wanted (rewritten with the current token). */
  private planFor(key: string, view: OwnedView): RegistrationPlan {
    const plan = planRegistrations(view.owned, view.desired);
    if ((this.rewrittenAt.get(key) ?? 0) >= this.epoch) return plan;
    const owned = new Set(view.owned.map((s) => s.id));
    const planned = new Set(plan.register.map((r) => r.id));
    const again = view.desired.filter((r) => owned.has(r.id) && !planned.has(r.id)).map(withHash);
    return { ...plan, register: [...plan.register, ...again] };
  }

  /** `key`'s registrations were written with the current token (see `epoch`). */
  private rewritten(key: string, epoch: number): void {
    if (epoch === 0) return;
    this.rewrittenAt.set(key, epoch);
  }

  async reconcile(request: RegistrarRequest): Promise<ReconcileResult> {
    const { bindings, containers } = this.opts;
    if (!bindings.synced() || !containers.synced() || this.opts.identity() === undefined) return { requeueAfterMs: this.opts.notSyncedRetryMs ?? 1000 };
    return request.kind === "binding" ? this.reconcileBinding(request.binding) : this.reconcileContainer(request.container);
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
    let blocked = 0;
    try {
      // Reading the agent fails like writing to it: both leave the binding not Registered.
      const epoch = this.epoch;
      // The maintenance state is read alongside the agent's services, not after them (one round trip).
      if (binding !== undefined) this.maintenance?.prefetch();
      const view = await this.view(bkey, (m) => m[OWNER_META.binding] === bkey, desired.registrations);
      blocked = view.blocked.length;
      const plan = this.planFor(`binding:${bkey}`, view);
      const held = binding === undefined ? undefined : await this.maintenance?.entering(binding, plan.register);
      await this.apply(bkey, plan, held);
      if (binding !== undefined) await this.maintenance?.converge(binding, view.desired);
      this.rewritten(`binding:${bkey}`, epoch);
      await this.dockerChecks.track(bkey, view.desired, new Set(plan.register.map((r) => r.id)));
      recheck = await this.followUpProbes(bkey, view.desired, plan);
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
    const n = desired.registrations.length - blocked;
    const skippedMsg = skippedMessage(desired);
    const blockedMsg = blocked > 0 ? `; ${blocked} service ID(s) held by another controller with node ${this.opts.node} (node identity conflict)` : "";
    this.opts.status.setRegistration(bkey, this.opts.node, {
      status: "True",
      reason: desired.skipped.some((s) => s.code === NO_DOCKER_HEALTHCHECK) ? NO_DOCKER_HEALTHCHECK : "Registered",
      message: `${n} instance(s) registered${skippedMsg}${blockedMsg}`,
      counts: { desired: desired.registrations.length + desired.skipped.length, registered: n },
    });
    return done;
  }

  /**
   * Re-probes this binding's registrations whose backend did not answer its first probe
   * (RegistrationProber); a pass re-registers the same registration as passing. Consul keeps an
   * existing check's status when a service is registered again, so the check is removed first (two
   * writes); in between the service has no check, which Consul counts as passing — the probe has just
   * seen the backend answer.
   * True while any follow-up of the binding is left (the caller asks for a recheck).
   */
  private async followUpProbes(bkey: string, desired: readonly Registration[], plan: RegistrationPlan): Promise<boolean> {
    for (const id of plan.deregister) this.prober.settle(id);
    const justRegistered = new Set(plan.register.map((r) => r.id));
    const due = this.prober.due(desired).filter((r) => !justRegistered.has(r.id));
    const passed = await this.prober.probeAll(due);
    for (const [i, r] of due.entries()) {
      if (passed[i] !== true) continue;
      if (r.check !== undefined) await this.opts.consul.deregisterCheck(serviceCheckId(r.id));
      await this.opts.consul.register(asPassing(withHash(r)));
      this.prober.settle(r.id);
      this.opts.logger.info("registered", {
        binding: bkey,
        action: "register",
        serviceId: r.id,
        address: `${r.address}:${r.port}`,
        probe: "passing (follow-up)",
      });
    }
    return this.prober.anyPending(desired);
  }

  /**
   * This node's decision on `binding` (domain/decisions.ts). Undefined when the backends cannot be
   * known now (Swarm unreadable): the status says why and nothing is deregistered.
   * `abstain`: this node has no say on the binding, reported instead of counts.
   */
  private desired(bkey: string, binding: ServiceBinding): { readonly desired: DesiredResult; readonly abstain?: NodeRegistration } | undefined {
    const decision = desiredRegistrations(binding, this.world());
    const noSay = decision.noSay;
    const report: NodeRegistration | undefined =
      noSay === undefined
        ? undefined
        : { status: "False", reason: noSay.reason, message: noSay.message, ...(noSay.abstain ? { abstain: true, counts: { desired: 0, registered: 0 } } : {}) };
    if (decision.kind === "unknown") {
      if (report !== undefined) this.opts.status.setRegistration(bkey, this.opts.node, report);
      return undefined;
    }
    return { desired: decision.desired, ...(report !== undefined ? { abstain: report } : {}) };
  }

  /** What this node sees now, for the pure decisions. */
  private world(): NodeWorld {
    const swarm = this.opts.swarm?.view();
    return {
      node: this.opts.node,
      hostIP: this.opts.hostIP,
      containers: this.opts.containers,
      bindings: this.opts.bindings.list(),
      ...(swarm !== undefined ? { swarm } : {}),
      ...(this.opts.compat !== undefined ? { compat: this.opts.compat } : {}),
    };
  }

  private async reconcileContainer(id: string): Promise<ReconcileResult> {
    const result = compatDesired(this.opts.containers.get(id), this.world());
    for (const issue of result.issues) {
      this.opts.logger.warn("registrator label ignored", { container: issue.containerId.slice(0, 12), field: issue.field, reason: issue.message });
    }
    const desired = result.registrations;
    const epoch = this.epoch;
    const view = await this.view(COMPAT_BINDING_KEY, (m) => m[OWNER_META.container] === id, desired);
    await this.apply(`${COMPAT_BINDING_KEY}:${id.slice(0, 12)}`, this.planFor(`container:${id}`, view));
    this.rewritten(`container:${id}`, epoch);
    return {};
  }

  /** The ownership rule applied to the agent's services of `binding`: what we own among `filter`, and which of `desired` we may write (stamped). */
  private async view(binding: string, filter: (meta: Readonly<Record<string, string>>) => boolean, desired: readonly Registration[]): Promise<OwnedView> {
    const self = this.opts.identity();
    if (self === undefined) throw new ReconcileError("EngineUnknown", "the Docker engine ID is not known yet", false);
    const view = ownedView(await this.agentServices.ofBinding(binding), self, filter, desired);
    for (const b of view.blocked) {
      this.opts.logger.debug("service ID held by another controller with our node name; not written", {
        serviceId: b.id,
        engine: b.peer.engine,
        instance: b.peer.instance,
      });
    }
    return view;
  }

  /**
   * Writes `plan`. `held`: registrations about to be put into declared maintenance; they are written
   * critical and not probed, so no render sees them passing before their maintenance check exists.
   */
  private async apply(label: string, plan: RegistrationPlan, held: ReadonlySet<string> = new Set()): Promise<void> {
    for (const id of plan.deregister) {
      this.leaving.add(id);
      try {
        await this.opts.consul.deregister(id);
      } finally {
        this.leaving.delete(id);
      }
      this.agentServices.recordDeregister(id);
      this.opts.logger.info("deregistered", { binding: label, action: "deregister", serviceId: id });
    }
    const probed = await this.prober.probeAll(plan.register.filter((r) => !held.has(r.id)));
    let next = 0;
    for (const r of plan.register) {
      const isHeld = held.has(r.id);
      const result = isHeld ? undefined : probed[next++];
      // The probe sets only the status sent with this registration; the hash in meta stays that of the
      // configured check, so the next pass finds it converged (Consul owns the status from here on).
      this.writing.set(r.id, r);
      try {
        await this.opts.consul.register(isHeld ? withCheckStatus(r, "critical") : result === true ? asPassing(r) : withDockerHealth(r));
      } finally {
        this.writing.delete(r.id);
      }
      this.agentServices.recordRegister(r);
      this.prober.registered(r, result);
      this.opts.logger.info("registered", {
        binding: label,
        action: "register",
        serviceId: r.id,
        address: `${r.address}:${r.port}`,
        ...(result !== undefined ? { probe: result ? "passing" : "failed" } : {}),
      });
    }
  }
}
