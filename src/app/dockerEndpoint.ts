/**
 * One Docker endpoint's half of the pipeline: its Docker and Swarm watchers,
 * engine identity, RegistrarRouter and RegistrarReconciler, all under the
 * endpoint's node identity (the owner of what it registers). The pipeline
 * builds one per --docker-endpoint and shares the rest: binding source, Consul
 * client, registrar queue, renderer (and its router).
 *
 * Each endpoint's owner identity is its node, its engine's ID (`docker info`)
 * and the controller's --instance-id; what it may touch in Consul is decided by
 * domain/ownership.ts only.
 *
 * Registrar requests of every endpoint go into the one registrar queue with
 * their node (runtime/requests.ts): the queue's dedup and "never one key twice
 * at once" then hold per endpoint, and the workqueue metrics keep one name.
 */
import { compatOptions, type Config, type DockerEndpoint } from "../config/config.js";
import { isOwned, nodeConflicts, type OwnerIdentity } from "../domain/ownership.js";
import type { EditedInstance, HealthInstance } from "../domain/types.js";
import type { Telemetry } from "../observability/telemetry.js";
import type { BindingStatusStore } from "../reconcilers/bindingStatus.js";
import { ownerRequest, RegistrarReconciler } from "../reconcilers/registrar.js";
import { encodeNodeRequest, type RegistrarRequest } from "../runtime/requests.js";
import type { BackoffOptions } from "../runtime/backoff.js";
import { errorMessage, type Logger } from "../runtime/logger.js";
import type { Runnable } from "../runtime/manager.js";
import type { Priority, WorkQueue } from "../runtime/workqueue.js";
import { DockerWatcher } from "../sources/docker/dockerWatcher.js";
import { SwarmWatcher } from "../sources/docker/swarmWatcher.js";
import type { BindingStore } from "../ports/bindingStore.js";
import { dockerClient } from "../clients/docker/dockerClient.js";
import { EngineIdentity } from "./engineIdentity.js";
import { NodeConflictTracker } from "./nodeConflicts.js";
import { RegistrarRouter } from "./keyRouter.js";
import type { ConsulApi, ConsulMaintenance } from "../ports/consul.js";
import type { SwarmClusterStore, SwarmStore } from "../ports/swarmStore.js";

/** What swarmDuty needs to know of an endpoint. */
export interface SwarmEndpoint {
  readonly node: string;
  readonly swarm: SwarmClusterStore;
}

/**
 * The SwarmStore an endpoint's registrar and router read.
 * When several endpoints manage the same swarm (same cluster ID), only the
 * first of `all()` (config order) serves it; the others see
 * SwarmServedByOtherEndpoint: they abstain and remove copies of their own.
 * Sticky: an unreachable first endpoint keeps the duty (its last snapshot
 * stands, as with one endpoint), and a later endpoint waits until every
 * earlier one has reported its swarm, so no task is registered twice.
 */
export function swarmDuty(self: SwarmEndpoint, all: () => readonly SwarmEndpoint[]): SwarmStore {
  return {
    view() {
      // Until every earlier endpoint has said which swarm it manages (if any), duty is unknown: wait.
      for (const e of all()) {
        if (e.node === self.node) break;
        const v = e.swarm.view();
        if (v.kind === "unavailable" && v.reason === "SwarmNotSynced" && e.swarm.clusterId() === undefined) {
          return { kind: "unavailable", reason: "SwarmNotSynced", message: `waiting for Docker endpoint ${e.node} to report its swarm` };
        }
      }
      const cluster = self.swarm.clusterId();
      const owner = cluster === undefined ? undefined : all().find((e) => e.swarm.clusterId() === cluster);
      if (cluster !== undefined && owner !== undefined && owner.node !== self.node) {
        return {
          kind: "unavailable",
          reason: "SwarmServedByOtherEndpoint",
          message: `swarm ${cluster.slice(0, 12)} is served through Docker endpoint ${owner.node}`,
        };
      }
      return self.swarm.view();
    },
  };
}

