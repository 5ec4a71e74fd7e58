/**
 * The controller pipeline shared by both modes: sources -> routers ->
 * workqueues -> reconcilers -> actuators. The binding source is pluggable
 * (files for --docker-only, Kubernetes for cluster mode).
 *
 *   binding source ──┬─> RegistrarRouter@node ─> registrar queue ─> RegistrarReconciler@node ─> Consul agent
 *   DockerWatcher@node, SwarmWatcher@node ─┘         (one router, watcher set and registrar per Docker endpoint)
 *   binding source ──┬─> RendererRouter ─> renderer queue ─> RendererReconciler ─> nginx/haproxy files + reload
 *   HealthWatcher ───┘
 *
 * buildPipeline() builds every component first (one Consul client, queues,
 * stores, endpoint pipelines, routers, reconcilers), then wires the event
 * handlers, and returns the runnables a runtime Manager runs; all of them need
 * leadership. Endpoints share the registrar queue (requests carry their node),
 * Consul, renderer and status (counts summed over nodes, see
 * BindingStatusStore.setRegistration). Registrations are left in place on
 * shutdown (a restarted controller finds them converged).
 */
import { createConsulClient } from "../clients/consul/client.js";
import type { ConsulApi, ConsulCluster } from "../ports/consul.js";
import { LbConfigWriter } from "../actuators/lb/configWriter.js";
import { HaproxyDriver } from "../actuators/lb/haproxyDriver.js";
import { NginxDriver } from "../actuators/lb/nginxDriver.js";
import { serviceRefs } from "../domain/types.js";
import { isOwned, type OwnerIdentity } from "../domain/ownership.js";
import { processTelemetry, type Telemetry } from "../observability/telemetry.js";
import { BindingStatusStore } from "../reconcilers/bindingStatus.js";
import { RendererReconciler } from "../reconcilers/renderer.js";
import { ReconcileError } from "../runtime/errors.js";
import type { Runnable } from "../runtime/manager.js";
import {
  decodeNodeRequest,
  encodeRendererRequest,
  keyed,
  type NodeRequest,
  type RegistrarRequest,
  type RendererRequest,
  type RequestReconciler,
} from "../runtime/requests.js";
import type { Reconciler } from "../runtime/controller.js";
import { WorkQueue } from "../runtime/workqueue.js";
import type { BindingStore } from "../ports/bindingStore.js";
import type { RunnableBindingSource } from "../ports/bindingSource.js";
import type { ContainerStore } from "../ports/containerStore.js";
import type { HealthStore } from "../ports/healthStore.js";
import { AgentMonitor } from "../sources/consul/agentMonitor.js";
import { HealthWatcher, refKey } from "../sources/consul/healthWatcher.js";
import { consulConnection } from "./consulConnection.js";
import { DockerEndpointPipeline } from "./dockerEndpoint.js";
import { RendererRouter } from "./keyRouter.js";
import { mergedContainers } from "./mergedContainers.js";
import { pipelineRunnables } from "./pipelineRunnables.js";
import { Handlers, type Components, type PipelineOptions } from "./components.js";
import { allNodesReporter, reportingReconciler, type ReconciledEvent } from "./reconciledReport.js";

export const BACKOFF = { baseMs: 200, maxMs: 60_000 } as const;

export interface Pipeline<S extends RunnableBindingSource = RunnableBindingSource> {
  readonly status: BindingStatusStore;
  /** The source the factory built. */
  readonly bindings: S;
  /** The containers of every Docker endpoint. */
  readonly containers: ContainerStore;
  readonly health: HealthStore;
  /** The process's one Consul client (failover, observed by telemetry); other components share it. */
  readonly consul: ConsulApi & ConsulCluster;
  /** Each Docker endpoint's owner identity (undefined while its engine ID is unknown), in config order. */
  readonly owners: () => readonly (OwnerIdentity | undefined)[];
  /** In start order; every one needs leadership. */
  readonly runnables: readonly Runnable[];
}

/** Builds every component, wires their handlers and returns the pipeline with its runnables. Starts nothing. */
export function buildPipeline<S extends RunnableBindingSource>(opts: PipelineOptions<S>): Pipeline<S> {
  const c = buildComponents(opts);
  wireHandlers(c);
  const owners = (): (OwnerIdentity | undefined)[] => c.endpoints.map((p) => p.identity());
  return { status: c.status, bindings: c.bindings, containers: c.containers, health: c.health, consul: c.consul, owners, runnables: pipelineRunnables(c) };
}

/**
 * Consul agent liveness probe periods (sources/consul/agentMonitor.ts). While the agent answers, the
 * probe is only a fallback: any call that gets no answer (a blocking health query breaks when the
 * agent dies) marks it down at once. While it is down, the probe period bounds the re-assert delay
 * after it is back.
 */
