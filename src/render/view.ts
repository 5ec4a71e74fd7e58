/**
 * Turns render input into a fully validated, deterministic view. Pure and
 * synchronous: no I/O, no clock, no randomness; same input => deep-equal output
 * regardless of instance order.
 *
 * Every string in the returned view has passed a safety.ts validator (or is
 * sanitizeComment output), which is what lets both the default renderer and
 * custom mustache templates emit values verbatim.
 */
import { inMaintenance } from "../domain/maintenance.js";
import { isValidWeight, MAX_WEIGHT, MIN_WEIGHT, SPLIT_META, splitGroupFromMeta } from "../domain/traffic.js";
import type { HealthInstance, LoadBalancerSpec } from "../domain/types.js";
import { RenderError } from "./errors.js";
import { formatHostForNginx, isSafeAddress, isSafeName, isSafePort, isSafeServerName, sanitizeComment } from "./safety.js";
import { serverWeights } from "./weights.js";
import { isIPv4 } from "node:net";

export interface RenderedServer {
  /** Raw validated IP (no brackets). */
  readonly address: string;
  readonly port: number;
  /** Server weight as rendered (weights.ts) when it is not 1, the load balancers' default (then absent, and not written). */
  readonly weight?: number;
  /** Split group index (loadBalancer.split), when the binding has a split. */
  readonly group?: number;
}

export interface RejectedInstance {
  readonly serviceId: string;
  readonly reason: string;
}

/** One server as a template sees it. */
export interface TemplateServer {
  /** nginx host form: IPv6 already in brackets, so `{{address}}:{{port}}` is always valid. */
  readonly address: string;
  readonly port: number;
  /** sanitizeComment(serviceId) of the first (sorted) instance at this address:port; may be "". */
  readonly id: string;
  /** Server weight (integer 1..256, see weights.ts); 1 is the default, which the built-in templates do not write. */
  readonly weight: number;
  /** True when weight is not 1 (`{{#weighted}} weight={{weight}}{{/weighted}}`). */
  readonly weighted: boolean;
}

/**
 * The documented view handed to custom mustache templates (and used by the
 * default renderer). All values are pre-validated; mustache escaping is off.
 */
export interface NginxTemplateView {
  /** sanitizeComment(bindingKey), e.g. `default/web`. */
  readonly bindingKey: string;
  /** Consul service name (DNS label). */
  readonly service: string;
  /** `dockbind_<service with - replaced by _>`. */
  readonly upstream: string;
  /** nginx host form (IPv6 bracketed). */
  readonly listenAddress: string;
  readonly listenPort: number;
  /** "" when the spec has none (falsy: `{{#serverName}}` skips). */
  readonly serverName: string;
  readonly method: LoadBalancerSpec["method"];
  /** `least_conn;`, `ip_hash;` or "" for round_robin. */
  readonly methodDirective: string;
  /** Sorted by (address, port), deduplicated. */
  readonly servers: readonly TemplateServer[];
  readonly hasServers: boolean;
  readonly noServers: boolean;
}

export interface ViewInput {
  readonly bindingKey: string;
  readonly serviceName: string;
  readonly lb: LoadBalancerSpec;
  readonly instances: readonly HealthInstance[];
}

export interface BuiltView {
  readonly view: NginxTemplateView;
  readonly servers: readonly RenderedServer[];
  readonly rejected: readonly RejectedInstance[];
}

const METHOD_DIRECTIVE: Readonly<Record<LoadBalancerSpec["method"], string>> = {
  round_robin: "",
  least_conn: "least_conn;",
  ip_hash: "ip_hash;",
};

