/** Normalises `docker inspect` output into the domain's ContainerInfo. Pure. */
import type Dockerode from "dockerode";
import type { ContainerHealth, ContainerInfo, PortMapping, Protocol } from "../../domain/types.js";

function parseEnv(env: readonly string[] | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of env ?? []) {
    const i = kv.indexOf("=");
    if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

function health(state: Dockerode.ContainerInspectInfo["State"]): ContainerHealth {
  const s = state.Health?.Status;
  return s === "starting" || s === "healthy" || s === "unhealthy" ? s : "none";
}

function ports(info: Dockerode.ContainerInspectInfo): PortMapping[] {
  const out: PortMapping[] = [];
  // The engine sends null/absent for these on some containers, whatever the typings say.
  const loose = info as unknown as {
    NetworkSettings: { Ports?: Record<string, { HostIp: string; HostPort: string }[] | null> | null };
    Config: { ExposedPorts?: Record<string, object> | null };
  };
  const published = loose.NetworkSettings.Ports ?? {};
  const exposed = Object.keys(loose.Config.ExposedPorts ?? {});
  for (const spec of new Set([...Object.keys(published), ...exposed])) {
    const [p, proto] = spec.split("/");
    const privatePort = Number(p);
    const protocol: Protocol = proto === "udp" ? "udp" : "tcp";
    if (!Number.isInteger(privatePort) || (proto !== undefined && proto !== "tcp" && proto !== "udp")) continue;
    const bindings = published[spec] ?? [];
    if (bindings.length === 0) out.push({ privatePort, protocol });
    for (const b of bindings) {
      const hostPort = Number(b.HostPort);
      out.push({ privatePort, protocol, hostIP: b.HostIp, ...(Number.isInteger(hostPort) && hostPort > 0 ? { hostPort } : {}) });
    }
  }
  return out.sort((a, b) => a.privatePort - b.privatePort || (a.hostPort ?? 0) - (b.hostPort ?? 0));
}

function networks(info: Dockerode.ContainerInspectInfo): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, n] of Object.entries(info.NetworkSettings.Networks)) {
    if (n.IPAddress !== "") out[name] = n.IPAddress;
  }
  return out;
}

export function fromInspect(info: Dockerode.ContainerInspectInfo): ContainerInfo {
  return {
    id: info.Id,
    name: info.Name.replace(/^\//, ""),
    image: info.Config.Image,
    hostname: info.Config.Hostname,
    labels: { ...(info.Config.Labels as Record<string, string> | null) },
    env: parseEnv(info.Config.Env),
    running: info.State.Running && !info.State.Paused,
    health: health(info.State),
    ports: ports(info),
    networks: networks(info),
  };
}

/**
 * The list view of an inspected container: what fromListEntry makes of the
 * same container (no env, the short id as hostname). A watcher that builds
 * its cache from the list uses it for the containers it inspects, so one
 * unchanged container read either way compares equal (sameContainer).
 */
export function asListed(c: ContainerInfo): ContainerInfo {
  return { ...c, env: {}, hostname: c.id.slice(0, 12) };
}

/** Health from a list entry's Status text ("Up 5 minutes (healthy)", "(health: starting)"); "none" without a healthcheck. */
export function healthFromListStatus(status: string): ContainerHealth {
  const m = /\((healthy|unhealthy|health: starting)\)/.exec(status)?.[1];
  if (m === undefined) return "none";
  return m === "health: starting" ? "starting" : m === "healthy" ? "healthy" : "unhealthy";
}

/**
 * The same ContainerInfo from one `GET /containers/json` entry, without an
 * inspect round trip per container.
 * The list carries labels, ports, networks, state and health; it does NOT
 * carry Config.Env or Config.Hostname, so `env` is empty and `hostname` is the
 * short id: callers that need env (registrator-compat) must inspect.
 */
export function fromListEntry(c: Dockerode.ContainerInfo): ContainerInfo {
  const ports: PortMapping[] = [];
  for (const p of c.Ports) {
    const protocol: Protocol = p.Type === "udp" ? "udp" : "tcp";
    if (p.Type !== "tcp" && p.Type !== "udp") continue;
    const hostPort = p.PublicPort;
    // The engine omits IP for some bindings, whatever the typings say.
    const ip = (p as { IP?: string }).IP ?? "";
    ports.push({ privatePort: p.PrivatePort, protocol, ...(Number.isInteger(hostPort) && hostPort > 0 ? { hostIP: ip, hostPort } : {}) });
  }
  ports.sort((a, b) => a.privatePort - b.privatePort || (a.hostPort ?? 0) - (b.hostPort ?? 0));
  const networks: Record<string, string> = {};
  for (const [name, n] of Object.entries(c.NetworkSettings.Networks)) {
    if (n.IPAddress !== "") networks[name] = n.IPAddress;
  }
  const health = healthFromListStatus(c.Status);
  return {
    id: c.Id,
    name: (c.Names[0] ?? c.Id).replace(/^\//, ""),
    image: c.Image,
    hostname: c.Id.slice(0, 12),
    labels: { ...c.Labels },
    env: {},
    running: c.State === "running",
    health,
    ports,
    networks,
  };
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) if (!Object.hasOwn(b, k) || a[k] !== b[k]) return false;
  return true;
}

function samePorts(a: readonly PortMapping[], b: readonly PortMapping[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((p, i) => {
    const q = b[i];
    return q !== undefined && p.privatePort === q.privatePort && p.protocol === q.protocol && p.hostIP === q.hostIP && p.hostPort === q.hostPort;
  });
}

/**
 * True when `a` and `b` describe the same container state: every field of
 * ContainerInfo equal (records regardless of key order, ports in order;
 * `draining` absent equals false). Lets the Docker source keep the cached
 * object when a resync reads an unchanged container, so a resync of
 * unchanged containers retains nothing new and reports no change.
 */
export function sameContainer(a: ContainerInfo, b: ContainerInfo): boolean {
  return (
    a.id === b.id &&
    a.name === b.name &&
    a.image === b.image &&
    a.hostname === b.hostname &&
    a.running === b.running &&
    a.health === b.health &&
    (a.draining === true) === (b.draining === true) &&
    sameRecord(a.labels, b.labels) &&
    sameRecord(a.env, b.env) &&
    sameRecord(a.networks, b.networks) &&
    samePorts(a.ports, b.ports)
  );
}
