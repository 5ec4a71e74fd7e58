/**
 * Swarm services as backends. Pure: the Swarm source hands
 * a snapshot of services, tasks and nodes; desiredForSwarmBinding turns the
 * RUNNING tasks of the selected services into Consul registrations.
 *
 * - A task is a backend only while both its desired state and its observed
 *   state are `running`: a task the orchestrator is shutting down (scale down,
 *   rolling update, service removal) has DesiredState shutdown/remove before
 *   its container is stopped, so it leaves Consul first.
 * - A task whose container the Docker source marks draining (kill/stop event
 *   seen) is dropped too.
 * - Service IDs: `dockbind:<node>:<namespace>:<binding>:<task-id>:<port>`,
 *   deterministic for the task's lifetime (start-first updates run two tasks
 *   in one slot, so the slot alone is not unique).
 */
import { isIP } from "node:net";
import { backendTraffic } from "./traffic.js";
import { backendRegistration, dockerHealthSkip, type DesiredOptions, type DesiredResult, type SkippedBackend } from "./desired.js";
import { matchesSelector } from "./selector.js";
import { OWNER_META, type ContainerHealth, type ContainerInfo, type Protocol, type Registration, type ServiceBinding, type SwarmBackendSpec } from "./types.js";

/** Service meta keys written on Swarm registrations (besides OWNER_META). */
const SWARM_META = {
  service: "dockbind_swarm_service",
  task: "dockbind_swarm_task",
} as const;

export interface SwarmService {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
}

export interface SwarmTaskPort {
  readonly protocol: Protocol;
  readonly targetPort: number;
  readonly publishedPort: number;
  readonly publishMode: "host" | "ingress";
}

export interface SwarmTask {
  readonly id: string;
  readonly serviceId: string;
  /** Replicated services only. */
  readonly slot?: number;
  readonly nodeId: string;
  readonly desiredState: string;
  /** Observed state (Status.State). */
  readonly state: string;
  readonly containerId?: string;
  /** Status.PortStatus.Ports (host-mode published ports of this task). */
  readonly ports: readonly SwarmTaskPort[];
  /** Network name -> task IP on it (NetworksAttachments, prefix length stripped). */
  readonly networks: Readonly<Record<string, string>>;
}

export interface SwarmNode {
  readonly id: string;
  readonly hostname: string;
  /** Status.Addr: the node's address as the manager sees it. */
  readonly addr: string;
}

export interface SwarmSnapshot {
  readonly services: readonly SwarmService[];
  readonly tasks: readonly SwarmTask[];
  readonly nodes: readonly SwarmNode[];
}

/** What one Docker endpoint knows of its swarm: a snapshot, or why there is none. */
export type SwarmView =
  | { readonly kind: "ready"; readonly snapshot: SwarmSnapshot }
  | {
      readonly kind: "unavailable";
      /** SwarmServedByOtherEndpoint: another Docker endpoint of this controller manages the same swarm (dockerEndpoint.ts). */
      readonly reason: "SwarmNotActive" | "SwarmNotManager" | "SwarmUnreachable" | "SwarmNotSynced" | "SwarmServedByOtherEndpoint";
      readonly message: string;
    };

export interface SwarmDesiredOptions extends DesiredOptions {
  /** True for a container the Docker source marks draining (kill/stop seen before die). */
  readonly isDraining?: (containerId: string) => boolean;
  /**
   * The task's container when it runs on this engine: its real IPv4 port
   * binding wins over Status.PortStatus (which lists one entry per address
   * family without saying which).
   */
  readonly localContainer?: (containerId: string) => ContainerInfo | undefined;
}

/** True when `svc` is selected by the binding's swarm spec (service name and/or labels, both when both are given). */
export function swarmServiceMatches(spec: SwarmBackendSpec, svc: Pick<SwarmService, "name" | "labels">): boolean {
  if (spec.service === undefined && spec.selector === undefined) return false;
  if (spec.service !== undefined && spec.service !== svc.name) return false;
  return spec.selector === undefined || matchesSelector(spec.selector, svc.labels);
}

/** Deterministic, restart-stable service ID for one task. */
function swarmServiceId(binding: ServiceBinding, node: string, taskId: string): string {
  const { namespace, name } = binding.metadata;
  return `dockbind:${node}:${namespace}:${name}:${taskId}:${binding.spec.backends.port}`;
}

const UNUSABLE_NODE_ADDR = new Set(["", "0.0.0.0", "::"]);

function isLoopback(ip: string): boolean {
  return ip.startsWith("127.") || ip === "::1";
}

