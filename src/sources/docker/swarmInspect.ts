/**
 * Normalises Swarm API objects (GET /services, /tasks, /nodes) into the
 * domain's SwarmService / SwarmTask / SwarmNode. Pure. The engine's JSON is
 * treated as untrusted `unknown`: missing or mistyped fields are dropped, never
 * guessed (dockerode types these as `any`).
 */
import { isIP } from "node:net";
import type { SwarmNode, SwarmService, SwarmTask, SwarmTaskPort } from "../../domain/swarm.js";

type Obj = Readonly<Record<string, unknown>>;

function obj(v: unknown): Obj {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {};
}

function arr(v: unknown): readonly unknown[] {
  return Array.isArray(v) ? v : [];
}

function str(v: unknown): string | undefined {
  return typeof v === "string" && v !== "" ? v : undefined;
}

function labels(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(obj(v))) if (typeof val === "string") out[k] = val;
  return out;
}

export function serviceFromApi(raw: unknown): SwarmService | undefined {
  const o = obj(raw);
  const spec = obj(o.Spec);
  const id = str(o.ID);
  const name = str(spec.Name);
  return id === undefined || name === undefined ? undefined : { id, name, labels: labels(spec.Labels) };
}

function port(raw: unknown): SwarmTaskPort | undefined {
  const p = obj(raw);
  const targetPort = p.TargetPort;
  const publishedPort = p.PublishedPort;
  if (typeof targetPort !== "number" || !Number.isInteger(targetPort) || typeof publishedPort !== "number" || !Number.isInteger(publishedPort))
    return undefined;
  if (targetPort < 1 || targetPort > 65535 || publishedPort < 0 || publishedPort > 65535) return undefined;
  return { protocol: p.Protocol === "udp" ? "udp" : "tcp", targetPort, publishedPort, publishMode: p.PublishMode === "host" ? "host" : "ingress" };
}

export function taskFromApi(raw: unknown): SwarmTask | undefined {
  const o = obj(raw);
  const status = obj(o.Status);
  const id = str(o.ID);
  const serviceId = str(o.ServiceID);
  if (id === undefined || serviceId === undefined) return undefined;
  const seen = new Set<string>();
  const ports: SwarmTaskPort[] = [];
  // The engine repeats host-mode entries; keep one of each.
  for (const p of arr(obj(status.PortStatus).Ports).map(port)) {
    if (p === undefined) continue;
    const k = `${p.protocol}/${p.targetPort}/${p.publishedPort}/${p.publishMode}`;
    if (!seen.has(k)) ports.push(p);
    seen.add(k);
  }
  const networks: Record<string, string> = {};
  for (const att of arr(o.NetworksAttachments)) {
    const a = obj(att);
    const name = str(obj(obj(a.Network).Spec).Name);
    const ip = str(arr(a.Addresses)[0])?.split("/")[0];
    if (name !== undefined && ip !== undefined && isIP(ip) !== 0) networks[name] = ip;
  }
  const slot = o.Slot;
  const containerId = str(obj(status.ContainerStatus).ContainerID);
  return {
    id,
    serviceId,
    ...(typeof slot === "number" && Number.isInteger(slot) && slot > 0 ? { slot } : {}),
    nodeId: str(o.NodeID) ?? "",
    desiredState: str(o.DesiredState) ?? "",
    state: str(status.State) ?? "",
    ...(containerId !== undefined ? { containerId } : {}),
    // Engine order kept: with IPv6 enabled a host-mode port is allocated per family, IPv4 (0.0.0.0) first.
    ports,
    networks,
  };
}

export function nodeFromApi(raw: unknown): SwarmNode | undefined {
  const o = obj(raw);
  const id = str(o.ID);
  if (id === undefined) return undefined;
  return { id, hostname: str(obj(o.Description).Hostname) ?? "", addr: str(obj(o.Status).Addr) ?? "" };
}
