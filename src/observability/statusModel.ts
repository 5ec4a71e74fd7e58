/**
 * The /api/status document (also rendered as the status page and printed by
 * `controller status`). Built on demand from the manager's stores; read-only.
 *
 * Contract: only operational facts appear here (keys, service names,
 * addresses, ports, health, conditions, redacted log messages). Never a
 * token, never service meta (the one exception: the owner identity of another
 * controller using our node name, validated by safeIdentityValue()), never
 * container env.
 */
import { desiredRegistrations } from "../domain/decisions.js";
import { conflictMessage, type NodeConflict } from "../domain/ownership.js";
import { isValidWeight, splitGroupFromMeta } from "../domain/traffic.js";
import {
  bindingKey,
  lbProtocol,
  OWNER_META,
  serviceRef,
  type HealthInstance,
  type LoadBalancerProtocol,
  type ServiceBinding,
  type SplitGroup,
} from "../domain/types.js";
import { bindingTraffic, type SplitShare, type TrafficView } from "../render/trafficView.js";
import { datacenterCandidates, datacenterLookup, servedDatacenter, type DatacenterCandidate } from "../domain/failover.js";
import type { BackendCounts, Condition } from "../reconcilers/bindingStatus.js";
import type { LbActivityEntry } from "./observers.js";
import type { RecentError } from "./recentErrors.js";
import { endpointSummaries, type ObservedParts, type Telemetry } from "./telemetry.js";

export type { SplitShare } from "../render/trafficView.js";

export const STATUS_API_VERSION = "dockbind.io/status/v1";

/**
 * Health of one backend as the controller sees it:
 * passing|warning|critical: Consul's aggregated check status;
 * pending: should be registered, not (yet) in Consul's health view;
 * unknown: Consul has not answered the health query of the binding's service yet;
 * skipped: the container matches but cannot be registered (see `reason`);
 * maintenance: Consul holds the instance or its node in maintenance (see `maintenance`): never rendered.
 */
export type BackendHealth = "passing" | "warning" | "critical" | "pending" | "unknown" | "skipped" | "maintenance";

export interface BackendView {
  readonly serviceId: string;
  /** Short container id; empty for instances not backed by a local container. */
  readonly container: string;
  readonly containerName: string;
  readonly address: string;
  readonly port: number;
  readonly health: BackendHealth;
  /** True when this controller wants the instance registered (a local matching container). */
  readonly local: boolean;
  readonly reason?: string;
  /** Consul maintenance: service or node, and its reason (set by anyone: control characters removed, at most 256 characters). */
  readonly maintenance?: { readonly scope: "service" | "node"; readonly reason: string };
  /** Consul weight of the instance (registration's, else as Consul reports it), when not the default. */
  readonly weight?: number;
  /** Split group index (loadBalancer.split) the instance belongs to. */
  readonly group?: number;
  /** Percent of the load balancer's requests it gets as rendered now; absent when it is not rendered. */
  readonly share?: number;
}

/** Health and maintenance of one instance as the status shows them. */
function instanceHealth(inst: HealthInstance | undefined): Pick<BackendView, "health" | "maintenance"> {
  if (inst === undefined) return { health: "pending" };
  const m = inst.maintenance;
  if (m === undefined) return { health: inst.status };
  // eslint-disable-next-line no-control-regex
  return { health: "maintenance", maintenance: { scope: m.scope, reason: m.reason.replace(/[\u0000-\u001f\u007f]/g, " ").slice(0, 256) } };
}

/** One node identity conflict; engine/instance are validated values from the peer's meta (or "(invalid)"/"(none)"). */
export interface NodeIdentityConflictView {
  readonly node: string;
  readonly engine: string;
  readonly instance: string;
  readonly registrations: number;
  /** The --adopt value that would take the peer's registrations over. */
  readonly adoptWith: string;
  readonly message: string;
}

export interface BindingView {
  readonly key: string;
  readonly service: string;
  readonly datacenter?: string;
  /**
   * `spec.service.datacenters` bindings: the datacenter the load balancer serves (servedDatacenter(),
   * the renderer's rule; absent while none answered), whether that is a failover, and every listed one.
   */
  readonly datacenters?: { readonly serving?: string; readonly failover: boolean; readonly candidates: readonly DatacenterCandidate[] };
  /** `protocol`: http, or tcp/udp for a stream proxy (nginx `stream {}`, haproxy `mode tcp`). */
  readonly loadBalancer?: {
    readonly output: string;
    readonly listen: string;
    readonly protocol: LoadBalancerProtocol;
    readonly split?: readonly SplitShare[];
  };
  readonly ready: { readonly status: string; readonly reason: string; readonly message: string };
  readonly conditions: readonly Condition[];
  readonly counts: BackendCounts;
  readonly lastRender?: { readonly at: string; readonly result: string; readonly servers: number };
  readonly backends: readonly BackendView[];
  /** Set while the binding is gone from its source but still served (the delete delay, see --delete-delay). */
  readonly deleting?: { readonly since: string; readonly deleteAt: string; readonly remainingSeconds: number; readonly mass: boolean };
}

