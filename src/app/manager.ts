/**
 * The controller manager: wires sources -> workqueues -> reconcilers ->
 * actuators. The binding source is pluggable (files for --docker-only,
 * Kubernetes for cluster mode); everything else is shared.
 *
 *   FileBindingSource ─┐                     ┌─> RegistrarReconciler@node ─> Consul agent
 *   DockerWatcher@node ┼─> registrar queue ──┘     (one per Docker endpoint)
 *                      │
 *   HealthWatcher ─────┴─> renderer queue ───> RendererReconciler ─> nginx files + reload, passing counts
 *
 * Issue #3 item 6: every --docker-endpoint gets its own Docker/Swarm watcher
 * and registrar under its own node identity (dockerEndpoint.ts); they share
 * the registrar queue (keys `<key>@<node>`), Consul, renderer and status
 * (counts summed over nodes, see BindingStatusStore.setRegistration).
 *
 * Runs until `signal` aborts, then drains and returns. Registrations are left
 * in place on shutdown (a restarted controller finds them converged).
 */
import { createConsulClient } from "../clients/consul/client.js";
import { LbConfigWriter } from "../actuators/lb/configWriter.js";
import { HaproxyDriver } from "../actuators/lb/haproxyDriver.js";
import { NginxDriver } from "../actuators/lb/nginxDriver.js";
import type { ConsulTokenFile } from "../config/consulToken.js";
import type { Config } from "../config/config.js";
import { BindingStatusStore } from "../reconcilers/bindingStatus.js";
import { RendererReconciler } from "../reconcilers/renderer.js";
import { runController } from "../runtime/controller.js";
import { decodeNodeRequest, decodeRendererRequest, encodeRendererRequest, keyed, type NodeRequest, type RegistrarRequest, type RendererRequest, type RequestReconciler } from "../runtime/requests.js";
import { type Logger } from "../runtime/logger.js";
import { WorkQueue } from "../runtime/workqueue.js";
import { HealthWatcher, refKey } from "../sources/consul/healthWatcher.js";
import { monitorAgent } from "../sources/consul/agentMonitor.js";
import type { BindingStore } from "../ports/bindingStore.js";
import type { BindingSourceFactory, RunnableBindingSource } from "../ports/bindingSource.js";
import { ReconcileError } from "../runtime/errors.js";
import { DockerEndpointPipeline } from "./dockerEndpoint.js";
import { mergedContainers } from "./mergedContainers.js";
import { processTelemetry, type Telemetry } from "../observability/telemetry.js";
import { serviceRef } from "../domain/types.js";
import { isOwned, type OwnerIdentity } from "../domain/ownership.js";
import { consulConnection } from "./consulConnection.js";
import type { ConsulApi } from "../ports/consul.js";
import type { HealthStore } from "../ports/healthStore.js";
import type { ContainerStore } from "../ports/containerStore.js";

const BACKOFF = { baseMs: 200, maxMs: 60_000 } as const;
/** Consul agent liveness probe period (issue #6): bounds the re-assert delay after an agent restart. */
const CONSUL_PROBE_MS = 1000;

export interface ManagerOptions {
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly bindingSource: BindingSourceFactory;
  /** Shared status store (e.g. read by a Kubernetes status writer or the status page). */
  readonly status?: BindingStatusStore;
  /** Metrics, liveness and status-page state (issue #5); default: the process-wide one. */
  readonly telemetry?: Telemetry;
  /** Completion hook (Kubernetes status/finalizers): a binding key was reconciled (not requeued). */
  readonly onReconciled?: (e: ReconciledEvent) => void;
  /** The process's rotating Consul token (--consul-token-file); default: the start-up token from the config. */
  readonly consulToken?: ConsulTokenFile;
}

export interface ReconciledEvent {
  readonly controller: "registrar" | "renderer";
  /** Binding key `<namespace>/<name>`. */
  readonly key: string;
  /** metadata.generation of the binding when the reconcile started; undefined = binding absent. */
  readonly generation: number | undefined;
  readonly present: boolean;
  readonly outcome: "success" | "error";
}

/** Wraps a reconciler to report the binding keys it finished to `hook`. */
function reportingReconciler<R>(
  controller: ReconciledEvent["controller"],
  inner: RequestReconciler<R>,
  bindingKeyOf: (request: R) => string | undefined,
  bindings: BindingStore,
  hook: ((e: ReconciledEvent) => void) | undefined,
): RequestReconciler<R> {
  if (hook === undefined) return inner;
  return {
    async reconcile(request) {
      const bkey = bindingKeyOf(request);
      const b = bkey === undefined ? undefined : bindings.get(bkey);
      const report = (outcome: ReconciledEvent["outcome"]): void => {
        if (bkey !== undefined) hook({ controller, key: bkey, generation: b?.metadata.generation, present: b !== undefined, outcome });
      };
      let result;
      try {
        result = await inner.reconcile(request);
      } catch (err) {
        report("error");
        throw err;
      }
      if (result.requeueAfterMs === undefined) report("success");
      return result;
    },
  };
}

