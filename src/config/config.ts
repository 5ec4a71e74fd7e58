/**
 * The one place that reads process.env and command-line flags. Produces a
 * single frozen, typed Config. Precedence: flag > environment > default.
 * Secrets (the Consul token) are kept here and registered with the logger's
 * redactor by the caller; they are never printed.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { isIP } from "node:net";
import type { CompatOptions } from "../domain/registratorCompat.js";
import { tokenFromText } from "./consulToken.js";
import { parseDurationMs } from "../runtime/duration.js";
import { isIdentityValue } from "../domain/ownership.js";

export interface ConsulConfig {
  /** Base URL without /v1, e.g. http://127.0.0.1:8500 (the first of `urls`). */
  readonly url: string;
  /** Every agent in failover order (--consul-addr repeated or comma-separated). */
  readonly urls: readonly string[];
  /** The ACL token at start-up; with `tokenFile`, the file's content then (consulToken.ts follows its changes). */
  readonly token?: string;
  /** Absolute path of --consul-token-file / CONSUL_HTTP_TOKEN_FILE, re-read while running (consulToken.ts). */
  readonly tokenFile?: string;
  /** PEM texts for HTTPS (CONSUL_CACERT, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY); absent without any. */
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

export interface DockerTls {
  /** PEM texts read at start-up. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
  /** DOCKER_TLS_VERIFY: verify the daemon's certificate against `ca` (default true when certs are given). */
  readonly verify: boolean;
}

export interface NginxConfig {
  readonly bin: string;
  /** Extra args for `nginx -t` and `nginx -s reload`, e.g. ['-p', prefix, '-c', conf]. */
  readonly args: readonly string[];
}

/**
 * One Docker engine this controller serves (issue #3 item 6). Each has its own
 * node identity: the owner of what is registered from it (service IDs
 * `dockbind:<node>:…`, owner meta), so endpoints never touch each other's
 * registrations, exactly like separate controllers.
 */
export interface DockerEndpoint {
  readonly node: string;
  /** DOCKER_HOST-style address: unix://PATH, an absolute socket path, or tcp://HOST:PORT. */
  readonly host: string;
  /** tcp+TLS material (DOCKER_CERT_PATH layout); absent = plain unix/tcp. */
  readonly tls?: DockerTls;
  /** Advertised address for ports published on a wildcard (0.0.0.0/::) on this engine. */
  readonly hostIP: string;
}

/**
 * The registrator-compat options of one Docker endpoint (its node names the
 * registrations and prefixes their default IDs); undefined when
 * --registrator-compat is off. The controller and `controller plan` both use it.
 */
export function compatOptions(config: Pick<Config, "registratorCompat" | "registratorInternal" | "registratorExplicit">, endpoint: Pick<DockerEndpoint, "node" | "hostIP">): CompatOptions | undefined {
  if (!config.registratorCompat) return undefined;
  return { node: endpoint.node, hostIP: endpoint.hostIP, internal: config.registratorInternal, explicit: config.registratorExplicit, extraTags: [] };
}

/** Where the Kubernetes API is: kubeconfig file(s), or the in-cluster ServiceAccount. */
export type KubeConnection =
  | { readonly kind: "kubeconfig"; readonly paths: readonly string[]; readonly context?: string }
  | { readonly kind: "in-cluster"; readonly host: string; readonly port: string; readonly tokenFile: string; readonly caFile: string };

/** Kubernetes mode (no --docker-only), issue #3. */
export interface KubernetesConfig {
  readonly connection: KubeConnection;
  /**
   * The namespaces whose ServiceBindings are watched, read and written (one
   * namespaced list+watch each), sorted and unique; empty = all namespaces
   * (one cluster-wide list+watch, which needs a ClusterRole).
   */
  readonly watchNamespaces: readonly string[];
  readonly leaderElect: boolean;
  readonly leaseName: string;
  readonly leaseNamespace: string;
  /** This replica's holder identity in the Lease. */
  readonly identity: string;
}

/**
 * Docker-only standby (--docker-only --leader-elect true): candidates elect
 * one leader through a Consul session lock on `dockbind/leader/<name>`.
 */
export interface ConsulLeaderElection {
  /** --lease-name: the lock's name. */
  readonly name: string;
  /** --leader-identity: this candidate's identity in the lock's value. */
  readonly identity: string;
}

