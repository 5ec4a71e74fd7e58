/**
 * Consul health checks from registrator's SERVICE_CHECK_* metadata
 * (gliderlabs/registrator consul/consul.go buildCheck), for registratorCompat.ts.
 * Pure: no I/O. Every value here comes from container labels/env, so it is
 * untrusted and validated before it reaches a CheckDefinition.
 *
 * Kinds, in registrator's precedence order: http, https, cmd, script, ttl, tcp,
 * grpc. dockbind supports http, https, ttl and tcp. The first kind that is set and
 * usable wins. A kind that is set but unsupported (script, cmd, docker, grpc) or
 * invalid (bad path or duration) is reported and skipped, so the next kind that is
 * set is tried. registrator would stop at the first kind that is set.
 */
import type { CheckDefinition, CheckStatus } from "./types.js";

/** One SERVICE_* value after registrator's env/label/port-specific merge. */
export interface CompatMetaValue {
  readonly value: string;
  /** Where it came from, for issues: `labels.SERVICE_80_NAME` or `env.SERVICE_NAME`. */
  readonly field: string;
  /** True when it came from a `SERVICE_<port>_<KEY>` key. */
  readonly fromPort: boolean;
}

/** Lower-cased registrator key (without `SERVICE_` and port) -> value. */
export type CompatMetadata = ReadonlyMap<string, CompatMetaValue>;

export interface CompatCheckIssue {
  readonly field: string;
  readonly message: string;
}

export interface CompatCheckResult {
  readonly check?: CheckDefinition;
  readonly issues: readonly CompatCheckIssue[];
}

/** registrator's DefaultInterval for every non-TTL check. */
const COMPAT_DEFAULT_CHECK_INTERVAL = "10s";

const CHECK_PREFIX = "check_";

/** Check keys that registrator knows and dockbind deliberately does not honour. */
const UNSUPPORTED_CHECK_KEYS: Readonly<Record<string, string>> = {
  check_script: "script checks run commands on the Consul agent; dockbind does not register them (security)",
  check_cmd: "check-cmd runs commands in the container through the Consul agent; dockbind does not register it (security)",
  check_docker: "docker exec checks run commands through the Consul agent; dockbind does not register them (security)",
  check_grpc: "gRPC checks are not supported by dockbind",
  check_grpc_use_tls: "gRPC checks are not supported by dockbind",
  check_http_method: "custom HTTP check methods are not supported by dockbind; GET is used",
  check_https_method: "custom HTTP check methods are not supported by dockbind; GET is used",
  check_tls_skip_verify: "dockbind never disables TLS verification of HTTPS checks",
};

/** Check keys that dockbind reads. */
const SUPPORTED_CHECK_KEYS: ReadonlySet<string> = new Set([
  "check_http",
  "check_https",
  "check_tcp",
  "check_ttl",
  "check_interval",
  "check_timeout",
  "check_initial_status",
  "check_deregister_after",
]);

const DURATION_RE = /^(\d{1,9})(ms|s|m|h)$/;
/** Printable ASCII without space; must start with '/'. */
const HTTP_PATH_RE = /^\/[!-~]{0,1023}$/;
const CHECK_STATUSES: readonly CheckStatus[] = ["passing", "warning", "critical"];

/** Whether a registrator key configures checks. Those keys never become service meta. */
export function isCheckKey(key: string): boolean {
  return key.startsWith(CHECK_PREFIX);
}

/** A Go-style duration limited to one positive integer and one unit: `500ms`, `10s`, `5m`, `1h`. */
function isValidCompatDuration(value: string): boolean {
  const m = DURATION_RE.exec(value);
  return m !== null && Number(m[1]) > 0;
}

/** Absolute HTTP path: starts with '/', printable ASCII only, no whitespace or backslash. */
function isValidCheckPath(value: string): boolean {
  return HTTP_PATH_RE.test(value) && !value.includes("\\");
}