/**
 * Issue #3 item 6: a binding's registrar pass is finished (for status and
 * finalizers) once every endpoint's registrar finished it with the same
 * generation and presence; an error of any endpoint is reported at once.
 */
export function allNodesReporter(nodes: readonly string[], hook: (e: ReconciledEvent) => void): (node: string, e: ReconciledEvent) => void {
  const last = new Map<string, Map<string, ReconciledEvent>>();
  return (node, e) => {
    const byNode = last.get(e.key) ?? new Map<string, ReconciledEvent>();
    last.set(e.key, byNode);
    byNode.set(node, e);
    if (e.outcome === "error") {
      hook(e);
      return;
    }
    const same = nodes.every((n) => {
      const x = byNode.get(n);
      return x?.outcome === "success" && x.generation === e.generation && x.present === e.present;
    });
    if (same) hook(e);
    if (same && !e.present) last.delete(e.key);
  };
}

export interface Manager {
  readonly status: BindingStatusStore;
  readonly bindings: BindingStore;
  /** The containers of every Docker endpoint. */
  readonly containers: ContainerStore;
  readonly health: HealthStore;
  readonly consul: ConsulApi;
  /** Each Docker endpoint's owner identity (undefined while its engine ID is unknown), in config order. */
  readonly owners: () => readonly (OwnerIdentity | undefined)[];
  /** Resolves when the controller has stopped. */
  readonly done: Promise<void>;
}


