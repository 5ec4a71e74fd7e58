/**
 * The controller's Prometheus metrics: ONE prom-client Registry per Metrics
 * instance (the process uses one, see telemetry.ts). Names follow
 * controller-runtime / client-go so existing dashboards and alerts work; domain
 * metrics carry the `dockbind_` prefix.
 *
 * Contracts:
 * - label values are bounded: controller and queue names, fixed result enums,
 *   binding keys (`namespace/name`), Docker event actions (sanitised);
 * - level metrics (backends per binding, validation errors, last success
 *   timestamps of live bindings) are computed at scrape time from the state
 *   reader set with setStateReader(), so deleted bindings vanish from /metrics;
 * - nothing secret is ever a label value (no tokens, no meta, no env).
 */
import { collectDefaultMetrics, Counter, exponentialBuckets, Gauge, Histogram, Registry } from "prom-client";
import { registerEventLoopLag } from "./eventLoopLag.js";

/** client-go workqueue buckets: 10ns .. 10s. */
const WORKQUEUE_BUCKETS = exponentialBuckets(10e-9, 10, 10);
/** controller-runtime reconcile_time_seconds buckets. */
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8,
  9, 10, 15, 20, 25, 30, 40, 50, 60,
];

/**
 * Sampling period of the exported event-loop delay histogram (eventLoopLag.ts). Every sample wakes
 * an idle loop, and a wake-up costs about as much CPU as a cheap request: 2 per second keep the
 * signal without being the largest cost of a controller at rest.
 */
const EVENT_LOOP_SAMPLE_MS = 500;
/**
 * prom-client's own delay histogram cannot be turned off, and its gauges are replaced by
 * eventLoopLag.ts's: it samples once a minute so that the loop is not sampled twice.
 */
const PROM_CLIENT_UNUSED_SAMPLE_MS = 60_000;

export type BackendState = "desired" | "registered" | "passing" | "maintenance";

/** What the scrape-time collectors read (see setStateReader). */
export interface MetricsState {
  readonly backends: readonly { readonly binding: string; readonly counts: Partial<Record<BackendState, number>> }[];
  readonly validationErrors: number;
  /** Binding keys that still exist: last-success series of other keys are dropped. */
  readonly liveBindings: ReadonlySet<string>;
  /** Every Docker endpoint: its node, whether its cache is synced, its running containers. */
  readonly dockerEndpoints: readonly {
    readonly node: string;
    readonly synced: boolean;
    readonly containers: number;
    /** Docker engine ID (status only, never a label); absent until known. */
    readonly engine?: string;
    /** Other controllers (engine/instance) registering under this node. */
    readonly conflicts: number;
  }[];
  /** Bindings removed from their source but still served until their delete delay runs out. */
  readonly deletingBindings: number;
}