export interface DockerEndpointOptions {
  readonly endpoint: DockerEndpoint;
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly bindings: BindingStore;
  readonly consul: ConsulApi;
  /** Service maintenance on the agent and its KV declarations (the registrar converges them). */
  readonly maintenance?: ConsulMaintenance;
  readonly status: BindingStatusStore;
  readonly telemetry: Telemetry;
  /** The shared registrar queue: this endpoint adds its requests (encodeNodeRequest with its node). */
  readonly registrarQueue: WorkQueue;
  readonly backoff: BackoffOptions;
  /** Called after each full resync of this endpoint (after its keys were queued). */
  readonly afterResync?: () => void;
  /** Every endpoint of the controller, in config order (Swarm duty, see swarmDuty). */
  readonly peers: () => readonly SwarmEndpoint[];
  /** This endpoint's Swarm view changed kind or cluster: every endpoint's Swarm bindings must be re-checked. */
  readonly onSwarmAvailability: () => void;
}

export class DockerEndpointPipeline {
  readonly node: string;
  readonly hostIP: string;
  readonly docker: DockerWatcher;
  readonly swarm: SwarmWatcher;
  /** The Swarm view this endpoint's registrar, router and status read (after swarmDuty). */
  readonly swarmView: SwarmStore;
  readonly route: RegistrarRouter;
  readonly registrar: RegistrarReconciler;
  readonly engine: EngineIdentity;
  /** Other controllers registering under this endpoint's node (see NodeConflictTracker). */
  readonly conflicts: NodeConflictTracker;
  private owner: OwnerIdentity | undefined;

  constructor(private readonly o: DockerEndpointOptions) {
    const { endpoint, config, telemetry } = o;
    this.node = endpoint.node;
    this.hostIP = endpoint.hostIP;
    // One log field says which engine a line is about when a controller serves several.
    const logger = config.dockerEndpoints.length > 1 ? o.logger.child({ dockerNode: endpoint.node }) : o.logger;
    const registrarSink = {
      add: (request: RegistrarRequest, priority?: Priority): void => {
        o.registrarQueue.add(encodeNodeRequest({ node: endpoint.node, request }), priority);
      },
    };
    // Swarm services as backends: no Docker calls while no binding selects Swarm services.
    this.swarm = new SwarmWatcher({
      docker: dockerClient(endpoint.host, endpoint.tls),
      logger,
      resyncMs: config.swarmResyncMs,
      recheckMs: config.resyncIntervalMs,
      backoff: o.backoff,
      wanted: (): boolean => this.route.swarmBindings().length > 0,
      onChange: (changes) => {
        this.route.swarmChanged(changes.flatMap((c) => [c.before, c.after]));
      },
      onAvailability: () => {
        o.onSwarmAvailability();
      },
    });
    this.swarmView = swarmDuty(this, o.peers);
    this.docker = new DockerWatcher({
      docker: dockerClient(endpoint.host, endpoint.tls),
      logger,
      resyncIntervalMs: config.resyncIntervalMs,
      backoff: o.backoff,
      drainDelayMs: config.drainDelayMs,
      needsEnv: config.registratorCompat,
      backlog: () => o.registrarQueue.len() > 0,
      observer: telemetry.dockerObserver,
      onChange: (change) => {
        this.route.containerChanged(change);
      },
      onResync: () => {
        // A full resync compares with a fresh read of the agent (between resyncs the registrar trusts its view).
        this.registrar.invalidateAgentView();
        this.route.allRegistrations("low");
        void this.engine.refresh().then(() => this.enqueueOwned());
        o.afterResync?.();
      },
    });
    const compat = compatOptions(config, endpoint);
    this.conflicts = new NodeConflictTracker(logger);
    this.engine = new EngineIdentity({
      docker: dockerClient(endpoint.host, endpoint.tls),
      logger,
      backoff: o.backoff,
      onChange: (engine) => {
        this.owner = Object.freeze({ node: endpoint.node, engine, instance: config.instanceId, adopt: config.adopt });
        this.route.allRegistrations();
      },
    });
    this.route = new RegistrarRouter({
      bindings: o.bindings,
      containers: this.docker,
      swarm: this.swarmView,
      registrar: registrarSink,
      compat: config.registratorCompat,
    });
    this.registrar = new RegistrarReconciler({
      bindings: o.bindings,
      containers: this.docker,
      swarm: this.swarmView,
      consul: o.consul,
      status: o.status,
      logger,
      node: endpoint.node,
      identity: () => this.owner,
      hostIP: endpoint.hostIP,
      agentServicesMaxAgeMs: config.resyncIntervalMs,
      ...(compat !== undefined ? { compat } : {}),
      ...(o.maintenance !== undefined ? { maintenance: o.maintenance, onMaintenanceDeclared: this.maintenanceDeclared } : {}),
    });
  }

  /** The node's maintenance declarations in KV changed: every binding of this endpoint is checked again. */
  private readonly maintenanceDeclared = (): void => {
    this.route.allRegistrations();
  };

