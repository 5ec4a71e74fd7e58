/**
 * Every controller option, declared once: its flag, environment variables,
 * default, parser and help text. From this table come the node:util
 * parseArgs options (CONTROLLER_FLAGS), the flag > environment > default
 * lookup (OptionInputs), the `--help` text (flagHelp) and the README's flag
 * table (flagTableMarkdown; scripts/gen-flags.ts writes it, a unit test
 * compares). Texts use Markdown backticks for code; the help text drops them.
 */
import {
  DEFAULT_METRICS_ADDR,
  absolutePath,
  blockingQueryCount,
  dnsSubdomain,
  dockerHostAddr,
  duration,
  fileMode,
  fileOwner,
  ipAddress,
  listenAddrOrOff,
  namespaceName,
  nodeName,
  oneOf,
  positiveDuration,
  trueFalse,
  workerCount,
} from "./parsers.js";

/** Where `--help` lists an option. */
export type OptionGroup = "kubernetes" | "leader" | "run";

export interface OptionSpec {
  /** false: an environment variable only, no command-line flag. */
  readonly flag?: false;
  readonly short?: string;
  readonly type: "boolean" | "string";
  /** The flag may be given several times (parseArgs `multiple`). */
  readonly multiple?: true;
  /** What the value looks like in help, e.g. DIR. */
  readonly arg?: string;
  /** Environment variables, highest precedence first; the flag beats them all. */
  readonly env?: readonly string[];
  /** How the environment value is written when it differs from the flag's, e.g. "comma-separated". */
  readonly envNote?: string;
  /** The value when neither flag nor environment gives one (parsed like a given value). */
  readonly default?: string;
  /** The default as documented, when it is not simply `default` (computed, or mode-dependent). */
  readonly defaultText?: string;
  /** Raw text -> value; throws ConfigError naming `name`. Without it the value is the text. */
  readonly parse?: (value: string, name: string) => unknown;
  readonly help: string;
  /** README-only continuation of `help` (links, longer explanations). */
  readonly details?: string;
  readonly group: OptionGroup;
  /** This flag is a deprecated alias of another option. */
  readonly aliasOf?: string;
}

const DURATION = { type: "string", arg: "D", parse: duration } as const;

