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
  const loose = info as unknown as { NetworkSettings: { Ports?: Record<string, { HostIp: string; HostPort: string }[] | null> | null }; Config: { ExposedPorts?: Record<string, object> | null } };
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