  /** This endpoint's owner identity; undefined until its engine answered `docker info`. */
  identity(): OwnerIdentity | undefined {
    return this.owner;
  }

  /**
   * Queues every registration this endpoint owns in Consul (garbage collection of vanished
   * bindings/containers) and refreshes the node identity conflicts from the same listing.
   * Nothing is judged before the engine ID is known. Never rejects.
   */
  async enqueueOwned(): Promise<void> {
    const self = this.owner;
    if (self === undefined) return;
    try {
      const all = await this.registrar.agentView();
      this.conflicts.update(nodeConflicts(all, self));
      for (const s of all) {
        if (!isOwned(s.meta, self)) continue;
        const request = ownerRequest(s.meta);
        if (request !== undefined) this.o.registrarQueue.add(encodeNodeRequest({ node: this.node, request }), "low");
      }
    } catch (err) {
      this.o.logger.warn("cannot list owned registrations for garbage collection", { node: this.node, error: errorMessage(err) });
    }
  }

  /**
   * Consul stopped reporting `lost` (health watch). Those this endpoint owns and believes registered
   * were removed behind its back: the agent view is re-read and their keys re-queued, so they are
   * restored now rather than at the next full resync. Its own deregistrations (sent, or already
   * answered) are not believed registered, so they cost nothing here. Non-blocking.
   */
  consulLost(lost: readonly HealthInstance[]): void {
    const self = this.owner;
    if (self === undefined) return;
    const gone = lost.filter((i) => isOwned(i.meta ?? {}, self) && this.registrar.believesRegistered(i.serviceId));
    this.recheck("registrations vanished from Consul; re-checking them", gone);
  }

  /**
   * Consul showed registrations changed in place (health watch). Those this endpoint owned before
   * the change, whose new content is not what its registrar last wrote, were rewritten by another
   * party: the agent view is re-read and their keys re-queued, so the registrar's plan restores them
   * now rather than at the next full resync. Its own rewrites match its view and cost nothing here.
   * Non-blocking.
   */
  consulEdited(edited: readonly EditedInstance[]): void {
    const self = this.owner;
    if (self === undefined) return;
    const changed = edited.filter((e) => isOwned(e.before.meta ?? {}, self) && this.registrar.editedBehindBack(e.after));
    // Queued by the meta this controller wrote (the edit may have dropped it).
    this.recheck(
      "registrations changed in Consul behind the controller's back; re-checking them",
      changed.map((e) => e.before),
    );
  }

  /** Drift found by the health watch: says why, re-reads the agent view at the next reconcile and re-queues each instance's owner request. */
  private recheck(message: string, drifted: readonly HealthInstance[]): void {
    if (drifted.length === 0) return;
    this.o.logger.warn(message, { node: this.node, serviceIds: drifted.map((i) => i.serviceId).join(",") });
    this.registrar.invalidateAgentView();
    for (const i of drifted) {
      const request = ownerRequest(i.meta ?? {});
      if (request !== undefined) this.o.registrarQueue.add(encodeNodeRequest({ node: this.node, request }));
    }
  }

  /** Re-queues everything this endpoint owns (the Consul agent came back, possibly empty). Non-blocking. */
  reassertAll(): void {
    this.registrar.invalidateAgentView();
    this.route.allRegistrations();
    void this.enqueueOwned();
  }

  /** The Consul ACL token changed: every owned registration is rewritten once with it, then re-queued. Non-blocking. */
  rewriteAll(): void {
    this.registrar.rewriteAll();
    this.reassertAll();
  }

  /** The endpoint's watchers (Docker events, Swarm, engine identity, maintenance declarations) and its Docker health TTL refreshes, each run until its signal aborts; all need leadership. */
  runnables(): Runnable[] {
    const at = `@${this.node}`;
    return [
      { name: `docker-watcher${at}`, needsLeadership: true, start: (signal) => this.docker.run(signal) },
      { name: `swarm-watcher${at}`, needsLeadership: true, start: (signal) => this.swarm.run(signal) },
      { name: `engine-identity${at}`, needsLeadership: true, start: (signal) => this.engine.run(signal) },
      { name: `docker-health-checks${at}`, needsLeadership: true, start: (signal) => this.registrar.refreshDockerChecks(signal) },
      { name: `maintenance-watch${at}`, needsLeadership: true, start: (signal) => this.registrar.watchMaintenance(signal) },
    ];
  }
}
