/**
 * The one place that reads process.env and command-line flags. Two steps:
 * parseConfig turns argv and an environment into ParsedConfig (flags, values,
 * validation; the files options name are only located, never read), then
 * loadConfigFiles reads those files (Consul token and TLS PEMs, Docker TLS
 * certificates) into the frozen, typed Config. loadConfig does both.
 * Precedence: flag > environment > default, as declared in options.ts.
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
import { isIdentityValue } from "../domain/ownership.js";
import { CONTROLLER_FLAGS, OptionInputs, type Env } from "./options.js";
import { ConfigError, dockerHostAddr, namespaceName, nodeName, type ListenAddr } from "./parsers.js";

export { CONTROLLER_FLAGS } from "./options.js";
export { ConfigError, DEFAULT_METRICS_ADDR, fileMode, fileOwner, parseListenAddr, type ListenAddr } from "./parsers.js";

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
 * One Docker engine this controller serves. Each has its own
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
export function compatOptions(
  config: Pick<Config, "registratorCompat" | "registratorInternal" | "registratorExplicit">,
  endpoint: Pick<DockerEndpoint, "node" | "hostIP">,
): CompatOptions | undefined {
  if (!config.registratorCompat) return undefined;
  return { node: endpoint.node, hostIP: endpoint.hostIP, internal: config.registratorInternal, explicit: config.registratorExplicit, extraTags: [] };
}

/** Where the Kubernetes API is: kubeconfig file(s), or the in-cluster ServiceAccount. */
export type KubeConnection =
  | { readonly kind: "kubeconfig"; readonly paths: readonly string[]; readonly context?: string }
  | { readonly kind: "in-cluster"; readonly host: string; readonly port: string; readonly tokenFile: string; readonly caFile: string };

/** Kubernetes mode (no --docker-only). */
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
  /** Where nginx `protocol: tcp|udp` files go (included in nginx's top-level `stream {}`); differs from the other output dirs. */
  readonly nginxStreamDir: string;
  /** Mode of generated LB files (--lb-file-mode, default 0644; never world-writable). Issue #6. */
  readonly lbFileMode: number;
  /** Numeric owner of generated LB files (--lb-file-owner uid:gid); undefined = the controller's user. */
  readonly lbFileOwner?: { readonly uid: number; readonly gid: number };
  readonly templateDir: string;
  /** Where `loadBalancer.tls` files are read (--tls-dir, default the bindings dir). */
  readonly tlsDir: string;
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
  /** At most one LB reload per this interval (bursts coalesce). */
  readonly minReloadIntervalMs: number;
  /** Reload interval after the second and later reloads of a burst. */
  readonly maxReloadIntervalMs: number;
  readonly workers: number;
  /** Max concurrent blocking health queries (--consul-blocking-queries); Consul connections are capped at this + 32. */
  readonly consulBlockingQueries: number;
  readonly logLevel: "error" | "warn" | "info" | "debug";
  readonly logFormat: "json" | "text";
  /** Where /metrics, /healthz, /readyz, /api/status and the status page are served; undefined = off. */
  readonly metricsAddr?: ListenAddr;
}

/** --metrics-addr > DOCKBIND_METRICS_ADDR > 127.0.0.1:9464; "off" disables the endpoint. */
export function metricsAddrFrom(flag: string | undefined, env: Env = process.env): ListenAddr | undefined {
  return new OptionInputs(flag !== undefined ? { "metrics-addr": flag } : {}, env).value("metrics-addr");
}

/** CONSUL_HTTP_ADDR may be "host:port", "http://host:port" or "https://host:port" (as the consul CLI accepts). */
export function consulUrl(addr: string, ssl: boolean): string {
  const withScheme = /^https?:\/\//.test(addr) ? addr : `${ssl ? "https" : "http"}://${addr}`;
  const url = new URL(withScheme);
  return `${url.protocol}//${url.host}`;
}

