/**
 * Consul's JSON (the `consul` package hands it over untyped) -> domain types,
 * and domain types -> the package's request bodies. Consul data is untrusted:
 * every field is checked for its type, a missing or mistyped field becomes
 * an empty value ("" / 0 / []), and a check status other than passing or
 * warning counts as critical. Pure functions; none throws.
 */
import { STATUS_RANK, type CheckStatus, type HealthInstance, type InstanceMaintenance, type RegisteredService, type Registration } from "../../domain/types.js";
import type { KvEntry } from "../../ports/consul.js";

type Json = Record<string, unknown>;

/** The response half of the package's `[response, body]` answers (ctx.includeResponse). */
export interface RawResponse {
  readonly headers: Record<string, string | undefined>;
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const strArray = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
const strMap = (v: unknown): Record<string, string> =>
  v !== null && typeof v === "object" ? Object.fromEntries(Object.entries(v as Json).filter((e): e is [string, string] => typeof e[1] === "string")) : {};
const obj = (v: unknown): Json => (v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});

/** The worst status of a health entry's checks; no checks = passing. */
function aggregate(checks: unknown): CheckStatus {
  let worst: CheckStatus = "passing";
  for (const c of Array.isArray(checks) ? checks : []) {
    const s = str(obj(c).Status);
    const status: CheckStatus = s === "passing" || s === "warning" ? s : "critical";
    if (STATUS_RANK[status] > STATUS_RANK[worst]) worst = status;
  }
  return worst;
}

/** Consul's maintenance check IDs: `_service_maintenance:<service ID>` and `_node_maintenance`. */
const SERVICE_MAINTENANCE = "_service_maintenance:";
const NODE_MAINTENANCE = "_node_maintenance";

/**
 * Maintenance of a health entry: Consul shows it as a critical check with CheckID
 * `_service_maintenance:<id>` (the instance) or `_node_maintenance` (its node); Notes = the reason.
 * Node maintenance wins (it covers every instance of the node).
 */
function maintenanceOf(checks: unknown, serviceId: string): InstanceMaintenance | undefined {
  let found: InstanceMaintenance | undefined;
  for (const c of Array.isArray(checks) ? checks : []) {
    const check = obj(c);
    const id = str(check.CheckID);
    if (id === NODE_MAINTENANCE) return { scope: "node", reason: str(check.Notes) };
    if (id === SERVICE_MAINTENANCE + serviceId && serviceId !== "") found = { scope: "service", reason: str(check.Notes) };
  }
  return found;
}

/** GET /v1/agent/checks -> service ID -> reason (Notes) of its `_service_maintenance:<id>` check. */
export function decodeAgentMaintenance(raw: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const [id, v] of Object.entries(obj(raw))) {
    if (!id.startsWith(SERVICE_MAINTENANCE)) continue;
    const serviceId = id.slice(SERVICE_MAINTENANCE.length);
    if (serviceId !== "") out.set(serviceId, str(obj(v).Notes));
  }
  return out;
}

/** GET /v1/kv/:prefix?recurse as the package decodes it (Values base64-decoded; nothing for 404) -> key/value pairs. */
export function decodeKvList(body: unknown): { key: string; value: string }[] {
  return (Array.isArray(body) ? body : []).map((e) => ({ key: str(obj(e).Key), value: str(obj(e).Value) })).filter((e) => e.key !== "");
}

/** X-Consul-Index of an answer; "0" when Consul sent none. */
export function responseIndex(response: RawResponse): string {
  return response.headers["x-consul-index"] ?? "0";
}

/** GET /v1/agent/services (an object keyed by service ID) -> services. */
export function decodeAgentServices(raw: unknown): RegisteredService[] {
  return Object.values(obj(raw)).map((v) => {
    const s = obj(v);
    const passing = obj(s.Weights).Passing;
    return {
      id: str(s.ID),
      name: str(s.Service),
      address: str(s.Address),
      port: num(s.Port),
      tags: strArray(s.Tags),
      meta: strMap(s.Meta),
      ...(typeof passing === "number" ? { weight: passing } : {}),
    };
  });
}

/** GET /v1/health/service/:name -> instances; the service address falls back to the node's. */
export function decodeHealthEntries(body: unknown): HealthInstance[] {
  return (Array.isArray(body) ? body : []).map((entry): HealthInstance => {
    const e = obj(entry);
    const svc = obj(e.Service);
    const node = obj(e.Node);
    const address = str(svc.Address) !== "" ? str(svc.Address) : str(node.Address);
    const serviceId = str(svc.ID);
    const maintenance = maintenanceOf(e.Checks, serviceId);
    const weights = svc.Weights === undefined ? undefined : obj(svc.Weights);
    return {
      serviceId,
      node: str(node.Node),
      address,
      port: num(svc.Port),
      tags: strArray(svc.Tags),
      status: aggregate(e.Checks),
      ...(maintenance !== undefined ? { maintenance } : {}),
      ...(weights !== undefined ? { weight: num(weights.Passing) } : {}),
      ...(svc.Meta !== undefined && svc.Meta !== null ? { meta: strMap(svc.Meta) } : {}),
    };
  });
}

/** GET /v1/kv/:key as the package decodes it (one entry, Value already base64-decoded, or nothing). */
export function decodeKvEntry(body: unknown, response: RawResponse): KvEntry {
  const entry = obj(body);
  const value = typeof entry.Value === "string" ? entry.Value : undefined;
  const session = typeof entry.Session === "string" && entry.Session !== "" ? entry.Session : undefined;
  return { ...(value !== undefined ? { value } : {}), ...(session !== undefined ? { session } : {}), index: responseIndex(response) };
}

/** PUT /v1/session/create -> the session ID; "" when the answer has none. */
export function decodeSessionId(body: unknown): string {
  return str(obj(body).ID);
}

/** PUT /v1/session/renew/:id -> true when the session still exists (a non-empty list). */
export function decodeRenewed(body: unknown): boolean {
  return Array.isArray(body) && body.length > 0;
}

/**
 * A Registration as the body of PUT /v1/agent/service/register (Consul's own field names; absent fields
 * left out). `weight` becomes `Weights: {Passing: weight, Warning: 1}`.
 */
export function encodeRegistration(r: Registration): Json {
  const c = r.check;
  const check =
    c === undefined
      ? undefined
      : {
          ...(c.http !== undefined ? { HTTP: c.http } : {}),
          ...(c.tcp !== undefined ? { TCP: c.tcp } : {}),
          ...(c.ttl !== undefined ? { TTL: c.ttl } : {}),
          ...(c.interval !== undefined ? { Interval: c.interval } : {}),
          ...(c.timeout !== undefined ? { Timeout: c.timeout } : {}),
          ...(c.status !== undefined ? { Status: c.status } : {}),
          ...(c.deregisterCriticalServiceAfter !== undefined ? { DeregisterCriticalServiceAfter: c.deregisterCriticalServiceAfter } : {}),
        };
  return {
    ID: r.id,
    Name: r.name,
    Tags: [...r.tags],
    Meta: { ...r.meta },
    Address: r.address,
    Port: r.port,
    ...(check !== undefined ? { Check: check } : {}),
    ...(r.weight !== undefined ? { Weights: { Passing: r.weight, Warning: 1 } } : {}),
  };
}