export function startManager(opts: ManagerOptions): Manager {
  const { config, logger, signal } = opts;
  const status = opts.status ?? new BindingStatusStore();
  const telemetry = opts.telemetry ?? processTelemetry();
  const consul = createConsulClient({
    ...consulConnection(config.consul, opts.consulToken),
    observer: telemetry.consulObserver,
    // Issue #4: registrations are agent-local, so a new agent gets every registration re-asserted.
    onFailover: (from, to) => {
      logger.warn("consul agent failover; re-registering on the new agent", { from, to });
      reassertAll();
    },
  });
  const registrarQueue = new WorkQueue({ name: "registrar", backoff: BACKOFF, observer: telemetry.queueObserver });
  const rendererQueue = new WorkQueue({ name: "renderer", backoff: BACKOFF, observer: telemetry.queueObserver });

  const bindings: RunnableBindingSource = opts.bindingSource((keys) => {
    for (const p of endpoints) p.route.bindingsChanged(keys);
    // Every binding's service: rendered ones need it (blocking queries first), the others show their backends' health in status.
    const all = bindings.list();
    const rendered = new Set(all.filter((b) => b.spec.loadBalancer !== undefined).map((b) => refKey(serviceRef(b))));
    health.setWanted(all.map(serviceRef), (ref) => rendered.has(refKey(ref)));
  });

  const health = new HealthWatcher({
    consul,
    logger,
    waitMs: 5 * 60_000,
    backoff: BACKOFF,
    debounce: { minMs: config.waitMinMs, maxMs: config.waitMaxMs },
    onChange: (changed) => {
      firstRoute().healthChanged(changed);
    },
    // Issue #6: an index that went backwards means the agent restarted and may have lost state.
    onIndexReset: () => {
      reassertAll();
    },
  });

  const endpoints: DockerEndpointPipeline[] = config.dockerEndpoints.map(
    (endpoint) =>
      new DockerEndpointPipeline({
        endpoint,
        config,
        logger,
        bindings,
        consul,
        status,
        telemetry,
        registrarQueue,
        rendererQueue,
        backoff: BACKOFF,
        afterResync: () => {
          void sweepOtherAgents();
        },
        peers: () => endpoints,
        onSwarmAvailability: () => {
          for (const p of endpoints) p.route.allSwarm();
        },
      }),
  );
  const byNode = new Map(endpoints.map((p) => [p.node, p]));
  const owners = (): (OwnerIdentity | undefined)[] => endpoints.map((p) => p.identity());
  /** Renderer-side routing does not depend on the endpoint: any endpoint's router serves. */
  const firstRoute = (): DockerEndpointPipeline["route"] => {
    const p = endpoints[0];
    if (p === undefined) throw new Error("manager: no Docker endpoint configured");
    return p.route;
  };

  /** Issue #6: re-queue every registration this controller owns (Consul agent came back, possibly empty). */
  const reassertAll = (): void => {
    for (const p of endpoints) p.reassertAll();
    void sweepOtherAgents();
  };
  /** Issue #4: copies of our registrations left on agents we failed over from (see consulClient.ts). Never rejects. */
  const sweepOtherAgents = async (): Promise<void> => {
    if (config.consul.urls.length <= 1) return;
    const known = owners().filter((o): o is OwnerIdentity => o !== undefined);
    const removed = await consul.sweepOtherAgents((s) => known.some((o) => isOwned(s.meta, o)));
    if (removed.length > 0) logger.info("removed stale registrations from a previous consul agent", { action: "deregister", count: removed.length, serviceIds: removed.slice(0, 10) });
  };

  // Each registrar request goes to its endpoint's registrar (reporting per node, combined).
  const reportRegistrar = opts.onReconciled === undefined ? undefined : allNodesReporter([...byNode.keys()], opts.onReconciled);
  const registrarOf = new Map(
    endpoints.map((p) => {
      const hook = reportRegistrar === undefined ? undefined : (e: ReconciledEvent): void => {
        reportRegistrar(p.node, e);
      };
      return [p.node, reportingReconciler("registrar", p.registrar, (r: RegistrarRequest) => (r.kind === "binding" ? r.binding : undefined), bindings, hook)] as const;
    }),
  );
  const registrar = keyed(decodeNodeRequest, {
    reconcile({ node, request }: NodeRequest) {
      const inner = registrarOf.get(node);
      if (inner === undefined) return Promise.reject(new ReconcileError("InvalidKey", `registrar request for node ${node}, which is no Docker endpoint of this controller`, true));
      return inner.reconcile(request);
    },
  });

  /** Issue #6: mode/owner of generated files (--lb-file-mode, --lb-file-owner). */
  const lbFiles = { mode: config.lbFileMode, ...(config.lbFileOwner !== undefined ? { owner: config.lbFileOwner } : {}) };
  const renderer = new RendererReconciler({
    bindings,
    health,
    writer: new LbConfigWriter(telemetry.observeDriver(new NginxDriver({ nginxBin: config.nginx.bin, args: config.nginx.args })), lbFiles),
    status,
    logger,
    outputDir: config.lbOutputDir,
    templateDir: config.templateDir,
    minReloadIntervalMs: config.minReloadIntervalMs,
    maxReloadIntervalMs: config.maxReloadIntervalMs,
    observer: telemetry.rendererObserver,
    haproxy: {
      writer: new LbConfigWriter(
        telemetry.observeDriver(
          new HaproxyDriver({ haproxyBin: config.haproxy.bin, configPaths: [config.haproxy.config, config.haproxy.outputDir], masterSocket: config.haproxy.masterSocket }),
        ),
        lbFiles,
      ),
      outputDir: config.haproxy.outputDir,
    },
  });
  const containers = mergedContainers(endpoints.map((p) => p.docker));
  telemetry.captureLogs(logger);
  telemetry.attach({
    mode: config.dockerOnly ? "docker-only" : "kubernetes",
    node: config.node,
    instance: config.instanceId,
    endpoints: endpoints.map((p) => ({ node: p.node, hostIP: p.hostIP, containers: p.docker, swarm: p.swarmView, identity: () => p.identity(), conflicts: () => p.conflicts.list() })),
    bindings,
    status,
    containers,
    health,
    consul,
    controllers: [
      { name: "registrar", workers: config.workers },
      { name: "renderer", workers: 1 },
    ],
  });

  // A rotated token: every owned registration is rewritten with it (the agent syncs each service with the token it was
  // registered with), and what waits in error backoff (403s of a revoked token) retries now.
  const unsubscribeToken = opts.consulToken?.onChange(() => {
    logger.info("consul token changed; re-registering owned services with it and retrying what failed");
    for (const p of endpoints) p.rewriteAll();
    void sweepOtherAgents();
    health.kick();
  });

  const rendererResync = setInterval(() => {
    firstRoute().allRendered();
  }, config.resyncIntervalMs);
  rendererResync.unref();

  const done = (async () => {
    for (const binding of await renderer.adoptExisting()) rendererQueue.add(encodeRendererRequest({ kind: "render", binding }));
    const agentMonitor = monitorAgent(
      {
        consul,
        logger,
        intervalMs: CONSUL_PROBE_MS,
        onRecovered: () => {
          reassertAll();
          health.kick();
        },
      },
      signal,
    );
    const sources = [bindings.run(signal), ...endpoints.map((p) => p.run(signal)), agentMonitor];
    const controllers = [
      runController({
        name: "registrar",
        queue: registrarQueue,
        reconciler: registrar,
        workers: config.workers,
        logger,
        observer: telemetry.controllerObserver,
      }),
      runController({
        name: "renderer",
        queue: rendererQueue,
        reconciler: keyed(decodeRendererRequest, reportingReconciler("renderer", renderer, (r: RendererRequest) => r.binding, bindings, opts.onReconciled)),
        workers: 1,
        logger,
        observer: telemetry.controllerObserver,
      }),
    ];
    logger.info("controller started", {
      mode: config.dockerOnly ? "docker-only" : "kubernetes",
      node: config.node,
      dockerEndpoints: endpoints.map((p) => p.node),
      consul: config.consul.url,
    });
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else
        signal.addEventListener(
          "abort",
          () => {
            resolve();
          },
          { once: true },
        );
    });
    clearInterval(rendererResync);
    unsubscribeToken?.();
    registrarQueue.shutDown();
    rendererQueue.shutDown();
    await health.stop();
    await Promise.all([...sources, ...controllers]);
    logger.info("controller stopped");
  })();
  return { status, bindings, containers, health, consul, owners, done };
}