/** Agent URLs: every --consul-addr (each may be comma-separated), else CONSUL_HTTP_ADDR (one address), else the default. */
export function consulUrls(flags: readonly string[] | undefined, env: Env): string[] {
  const inputs = new OptionInputs({}, env);
  const ssl = inputs.fromEnv("consul-ssl") === "true";
  const fromFlags = (flags ?? [])
    .flatMap((f) => f.split(","))
    .map((a) => a.trim())
    .filter((a) => a !== "");
  const addrs = fromFlags.length > 0 ? fromFlags : [inputs.required("consul-addr")];
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

/** ConsulConfig before loadConfigFiles: the files named by options, not yet read. */
export interface ConsulSettings {
  readonly url: string;
  readonly urls: readonly string[];
  /** CONSUL_HTTP_TOKEN; a token file beats it. */
  readonly token?: string;
  /** --consul-token-file / CONSUL_HTTP_TOKEN_FILE as given. */
  readonly tokenFile?: string;
  /** Paths of the PEM files for HTTPS. */
  readonly tlsFiles?: { readonly ca?: string; readonly cert?: string; readonly key?: string };
}

/** DockerEndpoint before loadConfigFiles: `tls` names the certificate directory and the option that gave it. */
export interface DockerEndpointSettings {
  readonly node: string;
  readonly host: string;
  readonly hostIP: string;
  readonly tls?: { readonly option: string; readonly certPath: string; readonly verify: boolean };
}

/** Config with every option parsed and validated, before the files options name are read. */
export interface ParsedConfig extends Omit<Config, "consul" | "dockerEndpoints"> {
  readonly consul: ConsulSettings;
  readonly dockerEndpoints: readonly DockerEndpointSettings[];
}

function consulSettings(inputs: OptionInputs, env: Env): ConsulSettings {
  const urls = consulUrls(inputs.list("consul-addr"), env);
  const tokenFile = inputs.raw("consul-token-file");
  const token = inputs.raw("consul-token");
  const ca = inputs.raw("consul-cacert");
  const cert = inputs.raw("consul-client-cert");
  const key = inputs.raw("consul-client-key");
  if ((cert === undefined) !== (key === undefined)) throw new ConfigError("--consul-client-cert and --consul-client-key go together");
  const tlsFiles =
    ca === undefined && cert === undefined
      ? undefined
      : { ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}) };
  return {
    url: urls[0] ?? "http://127.0.0.1:8500",
    urls,
    ...(tokenFile !== undefined ? { tokenFile } : token !== undefined ? { token } : {}),
    ...(tlsFiles !== undefined ? { tlsFiles } : {}),
  };
}

const ENDPOINT_KEYS = ["node", "host", "cert-path", "tls-verify", "host-ip"] as const;
type EndpointKey = (typeof ENDPOINT_KEYS)[number];

/** `KEY=VALUE,…` of one --docker-endpoint; `name` prefixes errors. */
function endpointFields(spec: string, name: string): Map<EndpointKey, string> {
  const fields = new Map<EndpointKey, string>();
  for (const part of spec.split(",")) {
    const eq = part.indexOf("=");
    const k = part.slice(0, eq).trim();
    const key = ENDPOINT_KEYS.find((x) => x === k);
    if (eq < 0 || key === undefined)
      throw new ConfigError(`${name}: expected KEY=VALUE with KEY one of ${ENDPOINT_KEYS.join(", ")} (got ${JSON.stringify(part)})`);
    if (fields.has(key)) throw new ConfigError(`${name}: ${key} given twice`);
    fields.set(key, part.slice(eq + 1).trim());
  }
  return fields;
}

/**
 * One --docker-endpoint: `node=NAME,host=ADDR[,cert-path=DIR][,tls-verify=true|false][,host-ip=IP]`.
 * host-ip defaults to the host of a tcp:// address when that is an IP literal,
 * to --host-ip for a local socket, and is required for a tcp:// host given by name
 * (the controller cannot know where that engine's published ports answer).
 * The certificates under cert-path are read later, by loadConfigFiles.
 */