export const OPTIONS = {
  "docker-only": { type: "boolean", defaultText: "off", group: "run", help: "read bindings from `--bindings` instead of Kubernetes" },
  bindings: {
    type: "string",
    arg: "DIR",
    env: ["DOCKBIND_BINDINGS_DIR"],
    default: "/etc/dockbind/bindings",
    defaultText: "required with `--docker-only`, else `/etc/dockbind/bindings`",
    parse: absolutePath,
    group: "run",
    help: "directory of ServiceBinding YAML/JSON files",
  },
  "registrator-compat": { type: "boolean", defaultText: "off", group: "run", help: "also register containers carrying registrator's `SERVICE_*` labels/env" },
  "registrator-internal": { type: "boolean", defaultText: "off", group: "run", help: "registrator's `-internal`: container IP + exposed port" },
  "registrator-explicit": {
    type: "boolean",
    defaultText: "off",
    group: "run",
    help: "registrator's `-explicit`: only ports named by `SERVICE_NAME` / `SERVICE_<port>_NAME` are registered",
  },
  node: {
    type: "string",
    arg: "NAME",
    env: ["DOCKBIND_NODE"],
    defaultText: "hostname",
    parse: nodeName,
    group: "run",
    help: "owner identity written into every registration's meta (letters, digits, `.`, `_`, `-`); with `--docker-endpoint` only the controller's name in logs and the status page",
    details: "Two controllers must not share it: see [Node identity](#node-identity-ownership-and-takeover)",
  },
  "instance-id": {
    type: "string",
    arg: "ID",
    env: ["DOCKBIND_INSTANCE_ID"],
    parse: nodeName,
    group: "run",
    defaultText:
      "derived: `i-` + 12 hex of SHA-256 of the absolute `--bindings` path (docker-only), of the lock name (docker-only with `--leader-elect`: a standby pair is one installation) or of the Lease namespace/name (Kubernetes)",
    help: "this installation's identity in every registration's meta (`dockbind_instance`); stable across restarts without any state file",
    details: "Set it when two controllers on one Docker engine could have the same node name and the same bindings path",
  },
  adopt: {
    type: "string",
    multiple: true,
    arg: "ID[,ID]",
    env: ["DOCKBIND_ADOPT"],
    envNote: "comma-separated",
    defaultText: "none",
    group: "run",
    help: "take over the registrations under our node name made by this Docker engine ID or instance ID: rewritten with our identity if wanted, removed if orphaned (a controller that moved to a new engine or instance ID)",
    details: "See [Takeover](#takeover-a-controller-that-moved)",
  },
  "host-ip": {
    type: "string",
    arg: "IP",
    env: ["DOCKBIND_HOST_IP"],
    default: "127.0.0.1",
    parse: ipAddress,
    group: "run",
    help: "address advertised for ports published on `0.0.0.0` (registrator's `-ip`)",
  },
  "docker-host": {
    type: "string",
    arg: "URL",
    env: ["DOCKER_HOST"],
    default: "unix:///var/run/docker.sock",
    parse: dockerHostAddr,
    group: "run",
    help: "Docker API (`unix://` or `tcp://`)",
  },
  "docker-cert-path": {
    type: "string",
    arg: "DIR",
    env: ["DOCKER_CERT_PATH"],
    group: "run",
    help: "Docker over tcp+TLS with `ca.pem`, `cert.pem`, `key.pem` (the Docker CLI layout)",
  },
  "docker-tls-verify": {
    type: "string",
    flag: false,
    env: ["DOCKER_TLS_VERIFY"],
    defaultText: "verify",
    group: "run",
    help: "with `--docker-cert-path`: `0` or `false` skips verification of the daemon's certificate",
  },
  "docker-endpoint": {
    type: "string",
    multiple: true,
    arg: "SPEC",
    env: ["DOCKBIND_DOCKER_ENDPOINTS"],
    envNote: "specs separated by `;`",
    defaultText: "one endpoint from `--docker-host`, `--docker-cert-path`, `--host-ip`",
    group: "run",
    help: "a Docker engine served by this controller with its own node identity: `node=NAME,host=ADDR[,cert-path=DIR][,tls-verify=true|false][,host-ip=IP]`; replaces `--docker-host`/`--docker-cert-path`",
    details: "See [Several Docker engines](#several-docker-engines-one-controller)",
  },
  "consul-addr": {
    type: "string",
    multiple: true,
    arg: "ADDR[,ADDR]",
    env: ["CONSUL_HTTP_ADDR"],
    envNote: "one address",
    default: "127.0.0.1:8500",
    group: "run",
    help: "Consul agent(s), failover in order; `http://`/`https://` prefixes accepted. Repeat the flag or separate with commas for several agents",
  },
  "consul-ssl": {
    type: "string",
    flag: false,
    env: ["CONSUL_HTTP_SSL"],
    defaultText: "false",
    group: "run",
    help: "`true`: `https://` for Consul addresses given without a scheme",
  },
  "consul-token": { type: "string", flag: false, env: ["CONSUL_HTTP_TOKEN"], group: "run", help: "ACL token (never logged)" },
  "consul-token-file": {
    type: "string",
    arg: "FILE",
    env: ["CONSUL_HTTP_TOKEN_FILE"],
    group: "run",
    help: "ACL token from a file (beats `CONSUL_HTTP_TOKEN`), followed while running: a rotated token is used without a restart",
    details: "See [Token rotation](#token-rotation)",
  },
  "consul-blocking-queries": {
    type: "string",
    arg: "N",
    env: ["DOCKBIND_CONSUL_BLOCKING_QUERIES"],
    default: "64",
    parse: blockingQueryCount,
    group: "run",
    help: "at most N Consul health queries block at once (load-balanced services first); the other services are polled every 10 s. The controller opens at most N + 32 connections to an agent",
    details:
      'Consul refuses more than `limits.http_max_conns_per_client` (default 200) connections from one address, and a blocking query it is serving stays counted until its wait ends even after the client is gone: keep 2 × (N + 32) under that limit so a restarted controller never collides with its predecessor\'s queries. See "A bounded number of connections to Consul" under [What it guarantees](#what-it-guarantees)',
  },
  "consul-cacert": { type: "string", arg: "FILE", env: ["CONSUL_CACERT"], group: "run", help: "CA (PEM) for HTTPS to Consul" },
  "consul-client-cert": {
    type: "string",
    arg: "FILE",
    env: ["CONSUL_CLIENT_CERT"],
    group: "run",
    help: "client certificate (PEM) for HTTPS to Consul (`verify_incoming_https`); needs `--consul-client-key`",
  },
  "consul-client-key": { type: "string", arg: "FILE", env: ["CONSUL_CLIENT_KEY"], group: "run", help: "the client certificate's key (PEM)" },
  "lb-output-dir": {
    type: "string",
    arg: "DIR",
    env: ["DOCKBIND_LB_OUTPUT_DIR"],
    default: "/etc/nginx/conf.d",
    parse: absolutePath,
    group: "run",
    help: "where generated nginx files are written",
  },
  "nginx-stream-dir": {
    type: "string",
    arg: "DIR",
    env: ["DOCKBIND_NGINX_STREAM_DIR"],
    default: "/etc/nginx/stream.d",
    parse: absolutePath,
    group: "run",
    help: "where nginx `protocol: tcp|udp` files go; nginx.conf includes them at top level: `stream { include DIR/*.conf; }`; must differ from the other output dirs",
  },
  "lb-file-mode": {
    type: "string",
    arg: "MODE",
    env: ["DOCKBIND_LB_FILE_MODE"],
    default: "0644",
    parse: fileMode,
    group: "run",
    help: "mode of generated files (octal); world-writable modes are refused (exit 2)",
  },
  "lb-file-owner": {
    type: "string",
    arg: "UID:GID",
    env: ["DOCKBIND_LB_FILE_OWNER"],
    defaultText: "the controller's user",
    parse: fileOwner,
    group: "run",
    help: "numeric owner of generated files (needs CAP_CHOWN)",
  },
  "template-dir": {
    type: "string",
    arg: "DIR",
    env: ["DOCKBIND_TEMPLATE_DIR"],
    defaultText: "the bindings directory",
    parse: absolutePath,
    group: "run",
    help: "where `loadBalancer.template` files are read",
  },
  "tls-dir": {
    type: "string",
    arg: "DIR",
    env: ["DOCKBIND_TLS_DIR"],
    defaultText: "the bindings directory",
    parse: absolutePath,
    group: "run",
    help: "where `loadBalancer.tls` certificate and key files are read (Kubernetes: a mounted kubernetes.io/tls Secret)",
  },
  "nginx-bin": {
    type: "string",
    arg: "PATH",
    env: ["DOCKBIND_NGINX_BIN"],
    default: "nginx",
    group: "run",
    help: "nginx binary used for `-t` (and `-s reload` when its pid file names no running master)",
  },
  "nginx-prefix": {
    type: "string",
    arg: "DIR",
    env: ["DOCKBIND_NGINX_PREFIX"],
    defaultText: "nginx's own",
    parse: absolutePath,
    group: "run",
    help: "`-p` passed to `nginx -t`; with `-c`, where the master's pid file is found",
  },
  "nginx-conf": {
    type: "string",
    arg: "FILE",
    env: ["DOCKBIND_NGINX_CONF"],
    defaultText: "nginx's own",
    parse: absolutePath,
    group: "run",
    help: "`-c` passed to `nginx -t`; with `-p`, where the master's pid file is found",
  },
  "haproxy-bin": { type: "string", arg: "PATH", env: ["DOCKBIND_HAPROXY_BIN"], default: "haproxy", group: "run", help: "haproxy binary used for `haproxy -c`" },
  "haproxy-config": {
    type: "string",
    arg: "FILE",
    env: ["DOCKBIND_HAPROXY_CONFIG"],
    default: "/etc/haproxy/haproxy.cfg",
    parse: absolutePath,
    group: "run",
    help: "haproxy main config (global/defaults), first `-f` of `haproxy -c`",
  },
  "haproxy-output-dir": {
    type: "string",
    arg: "DIR",
    env: ["DOCKBIND_HAPROXY_OUTPUT_DIR"],
    default: "/etc/haproxy/conf.d",
    parse: absolutePath,
    group: "run",
    help: "where `kind: haproxy` files (`*.cfg`) go; haproxy must run with `-f MAIN -f DIR`; must differ from `--lb-output-dir`",
  },
  "haproxy-master-socket": {
    type: "string",
    arg: "FILE",
    env: ["DOCKBIND_HAPROXY_MASTER_SOCKET"],
    default: "/run/haproxy-master.sock",
    parse: absolutePath,
    group: "run",
    help: "master CLI of the running haproxy (`-W -S FILE`, Debian's default), used to reload",
  },
  resync: {
    ...DURATION,
    env: ["DOCKBIND_RESYNC"],
    default: "5m",
    group: "run",
    help: "full resync period (Docker list, Consul re-check, re-render): the safety net behind the Docker event stream and the Consul health watch, which repair changes as they happen",
  },
  "drain-delay": {
    ...DURATION,
    env: ["DOCKBIND_DRAIN_DELAY"],
    default: "10s",
    group: "run",
    help: "graceful drain: how long a container stays out of Consul after its `kill`/`stop` event, before it dies (`0s` = off)",
  },
  "delete-delay": {
    ...DURATION,
    env: ["DOCKBIND_DELETE_DELAY"],
    default: "10s",
    group: "run",
    help: "a binding removed from `--bindings` (its file or its document gone) keeps being served this long before it is deleted; back within D = nothing happens (no Consul write, no reload). `0s` = delete at once",
    details: "See [Transient file states](#transient-file-states-are-not-deletions)",
  },
  "swarm-resync": {
    ...DURATION,
    parse: positiveDuration,
    env: ["DOCKBIND_SWARM_RESYNC"],
    default: "2s",
    group: "run",
    help: "Swarm services/tasks/nodes re-list period (Swarm has no task events)",
  },
  "wait-min": {
    ...DURATION,
    env: ["DOCKBIND_WAIT_MIN"],
    default: "100ms",
    group: "run",
    help: "render debounce, like consul-template's `wait`: the quiet time before a render; a change that only adds passing instances after a quiet period renders at once. Two renders of a binding are at least D apart",
  },
  "wait-max": {
    ...DURATION,
    env: ["DOCKBIND_WAIT_MAX"],
    default: "1s",
    group: "run",
    help: "render debounce: the longest a render waits for quiet; at least `--wait-min`",
  },
  "min-reload-interval": {
    ...DURATION,
    env: ["DOCKBIND_MIN_RELOAD_INTERVAL"],
    default: "1s",
    group: "run",
    help: "at most one reload per load balancer per D; the first change after a quiet period reloads at once, the next reload of a burst waits at least D",
  },
  "max-reload-interval": {
    ...DURATION,
    env: ["DOCKBIND_MAX_RELOAD_INTERVAL"],
    default: "4s",
    group: "run",
    help: "a burst is additions that arrive faster than `--min-reload-interval` allows; within one, reloads after the second come at least D apart. A reload that takes a server out of rotation never waits longer than `--min-reload-interval`; a D at or below it gives constant spacing",
    details:
      "Reloads at 0, 1, 5, 9 s: 3 reloads for 100 starts within 2 s. A stopped or critical backend's address leaves nginx within 1 s, and a reload that could go at once ends the burst, so a stop and the next start seconds later never wait for D",
  },
  workers: { type: "string", arg: "N", env: ["DOCKBIND_WORKERS"], default: "2", parse: workerCount, group: "run", help: "registrar workers (1..64)" },
  "log-level": {
    type: "string",
    arg: "LEVEL",
    env: ["DOCKBIND_LOG_LEVEL"],
    default: "info",
    group: "run",
    parse: (v: string, name: string) => oneOf(name, v, ["error", "warn", "info", "debug"] as const),
    help: "`error`, `warn`, `info` or `debug`",
  },
  "log-format": {
    type: "string",
    arg: "FORMAT",
    env: ["DOCKBIND_LOG_FORMAT"],
    defaultText: "`json` (`text` on a TTY)",
    group: "run",
    parse: (v: string, name: string) => oneOf(name, v, ["json", "text"] as const),
    help: "`json` (winston JSON lines) or `text` (human), on stderr",
  },
  "metrics-addr": {
    type: "string",
    arg: "HOST:PORT",
    env: ["DOCKBIND_METRICS_ADDR"],
    default: DEFAULT_METRICS_ADDR,
    parse: listenAddrOrOff,
    group: "run",
    help: "`/metrics`, `/healthz`, `/readyz`, `/api/status` and the status page on `/`; `off` disables",
  },
  "leader-elect": {
    type: "string",
    arg: "true|false",
    env: ["DOCKBIND_LEADER_ELECT"],
    defaultText: "`true` in Kubernetes mode, `false` with `--docker-only`",
    parse: trueFalse,
    group: "leader",
    help: "one leader among several controllers: a Lease in Kubernetes mode, a Consul session lock on `dockbind/leader/NAME` with `--docker-only`; only the leader reads Docker and writes Consul and LB files, a leader that loses the lock exits 1",
    details: "See [A standby pair](#a-standby-pair-on-bare-hosts-consul-lock)",
  },
  "lease-name": {
    type: "string",
    arg: "NAME",
    env: ["DOCKBIND_LEASE_NAME"],
    default: "dockbind-controller",
    parse: dnsSubdomain,
    group: "leader",
    help: "the Lease's name; with `--docker-only` the Consul lock's (KV key `dockbind/leader/NAME`)",
  },
  "leader-identity": {
    type: "string",
    arg: "ID",
    env: ["POD_NAME"],
    defaultText: "`hostname_random`",
    group: "leader",
    help: "this candidate's identity (the Lease holder, or the lock key's value)",
  },
  kubeconfig: {
    type: "string",
    arg: "FILE",
    env: ["KUBECONFIG"],
    envNote: "a path list",
    defaultText: "the in-cluster ServiceAccount, then `~/.kube/config`",
    group: "kubernetes",
    help: "Kubernetes mode: the kubeconfig file",
  },
  "kube-context": {
    type: "string",
    arg: "NAME",
    defaultText: "the kubeconfig's current-context",
    group: "kubernetes",
    help: "Kubernetes mode: the kubeconfig context",
  },
  "watch-namespace": {
    type: "string",
    multiple: true,
    arg: "NS[,NS]",
    env: ["DOCKBIND_WATCH_NAMESPACES"],
    envNote: "comma-separated",
    defaultText: "all namespaces (needs a ClusterRole)",
    group: "kubernetes",
    help: "Kubernetes mode: the only namespaces whose ServiceBindings are listed, watched and written (status, finalizer, Events), one namespaced list+watch each, so Roles in them suffice; a flag replaces the environment",
    details: "See [Namespaced deployment](#namespaced-deployment-least-privilege)",
  },
  namespace: {
    type: "string",
    arg: "NS",
    env: ["DOCKBIND_NAMESPACE"],
    aliasOf: "watch-namespace",
    group: "kubernetes",
    help: "deprecated alias of `--watch-namespace` that adds one namespace",
  },
  "lease-namespace": {
    type: "string",
    arg: "NS",
    env: ["DOCKBIND_LEASE_NAMESPACE", "POD_NAMESPACE"],
    default: "default",
    defaultText: "the ServiceAccount's namespace, else `default`",
    parse: namespaceName,
    group: "kubernetes",
    help: "Kubernetes mode: namespace of the Lease; the ServiceAccount needs a Role there on `leases` (`create`; `get`, `update` of the Lease), whether or not the namespace is watched",
  },
  help: { type: "boolean", short: "h", group: "run", help: "print this help" },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;
type Spec<K extends OptionName> = (typeof OPTIONS)[K];

/** The parsed value of an option (its parser's result, else the text). */
export type OptionValue<K extends OptionName> = Spec<K> extends { readonly parse: (v: string, n: string) => infer T } ? T : string;

/** parseArgs' view of one option, typed from the table so parsed values keep their types. */
type FlagOf<S> = S extends { readonly type: infer T; readonly short: infer Sh }
  ? { readonly type: T; readonly multiple: S extends { readonly multiple: true } ? true : false; readonly short: Sh }
  : S extends { readonly type: infer T }
    ? { readonly type: T; readonly multiple: S extends { readonly multiple: true } ? true : false }
    : never;

export type ControllerFlags = { readonly [K in OptionName as Spec<K> extends { readonly flag: false } ? never : K]: FlagOf<Spec<K>> };

function spec(name: OptionName): OptionSpec {
  return OPTIONS[name];
}

const NAMES = Object.keys(OPTIONS) as OptionName[];

/** node:util parseArgs options of the controller: every option with a flag. */
export const CONTROLLER_FLAGS = Object.freeze(
  Object.fromEntries(
    NAMES.filter((n) => spec(n).flag !== false).map((n) => {
      const s = spec(n);
      return [n, { type: s.type, multiple: s.multiple === true, ...(s.short !== undefined ? { short: s.short } : {}) }];
    }),
  ),
) as unknown as ControllerFlags;

export type Env = Readonly<Record<string, string | undefined>>;

/** parseArgs' `values` for CONTROLLER_FLAGS. */
export type FlagValues = Readonly<Partial<Record<string, string | boolean | (string | boolean)[]>>>;

/** A non-empty value, else undefined (an empty flag or variable counts as not given). */
function given(v: string | undefined): string | undefined {
  return v !== undefined && v !== "" ? v : undefined;
}

/**
 * Option lookup over parsed flags and an environment: flag > environment
 * variables (in table order) > a caller's fallback > the table's default, an
 * empty text counting as not given. Reads nothing else.
 */
export class OptionInputs {
  constructor(
    private readonly values: FlagValues,
    private readonly env: Env,
  ) {}

  /** The flag's text as given (even empty); undefined when the flag is absent. */
  flag(name: OptionName): string | undefined {
    const v = this.values[name];
    return typeof v === "string" ? v : undefined;
  }

  /** The flag's text, else the first non-empty environment variable's; no default. */
  raw(name: OptionName): string | undefined {
    return given(this.flag(name)) ?? this.fromEnv(name);
  }

  /** The environment's text only (the first non-empty variable of the option). */
  fromEnv(name: OptionName): string | undefined {
    for (const variable of spec(name).env ?? []) {
      const e = given(this.env[variable]);
      if (e !== undefined) return e;
    }
    return undefined;
  }

  /** Every value of a repeatable flag, as given. */
  list(name: OptionName): readonly string[] {
    const v = this.values[name];
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  }

  /** A boolean flag: given = true. */
  enabled(name: OptionName): boolean {
    return this.values[name] === true;
  }

  /** Parsed raw(name) ?? fallback ?? the table's default; undefined when none. Throws ConfigError from the parser. */
  value<K extends OptionName>(name: K, fallback?: string): OptionValue<K> | undefined {
    const s = spec(name);
    const text = this.raw(name) ?? fallback ?? s.default;
    if (text === undefined) return undefined;
    return (s.parse !== undefined ? s.parse(text, `--${name}`) : text) as OptionValue<K>;
  }

  /** value() of an option that always has one (a table default or a fallback). */
  required<K extends OptionName>(name: K, fallback?: string): OptionValue<K> {
    const v = this.value(name, fallback);
    if (v === undefined) throw new Error(`option --${name} has neither a value nor a default`);
    return v;
  }
}

/** The environment variables of an option (table order). */
export function envOf(name: OptionName): readonly string[] {
  return spec(name).env ?? [];
}

const plain = (markdown: string): string => markdown.replace(/`/g, "").replace(/\[([^\]]+)\]\([^)]+\)/g, "$1");

function flagLabel(name: OptionName, markdown: boolean): string {
  const s = spec(name);
  if (s.flag === false) return "";
  const short = s.short !== undefined ? `-${s.short}, ` : "";
  const text = `${short}--${name}${s.arg !== undefined ? ` ${s.arg}` : ""}`;
  return markdown ? `\`${text}\`${s.multiple === true ? " (repeatable)" : ""}` : text;
}

function envLabel(name: OptionName, markdown: boolean): string {
  const s = spec(name);
  const vars = (s.env ?? []).map((v) => (markdown ? `\`${v}\`` : v)).join(", ");
  if (vars === "") return "";
  return s.envNote !== undefined ? `${vars} (${markdown ? s.envNote : plain(s.envNote)})` : vars;
}

function defaultLabel(name: OptionName): string {
  const s = spec(name);
  return s.defaultText ?? (s.default !== undefined ? `\`${s.default}\`` : "");
}

/** Words of `text` in lines of at most `width` characters. */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(/\s+/).filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === "" ? word : `${line} ${word}`;
  }
  if (line !== "") lines.push(line);
  return lines;
}