export interface HaproxyConfig {
  readonly bin: string;
  /** Main config passed as the first `-f` (global/defaults); generated files follow from outputDir. */
  readonly config: string;
  /** Where `loadBalancer.kind: haproxy` files go (`*.cfg`); must differ from lbOutputDir. */
  readonly outputDir: string;
  /** Master CLI socket of the running haproxy (`-W -S PATH`), used for reload. */
  readonly masterSocket: string;
}

export interface Config {
  readonly dockerOnly: boolean;
  /** Set when dockerOnly is false. */
  readonly kubernetes?: KubernetesConfig;
  /** Set in docker-only mode with --leader-elect true (default false there). */
  readonly consulLeaderElection?: ConsulLeaderElection;
  readonly bindingsDir: string;
  readonly registratorCompat: boolean;
  readonly registratorInternal: boolean;
  /** registrator -explicit: only ports with SERVICE_NAME / SERVICE_<port>_NAME are registered. */
  readonly registratorExplicit: boolean;
  /** This controller's identity (logs, status page); also the node of the default Docker endpoint. */
  readonly node: string;
  /** Default advertised address (--host-ip) of the default Docker endpoint. */
  readonly hostIP: string;
  /**
   * This installation's identity in every registration's meta (`dockbind_instance`), shared by all
   * Docker endpoints: --instance-id, else derived from what identifies the installation (defaultInstanceId).
   */
  readonly instanceId: string;
  /** Engine or instance IDs whose registrations under our node(s) this controller takes over (--adopt). */
  readonly adopt: readonly string[];
  /**
   * The Docker engines served, at least one: every --docker-endpoint, else one
   * endpoint from --node, --docker-host/DOCKER_HOST, --docker-cert-path/DOCKER_CERT_PATH and --host-ip.
   */
  readonly dockerEndpoints: readonly DockerEndpoint[];
  readonly consul: ConsulConfig;
  readonly lbOutputDir: string;
  /** Mode of generated LB files (--lb-file-mode, default 0644; never world-writable). Issue #6. */
  readonly lbFileMode: number;
  /** Numeric owner of generated LB files (--lb-file-owner uid:gid); undefined = the controller's user. */
  readonly lbFileOwner?: { readonly uid: number; readonly gid: number };
  readonly templateDir: string;
  readonly nginx: NginxConfig;
  readonly haproxy: HaproxyConfig;
  readonly resyncIntervalMs: number;
  /** Graceful drain: how long a container stays out of Consul after a kill/stop event (0 = off). */
  readonly drainDelayMs: number;
  /**
   * How long a binding removed from the bindings directory (file or document
   * gone) keeps being served before it is deleted; 0 = at once. A binding
   * that comes back within the delay was never deleted.
   */
  readonly deleteDelayMs: number;
  /** Swarm services/tasks/nodes re-list period (Swarm has no task events). */
  readonly swarmResyncMs: number;
  readonly waitMinMs: number;
  readonly waitMaxMs: number;
  /** At most one LB reload per this interval (bursts coalesce; issue #6 P3). */
  readonly minReloadIntervalMs: number;
  /** Reload interval after the second and later reloads of a burst (issue #6 P3). */
  readonly maxReloadIntervalMs: number;
  readonly workers: number;
  readonly logLevel: "error" | "warn" | "info" | "debug";
  readonly logFormat: "json" | "text";
  /** Where /metrics, /healthz, /readyz, /api/status and the status page are served; undefined = off. */
  readonly metricsAddr?: ListenAddr;
}

/** A TCP listen address; port 0 = any free port. */
export interface ListenAddr {
  readonly host: string;
  readonly port: number;
}

export const DEFAULT_METRICS_ADDR = "127.0.0.1:9464";

/** Parses `host:port`, `[v6]:port` or `:port` (= 0.0.0.0). Throws ConfigError. */
export function parseListenAddr(name: string, value: string): ListenAddr {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  const host = m?.[1] ?? (m?.[2] === "" ? "0.0.0.0" : m?.[2]);
  if (m === null || host === undefined || !Number.isInteger(port) || port > 65535) {
    throw new ConfigError(`${name} must be HOST:PORT, e.g. ${DEFAULT_METRICS_ADDR} (got ${JSON.stringify(value)})`);
  }
  return { host, port };
}

/** --metrics-addr > DOCKBIND_METRICS_ADDR > 127.0.0.1:9464; "off" disables the endpoint. */
export function metricsAddrFrom(flag: string | undefined, env: Env = process.env): ListenAddr | undefined {
  const value = pick(flag, env.DOCKBIND_METRICS_ADDR) ?? DEFAULT_METRICS_ADDR;
  return value === "off" ? undefined : parseListenAddr("--metrics-addr", value);
}