export function parseDockerEndpoint(spec: string, defaultHostIP: string): DockerEndpointSettings {
  const name = `--docker-endpoint ${JSON.stringify(spec)}`;
  const fields = endpointFields(spec, name);
  const node = fields.get("node");
  const host = fields.get("host");
  if (node === undefined || host === undefined) throw new ConfigError(`${name}: node= and host= are required`);
  const addr = dockerHostAddr(host, `${name}: host`);
  const verify = fields.get("tls-verify") ?? "true";
  if (verify !== "true" && verify !== "false") throw new ConfigError(`${name}: tls-verify must be true or false`);
  const certPath = fields.get("cert-path");
  if (certPath !== undefined && !addr.startsWith("tcp://")) throw new ConfigError(`${name}: cert-path needs a tcp:// host`);
  let hostIP = fields.get("host-ip");
  if (hostIP === undefined) {
    const tcpHost = addr.startsWith("tcp://") ? new URL(addr).hostname.replace(/^\[|\]$/g, "") : undefined;
    if (tcpHost === undefined) hostIP = defaultHostIP;
    else if (isIP(tcpHost) !== 0) hostIP = tcpHost;
    else throw new ConfigError(`${name}: host-ip= is required when the tcp:// host is a name (${tcpHost})`);
  }
  if (isIP(hostIP) === 0) throw new ConfigError(`${name}: host-ip must be an IP address (got ${JSON.stringify(hostIP)})`);
  const tls = certPath !== undefined ? { option: `${name}: cert-path`, certPath, verify: verify === "true" } : undefined;
  return { node: nodeName(node, `${name}: node`), host: addr, ...(tls !== undefined ? { tls } : {}), hostIP };
}

/**
 * --docker-endpoint (repeatable) > DOCKBIND_DOCKER_ENDPOINTS (entries separated by `;`) > the single
 * default endpoint. Node identities must be unique.
 */