const HELP_GROUPS: readonly (readonly [OptionGroup, string])[] = [
  ["kubernetes", "Kubernetes mode flags (without --docker-only):"],
  ["leader", "Leader election (both modes):"],
  ["run", "Run flags (environment variables in brackets):"],
];

/** One option in `--help`: the flag (or, for an environment-only option, its variables) padded to a column, then help, [environment] and (default …), wrapped. */
function helpEntry(name: OptionName): string {
  const envOnly = spec(name).flag === false;
  const env = envLabel(name, false);
  const def = plain(defaultLabel(name));
  const text = [plain(spec(name).help), env !== "" && !envOnly ? `[${env}]` : "", def !== "" ? `(default: ${def})` : ""].filter((t) => t !== "").join(" ");
  const label = envOnly ? env : flagLabel(name, false);
  const lines = wrap(text, 88);
  const indent = " ".repeat(32);
  const first = label.length <= 29 ? [`  ${label.padEnd(30)}${lines.shift() ?? ""}`] : [`  ${label}`];
  return [...first, ...lines.map((l) => `${indent}${l}`)].join("\n");
}

/** The flag sections of `controller --help`, grouped, in table order. */
export function flagHelp(): string {
  return HELP_GROUPS.map(([group, title]) => [title, ...NAMES.filter((n) => spec(n).group === group).map(helpEntry)].join("\n")).join("\n\n") + "\n";
}