const CONSUL_PROBE_MS = 10_000;
const CONSUL_DOWN_PROBE_MS = 1_000;

/** True when `meta` is that of a registration one of `endpoints` owns (domain/ownership.ts). */
function ownedByAny(endpoints: readonly DockerEndpointPipeline[], meta: Readonly<Record<string, string>>): boolean {
  return endpoints.some((p) => {
    const o = p.identity();
    return o !== undefined && isOwned(meta, o);
  });
}

/** The Consul client and its agent monitor. `late` gives what is built after them (read only when Consul calls back). */
function buildConsul(
  opts: PipelineOptions,
  telemetry: Telemetry,
  handlers: Handlers,
  late: { readonly health: () => HealthWatcher; readonly endpoints: readonly DockerEndpointPipeline[] },
): { readonly consul: ReturnType<typeof createConsulClient>; readonly agentMonitor: AgentMonitor } {
  const { config, logger } = opts;
  const consul = createConsulClient({
    ...consulConnection(config.consul, opts.consulToken),
    observer: telemetry.consulObserver,
    // Blocking health queries each hold a connection; registrations and reads get the 32 others.
    maxSockets: config.consulBlockingQueries + 32,
    // Registrations are agent-local: a new agent gets every one re-asserted, and the health watcher holds what it knew until they pass there.
    onFailover: (from, to) => {
      const held = late.health().holdAll((i) => ownedByAny(late.endpoints, i.meta ?? {}));
      logger.warn("consul agent failover; re-registering on the new agent", { from, to, heldServices: held });
      handlers.reassertAll();
    },
    onUnreachable: (error) => {
      agentMonitor.unreachable(error);
    },
  });
  const agentMonitor = new AgentMonitor({
    consul,
    logger,
    intervalMs: CONSUL_PROBE_MS,
    downIntervalMs: CONSUL_DOWN_PROBE_MS,
    onRecovered: () => {
      handlers.reassertAll();
      late.health().kick();
    },
  });
  return { consul, agentMonitor };
}

function buildComponents<S extends RunnableBindingSource>(opts: PipelineOptions<S>): Components<S> {
  const { config, logger } = opts;
  const handlers = new Handlers();
  const status = opts.status ?? new BindingStatusStore();
  const telemetry = opts.telemetry ?? processTelemetry();
  const endpoints: DockerEndpointPipeline[] = [];
  const { consul, agentMonitor } = buildConsul(opts, telemetry, handlers, { health: () => health, endpoints });
  const registrarQueue = new WorkQueue({ name: "registrar", backoff: BACKOFF, observer: telemetry.queueObserver });
  const rendererQueue = new WorkQueue({ name: "renderer", backoff: BACKOFF, observer: telemetry.queueObserver });
  const bindings = opts.bindingSource((keys) => {
    handlers.bindingsChanged(keys);
  });
  const health = new HealthWatcher({
    consul,
    logger,
    // Short enough that the queries of a stopped predecessor, still counted by Consul until their
    // wait ends, are gone a minute after a restart.
    waitMs: 60_000,
    maxBlocking: config.consulBlockingQueries,
    backoff: BACKOFF,
    debounce: { minMs: config.waitMinMs, maxMs: config.waitMaxMs },
    onChange: (changed) => {
      handlers.healthChanged(changed);
    },
    // An index that went backwards means the agent restarted and may have lost state.
    onIndexReset: () => {
      handlers.reassertAll();
    },
    onLost: (_ref, lost) => {
      for (const p of endpoints) p.consulLost(lost);
    },
    onEdited: (_ref, edited) => {
      for (const p of endpoints) p.consulEdited(edited);
    },
  });
  for (const endpoint of config.dockerEndpoints) {
    const shared = { config, logger, bindings, consul, maintenance: consul, status, telemetry, registrarQueue, backoff: BACKOFF };
    endpoints.push(
      new DockerEndpointPipeline({
        ...shared,
        endpoint,
        afterResync: () => void handlers.sweepOtherAgents(),
        peers: () => endpoints,
        onSwarmAvailability: () => {
          handlers.swarmAvailabilityChanged();
        },
      }),
    );
  }
  const renderSink = {
    add: (r: RendererRequest): void => {
      rendererQueue.add(encodeRendererRequest(r));
    },
  };
  const renderRouter = new RendererRouter({ bindings, renderer: renderSink });
  const renderer = buildRenderer(opts, telemetry, bindings, health, status);
  const registrar = buildRegistrar(opts, bindings, endpoints);
  const containers = mergedContainers(endpoints.map((p) => p.docker));
  return {
    opts,
    telemetry,
    status,
    consul,
    agentMonitor,
    registrarQueue,
    rendererQueue,
    bindings,
    health,
    endpoints,
    renderRouter,
    renderer,
    registrar,
    containers,
    handlers,
  };
}

