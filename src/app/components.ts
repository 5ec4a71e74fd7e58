/**
 * The parts of the pipeline (pipeline.ts) its handlers and runnables
 * (pipelineRunnables.ts) work on, and the options they were built from.
 */
import type { ConsulTokenFile } from "../config/consulToken.js";
import type { Config } from "../config/config.js";
import type { Telemetry } from "../observability/telemetry.js";
import type { ConsulApi, ConsulCluster } from "../ports/consul.js";
import type { BindingSourceFactory, RunnableBindingSource } from "../ports/bindingSource.js";
import type { ContainerStore } from "../ports/containerStore.js";
import type { BindingStatusStore } from "../reconcilers/bindingStatus.js";
import type { RendererReconciler } from "../reconcilers/renderer.js";
import type { Reconciler } from "../runtime/controller.js";
import type { Logger } from "../runtime/logger.js";
import type { WorkQueue } from "../runtime/workqueue.js";
import type { AgentMonitor } from "../sources/consul/agentMonitor.js";
import type { HealthWatcher } from "../sources/consul/healthWatcher.js";
import type { DockerEndpointPipeline } from "./dockerEndpoint.js";
import type { RendererRouter } from "./keyRouter.js";
import type { ReconciledEvent } from "./reconciledReport.js";

export interface PipelineOptions<S extends RunnableBindingSource = RunnableBindingSource> {
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly bindingSource: BindingSourceFactory<S>;
  /** Shared status store (e.g. read by a Kubernetes status writer or the status page). */
  readonly status?: BindingStatusStore;
  /** Metrics, liveness and status-page state; default: the process-wide one. */
  readonly telemetry?: Telemetry;
  /** Completion hook (Kubernetes status/finalizers): a binding key was reconciled (not requeued). */
  readonly onReconciled?: (e: ReconciledEvent) => void;
  /** The process's rotating Consul token (--consul-token-file); default: the start-up token from the config. */
  readonly consulToken?: ConsulTokenFile;
}

/** What the handlers and runnables of the pipeline work on. */
export interface Components<S extends RunnableBindingSource = RunnableBindingSource> {
  readonly opts: PipelineOptions<S>;
  readonly telemetry: Telemetry;
  readonly status: BindingStatusStore;
  readonly consul: ConsulApi & ConsulCluster;
  readonly agentMonitor: AgentMonitor;
  readonly registrarQueue: WorkQueue;
  readonly rendererQueue: WorkQueue;
  readonly bindings: S;
  readonly health: HealthWatcher;
  readonly endpoints: readonly DockerEndpointPipeline[];
  readonly renderRouter: RendererRouter;
  readonly renderer: RendererReconciler;
  readonly registrar: Reconciler;
  readonly containers: ContainerStore;
  readonly handlers: Handlers;
}

/**
 * The events components raise, set by wireHandlers() once every component
 * exists. Sources only raise them once their runnable started, which is after
 * wiring; an unwired handler throws (a wiring bug, not a runtime condition).
 */
export class Handlers {
  bindingsChanged: (keys: readonly string[]) => void = unwired("bindingsChanged");
  healthChanged: (ref: string) => void = unwired("healthChanged");
  /** The Consul agent may have lost its registrations: re-queue everything this controller owns. */
  reassertAll: () => void = unwired("reassertAll");
  /** Remove copies of our registrations left on agents we failed over from. Never rejects. */
  sweepOtherAgents: () => Promise<void> = unwired("sweepOtherAgents");
  /** An endpoint's Swarm view changed kind or cluster: every endpoint re-checks its Swarm bindings. */
  swarmAvailabilityChanged: () => void = unwired("swarmAvailabilityChanged");
}

function unwired(name: string): () => never {
  return () => {
    throw new Error(`pipeline: event handler ${name} used before it was wired`);
  };
}