export class ConfigError extends Error {
  readonly reason = "InvalidConfig";
}

export const CONTROLLER_FLAGS = {
  "docker-only": { type: "boolean" },
  bindings: { type: "string" },
  "registrator-compat": { type: "boolean" },
  "registrator-internal": { type: "boolean" },
  "registrator-explicit": { type: "boolean" },
  node: { type: "string" },
  "instance-id": { type: "string" },
  adopt: { type: "string", multiple: true },
  "host-ip": { type: "string" },
  "docker-host": { type: "string" },
  "docker-cert-path": { type: "string" },
  "docker-endpoint": { type: "string", multiple: true },
  "consul-addr": { type: "string", multiple: true },
  "consul-token-file": { type: "string" },
  "consul-cacert": { type: "string" },
  "consul-client-cert": { type: "string" },
  "consul-client-key": { type: "string" },
  "lb-output-dir": { type: "string" },
  "lb-file-mode": { type: "string" },
  "lb-file-owner": { type: "string" },
  "template-dir": { type: "string" },
  "nginx-bin": { type: "string" },
  "nginx-prefix": { type: "string" },
  "nginx-conf": { type: "string" },
  "haproxy-bin": { type: "string" },
  "haproxy-config": { type: "string" },
  "haproxy-output-dir": { type: "string" },
  "haproxy-master-socket": { type: "string" },
  resync: { type: "string" },
  "drain-delay": { type: "string" },
  "delete-delay": { type: "string" },
  "swarm-resync": { type: "string" },
  "wait-min": { type: "string" },
  "wait-max": { type: "string" },
  "min-reload-interval": { type: "string" },
  "max-reload-interval": { type: "string" },
  workers: { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
  "metrics-addr": { type: "string" },
  kubeconfig: { type: "string" },
  "kube-context": { type: "string" },
  "watch-namespace": { type: "string", multiple: true },
  namespace: { type: "string" },
  "leader-elect": { type: "string" },
  "lease-name": { type: "string" },
  "lease-namespace": { type: "string" },
  "leader-identity": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Env = Readonly<Record<string, string | undefined>>;

function pick(flag: string | undefined, env: string | undefined): string | undefined {
  if (flag !== undefined && flag !== "") return flag;
  if (env !== undefined && env !== "") return env;
  return undefined;
}

/** CONSUL_HTTP_ADDR may be "host:port", "http://host:port" or "https://host:port" (as the consul CLI accepts). */
export function consulUrl(addr: string, ssl: boolean): string {
  const withScheme = /^https?:\/\//.test(addr) ? addr : `${ssl ? "https" : "http"}://${addr}`;
  const url = new URL(withScheme);
  return `${url.protocol}//${url.host}`;
}

/** Agent URLs: every --consul-addr (each may be comma-separated), else CONSUL_HTTP_ADDR (one address), else the default. */
export function consulUrls(flags: readonly string[] | undefined, env: Env): string[] {
  const ssl = env.CONSUL_HTTP_SSL === "true";
  const fromFlags = (flags ?? []).flatMap((f) => f.split(",")).map((a) => a.trim()).filter((a) => a !== "");
  const addrs = fromFlags.length > 0 ? fromFlags : [pick(undefined, env.CONSUL_HTTP_ADDR) ?? "127.0.0.1:8500"];
  const urls: string[] = [];
  for (const a of addrs) {
    let u: string;
    try {
      u = consulUrl(a, ssl);
    } catch {
      throw new ConfigError(`--consul-addr ${JSON.stringify(a)} is not host:port or a URL`);
    }
    if (!urls.includes(u)) urls.push(u);
  }
  return urls;
}

function pemFile(name: string, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${name} ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function consulTls(values: { readonly [k: string]: unknown }, env: Env): ConsulConfig["tls"] {
  const flag = (k: string): string | undefined => (typeof values[k] === "string" ? values[k] : undefined);
  const ca = pemFile("--consul-cacert", pick(flag("consul-cacert"), env.CONSUL_CACERT));
  const cert = pemFile("--consul-client-cert", pick(flag("consul-client-cert"), env.CONSUL_CLIENT_CERT));
  const key = pemFile("--consul-client-key", pick(flag("consul-client-key"), env.CONSUL_CLIENT_KEY));
  if ((cert === undefined) !== (key === undefined)) throw new ConfigError("--consul-client-cert and --consul-client-key go together");
  if (ca === undefined && cert === undefined) return undefined;
  return Object.freeze({ ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}) });
}

/** The ACL token (from the file when one is named, read here once: the start-up value) and the file's absolute path. */
function token(flagFile: string | undefined, env: Env): { readonly token?: string; readonly tokenFile?: string } {
  const file = pick(flagFile, env.CONSUL_HTTP_TOKEN_FILE);
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ConfigError(`consul token file ${file}: ${err instanceof Error ? err.message : String(err)}`);
    }
    try {
      return { token: tokenFromText(file, text), tokenFile: resolve(file) };
    } catch (err) {
      throw new ConfigError(err instanceof Error ? err.message : String(err));
    }
  }
  const t = pick(undefined, env.CONSUL_HTTP_TOKEN);
  return t !== undefined ? { token: t } : {};
}