function buildRenderer(
  opts: PipelineOptions,
  telemetry: Telemetry,
  bindings: BindingStore,
  health: HealthStore,
  status: BindingStatusStore,
): RendererReconciler {
  const { config, logger } = opts;
  // Mode/owner of generated files (--lb-file-mode, --lb-file-owner).
  const lbFiles = { mode: config.lbFileMode, ...(config.lbFileOwner !== undefined ? { owner: config.lbFileOwner } : {}) };
  const haproxy = new HaproxyDriver({
    haproxyBin: config.haproxy.bin,
    configPaths: [config.haproxy.config, config.haproxy.outputDir],
    masterSocket: config.haproxy.masterSocket,
  });
  return new RendererReconciler({
    bindings,
    health,
    writer: new LbConfigWriter(
      telemetry.observeDriver(new NginxDriver({ nginxBin: config.nginx.bin, args: config.nginx.args, streamDir: config.nginxStreamDir })),
      lbFiles,
    ),
    status,
    logger,
    outputDir: config.lbOutputDir,
    streamDir: config.nginxStreamDir,
    templateDir: config.templateDir,
    minReloadIntervalMs: config.minReloadIntervalMs,
    maxReloadIntervalMs: config.maxReloadIntervalMs,
    observer: telemetry.rendererObserver,
    haproxy: { writer: new LbConfigWriter(telemetry.observeDriver(haproxy), lbFiles), outputDir: config.haproxy.outputDir },
    tls: { dir: config.tlsDir, ...(config.lbFileOwner !== undefined ? { owner: config.lbFileOwner } : {}) },
  });
}

/** The registrar queue's reconciler: each request goes to its node's registrar (reporting per node, combined). */
function buildRegistrar(opts: PipelineOptions, bindings: BindingStore, endpoints: readonly DockerEndpointPipeline[]): Reconciler {
  const hook = opts.onReconciled;
  const report =
    hook === undefined
      ? undefined
      : allNodesReporter(
          endpoints.map((p) => p.node),
          hook,
        );
  const registrarOf = new Map<string, RequestReconciler<RegistrarRequest>>();
  for (const p of endpoints) {
    const nodeHook =
      report === undefined
        ? undefined
        : (e: ReconciledEvent): void => {
            report(p.node, e);
          };
    registrarOf.set(
      p.node,
      reportingReconciler("registrar", p.registrar, (r: RegistrarRequest) => (r.kind === "binding" ? r.binding : undefined), bindings, nodeHook),
    );
  }
  return keyed(decodeNodeRequest, {
    reconcile({ node, request }: NodeRequest) {
      const inner = registrarOf.get(node);
      if (inner === undefined)
        return Promise.reject(new ReconcileError("InvalidKey", `registrar request for node ${node}, which is no Docker endpoint of this controller`, true));
      return inner.reconcile(request);
    },
  });
}

/** Connects the components' events to the routers and endpoints. */
function wireHandlers(c: Components): void {
  const { handlers, endpoints, opts } = c;
  handlers.bindingsChanged = (keys) => {
    for (const p of endpoints) {
      p.route.bindingsChanged(keys);
      p.swarm.wantedChanged();
    }
    c.renderRouter.bindingsChanged(keys);
    // Every binding's service: rendered ones need it (blocking queries first), the others show their backends' health in status.
    const all = c.bindings.list();
    const rendered = new Set(all.filter((b) => b.spec.loadBalancer !== undefined).flatMap((b) => serviceRefs(b).map(refKey)));
    c.health.setWanted(all.flatMap(serviceRefs), (ref) => rendered.has(refKey(ref)));
  };
  handlers.healthChanged = (ref) => {
    c.renderRouter.healthChanged(ref);
  };
  handlers.swarmAvailabilityChanged = () => {
    for (const p of endpoints) p.route.allSwarm();
  };
  handlers.sweepOtherAgents = async () => {
    if (opts.config.consul.urls.length <= 1) return;
    const removed = await c.consul.sweepOtherAgents((s) => ownedByAny(endpoints, s.meta));
    if (removed.length > 0)
      opts.logger.info("removed stale registrations from a previous consul agent", {
        action: "deregister",
        count: removed.length,
        serviceIds: removed.slice(0, 10),
      });
  };
  handlers.reassertAll = () => {
    for (const p of endpoints) p.reassertAll();
    void handlers.sweepOtherAgents();
  };
}
