/**
 * `controller` without --docker-only: Kubernetes mode, run by one Manager.
 *
 *   leader election (Lease) ──> while leading:
 *     KubeBindingSource (list+watch ServiceBindings: ─> pipeline (registrar, renderer: shared with docker-only)
 *       one per watched namespace, or cluster-wide)
 *     BindingStatusStore + source problems ───────────> StatusWriter ─> .status (status subresource), Events
 *     deleting objects + reconciler completions ──────> FinalizerController ─> dockbind.io/finalizer
 *
 * Everything is built first; the status and finalizer controllers are
 * runnables of the same Manager as the pipeline and share its Consul client.
 * Only the leader reads bindings and writes anything (Consul, LB files,
 * Kubernetes); the process's runnables (HTTP server) run on every replica. A
 * replica that loses the lease stops at once and exits non-zero (like
 * controller-runtime): a restarted process campaigns again from scratch.
 */
import { createEventRecorder } from "../actuators/kubernetes/events.js";
import { FinalizerController } from "../reconcilers/kubernetes/finalizer.js";
import { createKubeClient, type KubeClient } from "../clients/kubernetes/kubeClient.js";
import { leaseLock } from "../actuators/kubernetes/leaseLock.js";
import { StatusWriter } from "../reconcilers/kubernetes/statusWriter.js";
import type { Config, KubernetesConfig } from "../config/config.js";
import { countKubeWatchStall, setLeaderElectionMaster } from "../observability/telemetry.js";
import { BindingStatusStore } from "../reconcilers/bindingStatus.js";
import { controllerRunnable } from "../runtime/controller.js";
import { LeaderElector } from "../runtime/leaderElection.js";
import type { Logger } from "../runtime/logger.js";
import { Manager, type ManagerElection, type Runnable } from "../runtime/manager.js";
import { WorkQueue } from "../runtime/workqueue.js";
import { loadKubeConfig } from "../clients/kubernetes/kubeConfig.js";
import { KubeBindingSource } from "../sources/kubernetes/kubeBindingSource.js";
import { exitCode, type AppOptions } from "./app.js";
import { buildPipeline } from "./pipeline.js";
import type { ReconciledEvent } from "./reconciledReport.js";

const BACKOFF = { baseMs: 200, maxMs: 30_000 } as const;
const VERSION = "0.1.0";

export interface KubernetesApp {
  /** Resolves with the process exit code: 0 after a normal stop, 1 when the lease was lost or a part failed. */
  readonly done: Promise<number>;
}

/** Builds everything, then runs it until `signal` aborts. */
export function startKubernetes(config: Readonly<Config>, logger: Logger, signal: AbortSignal, app: AppOptions = {}): KubernetesApp {
  const k = config.kubernetes;
  if (k === undefined) throw new Error("startKubernetes: configuration has no kubernetes section");
  const client = createKubeClient(loadKubeConfig(k.connection), { userAgent: `dockbind-controller/${VERSION} (${k.identity})` });
  logger.info("kubernetes mode", {
    server: client.server,
    namespaces: k.watchNamespaces.length > 0 ? k.watchNamespaces.join(",") : "(all)",
    leaderElect: k.leaderElect,
    lease: `${k.leaseNamespace}/${k.leaseName}`,
    identity: k.identity,
  });
  const runnables = buildLeaderRunnables(config, k, client, logger, app);
  const election = leaseElection(k, client, logger);
  setLeaderElectionMaster(election === undefined);
  const manager = new Manager({ logger, ...(election !== undefined ? { election } : {}) });
  manager.add(...(app.runnables ?? []), ...runnables);
  return { done: manager.run(signal).then(exitCode) };
}

/** The Lease election of --leader-elect (default on), or undefined without it. */
function leaseElection(k: KubernetesConfig, client: KubeClient, logger: Logger): ManagerElection | undefined {
  if (!k.leaderElect) return undefined;
  const elector = new LeaderElector({
    lock: leaseLock(client, k.leaseNamespace, k.leaseName),
    identity: k.identity,
    logger,
    onLeaderChange: (leading) => {
      setLeaderElectionMaster(leading);
    },
    onNewLeader: (holder) => {
      logger.info("leader observed", { holder: holder === "" ? "(none)" : holder, self: holder === k.identity });
    },
  });
  return { lock: elector, hooks: elector.hooks() };
}

/**
 * Builds the pipeline over a KubeBindingSource plus the status writer and
 * finalizer controller, wires reconciler completions to them and returns
 * their runnables: status and finalizer first, so they stop after the
 * pipeline (completions reported while it drains still reach their queues).
 */
function buildLeaderRunnables(config: Readonly<Config>, k: KubernetesConfig, client: KubeClient, logger: Logger, app: AppOptions): Runnable[] {
  const status = new BindingStatusStore();
  const events = createEventRecorder({ client, logger, instance: k.identity });
  const statusQueue = new WorkQueue({ name: "status", backoff: BACKOFF });
  const finalizerQueue = new WorkQueue({ name: "finalizer", backoff: BACKOFF });
  /** Set below once the status writer and finalizer exist; the pipeline reports only after it started. */
  let reconciled = (e: ReconciledEvent): void => {
    throw new Error(`kubernetes: completion of ${e.key} reported before the status writer was wired`);
  };
  const pipeline = buildPipeline({
    config,
    logger,
    status,
    ...(app.consulToken !== undefined ? { consulToken: app.consulToken } : {}),
    bindingSource: (onChange) =>
      new KubeBindingSource({
        client,
        logger,
        namespaces: k.watchNamespaces,
        onChange,
        onWatchStalled: countKubeWatchStall,
        onObject: (key) => {
          statusQueue.add(key);
          finalizerQueue.add(key);
        },
      }),
    onReconciled: (e) => {
      reconciled(e);
    },
  });
  const source = pipeline.bindings;
  const statusWriter = new StatusWriter({ client, status, events, logger, source });
  // The finalizer judges ownership with the pipeline's endpoint identities (known once each engine answered).
  const finalizer = new FinalizerController({
    client,
    consul: pipeline.consul,
    owners: pipeline.owners,
    outputDirs: [config.lbOutputDir, config.haproxy.outputDir, config.nginxStreamDir],
    events,
    logger,
    source,
  });
  status.onChange((key) => {
    statusQueue.add(key);
  });
  reconciled = (e) => {
    statusWriter.noteReconciled(e.controller, e.key, e.generation);
    finalizer.noteReconciled(e.controller, e.key, e.present);
    statusQueue.add(e.key);
    if (!e.present) finalizerQueue.add(e.key);
  };
  return [
    controllerRunnable({ name: "status", queue: statusQueue, reconciler: statusWriter, workers: 2, logger }),
    controllerRunnable({ name: "finalizer", queue: finalizerQueue, reconciler: finalizer, workers: 1, logger }),
    ...pipeline.runnables,
  ];
}
