/**
 * Domain model shared by every stage of the pipeline
 * (sources -> workqueue -> reconcilers -> actuators). Pure data, no I/O.
 *
 * Owner metadata: every Consul registration dockbind makes carries the keys in
 * OWNER_META. Which registrations a controller may rewrite or deregister is
 * decided by one rule, ownership() in ownership.ts (node, Docker engine and
 * controller instance; external-dns ownership model).
 */

/** Consul service-meta keys dockbind writes. Underscores: Consul meta keys allow [A-Za-z0-9_-]. */
export const OWNER_META = {
  node: "dockbind_node",
  binding: "dockbind_binding",
  container: "dockbind_container",
  hash: "dockbind_hash",
  /** ID of the Docker engine (`docker info`) the registered container runs on. */
  engine: "dockbind_engine",
  /** The controller installation that made the registration (--instance-id). */
  instance: "dockbind_instance",
} as const;

export type HealthCheckType = "http" | "tcp" | "ttl" | "docker" | "none";
export type CheckStatus = "passing" | "warning" | "critical";

/** How bad a check status is: a higher rank is less healthy (the worst check decides an instance's status). */
export const STATUS_RANK: Readonly<Record<CheckStatus, number>> = { passing: 0, warning: 1, critical: 2 };
export type AddressMode = "published" | "internal";
export type Protocol = "tcp" | "udp";

export interface LabelSelectorRequirement {
  readonly key: string;
  readonly operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  readonly values?: readonly string[];
}

export interface LabelSelector {
  readonly matchLabels?: Readonly<Record<string, string>>;
  readonly matchExpressions?: readonly LabelSelectorRequirement[];
}

export interface ServiceSpec {
  readonly name: string;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  readonly datacenter?: string;
  /**
   * Ordered failover list (the local datacenter first; exclusive with `datacenter`): the load
   * balancer serves the first one with a passing instance (see failover.ts). Registration stays local.
   */
  readonly datacenters?: readonly string[];
}

/** Swarm services as backends: their running tasks. Both fields given: both must match. */
export interface SwarmBackendSpec {
  /** Swarm service name. */
  readonly service?: string;
  /** Label selector over the service's labels. */
  readonly selector?: LabelSelector;
}

export interface BackendsSpec {
  /** Container label selector; exactly one of `selector` and `swarm` is set (validated). */
  readonly selector?: LabelSelector;
  readonly swarm?: SwarmBackendSpec;
  /** Private (container-side) port. */
  readonly port: number;
  readonly protocol: Protocol;
  readonly addressMode: AddressMode;
  /** Published mode: address to advertise instead of the port binding's host IP (registrator's -ip). */
  readonly hostIP?: string;
  /** Internal mode: Docker network whose container IP is advertised. */
  readonly network?: string;
}

export interface HealthCheckSpec {
  readonly type: HealthCheckType;
  /** HTTP path, http type only. */
  readonly path: string;
  readonly interval: string;
  readonly timeout: string;
  readonly ttl: string;
  readonly deregisterCriticalAfter?: string;
  readonly initialStatus: CheckStatus;
  /** http/tcp: probe once before registering; passing => registered passing. Default false. */
  readonly probeBeforeRegister?: boolean;
}

export type LoadBalancerKind = "nginx" | "haproxy";
/** What the load balancer proxies: HTTP (default), or raw TCP / UDP streams (nginx `stream {}`, haproxy `mode tcp`; haproxy has no UDP). */
export type LoadBalancerProtocol = "http" | "tcp" | "udp";

/** One group of a traffic split: the instances whose container labels match, and their share of requests. */
export interface SplitGroup {
  readonly selector: LabelSelector;
  /** Share of requests in percent (0..100); the groups of a split add up to 100 (validated). */
  readonly percent: number;
}

export interface LoadBalancerSpec {
  readonly kind: LoadBalancerKind;
  /** Absent: http (the schema's default). Read it through lbProtocol(). */
  readonly protocol?: LoadBalancerProtocol;
  readonly listen: { readonly port: number; readonly address: string };
  readonly serverName?: string;
  /** Render only instances whose aggregated Consul health is passing. */
  readonly onlyPassing: boolean;
  /** Balancing method (haproxy: roundrobin / leastconn / source). */
  readonly method: "round_robin" | "least_conn" | "ip_hash";
  /** File name (no directory) inside --lb-output-dir (nginx, *.conf) or --haproxy-output-dir (haproxy, *.cfg). */
  readonly output: string;
  /** Optional template file name inside the controller's --template-dir. */
  readonly template?: string;
  /** TLS termination on `listen` (HTTPS); absent: plain HTTP. */
  readonly tls?: TlsSpec;
  /** Share of requests per group of instances, whatever the number of instances in each (see domain/traffic.ts). */
  readonly split?: readonly SplitGroup[];
}

/** Certificate and key files, relative to the controller's --tls-dir. */
export interface TlsSpec {
  /** PEM certificate (leaf first, then intermediates). */
  readonly certificate: string;
  /** PEM private key matching the certificate's public key. */
  readonly key: string;
  /** An extra plain-HTTP listener on `listen.address:port` answering 308 to the https URL. */
  readonly redirectHttp?: { readonly port: number };
}

/** Declared maintenance: the instances are put into Consul service maintenance (never rendered). */
export interface MaintenanceSpec {
  /** Sent to Consul as the maintenance reason (validated: printable, no `;`, quotes or braces). */
  readonly reason: string;
  /** Container names (or ID prefixes) in maintenance; absent = every instance of the binding. */
  readonly containers?: readonly string[];
}

/** The protocol a load balancer proxies (http when the spec leaves it out). */
export function lbProtocol(lb: Pick<LoadBalancerSpec, "protocol">): LoadBalancerProtocol {
  return lb.protocol ?? "http";
}