export interface StatusDocument {
  readonly apiVersion: typeof STATUS_API_VERSION;
  readonly generatedAt: string;
  readonly startedAt: string;
  /** False until the manager has attached its stores (e.g. not leading yet). */
  readonly running: boolean;
  readonly mode: string;
  readonly node: string;
  readonly sources: {
    readonly bindings: { readonly synced: boolean; readonly count: number };
    readonly docker: {
      readonly synced: boolean;
      readonly containers: number;
      readonly endpoints: readonly {
        readonly node: string;
        readonly synced: boolean;
        readonly containers: number;
        readonly engine?: string;
        readonly conflicts: number;
      }[];
    };
  };
  /** This installation's --instance-id (owner meta `dockbind_instance`); empty when not running. */
  readonly instance: string;
  /** Other controllers registering under one of our node names; their registrations are never touched. */
  readonly nodeIdentityConflicts: readonly NodeIdentityConflictView[];
  readonly loadBalancer: { readonly lastValidation?: LbActivityEntry; readonly lastReload?: LbActivityEntry };
  readonly bindings: readonly BindingView[];
  readonly problems: readonly { readonly source: string; readonly document: number; readonly field: string; readonly message: string }[];
  readonly recentErrors: readonly RecentError[];
}

function deletingView(key: string, parts: ObservedParts, now: Date): BindingView["deleting"] {
  const p = parts.bindings.deletions?.().find((d) => d.key === key);
  if (p === undefined) return undefined;
  return {
    since: new Date(p.since).toISOString(),
    deleteAt: new Date(p.deleteAt).toISOString(),
    remainingSeconds: Math.max(0, Math.ceil((p.deleteAt - now.getTime()) / 1000)),
    mass: p.mass,
  };
}

function datacentersView(b: ServiceBinding, parts: ObservedParts): BindingView["datacenters"] {
  if (b.spec.service.datacenters === undefined) return undefined;
  const lookup = datacenterLookup(parts.health);
  const served = servedDatacenter(b, lookup);
  if (served === undefined) return { failover: false, candidates: datacenterCandidates(b, lookup) };
  return { ...(served.dc !== undefined ? { serving: served.dc } : {}), failover: served.failover, candidates: served.candidates };
}

/** Weight (when not 1), split group and current share of one backend; the share comes from the renderer's view (bindingTraffic). */
function backendTrafficView(
  weight: number | undefined,
  meta: Readonly<Record<string, string>>,
  address: string,
  port: number,
  split: readonly SplitGroup[] | undefined,
  traffic: TrafficView | undefined,
): Pick<BackendView, "weight" | "group" | "share"> {
  const group = split === undefined ? undefined : splitGroupFromMeta(split, meta);
  const share = traffic?.servers.find((s) => s.address === address && s.port === port)?.share;
  return {
    ...(weight !== undefined && weight !== 1 && isValidWeight(weight) ? { weight } : {}),
    ...(group !== undefined ? { group } : {}),
    ...(share !== undefined && traffic !== undefined && (traffic.split !== undefined || traffic.servers.some((s) => s.weight !== 1)) ? { share } : {}),
  };
}