/** DOCKER_CERT_PATH (dir with ca.pem, cert.pem, key.pem) -> TLS material; DOCKER_TLS_VERIFY="" or "0" turns verification off. */
function dockerTls(name: string, certPath: string | undefined, verifyEnv: string | undefined): DockerTls | undefined {
  if (certPath === undefined) return undefined;
  const read = (file: string): string => {
    try {
      return readFileSync(resolve(certPath, file), "utf8");
    } catch (err) {
      throw new ConfigError(`${name} ${certPath}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  return Object.freeze({ ca: read("ca.pem"), cert: read("cert.pem"), key: read("key.pem"), verify: verifyEnv !== "0" && verifyEnv !== "false" });
}

/** Node identities end up in service IDs (`dockbind:<node>:…`) and workqueue keys (`…@<node>`): no `:`, `@` or `/`. */
const NODE_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$/;

function nodeName(name: string, value: string): string {
  if (!NODE_NAME.test(value)) throw new ConfigError(`${name} must be 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit (got ${JSON.stringify(value)})`);
  return value;
}

function dockerHostAddr(name: string, value: string): string {
  if (value.startsWith("unix://") || value.startsWith("/")) return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be unix://PATH, an absolute socket path or tcp://HOST:PORT (got ${JSON.stringify(value)})`);
  }
  if (url.protocol !== "tcp:" || url.hostname === "") throw new ConfigError(`${name} must be unix://PATH, an absolute socket path or tcp://HOST:PORT (got ${JSON.stringify(value)})`);
  return value;
}

const ENDPOINT_KEYS = ["node", "host", "cert-path", "tls-verify", "host-ip"] as const;
type EndpointKey = (typeof ENDPOINT_KEYS)[number];

/**
 * One --docker-endpoint: `node=NAME,host=ADDR[,cert-path=DIR][,tls-verify=true|false][,host-ip=IP]`.
 * host-ip defaults to the host of a tcp:// address when that is an IP literal,
 * to --host-ip for a local socket, and is required for a tcp:// host given by name
 * (the controller cannot know where that engine's published ports answer).
 */
export function parseDockerEndpoint(spec: string, defaultHostIP: string): DockerEndpoint {
  const name = `--docker-endpoint ${JSON.stringify(spec)}`;
  const fields = new Map<EndpointKey, string>();
  for (const part of spec.split(",")) {
    const eq = part.indexOf("=");
    const k = part.slice(0, eq).trim();
    const key = ENDPOINT_KEYS.find((x) => x === k);
    if (eq < 0 || key === undefined) throw new ConfigError(`${name}: expected KEY=VALUE with KEY one of ${ENDPOINT_KEYS.join(", ")} (got ${JSON.stringify(part)})`);
    if (fields.has(key)) throw new ConfigError(`${name}: ${key} given twice`);
    fields.set(key, part.slice(eq + 1).trim());
  }
  const node = fields.get("node");
  const host = fields.get("host");
  if (node === undefined || host === undefined) throw new ConfigError(`${name}: node= and host= are required`);
  const addr = dockerHostAddr(`${name}: host`, host);
  const verify = fields.get("tls-verify") ?? "true";
  if (verify !== "true" && verify !== "false") throw new ConfigError(`${name}: tls-verify must be true or false`);
  const certPath = fields.get("cert-path");
  if (certPath !== undefined && !addr.startsWith("tcp://")) throw new ConfigError(`${name}: cert-path needs a tcp:// host`);
  const tls = dockerTls(`${name}: cert-path`, certPath, verify === "true" ? "1" : "0");
  let hostIP = fields.get("host-ip");
  if (hostIP === undefined) {
    const tcpHost = addr.startsWith("tcp://") ? new URL(addr).hostname.replace(/^\[|\]$/g, "") : undefined;
    if (tcpHost === undefined) hostIP = defaultHostIP;
    else if (isIP(tcpHost) !== 0) hostIP = tcpHost;
    else throw new ConfigError(`${name}: host-ip= is required when the tcp:// host is a name (${tcpHost})`);
  }
  if (isIP(hostIP) === 0) throw new ConfigError(`${name}: host-ip must be an IP address (got ${JSON.stringify(hostIP)})`);
  return Object.freeze({ node: nodeName(`${name}: node`, node), host: addr, ...(tls !== undefined ? { tls } : {}), hostIP });
}

/**
 * --docker-endpoint (repeatable) > DOCKBIND_DOCKER_ENDPOINTS (entries separated by `;`) > the single
 * default endpoint. Node identities must be unique.
 */
function dockerEndpoints(values: ParsedFlags, env: Env, node: string, hostIP: string): readonly DockerEndpoint[] {
  const flags = values["docker-endpoint"];
  const specs = Array.isArray(flags) && flags.length > 0 ? flags : (env.DOCKBIND_DOCKER_ENDPOINTS ?? "").split(";").map((s) => s.trim()).filter((s) => s !== "");
  if (specs.length === 0) {
    const host = dockerHostAddr("--docker-host", pick(str(values, "docker-host"), env.DOCKER_HOST) ?? "unix:///var/run/docker.sock");
    const tls = dockerTls("--docker-cert-path", pick(str(values, "docker-cert-path"), env.DOCKER_CERT_PATH), env.DOCKER_TLS_VERIFY);
    return Object.freeze([Object.freeze({ node, host, ...(tls !== undefined ? { tls } : {}), hostIP })]);
  }
  if (str(values, "docker-host") !== undefined || str(values, "docker-cert-path") !== undefined) {
    throw new ConfigError("--docker-endpoint replaces --docker-host/--docker-cert-path: give every engine as a --docker-endpoint");
  }
  const endpoints = specs.map((s) => parseDockerEndpoint(s, hostIP));
  const seen = new Set<string>();
  for (const e of endpoints) {
    if (seen.has(e.node)) throw new ConfigError(`--docker-endpoint: node ${JSON.stringify(e.node)} given twice (each engine needs its own node identity)`);
    seen.add(e.node);
  }
  return Object.freeze(endpoints);
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a === value);
  if (found === undefined) throw new ConfigError(`${name} must be one of ${allowed.join(", ")} (got ${JSON.stringify(value)})`);
  return found;
}

