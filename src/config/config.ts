/**
 * The one place that reads process.env and command-line flags. Produces a
 * single frozen, typed Config. Precedence: flag > environment > default.
 * Secrets (the Consul token) are kept here and registered with the logger's
 * redactor by the caller; they are never printed.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { isIP } from "node:net";
import { parseDurationMs } from "./duration.js";

export interface ConsulConfig {
  /** Base URL without /v1, e.g. http://127.0.0.1:8500 */
  readonly url: string;
  readonly token?: string;
}

export interface NginxConfig {
  readonly bin: string;
  /** Extra args for `nginx -t` and `nginx -s reload`, e.g. ['-p', prefix, '-c', conf]. */
  readonly args: readonly string[];
}

export interface Config {
  readonly dockerOnly: boolean;
  readonly bindingsDir: string;
  readonly registratorCompat: boolean;
  readonly registratorInternal: boolean;
  readonly node: string;
  readonly hostIP: string;
  readonly dockerHost: string;
  readonly consul: ConsulConfig;
  readonly lbOutputDir: string;
  readonly templateDir: string;
  readonly nginx: NginxConfig;
  readonly resyncIntervalMs: number;
  readonly waitMinMs: number;
  readonly waitMaxMs: number;
  readonly workers: number;
  readonly logLevel: "error" | "warn" | "info" | "debug";
  readonly logFormat: "json" | "text";
}

export class ConfigError extends Error {
  readonly reason = "InvalidConfig";
}

export const CONTROLLER_FLAGS = {
  "docker-only": { type: "boolean" },
  bindings: { type: "string" },
  "registrator-compat": { type: "boolean" },
  "registrator-internal": { type: "boolean" },
  node: { type: "string" },
  "host-ip": { type: "string" },
  "docker-host": { type: "string" },
  "consul-addr": { type: "string" },
  "consul-token-file": { type: "string" },
  "lb-output-dir": { type: "string" },
  "template-dir": { type: "string" },
  "nginx-bin": { type: "string" },
  "nginx-prefix": { type: "string" },
  "nginx-conf": { type: "string" },
  resync: { type: "string" },
  "wait-min": { type: "string" },
  "wait-max": { type: "string" },
  workers: { type: "string" },
  "log-level": { type: "string" },
  "log-format": { type: "string" },
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

function token(flagFile: string | undefined, env: Env): string | undefined {
  const file = pick(flagFile, env.CONSUL_HTTP_TOKEN_FILE);
  if (file !== undefined) {
    const t = readFileSync(file, "utf8").trim();
    if (t === "") throw new ConfigError(`consul token file ${file} is empty`);
    return t;
  }
  return pick(undefined, env.CONSUL_HTTP_TOKEN);
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

/** Builds the controller's configuration from argv (without node/script) and an environment. */
export function loadConfig(argv: readonly string[], env: Env = process.env): Readonly<Config> {
  const { values } = parseArgs({ args: [...argv], options: CONTROLLER_FLAGS, strict: true, allowPositionals: false });
  const bindings = pick(values.bindings, env.DOCKBIND_BINDINGS_DIR);
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
  const bindingsDir = resolve(bindings);
  const consulToken = token(values["consul-token-file"], env);
  const config: Config = {
    dockerOnly: values["docker-only"] ?? false,
    bindingsDir,
    registratorCompat: values["registrator-compat"] ?? false,
    registratorInternal: values["registrator-internal"] ?? false,
    node: pick(values.node, env.DOCKBIND_NODE) ?? hostname(),
    hostIP,
    dockerHost: pick(values["docker-host"], env.DOCKER_HOST) ?? "unix:///var/run/docker.sock",
    consul: Object.freeze({
      url: consulUrl(pick(values["consul-addr"], env.CONSUL_HTTP_ADDR) ?? "127.0.0.1:8500", env.CONSUL_HTTP_SSL === "true"),
      ...(consulToken !== undefined ? { token: consulToken } : {}),
    }),
    lbOutputDir: resolve(pick(values["lb-output-dir"], env.DOCKBIND_LB_OUTPUT_DIR) ?? "/etc/nginx/conf.d"),
    templateDir: resolve(pick(values["template-dir"], env.DOCKBIND_TEMPLATE_DIR) ?? bindingsDir),
    nginx: Object.freeze({ bin: pick(values["nginx-bin"], env.DOCKBIND_NGINX_BIN) ?? "nginx", args: Object.freeze(nginxArgs) }),
    resyncIntervalMs: duration("--resync", pick(values.resync, env.DOCKBIND_RESYNC) ?? "30s"),
    waitMinMs,
    waitMaxMs,
    workers,
    logLevel: oneOf("--log-level", pick(values["log-level"], env.DOCKBIND_LOG_LEVEL) ?? "info", ["error", "warn", "info", "debug"] as const),
    logFormat: oneOf(
      "--log-format",
      pick(values["log-format"], env.DOCKBIND_LOG_FORMAT) ?? (process.stderr.isTTY ? "text" : "json"),
      ["json", "text"] as const,
    ),
  };
  return Object.freeze(config);
}