const BINDING_KEY = /^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)\/([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)$/;

/**
 * Upstream name for a binding key `<namespace>/<name>`. Keyed by binding, not
 * service: nginx upstream names are global across included files, so two
 * bindings rendering the same service must not collide. DNS labels contain no
 * `_`, so `dockbind_<ns>_<name>` is unambiguous. Throws RenderError for a key
 * that is not two DNS labels.
 */
function upstreamName(bindingKey: string): string {
  const m = BINDING_KEY.exec(bindingKey);
  if (m === null) throw new RenderError("InvalidSpec", `binding key ${JSON.stringify(bindingKey).slice(0, 80)} is not <namespace>/<name> DNS labels`);
  return `dockbind_${m[1] ?? ""}_${m[2] ?? ""}`;
}

/** Health filter: onlyPassing => passing; else passing + warning. Critical never (nor an instance in maintenance, see buildView). */
function healthEligible(status: HealthInstance["status"], onlyPassing: boolean): boolean {
  return status === "passing" || (!onlyPassing && status === "warning");
}

function rejectReason(i: HealthInstance): string | undefined {
  if (!isSafeAddress(i.address)) return "address is not a literal IPv4/IPv6 address";
  if (!isSafePort(i.port)) return "port is not an integer in 1..65535";
  if (i.weight !== undefined && !isValidWeight(i.weight)) return `weight is not an integer in ${MIN_WEIGHT}..${MAX_WEIGHT}`;
  return undefined;
}

/** The split group of an instance: undefined without a split, "none" when its meta names no group of the split. */
function groupOf(i: HealthInstance, split: LoadBalancerSpec["split"]): number | "none" | undefined {
  if (split === undefined) return undefined;
  return splitGroupFromMeta(split, i.meta) ?? "none";
}

/** Code-unit order, never locale-dependent. */
function cmpStr(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function cmpAddress(a: string, b: string): number {
  const a4 = isIPv4(a);
  const b4 = isIPv4(b);
  if (a4 !== b4) return a4 ? -1 : 1;
  if (a4) {
    const pa = a.split(".").map(Number);
    const pb = b.split(".").map(Number);
    for (let k = 0; k < 4; k++) {
      const d = (pa[k] ?? 0) - (pb[k] ?? 0);
      if (d !== 0) return d;
    }
    return 0;
  }
  return cmpStr(a.toLowerCase(), b.toLowerCase()) || cmpStr(a, b);
}

interface Candidate {
  readonly address: string;
  readonly port: number;
  readonly serviceId: string;
  readonly weight: number;
  readonly group?: number;
}

function cmpCandidate(a: Candidate, b: Candidate): number {
  return cmpAddress(a.address, b.address) || a.port - b.port || cmpStr(a.serviceId, b.serviceId);
}

function validateSpec(input: ViewInput): void {
  const { serviceName, lb } = input;
  if (!isSafeName(serviceName)) throw new RenderError("InvalidSpec", "service name is not a DNS label");
  if (!isSafeAddress(lb.listen.address)) throw new RenderError("InvalidSpec", "listen.address is not an IP");
  if (!isSafePort(lb.listen.port)) throw new RenderError("InvalidSpec", "listen.port is not in 1..65535");
  if (lb.serverName !== undefined && !isSafeServerName(lb.serverName)) {
    throw new RenderError("InvalidSpec", "serverName is not a hostname");
  }
  if (!Object.hasOwn(METHOD_DIRECTIVE, lb.method)) throw new RenderError("InvalidSpec", "unknown lb method");
  const percents = (lb.split ?? []).map((g) => g.percent);
  if (lb.split !== undefined && (percents.some((p) => !Number.isInteger(p) || p < 0 || p > 100) || percents.reduce((a, p) => a + p, 0) !== 100)) {
    throw new RenderError("InvalidSpec", "split percents are not integers 0..100 adding up to 100");
  }
}

/**
 * Filters by health, drops (and reports) instances failing validation, sorts
 * and dedupes by (address, port). Only health-eligible instances are
 * validated, so `rejected` lists exactly the instances that would otherwise
 * have been rendered.
 *
 * @throws RenderError("InvalidSpec") when a binding-level value is unsafe.
 */
export function buildView(input: ViewInput): BuiltView {
  validateSpec(input);
  const { lb } = input;
  const rejected: RejectedInstance[] = [];
  const candidates: Candidate[] = [];
  for (const inst of input.instances) {
    if (!healthEligible(inst.status, lb.onlyPassing) || inMaintenance(inst)) continue;
    const reason = rejectReason(inst);
    const group = groupOf(inst, lb.split);
    if (reason !== undefined || group === "none") {
      rejected.push({ serviceId: inst.serviceId, reason: reason ?? `meta ${SPLIT_META} names no group of loadBalancer.split` });
      continue;
    }
    candidates.push({ address: inst.address, port: inst.port, serviceId: inst.serviceId, weight: inst.weight ?? 1, ...(group !== undefined ? { group } : {}) });
  }
  candidates.sort(cmpCandidate);
  rejected.sort((a, b) => cmpStr(a.serviceId, b.serviceId) || cmpStr(a.reason, b.reason));

  const unique = candidates.filter((c, k) => k === 0 || c.address !== candidates[k - 1]?.address || c.port !== candidates[k - 1]?.port);
  const weights = serverWeights(unique, lb.split);
  const servers: RenderedServer[] = [];
  const viewServers: TemplateServer[] = [];
  unique.forEach((c, k) => {
    const weight = weights[k] ?? 0;
    if (weight === 0) return;
    servers.push({ address: c.address, port: c.port, ...(weight !== 1 ? { weight } : {}), ...(c.group !== undefined ? { group: c.group } : {}) });
    viewServers.push({ address: formatHostForNginx(c.address), port: c.port, id: sanitizeComment(c.serviceId), weight, weighted: weight !== 1 });
  });

  const view: NginxTemplateView = {
    bindingKey: sanitizeComment(input.bindingKey),
    service: input.serviceName,
    upstream: upstreamName(input.bindingKey),
    listenAddress: formatHostForNginx(lb.listen.address),
    listenPort: lb.listen.port,
    serverName: lb.serverName ?? "",
    method: lb.method,
    methodDirective: METHOD_DIRECTIVE[lb.method],
    servers: viewServers,
    hasServers: viewServers.length > 0,
    noServers: viewServers.length === 0,
  };
  return { view, servers, rejected };
}
