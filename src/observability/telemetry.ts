/**
 * Everything the controller records about itself, in one object: the metrics
 * registry, the loop liveness monitor, the LB activity record, the recent
 * errors ring and the observers that feed them. The manager wires the
 * observers into its queues, loops and actuators and attach()es its stores;
 * the HTTP server (src/api/http) reads from here.
 *
 * One Telemetry per process (processTelemetry()), hence one registry; tests
 * may create their own with `new Telemetry()`.
 */
import type { LoadBalancerDriver } from "../actuators/lb/driver.js";
import type { BindingStatusStore } from "../reconcilers/bindingStatus.js";
import type { RendererObserver } from "../reconcilers/renderer.js";
import type { ControllerObserver } from "../runtime/controller.js";
import type { Logger } from "../runtime/logger.js";
import type { QueueObserver } from "../runtime/workqueue.js";
import type { DockerWatcherObserver } from "../sources/docker/dockerWatcher.js";
import type { BindingStore } from "../ports/bindingStore.js";
import { bindingKey } from "../domain/types.js";
import type { NodeConflict, OwnerIdentity } from "../domain/ownership.js";
import { LoopMonitor } from "./liveness.js";
import { Metrics, type MetricsState } from "./metrics.js";
import { consulObserver, controllerObserver, dockerObserver, LbActivity, observeDriver, queueObserver, rendererObserver } from "./observers.js";
import { RecentErrors } from "./recentErrors.js";
import type { ConsulApi, ConsulObserver } from "../ports/consul.js";
import type { HealthStore } from "../ports/healthStore.js";
import type { ContainerStore } from "../ports/containerStore.js";
import type { SwarmStore } from "../ports/swarmStore.js";

/** The manager's read side, handed to attach(). */
export interface ObservedParts {
  readonly mode: string;
  readonly node: string;
  /** --instance-id (owner meta `dockbind_instance`). */
  readonly instance: string;
  /** Every Docker endpoint served: its node, advertised address and container cache. */
  readonly endpoints: readonly ObservedEndpoint[];
  readonly bindings: BindingStore;
  readonly status: BindingStatusStore;
  /** The containers of all endpoints; synced when every endpoint is. */
  readonly containers: ContainerStore;
  readonly health: HealthStore;
  readonly consul: Pick<ConsulApi, "leader">;
  readonly controllers: readonly { readonly name: string; readonly workers: number }[];
}

export interface ObservedEndpoint {
  readonly node: string;
  /** Default advertised address (to show which address each backend gets). */
  readonly hostIP: string;
  readonly containers: ContainerStore;
  /** The endpoint's Swarm view as its registrar sees it (Swarm bindings' backends). */
  readonly swarm?: SwarmStore;
  /** Owner identity; undefined until the engine ID is known. */
  readonly identity: () => OwnerIdentity | undefined;
  /** Other controllers registering under this node (latest garbage-collection listing). */
  readonly conflicts: () => readonly NodeConflict[];
}

export class Telemetry {
  readonly metrics: Metrics;
  readonly loops = new LoopMonitor();
  readonly lb = new LbActivity();
  readonly errors = new RecentErrors();
  readonly startedAt = new Date().toISOString();

  readonly queueObserver: QueueObserver;
  readonly controllerObserver: ControllerObserver;
  readonly consulObserver: ConsulObserver;
  readonly dockerObserver: DockerWatcherObserver;
  readonly rendererObserver: RendererObserver;

  private attached: ObservedParts | undefined;

  constructor() {
    this.metrics = new Metrics();
    this.queueObserver = queueObserver(this.metrics, this.loops);
    this.controllerObserver = controllerObserver(this.metrics, this.loops);
    this.consulObserver = consulObserver(this.metrics);
    this.dockerObserver = dockerObserver(this.metrics);
    this.rendererObserver = rendererObserver(this.metrics);
  }

  /** The driver with validations and reloads counted (see observeDriver). */
  observeDriver(driver: LoadBalancerDriver): LoadBalancerDriver {
    return observeDriver(driver, this.metrics, this.lb);
  }

  /** Recent warnings/errors of `logger` go to the status page. Idempotent per logger. */
  captureLogs(logger: Logger): void {
    this.errors.captureLogs(logger);
  }

  /** Makes the manager's stores visible to /metrics gauges, /readyz and /api/status. Replaces an earlier attach. */
  attach(parts: ObservedParts): void {
    this.attached = parts;
    for (const c of parts.controllers) this.metrics.initController(c.name, c.workers);
    this.metrics.setStateReader(() => metricsState(parts));
  }

  parts(): ObservedParts | undefined {
    return this.attached;
  }
}

/** Node, sync state, running containers, engine ID and identity conflicts of each Docker endpoint (metrics and /api/status). */
export function endpointSummaries(endpoints: readonly ObservedEndpoint[]): MetricsState["dockerEndpoints"] {
  return endpoints.map((e) => {
    const engine = e.identity()?.engine;
    return {
      node: e.node,
      synced: e.containers.synced(),
      containers: e.containers.list().length,
      ...(engine !== undefined ? { engine } : {}),
      conflicts: e.conflicts().length,
    };
  });
}

/** Scrape-time view of the stores for the level gauges. */
function metricsState(parts: ObservedParts): MetricsState {
  const live = new Set<string>();
  const backends = parts.bindings.list().map((b) => {
    const key = bindingKey(b);
    live.add(key);
    return { binding: key, counts: { ...parts.status.get(key).backends } };
  });
  return {
    backends,
    validationErrors: parts.bindings.problems().length,
    liveBindings: live,
    dockerEndpoints: endpointSummaries(parts.endpoints),
    deletingBindings: parts.bindings.deletions?.().length ?? 0,
  };
}

let processWide: Telemetry | undefined;

/** The process's Telemetry (created on first use). */
export function processTelemetry(): Telemetry {
  processWide ??= new Telemetry();
  return processWide;
}

/**
 * Sets leader_election_master_status{name} on the process registry: 1 while
 * this replica leads (always, in docker-only mode), 0 while it waits.
 */
export function setLeaderElectionMaster(isLeader: boolean, name = "dockbind"): void {
  processTelemetry().metrics.setLeader(isLeader, name);
}

/** Counts one stalled Kubernetes watch re-established (dockbind_watch_restarts_total{source="kubernetes"}). */
export function countKubeWatchStall(): void {
  processTelemetry().metrics.watchRestarts.inc({ source: "kubernetes", reason: "stalled" });
}