function endpoint(
  binding: ServiceBinding,
  task: SwarmTask,
  nodes: ReadonlyMap<string, SwarmNode>,
  opts: SwarmDesiredOptions,
): { address: string; port: number } | { skip: string } {
  const b = binding.spec.backends;
  if (b.addressMode === "internal") {
    const nets = Object.keys(task.networks)
      .filter((n) => n !== "ingress")
      .sort();
    const net = b.network ?? nets[0];
    const ip = net === undefined ? undefined : task.networks[net];
    if (ip === undefined || isIP(ip) === 0) return { skip: `task is not attached to network ${b.network ?? "(any swarm-scope network but ingress)"}` };
    return { address: ip, port: b.port };
  }
  const local = task.containerId === undefined ? undefined : opts.localContainer?.(task.containerId);
  const bound = local?.ports.find((p) => p.privatePort === b.port && p.protocol === b.protocol && p.hostIP === "0.0.0.0" && p.hostPort !== undefined)?.hostPort;
  const fromStatus = task.ports.find((p) => p.targetPort === b.port && p.protocol === b.protocol && p.publishMode === "host" && p.publishedPort > 0);
  const published = bound !== undefined ? { publishedPort: bound } : fromStatus;
  if (published === undefined)
    return { skip: `port ${b.port}/${b.protocol} is not published in host mode (the ingress routing mesh is not a per-task address)` };
  // The node's address as the swarm sees it; a wildcard or loopback address there means "this host": --host-ip.
  const nodeAddr = nodes.get(task.nodeId)?.addr ?? "";
  const address = b.hostIP ?? (UNUSABLE_NODE_ADDR.has(nodeAddr) || isLoopback(nodeAddr) ? opts.hostIP : nodeAddr);
  if (isIP(address) === 0) return { skip: `node address ${JSON.stringify(address)} is not an IP address` };
  return { address, port: published.publishedPort };
}

/**
 * healthCheck.type docker: the Docker health of the task's container, read on this engine (the
 * only one whose health_status events this node sees). A task whose container runs elsewhere, or
 * has no HEALTHCHECK, is not registered.
 */
function taskHealth(binding: ServiceBinding, task: SwarmTask, opts: SwarmDesiredOptions): { health: ContainerHealth } | { skip: SkippedBackend } {
  if (binding.spec.healthCheck.type !== "docker") return { health: "none" };
  const local = task.containerId === undefined ? undefined : opts.localContainer?.(task.containerId);
  if (local === undefined) {
    const reason = "task's container does not run on this controller's Docker engine: its Docker HEALTHCHECK state cannot be read (healthCheck.type docker)";
    return { skip: { containerId: task.containerId ?? task.id, code: "DockerHealthUnknown", reason } };
  }
  const skip = dockerHealthSkip(binding.spec.healthCheck, local);
  return skip !== undefined ? { skip } : { health: local.health };
}

export function desiredForSwarmBinding(binding: ServiceBinding, snapshot: SwarmSnapshot, opts: SwarmDesiredOptions): DesiredResult {
  const spec = binding.spec.backends.swarm;
  if (spec === undefined) return { registrations: [], skipped: [] };
  const services = new Map(snapshot.services.filter((s) => swarmServiceMatches(spec, s)).map((s) => [s.id, s]));
  const nodes = new Map(snapshot.nodes.map((n) => [n.id, n]));
  const registrations: Registration[] = [];
  const skipped: SkippedBackend[] = [];
  for (const task of snapshot.tasks) {
    const svc = services.get(task.serviceId);
    if (svc === undefined || task.desiredState !== "running" || task.state !== "running") continue;
    if (task.containerId !== undefined && opts.isDraining?.(task.containerId) === true) continue;
    const health = taskHealth(binding, task, opts);
    if ("skip" in health) {
      skipped.push(health.skip);
      continue;
    }
    const traffic = backendTraffic(binding, svc.labels);
    if ("skip" in traffic) {
      skipped.push({ containerId: task.containerId ?? task.id, reason: traffic.skip });
      continue;
    }
    const ep = endpoint(binding, task, nodes, opts);
    if ("skip" in ep) {
      skipped.push({ containerId: task.containerId ?? task.id, reason: ep.skip });
      continue;
    }
    registrations.push(
      backendRegistration(
        binding,
        swarmServiceId(binding, opts.node, task.id),
        ep,
        {
          ...traffic.meta,
          [OWNER_META.node]: opts.node,
          ...(task.containerId !== undefined ? { [OWNER_META.container]: task.containerId } : {}),
          [SWARM_META.service]: svc.name,
          [SWARM_META.task]: task.id,
        },
        health.health,
        traffic.weight,
      ),
    );
  }
  registrations.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { registrations, skipped };
}