function duration(name: string, value: string): number {
  try {
    return parseDurationMs(value);
  } catch (err) {
    throw new ConfigError(`${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function positive(name: string, ms: number): number {
  if (ms <= 0) throw new ConfigError(`${name} must be greater than 0`);
  return ms;
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

type ParsedFlags = Partial<Record<keyof typeof CONTROLLER_FLAGS, string | boolean | string[]>>;

function str(values: ParsedFlags, name: keyof typeof CONTROLLER_FLAGS): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

/**
 * Kubernetes connection, like controller-runtime: --kubeconfig, then
 * KUBECONFIG (path list), then the in-cluster ServiceAccount, then ~/.kube/config.
 */
function kubeConnection(values: ParsedFlags, env: Env): KubeConnection {
  const context = str(values, "kube-context");
  const ctx = context !== undefined && context !== "" ? { context } : {};
  const flag = str(values, "kubeconfig");
  if (flag !== undefined && flag !== "") return { kind: "kubeconfig", paths: [resolve(flag)], ...ctx };
  const list = (env.KUBECONFIG ?? "").split(delimiter).filter((p) => p !== "");
  if (list.length > 0) return { kind: "kubeconfig", paths: list.map((p) => resolve(p)), ...ctx };
  const host = env.KUBERNETES_SERVICE_HOST;
  const tokenFile = join(SA_DIR, "token");
  if (host !== undefined && host !== "" && existsSync(tokenFile)) {
    return { kind: "in-cluster", host, port: env.KUBERNETES_SERVICE_PORT ?? "443", tokenFile, caFile: join(SA_DIR, "ca.crt") };
  }
  const home = join(env.HOME ?? homedir(), ".kube", "config");
  if (existsSync(home)) return { kind: "kubeconfig", paths: [home], ...ctx };
  throw new ConfigError("Kubernetes mode: no kubeconfig (--kubeconfig, KUBECONFIG, in-cluster ServiceAccount or ~/.kube/config); use --docker-only to run without Kubernetes");
}

/**
 * --watch-namespace (repeatable, or comma-separated) plus the deprecated alias --namespace (one
 * namespace), else DOCKBIND_WATCH_NAMESPACES (comma-separated) plus DOCKBIND_NAMESPACE; none = all
 * namespaces. Sorted and unique, each a namespace name.
 */
function watchNamespaces(values: ParsedFlags, env: Env): readonly string[] {
  const flags = values["watch-namespace"];
  const fromFlags = [...(Array.isArray(flags) ? flags : []), str(values, "namespace") ?? ""];
  const split = (list: readonly string[]): string[] => list.flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
  const given = split(fromFlags);
  const raw = given.length > 0 ? given : split([env.DOCKBIND_WATCH_NAMESPACES ?? "", env.DOCKBIND_NAMESPACE ?? ""]);
  for (const ns of raw) if (!DNS_LABEL.test(ns)) throw new ConfigError(`--watch-namespace must be a namespace name (got ${JSON.stringify(ns)})`);
  return Object.freeze([...new Set(raw)].sort());
}

function kubernetesConfig(values: ParsedFlags, env: Env): KubernetesConfig {
  const connection = kubeConnection(values, env);
  const namespaces = watchNamespaces(values, env);
  const elect = leaderElect(values, env, "true");
  let ownNamespace: string | undefined;
  if (connection.kind === "in-cluster") {
    try {
      ownNamespace = readFileSync(join(SA_DIR, "namespace"), "utf8").trim();
    } catch {
      ownNamespace = undefined;
    }
  }
  const leaseNamespace = pick(str(values, "lease-namespace"), pick(env.DOCKBIND_LEASE_NAMESPACE, pick(env.POD_NAMESPACE, ownNamespace))) ?? "default";
  if (!DNS_LABEL.test(leaseNamespace)) throw new ConfigError(`--lease-namespace must be a namespace name (got ${JSON.stringify(leaseNamespace)})`);
  return {
    connection,
    watchNamespaces: namespaces,
    leaderElect: elect,
    leaseName: leaseName(values, env),
    leaseNamespace,
    identity: leaderIdentity(values, env),
  };
}

/**
 * Default --instance-id: stable across restarts without any state file. An installation is what
 * elects one writer, or else its bindings: Kubernetes, the Lease (replicas sharing a Lease are one
 * installation, two releases have two Leases); docker-only with --leader-elect, the Consul lock
 * (a standby pair is one installation, so the standby owns what the leader registered, whatever
 * its bindings path); docker-only without, the absolute bindings directory.
 */
export function defaultInstanceId(
  dockerOnly: boolean,
  bindingsDir: string,
  kube: Pick<KubernetesConfig, "leaseNamespace" | "leaseName"> | undefined,
  standby?: Pick<ConsulLeaderElection, "name">,
): string {
  const basis = !dockerOnly && kube !== undefined ? `kubernetes\0${kube.leaseNamespace}/${kube.leaseName}` : standby !== undefined ? `consul-lock\0${standby.name}` : `docker-only\0${bindingsDir}`;
  return `i-${createHash("sha256").update(basis).digest("hex").slice(0, 12)}`;
}

/** --adopt (repeatable, or comma-separated) > DOCKBIND_ADOPT (comma-separated). */
function adoptIds(flags: readonly string[] | undefined, env: Env): readonly string[] {
  const fromFlags = (flags ?? []).flatMap((f) => f.split(","));
  const raw = (fromFlags.length > 0 ? fromFlags : (env.DOCKBIND_ADOPT ?? "").split(",")).map((a) => a.trim()).filter((a) => a !== "");
  for (const a of raw) if (!isIdentityValue(a)) throw new ConfigError(`--adopt must be a Docker engine ID or an instance ID (got ${JSON.stringify(a)})`);
  return Object.freeze([...new Set(raw)]);
}

function instanceId(flag: string | undefined, env: Env, fallback: () => string): string {
  const v = pick(flag, env.DOCKBIND_INSTANCE_ID);
  if (v === undefined) return fallback();
  if (!NODE_NAME.test(v)) throw new ConfigError(`--instance-id must be 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit (got ${JSON.stringify(v)})`);
  return v;
}

/** --leader-elect > DOCKBIND_LEADER_ELECT > `fallback` (true in Kubernetes mode, false in docker-only mode). */
function leaderElect(values: ParsedFlags, env: Env, fallback: "true" | "false"): boolean {
  return oneOf("--leader-elect", pick(str(values, "leader-elect"), env.DOCKBIND_LEADER_ELECT) ?? fallback, ["true", "false"] as const) === "true";
}

/** --lease-name > DOCKBIND_LEASE_NAME > dockbind-controller: the Lease's name, or the Consul lock's. */
function leaseName(values: ParsedFlags, env: Env): string {
  const name = pick(str(values, "lease-name"), env.DOCKBIND_LEASE_NAME) ?? "dockbind-controller";
  if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(name)) throw new ConfigError(`--lease-name must be a DNS subdomain (got ${JSON.stringify(name)})`);
  return name;
}

/** --leader-identity > POD_NAME > controller-runtime's default, hostname + "_" + a random suffix (unique per process). */
function leaderIdentity(values: ParsedFlags, env: Env): string {
  return pick(str(values, "leader-identity"), env.POD_NAME) ?? `${hostname()}_${randomBytes(8).toString("hex")}`;
}

function consulLeaderElection(values: ParsedFlags, env: Env): ConsulLeaderElection | undefined {
  if (!leaderElect(values, env, "false")) return undefined;
  return Object.freeze({ name: leaseName(values, env), identity: leaderIdentity(values, env) });
}

/** --lb-file-mode: octal 0..0777, never world-writable (a writable include is a config injection). */
export function fileMode(value: string): number {
  if (!/^0?[0-7]{3}$/.test(value)) throw new ConfigError(`--lb-file-mode must be an octal mode like 0640 (got ${JSON.stringify(value)})`);
  const mode = Number.parseInt(value, 8);
  if ((mode & 0o002) !== 0) throw new ConfigError(`--lb-file-mode ${value} is world-writable: refused`);
  return mode;
}

/** --lb-file-owner: numeric `uid:gid` (names would need NSS lookups in a container image). */
export function fileOwner(value: string | undefined): { uid: number; gid: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,10}):(\d{1,10})$/.exec(value);
  const uid = Number(m?.[1] ?? "-1");
  const gid = Number(m?.[2] ?? "-1");
  if (m === null || uid > 0xfffffffe || gid > 0xfffffffe) throw new ConfigError(`--lb-file-owner must be numeric uid:gid (got ${JSON.stringify(value)})`);
  return { uid, gid };
}

/** Builds the controller's configuration from argv (without node/script) and an environment. */
export function loadConfig(argv: readonly string[], env: Env = process.env): Readonly<Config> {
  const { values } = parseArgs({ args: [...argv], options: CONTROLLER_FLAGS, strict: true, allowPositionals: false });
  const dockerOnly = values["docker-only"] ?? false;
  const bindings = pick(values.bindings, env.DOCKBIND_BINDINGS_DIR) ?? (dockerOnly ? undefined : "/etc/dockbind/bindings");
  if (bindings === undefined) throw new ConfigError("--bindings DIR (or DOCKBIND_BINDINGS_DIR) is required");
  const hostIP = pick(values["host-ip"], env.DOCKBIND_HOST_IP) ?? "127.0.0.1";
  if (isIP(hostIP) === 0) throw new ConfigError(`--host-ip must be an IP address (got ${JSON.stringify(hostIP)})`);
  const workers = Number(pick(values.workers, env.DOCKBIND_WORKERS) ?? "2");
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new ConfigError("--workers must be an integer 1..64");
  const nginxArgs: string[] = [];
  const prefix = pick(values["nginx-prefix"], env.DOCKBIND_NGINX_PREFIX);
  const conf = pick(values["nginx-conf"], env.DOCKBIND_NGINX_CONF);
  if (prefix !== undefined) nginxArgs.push("-p", resolve(prefix));
  if (conf !== undefined) nginxArgs.push("-c", resolve(conf));
  const waitMinMs = duration("--wait-min", pick(values["wait-min"], env.DOCKBIND_WAIT_MIN) ?? "100ms");
  const waitMaxMs = duration("--wait-max", pick(values["wait-max"], env.DOCKBIND_WAIT_MAX) ?? "1s");
  if (waitMaxMs < waitMinMs) throw new ConfigError("--wait-max must be >= --wait-min");
  const minReloadIntervalMs = duration("--min-reload-interval", pick(values["min-reload-interval"], env.DOCKBIND_MIN_RELOAD_INTERVAL) ?? "1s");
  const maxReloadIntervalMs = duration("--max-reload-interval", pick(values["max-reload-interval"], env.DOCKBIND_MAX_RELOAD_INTERVAL) ?? "4s");
  const bindingsDir = resolve(bindings);
  const consulToken = token(values["consul-token-file"], env);
  const consulUrls0 = consulUrls(values["consul-addr"], env);
  const consulTls0 = consulTls(values, env);
  const lbOutputDir = resolve(pick(values["lb-output-dir"], env.DOCKBIND_LB_OUTPUT_DIR) ?? "/etc/nginx/conf.d");
  const lbFileMode = fileMode(pick(values["lb-file-mode"], env.DOCKBIND_LB_FILE_MODE) ?? "0644");
  const lbFileOwner = fileOwner(pick(values["lb-file-owner"], env.DOCKBIND_LB_FILE_OWNER));
  const haproxyOutputDir = resolve(pick(values["haproxy-output-dir"], env.DOCKBIND_HAPROXY_OUTPUT_DIR) ?? "/etc/haproxy/conf.d");
  if (haproxyOutputDir === lbOutputDir) throw new ConfigError("--haproxy-output-dir must differ from --lb-output-dir");
  const node = nodeName("--node", pick(values.node, env.DOCKBIND_NODE) ?? hostname());
  const kubernetes = dockerOnly ? undefined : Object.freeze(kubernetesConfig(values, env));
  const standby = dockerOnly ? consulLeaderElection(values, env) : undefined;
  const config: Config = {
    dockerOnly,
    ...(standby !== undefined ? { consulLeaderElection: standby } : {}),
    ...(kubernetes !== undefined ? { kubernetes } : {}),
    bindingsDir,
    registratorCompat: values["registrator-compat"] ?? false,
    registratorInternal: values["registrator-internal"] ?? false,
    registratorExplicit: values["registrator-explicit"] ?? false,
    node,
    hostIP,
    instanceId: instanceId(values["instance-id"], env, () => defaultInstanceId(dockerOnly, bindingsDir, kubernetes, standby)),
    adopt: adoptIds(values.adopt, env),
    dockerEndpoints: dockerEndpoints(values, env, node, hostIP),
    consul: Object.freeze({
      url: consulUrls0[0] ?? "http://127.0.0.1:8500",
      urls: Object.freeze(consulUrls0),
      ...consulToken,
      ...(consulTls0 !== undefined ? { tls: consulTls0 } : {}),
    }),
    lbOutputDir,
    lbFileMode,
    ...(lbFileOwner !== undefined ? { lbFileOwner: Object.freeze(lbFileOwner) } : {}),
    templateDir: resolve(pick(values["template-dir"], env.DOCKBIND_TEMPLATE_DIR) ?? bindingsDir),
    nginx: Object.freeze({ bin: pick(values["nginx-bin"], env.DOCKBIND_NGINX_BIN) ?? "nginx", args: Object.freeze(nginxArgs) }),
    haproxy: Object.freeze({
      bin: pick(values["haproxy-bin"], env.DOCKBIND_HAPROXY_BIN) ?? "haproxy",
      config: resolve(pick(values["haproxy-config"], env.DOCKBIND_HAPROXY_CONFIG) ?? "/etc/haproxy/haproxy.cfg"),
      outputDir: haproxyOutputDir,
      masterSocket: resolve(pick(values["haproxy-master-socket"], env.DOCKBIND_HAPROXY_MASTER_SOCKET) ?? "/run/haproxy-master.sock"),
    }),
    resyncIntervalMs: duration("--resync", pick(values.resync, env.DOCKBIND_RESYNC) ?? "30s"),
    drainDelayMs: duration("--drain-delay", pick(values["drain-delay"], env.DOCKBIND_DRAIN_DELAY) ?? "10s"),
    deleteDelayMs: duration("--delete-delay", pick(values["delete-delay"], env.DOCKBIND_DELETE_DELAY) ?? "10s"),
    swarmResyncMs: positive("--swarm-resync", duration("--swarm-resync", pick(values["swarm-resync"], env.DOCKBIND_SWARM_RESYNC) ?? "2s")),
    waitMinMs,
    waitMaxMs,
    minReloadIntervalMs,
    maxReloadIntervalMs,
    workers,
    logLevel: oneOf("--log-level", pick(values["log-level"], env.DOCKBIND_LOG_LEVEL) ?? "info", ["error", "warn", "info", "debug"] as const),
    logFormat: oneOf(
      "--log-format",
      pick(values["log-format"], env.DOCKBIND_LOG_FORMAT) ?? (process.stderr.isTTY ? "text" : "json"),
      ["json", "text"] as const,
    ),
  };
  const metricsAddr = metricsAddrFrom(values["metrics-addr"], env);
  return Object.freeze(metricsAddr === undefined ? config : { ...config, metricsAddr: Object.freeze(metricsAddr) });
}