function bindingView(b: ServiceBinding, parts: ObservedParts, now: Date): BindingView {
  const key = bindingKey(b);
  const st = parts.status.get(key);
  const svc = b.spec.service;
  const lb = b.spec.loadBalancer;
  const snapshot = parts.health.get(serviceRef(b));
  const byId = new Map((snapshot?.instances ?? []).map((i) => [i.serviceId, i]));
  const nameOf = new Map(parts.containers.list().map((c) => [c.id, c.name]));
  // Each endpoint's registrar decision (containers or Swarm tasks); an endpoint that cannot know its backends shows none.
  const perEndpoint = parts.endpoints.map((e) => {
    const swarm = e.swarm?.view();
    const d = desiredRegistrations(b, { node: e.node, hostIP: e.hostIP, containers: e.containers, bindings: [], ...(swarm !== undefined ? { swarm } : {}) });
    return d.kind === "desired" ? d.desired : { registrations: [], skipped: [] };
  });
  const desired = { registrations: perEndpoint.flatMap((d) => d.registrations), skipped: perEndpoint.flatMap((d) => d.skipped) };
  // Shares of requests as rendered: the served datacenter's instances (servedDatacenter, the renderer's rule).
  const served = servedDatacenter(b, datacenterLookup(parts.health));
  const traffic = served === undefined ? undefined : bindingTraffic(b, served.instances);
  const backends: BackendView[] = desired.registrations.map((r) => {
    const id = r.meta[OWNER_META.container] ?? "";
    const inst = byId.get(r.id);
    byId.delete(r.id);
    return {
      ...backendTrafficView(r.weight, r.meta, r.address, r.port, lb?.split, traffic),
      serviceId: r.id,
      container: id.slice(0, 12),
      containerName: nameOf.get(id) ?? "",
      address: r.address,
      port: r.port,
      ...(snapshot === undefined ? { health: "unknown" as const } : instanceHealth(inst)),
      local: true,
    };
  });
  backends.sort((a, b) => a.containerName.localeCompare(b.containerName) || a.serviceId.localeCompare(b.serviceId));
  for (const s of desired.skipped) {
    backends.push({
      serviceId: "",
      container: s.containerId.slice(0, 12),
      containerName: nameOf.get(s.containerId) ?? "",
      address: "",
      port: 0,
      health: "skipped",
      local: true,
      reason: s.code !== undefined ? `${s.code}: ${s.reason}` : s.reason,
    });
  }
  // Instances of the service not backed by a local container (other nodes, or about to be deregistered).
  for (const i of byId.values()) {
    const t = backendTrafficView(i.weight, i.meta ?? {}, i.address, i.port, lb?.split, traffic);
    backends.push({ serviceId: i.serviceId, container: "", containerName: "", address: i.address, port: i.port, ...instanceHealth(i), local: false, ...t });
  }
  const ready = st.conditions.find((c) => c.type === "Ready");
  const deleting = deletingView(key, parts, now);
  const datacenters = datacentersView(b, parts);
  return {
    key,
    service: svc.name,
    ...(svc.datacenter !== undefined ? { datacenter: svc.datacenter } : {}),
    ...(datacenters !== undefined ? { datacenters } : {}),
    ...(lb !== undefined
      ? {
          loadBalancer: {
            output: lb.output,
            listen: `${lb.listen.address}:${lb.listen.port}`,
            protocol: lbProtocol(lb),
            ...(traffic?.split !== undefined ? { split: traffic.split } : {}),
          },
        }
      : {}),
    ready:
      ready === undefined
        ? { status: "Unknown", reason: "Pending", message: "not reconciled yet" }
        : { status: ready.status, reason: ready.reason, message: ready.message },
    conditions: st.conditions,
    counts: st.backends,
    ...(st.lastRender !== undefined ? { lastRender: st.lastRender } : {}),
    backends,
    ...(deleting !== undefined ? { deleting } : {}),
  };
}

function conflictView(c: NodeConflict): NodeIdentityConflictView {
  return {
    node: c.node,
    engine: c.peer.engine,
    instance: c.peer.instance,
    registrations: c.registrations,
    adoptWith: c.adoptWith,
    message: conflictMessage(c),
  };
}

export function buildStatus(t: Telemetry, now: Date = new Date()): StatusDocument {
  const parts = t.parts();
  const bindings = parts === undefined ? [] : [...parts.bindings.list()].sort((a, b) => bindingKey(a).localeCompare(bindingKey(b)));
  return {
    apiVersion: STATUS_API_VERSION,
    generatedAt: now.toISOString(),
    startedAt: t.startedAt,
    running: parts !== undefined,
    mode: parts?.mode ?? "",
    node: parts?.node ?? "",
    sources: {
      bindings: { synced: parts?.bindings.synced() ?? false, count: bindings.length },
      docker: {
        synced: parts?.containers.synced() ?? false,
        containers: parts?.containers.list().length ?? 0,
        endpoints: endpointSummaries(parts?.endpoints ?? []),
      },
    },
    instance: parts?.instance ?? "",
    nodeIdentityConflicts: (parts?.endpoints ?? []).flatMap((e) => e.conflicts().map(conflictView)),
    loadBalancer: {
      ...(t.lb.lastValidation !== undefined ? { lastValidation: t.lb.lastValidation } : {}),
      ...(t.lb.lastReload !== undefined ? { lastReload: t.lb.lastReload } : {}),
    },
    bindings: parts === undefined ? [] : bindings.map((b) => bindingView(b, parts, now)),
    problems: (parts?.bindings.problems() ?? []).map((p) => ({ source: p.source, document: p.document, field: p.field, message: p.message })),
    recentErrors: t.errors.list(),
  };
}