/**
 * Every metric is a field initialised in declaration order: `registry` and `registers` come
 * first, the metrics register themselves into them. The scrape-time gauges' collect() reads
 * the state reader at scrape time, never at construction.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly registers = [this.registry];
  private state: (() => MetricsState) | undefined;
  /** Last successful render per binding (seconds since epoch). */
  private readonly lastSuccess = new Map<string, number>();

  readonly reconcileTotal: Counter<"controller" | "result"> = new Counter({
    name: "controller_runtime_reconcile_total",
    help: "Total number of reconciliations per controller",
    labelNames: ["controller", "result"],
    registers: this.registers,
  });
  readonly reconcileErrors: Counter<"controller"> = new Counter({
    name: "controller_runtime_reconcile_errors_total",
    help: "Total number of reconciliation errors per controller",
    labelNames: ["controller"],
    registers: this.registers,
  });
  readonly terminalReconcileErrors: Counter<"controller"> = new Counter({
    name: "controller_runtime_terminal_reconcile_errors_total",
    help: "Total number of terminal reconciliation errors per controller",
    labelNames: ["controller"],
    registers: this.registers,
  });
  readonly reconcileTime: Histogram<"controller"> = new Histogram({
    name: "controller_runtime_reconcile_time_seconds",
    help: "Length of time per reconciliation per controller",
    labelNames: ["controller"],
    buckets: RECONCILE_BUCKETS,
    registers: this.registers,
  });
  readonly maxConcurrentReconciles: Gauge<"controller"> = new Gauge({
    name: "controller_runtime_max_concurrent_reconciles",
    help: "Maximum number of concurrent reconciles per controller",
    labelNames: ["controller"],
    registers: this.registers,
  });

  readonly workqueueDepth: Gauge<"name"> = new Gauge({
    name: "workqueue_depth",
    help: "Current depth of workqueue",
    labelNames: ["name"],
    registers: this.registers,
  });
  readonly workqueueAdds: Counter<"name"> = new Counter({
    name: "workqueue_adds_total",
    help: "Total number of adds handled by workqueue",
    labelNames: ["name"],
    registers: this.registers,
  });
  readonly workqueueQueueDuration: Histogram<"name"> = new Histogram({
    name: "workqueue_queue_duration_seconds",
    help: "How long in seconds an item stays in workqueue before being requested",
    labelNames: ["name"],
    buckets: WORKQUEUE_BUCKETS,
    registers: this.registers,
  });
  readonly workqueueWorkDuration: Histogram<"name"> = new Histogram({
    name: "workqueue_work_duration_seconds",
    help: "How long in seconds processing an item from workqueue takes",
    labelNames: ["name"],
    buckets: WORKQUEUE_BUCKETS,
    registers: this.registers,
  });
  readonly workqueueRetries: Counter<"name"> = new Counter({
    name: "workqueue_retries_total",
    help: "Total number of retries handled by workqueue",
    labelNames: ["name"],
    registers: this.registers,
  });

  readonly leaderElectionMaster: Gauge<"name"> = new Gauge({
    name: "leader_election_master_status",
    help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master",
    labelNames: ["name"],
    registers: this.registers,
  });

  readonly backends: Gauge<"binding" | "state"> = new Gauge({
    name: "dockbind_backends",
    help: "Backends per binding: desired (matching containers), registered (in Consul by this controller), passing (instances of its service passing in Consul), maintenance (instances in Consul maintenance)",
    labelNames: ["binding", "state"],
    registers: this.registers,
    collect: () => {
      this.backends.reset();
      for (const b of this.read()?.backends ?? []) {
        for (const [state, n] of Object.entries(b.counts)) this.backends.set({ binding: b.binding, state }, n);
      }
    },
  });
  readonly consulWrites: Counter<"kind" | "result"> = new Counter({
    name: "dockbind_consul_writes_total",
    help: "Consul agent write operations by kind (register, deregister, check: a TTL check update) and result",
    labelNames: ["kind", "result"],
    registers: this.registers,
  });
  readonly lbRenders: Counter<"result"> = new Counter({
    name: "dockbind_lb_renders_total",
    help: "Load balancer config renders by result: changed (file written and reloaded), unchanged, error",
    labelNames: ["result"],
    registers: this.registers,
  });
  readonly lbValidations: Counter<"result"> = new Counter({
    name: "dockbind_lb_validations_total",
    help: "Load balancer config validations (nginx -t) by result",
    labelNames: ["result"],
    registers: this.registers,
  });
  readonly lbReloads: Counter<"result"> = new Counter({
    name: "dockbind_lb_reloads_total",
    help: "Load balancer reloads by result",
    labelNames: ["result"],
    registers: this.registers,
  });
  /** Series of bindings that are no longer live are dropped (and forgotten) at scrape time. */
  readonly lbLastSuccess: Gauge<"binding"> = new Gauge({
    name: "dockbind_lb_last_success_timestamp_seconds",
    help: "Unix time of the last successful render (config converged on disk and in the load balancer) per binding",
    labelNames: ["binding"],
    registers: this.registers,
    collect: () => {
      const live = this.read()?.liveBindings;
      this.lbLastSuccess.reset();
      for (const [binding, t] of this.lastSuccess) {
        if (live !== undefined && !live.has(binding)) this.lastSuccess.delete(binding);
        else this.lbLastSuccess.set({ binding }, t);
      }
    },
  });
  readonly dockerReconnects: Counter = new Counter({
    name: "dockbind_docker_event_stream_reconnects_total",
    help: "Times the Docker event stream was lost and reconnected",
    registers: this.registers,
  });
  readonly dockerEvents: Counter<"action"> = new Counter({
    name: "dockbind_docker_events_total",
    help: "Docker container events received by action",
    labelNames: ["action"],
    registers: this.registers,
  });
  readonly watchRestarts: Counter<"source" | "reason"> = new Counter({
    name: "dockbind_watch_restarts_total",
    help: "Watches found stalled (open but delivering nothing) and re-established, by source (kubernetes, docker) and reason",
    labelNames: ["source", "reason"],
    registers: this.registers,
  });
  readonly bindingValidationErrors: Gauge = new Gauge({
    name: "dockbind_binding_validation_errors",
    help: "Current number of binding validation problems (invalid documents, conflicts)",
    registers: this.registers,
    collect: () => {
      this.bindingValidationErrors.set(this.read()?.validationErrors ?? 0);
    },
  });
  readonly bindingsDeleting: Gauge = new Gauge({
    name: "dockbind_bindings_deleting",
    help: "Bindings removed from the bindings directory but still served until --delete-delay runs out",
    registers: this.registers,
    collect: () => {
      this.bindingsDeleting.set(this.read()?.deletingBindings ?? 0);
    },
  });
  readonly massDeletions: Counter = new Counter({
    name: "dockbind_binding_mass_deletions_total",
    help: "Scans of the bindings directory that would delete more than half of all bindings (held for --delete-delay, warned once each)",
    registers: this.registers,
  });
  readonly dockerEndpointSynced: Gauge<"node"> = new Gauge({
    name: "dockbind_docker_endpoint_synced",
    help: "1 while the Docker endpoint's container cache is synced (listed and event stream connected), 0 while it is unreachable or not listed yet",
    labelNames: ["node"],
    registers: this.registers,
    collect: () => {
      this.dockerEndpointSynced.reset();
      for (const e of this.read()?.dockerEndpoints ?? []) this.dockerEndpointSynced.set({ node: e.node }, e.synced ? 1 : 0);
    },
  });
  readonly dockerContainers: Gauge<"node"> = new Gauge({
    name: "dockbind_docker_containers",
    help: "Running containers in the Docker endpoint's cache (the last known set while it is unreachable)",
    labelNames: ["node"],
    registers: this.registers,
    collect: () => {
      this.dockerContainers.reset();
      for (const e of this.read()?.dockerEndpoints ?? []) this.dockerContainers.set({ node: e.node }, e.containers);
    },
  });
  /** Labelled by our own node names only (bounded by the config); the peers are counted, never labels. */
  readonly nodeIdentityConflicts: Gauge<"node"> = new Gauge({
    name: "dockbind_node_identity_conflicts",
    help: "Other controllers (another Docker engine or instance ID) registering under this node name; their registrations are never touched. 0 = no conflict",
    labelNames: ["node"],
    registers: this.registers,
    collect: () => {
      this.nodeIdentityConflicts.reset();
      for (const e of this.read()?.dockerEndpoints ?? []) this.nodeIdentityConflicts.set({ node: e.node }, e.conflicts);
    },
  });

  /** Also exports the process_* and nodejs_* metrics of this process (event-loop lag: eventLoopLag.ts). */
  constructor() {
    this.zeroFixedSeries();
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: PROM_CLIENT_UNUSED_SAMPLE_MS });
    registerEventLoopLag(this.registry, EVENT_LOOP_SAMPLE_MS);
  }

  private read(): MetricsState | undefined {
    return this.state?.();
  }

  /** Creates the series with fixed label values at zero, so they are exported before the first event. */
  private zeroFixedSeries(): void {
    for (const kind of ["register", "deregister", "check"]) for (const result of ["success", "error"]) this.consulWrites.inc({ kind, result }, 0);
    for (const result of ["changed", "unchanged", "error"]) this.lbRenders.inc({ result }, 0);
    for (const result of ["success", "error"]) {
      this.lbValidations.inc({ result }, 0);
      this.lbReloads.inc({ result }, 0);
    }
    this.dockerReconnects.inc(0);
    for (const source of ["kubernetes", "docker"]) this.watchRestarts.inc({ source, reason: "stalled" }, 0);
    this.massDeletions.inc(0);
  }

  /** Sets the reader behind the scrape-time gauges (the manager's stores); replaces an earlier one. */
  setStateReader(reader: () => MetricsState): void {
    this.state = reader;
  }

  /** Creates every series of a controller and its queue at zero, so dashboards show them before any work. */
  initController(name: string, workers: number): void {
    for (const result of ["success", "error", "requeue_after"]) this.reconcileTotal.inc({ controller: name, result }, 0);
    this.reconcileErrors.inc({ controller: name }, 0);
    this.terminalReconcileErrors.inc({ controller: name }, 0);
    this.maxConcurrentReconciles.set({ controller: name }, workers);
    this.workqueueDepth.set({ name }, 0);
    this.workqueueAdds.inc({ name }, 0);
    this.workqueueRetries.inc({ name }, 0);
  }

  recordLbSuccess(binding: string, at: number = Date.now()): void {
    this.lastSuccess.set(binding, at / 1000);
  }

  setLeader(isLeader: boolean, name: string): void {
    this.leaderElectionMaster.set({ name }, isLeader ? 1 : 0);
  }

  /** The text exposition format, as served on /metrics. */
  async exposition(): Promise<{ readonly contentType: string; readonly body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