/** Bounded and JSON-quoted so untrusted values cannot inject lines into logs. */
export function quoteUntrusted(value: string, max = 64): string {
  const cut = value.length > max ? `${value.slice(0, max)}…` : value;
  return JSON.stringify(cut)
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

function hostPort(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}

/** registrator's mapDefault: an empty value counts as unset. */
function setValue(md: CompatMetadata, key: string): CompatMetaValue | undefined {
  const v = md.get(key);
  return v !== undefined && v.value !== "" ? v : undefined;
}

/**
 * The Consul check registrator would attach for `md`, advertised at
 * `address:port`, with unsupported or invalid values reported.
 */
export function buildCompatCheck(md: CompatMetadata, address: string, port: number): CompatCheckResult {
  const issues: CompatCheckIssue[] = [];
  const report = (v: CompatMetaValue, message: string): void => {
    issues.push({ field: v.field, message });
  };

  for (const [key, v] of md) {
    if (!isCheckKey(key) || v.value === "" || SUPPORTED_CHECK_KEYS.has(key)) continue;
    const reason = UNSUPPORTED_CHECK_KEYS[key];
    report(v, reason !== undefined ? `ignored: ${reason}` : "ignored: unknown registrator check key");
  }

  const duration = (key: string, what: string): string | undefined => {
    const v = setValue(md, key);
    if (v === undefined) return undefined;
    if (isValidCompatDuration(v.value)) return v.value;
    report(v, `invalid ${what} ${quoteUntrusted(v.value)}: expected a positive duration like 10s, 500ms, 5m or 1h; ignored`);
    return undefined;
  };
  const path = (key: string): string | undefined => {
    const v = setValue(md, key);
    if (v === undefined) return undefined;
    if (isValidCheckPath(v.value)) return v.value;
    report(v, `invalid check path ${quoteUntrusted(v.value)}: must start with '/' and contain only printable ASCII without whitespace; check skipped`);
    return undefined;
  };

  let base: { http?: string; tcp?: string; ttl?: string } | undefined;
  const httpPath = path("check_http");
  const httpsPath = httpPath === undefined ? path("check_https") : undefined;
  if (httpPath !== undefined) {
    base = { http: `http://${hostPort(address, port)}${httpPath}` };
  } else if (httpsPath !== undefined) {
    base = { http: `https://${hostPort(address, port)}${httpsPath}` };
  } else {
    const ttl = duration("check_ttl", "check TTL");
    if (ttl !== undefined) {
      base = { ttl };
    } else {
      const tcp = setValue(md, "check_tcp");
      if (tcp !== undefined) {
        if (/^(false|0|no|off)$/i.test(tcp.value)) {
          report(tcp, `value ${quoteUntrusted(tcp.value)} still enables the TCP check (registrator semantics: any non-empty value)`);
        }
        base = { tcp: hostPort(address, port) };
      }
    }
  }
  if (base === undefined) {
    for (const key of ["check_interval", "check_timeout", "check_initial_status", "check_deregister_after"]) {
      const v = setValue(md, key);
      if (v !== undefined) report(v, "ignored: no usable check kind (http, https, ttl, tcp) is set");
    }
    return { issues };
  }

  let check: CheckDefinition = base;
  if (base.ttl === undefined) {
    check = {
      ...check,
      interval: duration("check_interval", "check interval") ?? COMPAT_DEFAULT_CHECK_INTERVAL,
    };
    const timeout = duration("check_timeout", "check timeout");
    if (timeout !== undefined) check = { ...check, timeout };
  }
  const status = setValue(md, "check_initial_status");
  if (status !== undefined) {
    const found = CHECK_STATUSES.find((s) => s === status.value);
    if (found !== undefined) check = { ...check, status: found };
    else report(status, `invalid initial status ${quoteUntrusted(status.value)}: expected passing, warning or critical; ignored`);
  }
  const deregister = duration("check_deregister_after", "deregister-after duration");
  if (deregister !== undefined) check = { ...check, deregisterCriticalServiceAfter: deregister };
  return { check, issues };
}
