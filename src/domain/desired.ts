/**
 * desired(binding, containers) -> the Consul registrations the binding asks
 * for. Pure: same input, same output (sorted by id). Containers that cannot
 * provide a usable address (port not published, not on the network) are
 * reported as `skipped` with a reason instead of being registered half-baked.
 */
import { isIP } from "node:net";
import { matchesSelector } from "./selector.js";
import { backendTraffic } from "./traffic.js";
import {
  OWNER_META,
  bindingKey,
  type CheckDefinition,
  type CheckStatus,
  type ContainerHealth,
  type ContainerInfo,
  type HealthCheckSpec,
  type Registration,
  type ServiceBinding,
} from "./types.js";

export interface DesiredOptions {
  /** This controller's node identity (owner of what it registers). */
  readonly node: string;
  /** Default advertised address in published mode when the binding has no hostIP and the port is bound to a wildcard. */
  readonly hostIP: string;
}

export interface SkippedBackend {
  readonly containerId: string;
  readonly reason: string;
  /** CamelCase cause for status reasons, when the skip is a rule rather than a missing address (e.g. NoDockerHealthcheck). */
  readonly code?: string;
}

/** healthCheck.type docker: a selected container without a Docker HEALTHCHECK is not registered. */
export const NO_DOCKER_HEALTHCHECK = "NoDockerHealthcheck";

/**
 * healthCheck.type docker: the Consul status a container's Docker health maps to (healthy → passing,
 * unhealthy → critical, starting → initialStatus); undefined without a HEALTHCHECK (not registered).
 */
export function dockerCheckStatus(health: ContainerHealth, initialStatus: CheckStatus): CheckStatus | undefined {
  switch (health) {
    case "healthy":
      return "passing";
    case "unhealthy":
      return "critical";
    case "starting":
      return initialStatus;
    case "none":
      return undefined;
  }
}

/** Why `c` is not registered by a healthCheck.type docker binding, or undefined when it has a HEALTHCHECK (or the type is another). */
export function dockerHealthSkip(hc: HealthCheckSpec, c: Pick<ContainerInfo, "id" | "name" | "health">): SkippedBackend | undefined {
  if (hc.type !== "docker" || c.health !== "none") return undefined;
  return {
    containerId: c.id,
    code: NO_DOCKER_HEALTHCHECK,
    reason: `container ${c.name} has no Docker HEALTHCHECK (healthCheck.type docker registers only containers with one)`,
  };
}

export interface DesiredResult {
  readonly registrations: readonly Registration[];
  readonly skipped: readonly SkippedBackend[];
}

/** Deterministic, restart-stable service ID: service, node, binding and container identity. */
export function serviceId(binding: ServiceBinding, node: string, containerId: string): string {
  const { namespace, name } = binding.metadata;
  return `dockbind:${node}:${namespace}:${name}:${containerId.slice(0, 12)}:${binding.spec.backends.port}`;
}

const WILDCARD = new Set(["", "0.0.0.0", "::"]);

function endpoint(binding: ServiceBinding, c: ContainerInfo, opts: DesiredOptions): { address: string; port: number } | { skip: string } {
  const b = binding.spec.backends;
  if (b.addressMode === "internal") {
    const nets = Object.keys(c.networks).sort();
    const net = b.network ?? nets[0];
    const ip = net === undefined ? undefined : c.networks[net];
    if (ip === undefined) return { skip: `container is not attached to network ${b.network ?? "(any)"}` };
    return { address: ip, port: b.port };
  }
  const mapping = c.ports.find((p) => p.privatePort === b.port && p.protocol === b.protocol && p.hostPort !== undefined);
  if (mapping?.hostPort === undefined) return { skip: `port ${b.port}/${b.protocol} is not published` };
  const bound = mapping.hostIP ?? "";
  const address = b.hostIP ?? (WILDCARD.has(bound) ? opts.hostIP : bound);
  if (isIP(address) === 0) return { skip: `published host IP ${JSON.stringify(address)} is not an IP address` };
  return { address, port: mapping.hostPort };
}

function hostPort(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * The Consul check for one backend, or undefined for type none. Type docker: a TTL check whose
 * `dockerHealth` is the status `health` (the backend container's Docker health) maps to.
 */
export function checkFor(hc: HealthCheckSpec, address: string, port: number, health: ContainerHealth = "none"): CheckDefinition | undefined {
  const common = {
    status: hc.initialStatus,
    ...(hc.deregisterCriticalAfter !== undefined ? { deregisterCriticalServiceAfter: hc.deregisterCriticalAfter } : {}),
  };
  const probe = hc.probeBeforeRegister === true ? { probeBeforeRegister: true } : {};
  switch (hc.type) {
    case "http":
      return { http: `http://${hostPort(address, port)}${hc.path}`, interval: hc.interval, timeout: hc.timeout, ...common, ...probe };
    case "tcp":
      return { tcp: hostPort(address, port), interval: hc.interval, timeout: hc.timeout, ...common, ...probe };
    case "ttl":
      return { ttl: hc.ttl, ...common };
    case "docker": {
      const dockerHealth = dockerCheckStatus(health, hc.initialStatus);
      return { ttl: hc.ttl, ...common, ...(dockerHealth !== undefined ? { dockerHealth } : {}) };
    }
    case "none":
      return undefined;
  }
}

/**
 * The registration of one backend of `binding` at `ep`: the binding's service
 * name, tags, meta and health check, plus owner meta (`dockbind_binding` is
 * added here; callers give node, container and any source-specific keys),
 * `health`: the backend container's Docker health (healthCheck.type docker),
 * and the backend's `weight` (traffic.ts). Shared by containers and Swarm tasks.
 */
export function backendRegistration(
  binding: ServiceBinding,
  id: string,
  ep: { readonly address: string; readonly port: number },
  ownerMeta: Readonly<Record<string, string>>,
  health: ContainerHealth = "none",
  weight?: number,
): Registration {
  const { service, healthCheck } = binding.spec;
  const check = checkFor(healthCheck, ep.address, ep.port, health);
  return {
    id,
    name: service.name,
    address: ep.address,
    port: ep.port,
    tags: [...service.tags],
    meta: { ...service.meta, [OWNER_META.binding]: bindingKey(binding), ...ownerMeta },
    ...(check !== undefined ? { check } : {}),
    ...(weight !== undefined ? { weight } : {}),
  };
}

export function desiredForBinding(binding: ServiceBinding, containers: readonly ContainerInfo[], opts: DesiredOptions): DesiredResult {
  const registrations: Registration[] = [];
  const skipped: SkippedBackend[] = [];
  for (const c of containers) {
    const selector = binding.spec.backends.selector;
    if (selector === undefined || !c.running || c.draining === true || !matchesSelector(selector, c.labels)) continue;
    const noHealthcheck = dockerHealthSkip(binding.spec.healthCheck, c);
    if (noHealthcheck !== undefined) {
      skipped.push(noHealthcheck);
      continue;
    }
    const traffic = backendTraffic(binding, c.labels);
    if ("skip" in traffic) {
      skipped.push({ containerId: c.id, reason: traffic.skip });
      continue;
    }
    const ep = endpoint(binding, c, opts);
    if ("skip" in ep) {
      skipped.push({ containerId: c.id, reason: ep.skip });
      continue;
    }
    const ownerMeta = { ...traffic.meta, [OWNER_META.node]: opts.node, [OWNER_META.container]: c.id };
    registrations.push(backendRegistration(binding, serviceId(binding, opts.node, c.id), ep, ownerMeta, c.health, traffic.weight));
  }
  registrations.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { registrations, skipped };
}