const cell = (text: string): string => text.replace(/\|/g, "\\|");

/** The README's "Flags and environment" table, one row per option in table order. */
export function flagTableMarkdown(): string {
  const rows = NAMES.map((n) => {
    const s = spec(n);
    const meaning = s.details !== undefined ? `${s.help}. ${s.details}` : s.help;
    return `| ${cell(flagLabel(n, true))} | ${cell(envLabel(n, true))} | ${cell(defaultLabel(n))} | ${cell(meaning)} |`;
  });
  return ["| flag | environment | default | meaning |", "|---|---|---|---|", ...rows].join("\n") + "\n";
}

export const FLAG_TABLE_BEGIN = "<!-- flags:begin (generated from src/config/options.ts by scripts/gen-flags.ts; do not edit) -->";
export const FLAG_TABLE_END = "<!-- flags:end -->";

/** `readme` with the text between the flag-table markers replaced by flagTableMarkdown(); throws when a marker is missing. */
export function withFlagTable(readme: string): string {
  const begin = readme.indexOf(FLAG_TABLE_BEGIN);
  const end = readme.indexOf(FLAG_TABLE_END);
  if (begin < 0 || end < begin) throw new Error(`README: flag table markers missing (${FLAG_TABLE_BEGIN} … ${FLAG_TABLE_END})`);
  return `${readme.slice(0, begin + FLAG_TABLE_BEGIN.length)}\n${flagTableMarkdown()}${readme.slice(end)}`;
}
