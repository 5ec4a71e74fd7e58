/**
 * `controller` without --docker-only: Kubernetes mode (issue #3).
 *
 *   leader election (Lease) ──> while leading:
 *     KubeBindingSource (list+watch ServiceBindings: ─> manager (registrar, renderer: shared with docker-only)
 *       one per watched namespace, or cluster-wide)
 *     BindingStatusStore + source problems ───────────> StatusWriter ─> .status (status subresource), Events
 *     deleting objects + reconciler completions ──────> FinalizerController ─> dockbind.io/finalizer
 *
 * Only the leader reads bindings and writes anything (Consul, LB files,
 * Kubernetes). Metrics/health servers run on every replica (main.ts). A
 * replica that loses the lease stops at once and exits non-zero (like
 * controller-runtime): a restarted process campaigns again from scratch.
 */
import { createConsulClient } from "../clients/consul/client.js";
import { createEventRecorder } from "../actuators/kubernetes/events.js";
import { FinalizerController } from "../reconcilers/kubernetes/finalizer.js";
import { createKubeClient, type KubeClient } from "../clients/kubernetes/kubeClient.js";
import { leaseLock } from "../actuators/kubernetes/leaseLock.js";
import { StatusWriter } from "../reconcilers/kubernetes/statusWriter.js";
import type { ConsulTokenFile } from "../config/consulToken.js";
import type { Config, KubernetesConfig } from "../config/config.js";
import { countKubeWatchStall, setLeaderElectionMaster } from "../observability/telemetry.js";
import { BindingStatusStore } from "../reconcilers/bindingStatus.js";
import { runController } from "../runtime/controller.js";
import { LeaderElector } from "../runtime/leaderElection.js";
import type { Logger } from "../runtime/logger.js";
import { WorkQueue } from "../runtime/workqueue.js";
import { loadKubeConfig } from "../clients/kubernetes/kubeConfig.js";
import { KubeBindingSource } from "../sources/kubernetes/kubeBindingSource.js";
import { startManager, type Manager } from "./manager.js";
import { consulConnection } from "./consulConnection.js";

const BACKOFF = { baseMs: 200, maxMs: 30_000 } as const;
const VERSION = "0.1.0";

export interface KubernetesApp {
  /** Resolves with the process exit code: 0 after a normal stop, 1 when the lease was lost. */
  readonly done: Promise<number>;
}

/** `consulToken`: the process's rotating token holder (--consul-token-file), shared by every Consul client. */
export function startKubernetes(config: Readonly<Config>, logger: Logger, signal: AbortSignal, consulToken?: ConsulTokenFile): KubernetesApp {
  const k = config.kubernetes;
  if (k === undefined) throw new Error("startKubernetes: configuration has no kubernetes section");
  const client = createKubeClient(loadKubeConfig(k.connection), { userAgent: `dockbind-controller/${VERSION} (${k.identity})` });
  logger.info("kubernetes mode", { server: client.server, namespaces: k.watchNamespaces.length > 0 ? k.watchNamespaces.join(",") : "(all)", leaderElect: k.leaderElect, lease: `${k.leaseNamespace}/${k.leaseName}`, identity: k.identity });

  if (!k.leaderElect) {
    setLeaderElectionMaster(true);
    return { done: runLeader(config, k, client, logger, signal, consulToken).then(() => 0) };
  }
  setLeaderElectionMaster(false);
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
  return {
    done: elector.run(signal, (leaderSignal) => runLeader(config, k, client, logger, leaderSignal, consulToken)).then((outcome) => (outcome === "lost" ? 1 : 0)),
  };
}

/** Everything the leader runs, until `signal` aborts. */
async function runLeader(config: Readonly<Config>, k: KubernetesConfig, client: KubeClient, logger: Logger, signal: AbortSignal, consulToken: ConsulTokenFile | undefined): Promise<void> {
  const status = new BindingStatusStore();
  const events = createEventRecorder({ client, logger, instance: k.identity });
  const statusQueue = new WorkQueue({ name: "status", backoff: BACKOFF });
  const finalizerQueue = new WorkQueue({ name: "finalizer", backoff: BACKOFF });
  let source: KubeBindingSource | undefined;
  const sourceOf = (): KubeBindingSource => {
    if (source === undefined) throw new Error("binding source not created yet");
    return source;
  };
  const statusWriter = new StatusWriter({
    client,
    status,
    events,
    logger,
    source: { object: (key) => sourceOf().object(key), get: (key) => sourceOf().get(key), problemsOf: (key) => sourceOf().problemsOf(key) },
  });
  // The finalizer judges ownership with the manager's endpoint identities (known once each engine answered).
  const started: { manager?: Manager } = {};
  const finalizer = new FinalizerController({
    client,
    consul: createConsulClient(consulConnection(config.consul, consulToken)),
    owners: () => started.manager?.owners() ?? [],
    outputDirs: [config.lbOutputDir, config.haproxy.outputDir],
    events,
    logger,
    source: { object: (key) => sourceOf().object(key), needsFinalizer: (key) => sourceOf().needsFinalizer(key) },
  });
  status.onChange((key) => {
    statusQueue.add(key);
  });

  const manager = startManager({
    config,
    logger,
    signal,
    status,
    ...(consulToken !== undefined ? { consulToken } : {}),
    bindingSource: (onChange) => {
      source = new KubeBindingSource({
        client,
        logger,
        namespaces: k.watchNamespaces,
        onChange,
        onWatchStalled: countKubeWatchStall,
        onObject: (key) => {
          statusQueue.add(key);
          finalizerQueue.add(key);
        },
      });
      return source;
    },
    onReconciled: (e) => {
      statusWriter.noteReconciled(e.controller, e.key, e.generation);
      finalizer.noteReconciled(e.controller, e.key, e.present);
      statusQueue.add(e.key);
      if (!e.present) finalizerQueue.add(e.key);
    },
  });

  started.manager = manager;
  const controllers = [
    runController({ name: "status", queue: statusQueue, reconciler: statusWriter, workers: 2, logger }),
    runController({ name: "finalizer", queue: finalizerQueue, reconciler: finalizer, workers: 1, logger }),
  ];
  await manager.done;
  statusQueue.shutDown();
  finalizerQueue.shutDown();
  await Promise.all(controllers);
}
