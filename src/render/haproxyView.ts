/**
 * The haproxy view: built on the nginx view (view.ts), which already filters
 * by health, validates every value with safety.ts, sorts and dedupes. Pure and
 * synchronous: same input => deep-equal output regardless of instance order.
 *
 * Every string in the returned view is either validated (IP literals, DNS
 * labels, integers) or derived from validated values through fixed
 * character maps, so templates may emit values verbatim: none contains a
 * space, `#`, quote, backslash or newline (haproxy's config syntax).
 */
import type { LoadBalancerSpec } from "../domain/types.js";
import { RenderError } from "./errors.js";
import { buildView, type RejectedInstance, type RenderedServer, type ViewInput } from "./view.js";

/** One `server` line as a template sees it. */
export interface HaproxyTemplateServer {
  /** haproxy server name, unique in the backend: `srv_<address with non [A-Za-z0-9.] as _>_<port>`. */
  readonly name: string;
  /** IPv4 as is, IPv6 in brackets (haproxy accepts `[::1]:80`). */
  readonly address: string;
  readonly port: number;
  /** sanitizeComment(serviceId) of the first (sorted) instance at this address:port; may be "". */
  readonly id: string;
  /** Server weight, integer 1..256 (haproxy's range, see weights.ts); 1 is the default, not written by the built-in template. */
  readonly weight: number;
  /** True when weight is not 1. */
  readonly weighted: boolean;
}

/** The documented view handed to custom haproxy mustache templates (and the default renderer). */
export interface HaproxyTemplateView {
  readonly bindingKey: string;
  readonly service: string;
  /** Frontend name `dockbind_<ns>_<name>` (haproxy allows a frontend and a backend with one name). */
  readonly frontend: string;
  /** Backend name, same value as frontend. */
  readonly backend: string;
  /** IPv6 in brackets. */
  readonly listenAddress: string;
  readonly listenPort: number;
  /** `roundrobin`, `leastconn` or `source`. */
  readonly balance: HaproxyBalance;
  readonly servers: readonly HaproxyTemplateServer[];
  readonly hasServers: boolean;
  readonly noServers: boolean;
}

export type HaproxyBalance = "roundrobin" | "leastconn" | "source";

const HAPROXY_BALANCE: Readonly<Record<LoadBalancerSpec["method"], HaproxyBalance>> = {
  round_robin: "roundrobin",
  least_conn: "leastconn",
  ip_hash: "source",
};

export interface BuiltHaproxyView {
  readonly view: HaproxyTemplateView;
  readonly servers: readonly RenderedServer[];
  readonly rejected: readonly RejectedInstance[];
}

/** haproxy `-f DIR` loads only `*.cfg` files: any other name would be silently ignored. */
const OUTPUT_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}\.cfg$/;

function serverName(address: string, port: number): string {
  return `srv_${address.replace(/[^A-Za-z0-9.]/g, "_")}_${port}`;
}

/**
 * @throws RenderError("InvalidSpec") for an unsafe binding-level value or an
 *         output name that haproxy would not load (not `*.cfg`).
 */
export function buildHaproxyView(input: ViewInput): BuiltHaproxyView {
  if (!OUTPUT_RE.test(input.lb.output)) {
    throw new RenderError(
      "InvalidSpec",
      `loadBalancer.output ${JSON.stringify(input.lb.output).slice(0, 80)} must end in .cfg for haproxy (haproxy -f DIR loads only *.cfg)`,
    );
  }
  const { view, servers, rejected } = buildView(input);
  const balance = HAPROXY_BALANCE[input.lb.method];
  const hv: HaproxyTemplateView = {
    bindingKey: view.bindingKey,
    service: view.service,
    frontend: view.upstream,
    backend: view.upstream,
    listenAddress: view.listenAddress,
    listenPort: view.listenPort,
    balance,
    servers: view.servers.map((s, i) => {
      const raw = servers[i];
      return { name: serverName(raw?.address ?? s.address, s.port), address: s.address, port: s.port, id: s.id, weight: s.weight, weighted: s.weighted };
    }),
    hasServers: view.hasServers,
    noServers: view.noServers,
  };
  return { view: hv, servers, rejected };
}