function dockerEndpoints(inputs: OptionInputs, node: string, hostIP: string): readonly DockerEndpointSettings[] {
  const flags = inputs.list("docker-endpoint");
  const specs =
    flags.length > 0
      ? flags
      : (inputs.fromEnv("docker-endpoint") ?? "")
          .split(";")
          .map((s) => s.trim())
          .filter((s) => s !== "");
  if (specs.length === 0) {
    const host = inputs.required("docker-host");
    const certPath = inputs.raw("docker-cert-path");
    const verifyEnv = inputs.fromEnv("docker-tls-verify");
    const tls = certPath !== undefined ? { option: "--docker-cert-path", certPath, verify: verifyEnv !== "0" && verifyEnv !== "false" } : undefined;
    return [{ node, host, ...(tls !== undefined ? { tls } : {}), hostIP }];
  }
  if (inputs.flag("docker-host") !== undefined || inputs.flag("docker-cert-path") !== undefined) {
    throw new ConfigError("--docker-endpoint replaces --docker-host/--docker-cert-path: give every engine as a --docker-endpoint");
  }
  const endpoints = specs.map((s) => parseDockerEndpoint(s, hostIP));
  const seen = new Set<string>();
  for (const e of endpoints) {
    if (seen.has(e.node)) throw new ConfigError(`--docker-endpoint: node ${JSON.stringify(e.node)} given twice (each engine needs its own node identity)`);
    seen.add(e.node);
  }
  return endpoints;
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * Kubernetes connection, like controller-runtime: --kubeconfig, then
 * KUBECONFIG (path list), then the in-cluster ServiceAccount, then ~/.kube/config.
 * Only checks that files exist; the Kubernetes client reads them.
 */
function kubeConnection(inputs: OptionInputs, env: Env): KubeConnection {
  const context = inputs.raw("kube-context");
  const ctx = context !== undefined ? { context } : {};
  const flag = inputs.flag("kubeconfig");
  if (flag !== undefined && flag !== "") return { kind: "kubeconfig", paths: [resolve(flag)], ...ctx };
  const list = (inputs.fromEnv("kubeconfig") ?? "").split(delimiter).filter((p) => p !== "");
  if (list.length > 0) return { kind: "kubeconfig", paths: list.map((p) => resolve(p)), ...ctx };
  const host = env.KUBERNETES_SERVICE_HOST;
  const tokenFile = join(SA_DIR, "token");
  if (host !== undefined && host !== "" && existsSync(tokenFile)) {
    return { kind: "in-cluster", host, port: env.KUBERNETES_SERVICE_PORT ?? "443", tokenFile, caFile: join(SA_DIR, "ca.crt") };
  }
  const home = join(env.HOME ?? homedir(), ".kube", "config");
  if (existsSync(home)) return { kind: "kubeconfig", paths: [home], ...ctx };
  throw new ConfigError(
    "Kubernetes mode: no kubeconfig (--kubeconfig, KUBECONFIG, in-cluster ServiceAccount or ~/.kube/config); use --docker-only to run without Kubernetes",
  );
}

/**
 * --watch-namespace (repeatable, or comma-separated) plus the deprecated alias --namespace (one
 * namespace), else DOCKBIND_WATCH_NAMESPACES (comma-separated) plus DOCKBIND_NAMESPACE; none = all
 * namespaces. Sorted and unique, each a namespace name.
 */
function watchNamespaces(inputs: OptionInputs): readonly string[] {
  const split = (list: readonly string[]): string[] =>
    list
      .flatMap((v) => v.split(","))
      .map((v) => v.trim())
      .filter((v) => v !== "");
  const given = split([...inputs.list("watch-namespace"), inputs.flag("namespace") ?? ""]);
  const raw = given.length > 0 ? given : split([inputs.fromEnv("watch-namespace") ?? "", inputs.fromEnv("namespace") ?? ""]);
  for (const ns of raw) namespaceName(ns, "--watch-namespace");
  return Object.freeze([...new Set(raw)].sort());
}

/** The in-cluster ServiceAccount's namespace (the Lease's default there); undefined outside a cluster or when empty. */
function serviceAccountNamespace(connection: KubeConnection): string | undefined {
  if (connection.kind !== "in-cluster") return undefined;
  try {
    const ns = readFileSync(join(SA_DIR, "namespace"), "utf8").trim();
    return ns !== "" ? ns : undefined;
  } catch {
    return undefined;
  }
}

/** --leader-identity > POD_NAME > controller-runtime's default, hostname + "_" + a random suffix (unique per process). */
function leaderIdentity(inputs: OptionInputs): string {
  return inputs.value("leader-identity") ?? `${hostname()}_${randomBytes(8).toString("hex")}`;
}

function kubernetesConfig(inputs: OptionInputs, env: Env): KubernetesConfig {
  const connection = kubeConnection(inputs, env);
  const namespaces = watchNamespaces(inputs);
  const leaderElect = inputs.required("leader-elect", "true");
  return {
    connection,
    watchNamespaces: namespaces,
    leaderElect,
    leaseName: inputs.required("lease-name"),
    leaseNamespace: inputs.required("lease-namespace", serviceAccountNamespace(connection)),
    identity: leaderIdentity(inputs),
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
  const basis =
    !dockerOnly && kube !== undefined
      ? `kubernetes\0${kube.leaseNamespace}/${kube.leaseName}`
      : standby !== undefined
        ? `consul-lock\0${standby.name}`
        : `docker-only\0${bindingsDir}`;
  return `i-${createHash("sha256").update(basis).digest("hex").slice(0, 12)}`;
}

/** --adopt (repeatable, or comma-separated) > DOCKBIND_ADOPT (comma-separated). */
function adoptIds(inputs: OptionInputs): readonly string[] {
  const fromFlags = inputs.list("adopt").flatMap((f) => f.split(","));
  const raw = (fromFlags.length > 0 ? fromFlags : (inputs.fromEnv("adopt") ?? "").split(",")).map((a) => a.trim()).filter((a) => a !== "");
  for (const a of raw) if (!isIdentityValue(a)) throw new ConfigError(`--adopt must be a Docker engine ID or an instance ID (got ${JSON.stringify(a)})`);
  return Object.freeze([...new Set(raw)]);
}

/** Docker-only standby: set with --leader-elect true (default false in docker-only mode). */
function consulLeaderElection(inputs: OptionInputs): ConsulLeaderElection | undefined {
  if (!inputs.required("leader-elect", "false")) return undefined;
  return Object.freeze({ name: inputs.required("lease-name"), identity: leaderIdentity(inputs) });
}

/** The load-balancer side: output directories and file attributes, templates, nginx and haproxy. */
function loadBalancerSettings(
  inputs: OptionInputs,
  bindingsDir: string,
): Pick<Config, "lbOutputDir" | "nginxStreamDir" | "lbFileMode" | "lbFileOwner" | "templateDir" | "tlsDir" | "nginx" | "haproxy"> {
  const lbOutputDir = inputs.required("lb-output-dir");
  const haproxyOutputDir = inputs.required("haproxy-output-dir");
  if (haproxyOutputDir === lbOutputDir) throw new ConfigError("--haproxy-output-dir must differ from --lb-output-dir");
  const nginxStreamDir = inputs.required("nginx-stream-dir");
  if (nginxStreamDir === lbOutputDir || nginxStreamDir === haproxyOutputDir) {
    throw new ConfigError("--nginx-stream-dir must differ from --lb-output-dir and --haproxy-output-dir");
  }
  const lbFileMode = inputs.required("lb-file-mode");
  const lbFileOwner = inputs.value("lb-file-owner");
  const prefix = inputs.value("nginx-prefix");
  const conf = inputs.value("nginx-conf");
  const nginxArgs = [...(prefix !== undefined ? ["-p", prefix] : []), ...(conf !== undefined ? ["-c", conf] : [])];
  return {
    lbOutputDir,
    nginxStreamDir,
    lbFileMode,
    ...(lbFileOwner !== undefined ? { lbFileOwner: Object.freeze(lbFileOwner) } : {}),
    templateDir: inputs.required("template-dir", bindingsDir),
    tlsDir: inputs.required("tls-dir", bindingsDir),
    nginx: Object.freeze({ bin: inputs.required("nginx-bin"), args: Object.freeze(nginxArgs) }),
    haproxy: Object.freeze({
      bin: inputs.required("haproxy-bin"),
      config: inputs.required("haproxy-config"),
      outputDir: haproxyOutputDir,
      masterSocket: inputs.required("haproxy-master-socket"),
    }),
  };
}

/** Periods, delays, pacing, workers and logging. */
function runSettings(
  inputs: OptionInputs,
): Pick<
  Config,
  | "resyncIntervalMs"
  | "drainDelayMs"
  | "deleteDelayMs"
  | "swarmResyncMs"
  | "waitMinMs"
  | "waitMaxMs"
  | "minReloadIntervalMs"
  | "maxReloadIntervalMs"
  | "workers"
  | "consulBlockingQueries"
  | "logLevel"
  | "logFormat"
> {
  const workers = inputs.required("workers");
  const waitMinMs = inputs.required("wait-min");
  const waitMaxMs = inputs.required("wait-max");
  if (waitMaxMs < waitMinMs) throw new ConfigError("--wait-max must be >= --wait-min");
  return {
    resyncIntervalMs: inputs.required("resync"),
    drainDelayMs: inputs.required("drain-delay"),
    deleteDelayMs: inputs.required("delete-delay"),
    swarmResyncMs: inputs.required("swarm-resync"),
    waitMinMs,
    waitMaxMs,
    minReloadIntervalMs: inputs.required("min-reload-interval"),
    maxReloadIntervalMs: inputs.required("max-reload-interval"),
    workers,
    consulBlockingQueries: inputs.required("consul-blocking-queries"),
    logLevel: inputs.required("log-level"),
    logFormat: inputs.required("log-format", process.stderr.isTTY ? "text" : "json"),
  };
}

/**
 * Step 1 of loadConfig: argv (without node/script) and an environment ->
 * every option parsed and validated. Reads no file named by an option
 * (only checks which kubeconfig exists, and the in-cluster namespace).
 * Throws ConfigError naming the option.
 */
export function parseConfig(argv: readonly string[], env: Env = process.env): Readonly<ParsedConfig> {
  const { values } = parseArgs({ args: [...argv], options: CONTROLLER_FLAGS, strict: true, allowPositionals: false });
  const inputs = new OptionInputs(values, env);
  const dockerOnly = inputs.enabled("docker-only");
  if (dockerOnly && inputs.raw("bindings") === undefined) throw new ConfigError("--bindings DIR (or DOCKBIND_BINDINGS_DIR) is required");
  const bindingsDir = inputs.required("bindings");
  const hostIP = inputs.required("host-ip");
  const run = runSettings(inputs);
  const consul = consulSettings(inputs, env);
  const lb = loadBalancerSettings(inputs, bindingsDir);
  const node = inputs.required("node", hostname());
  const kubernetes = dockerOnly ? undefined : Object.freeze(kubernetesConfig(inputs, env));
  const standby = dockerOnly ? consulLeaderElection(inputs) : undefined;
  const metricsAddr = inputs.value("metrics-addr");
  return Object.freeze({
    dockerOnly,
    ...(standby !== undefined ? { consulLeaderElection: standby } : {}),
    ...(kubernetes !== undefined ? { kubernetes } : {}),
    bindingsDir,
    registratorCompat: inputs.enabled("registrator-compat"),
    registratorInternal: inputs.enabled("registrator-internal"),
    registratorExplicit: inputs.enabled("registrator-explicit"),
    node,
    hostIP,
    instanceId: inputs.value("instance-id") ?? defaultInstanceId(dockerOnly, bindingsDir, kubernetes, standby),
    adopt: adoptIds(inputs),
    dockerEndpoints: dockerEndpoints(inputs, node, hostIP),
    consul,
    ...lb,
    ...run,
    ...(metricsAddr !== undefined ? { metricsAddr: Object.freeze(metricsAddr) } : {}),
  });
}

/** The text of a file named by `option`; ConfigError "<option> <path>: <reason>" when it cannot be read. */
function readNamed(option: string, path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`${option} ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** The ACL token (from the file when one is named: its start-up value) and the file's absolute path. */
function consulToken(s: ConsulSettings): { readonly token?: string; readonly tokenFile?: string } {
  if (s.tokenFile === undefined) return s.token !== undefined ? { token: s.token } : {};
  const text = readNamed("consul token file", s.tokenFile);
  try {
    return { token: tokenFromText(s.tokenFile, text), tokenFile: resolve(s.tokenFile) };
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
}

function consulConfig(s: ConsulSettings): ConsulConfig {
  const f = s.tlsFiles;
  const ca = f?.ca !== undefined ? readNamed("--consul-cacert", f.ca) : undefined;
  const cert = f?.cert !== undefined ? readNamed("--consul-client-cert", f.cert) : undefined;
  const key = f?.key !== undefined ? readNamed("--consul-client-key", f.key) : undefined;
  const tls =
    f === undefined
      ? undefined
      : Object.freeze({ ...(ca !== undefined ? { ca } : {}), ...(cert !== undefined ? { cert } : {}), ...(key !== undefined ? { key } : {}) });
  return Object.freeze({ url: s.url, urls: Object.freeze([...s.urls]), ...consulToken(s), ...(tls !== undefined ? { tls } : {}) });
}

/** DOCKER_CERT_PATH layout: ca.pem, cert.pem, key.pem in one directory; errors name the option and the directory. */
function dockerEndpoint(e: DockerEndpointSettings): DockerEndpoint {
  const t = e.tls;
  if (t === undefined) return Object.freeze({ node: e.node, host: e.host, hostIP: e.hostIP });
  const read = (file: string): string => {
    try {
      return readFileSync(resolve(t.certPath, file), "utf8");
    } catch (err) {
      throw new ConfigError(`${t.option} ${t.certPath}: ${err instanceof Error ? err.message : String(err)}`);
    }
  };
  const tls = Object.freeze({ ca: read("ca.pem"), cert: read("cert.pem"), key: read("key.pem"), verify: t.verify });
  return Object.freeze({ node: e.node, host: e.host, tls, hostIP: e.hostIP });
}

/**
 * Step 2 of loadConfig: reads the files the options name (the Consul token
 * file, Consul TLS PEMs, Docker TLS certificates) and returns the frozen
 * Config. Blocking (synchronous reads); throws ConfigError naming the option
 * and the file.
 */
export function loadConfigFiles(parsed: ParsedConfig): Readonly<Config> {
  return Object.freeze({ ...parsed, consul: consulConfig(parsed.consul), dockerEndpoints: Object.freeze(parsed.dockerEndpoints.map(dockerEndpoint)) });
}

/** Builds the controller's configuration from argv (without node/script) and an environment: parseConfig, then loadConfigFiles. */
export function loadConfig(argv: readonly string[], env: Env = process.env): Readonly<Config> {
  return loadConfigFiles(parseConfig(argv, env));
}