export interface ServiceBindingSpec {
  readonly service: ServiceSpec;
  readonly backends: BackendsSpec;
  readonly healthCheck: HealthCheckSpec;
  readonly loadBalancer?: LoadBalancerSpec;
  readonly maintenance?: MaintenanceSpec;
}

export interface ServiceBinding {
  readonly apiVersion: "dockbind.io/v1alpha1";
  readonly kind: "ServiceBinding";
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly generation?: number;
    readonly labels?: Readonly<Record<string, string>>;
  };
  readonly spec: ServiceBindingSpec;
}

/** Identity-only workqueue key of a binding: `<namespace>/<name>`. */
export type BindingKey = string;

export function bindingKey(b: Pick<ServiceBinding, "metadata">): BindingKey {
  return `${b.metadata.namespace}/${b.metadata.name}`;
}

/** A Consul service in a datacenter (absent: the agent's own). */
export interface ServiceRef {
  readonly service: string;
  readonly dc?: string;
}

/**
 * The Consul service (and datacenter) whose instances a binding registers and reports: with
 * `datacenters`, the first (local) one.
 */
export function serviceRef(b: Pick<ServiceBinding, "spec">): ServiceRef {
  const dc = b.spec.service.datacenter ?? b.spec.service.datacenters?.[0];
  return { service: b.spec.service.name, ...(dc !== undefined ? { dc } : {}) };
}

/** Every Consul service (and datacenter) a binding watches: one per `datacenters` entry, in order; else serviceRef(). */
export function serviceRefs(b: Pick<ServiceBinding, "spec">): ServiceRef[] {
  const { name, datacenters } = b.spec.service;
  return datacenters === undefined ? [serviceRef(b)] : datacenters.map((dc) => ({ service: name, dc }));
}

export interface PortMapping {
  readonly privatePort: number;
  readonly protocol: Protocol;
  /** Host side, absent when the port is only exposed. */
  readonly hostIP?: string;
  readonly hostPort?: number;
}

export type ContainerHealth = "none" | "starting" | "healthy" | "unhealthy";

/** A container as dockbind needs it, normalised from `docker inspect`. */
export interface ContainerInfo {
  readonly id: string;
  /** Without the leading slash. */
  readonly name: string;
  readonly image: string;
  readonly hostname: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Config.Env parsed to a map (registrator reads SERVICE_* from env too). */
  readonly env: Readonly<Record<string, string>>;
  readonly running: boolean;
  readonly health: ContainerHealth;
  /** Published and exposed ports. */
  readonly ports: readonly PortMapping[];
  /** Network name -> container IP on it (empty IPs are dropped). */
  readonly networks: Readonly<Record<string, string>>;
  /**
   * Set by the Docker source between a `kill`/`stop` event and the container's
   * death (at most --drain-delay): still running, but no longer a backend.
   */
  readonly draining?: boolean;
}

export interface CheckDefinition {
  readonly http?: string;
  readonly tcp?: string;
  readonly ttl?: string;
  readonly interval?: string;
  readonly timeout?: string;
  readonly deregisterCriticalServiceAfter?: string;
  readonly status?: CheckStatus;
  /** Not sent to Consul: the registrar runs this check once before registering (healthCheck.probeBeforeRegister). */
  readonly probeBeforeRegister?: boolean;
  /**
   * healthCheck.type docker (a TTL check the controller sets): the status the container's Docker
   * HEALTHCHECK state maps to now. Sent instead of `status` when registering and by every TTL
   * refresh; not part of the registration hash (a health change is a check update, not a re-registration).
   */
  readonly dockerHealth?: CheckStatus;
}

/** One Consul agent service registration that dockbind wants to exist. */
export interface Registration {
  readonly id: string;
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly tags: readonly string[];
  /** Includes OWNER_META keys (hash is filled by the planner). */
  readonly meta: Readonly<Record<string, string>>;
  readonly check?: CheckDefinition;
  /** Consul `Weights.Passing` (1..100; `Weights.Warning` is 1); absent: Consul's default weight 1. */
  readonly weight?: number;
}

/** A registration as read back from the Consul agent (`/v1/agent/services`). */
export interface RegisteredService {
  readonly id: string;
  readonly name: string;
  readonly address: string;
  readonly port: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  /** Consul `Weights.Passing` as read; absent: not sent (Consul's default is 1). */
  readonly weight?: number;
}

/** One instance of a service as `/v1/health/service/<name>` reports it. */
export interface HealthInstance {
  readonly serviceId: string;
  readonly node: string;
  readonly address: string;
  readonly port: number;
  readonly tags: readonly string[];
  /** Aggregated over node and service checks: worst status wins. */
  readonly status: CheckStatus;
  /** Set when Consul holds the instance (service) or its node in maintenance; such an instance is never rendered. */
  readonly maintenance?: InstanceMaintenance;
  /** Consul `Weights.Passing` as read (untrusted: validated before rendering); absent when Consul sent no weights. */
  readonly weight?: number;
  /** Service meta as read (untrusted); absent when Consul sent none. */
  readonly meta?: Readonly<Record<string, string>>;
}

/** One instance as two consecutive health answers of its service showed it, its registration changed in between. */
export interface EditedInstance {
  readonly before: HealthInstance;
  readonly after: HealthInstance;
}

/** Consul maintenance of an instance: the `_service_maintenance:<id>` or `_node_maintenance` check (its notes = the reason). */
export interface InstanceMaintenance {
  readonly scope: "service" | "node";
  /** Untrusted (any party may set it): shown escaped, never rendered into LB config. */
  readonly reason: string;
}
