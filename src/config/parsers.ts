/**
 * Value parsers of the option table (options.ts): each takes the raw text and
 * the option's name as the user wrote it (e.g. "--wait-min", or a
 * --docker-endpoint field) and returns the typed value or throws ConfigError
 * naming the option. Pure: no environment, no files.
 */
import { isIP } from "node:net";
import { resolve } from "node:path";
import { parseDurationMs } from "../runtime/duration.js";

/** A flag or environment value that is not acceptable; the process exits 2. */
export class ConfigError extends Error {
  readonly reason = "InvalidConfig";
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

/** A listen address, or undefined for "off". */
export function listenAddrOrOff(value: string, name: string): ListenAddr | undefined {
  return value === "off" ? undefined : parseListenAddr(name, value);
}

export function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  const found = allowed.find((a) => a === value);
  if (found === undefined) throw new ConfigError(`${name} must be one of ${allowed.join(", ")} (got ${JSON.stringify(value)})`);
  return found;
}

/** A duration like 100ms, 30s, 2m, in milliseconds. */
export function duration(value: string, name: string): number {
  try {
    return parseDurationMs(value);
  } catch (err) {
    throw new ConfigError(`${name}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** A duration greater than 0, in milliseconds. */
export function positiveDuration(value: string, name: string): number {
  const ms = duration(value, name);
  if (ms <= 0) throw new ConfigError(`${name} must be greater than 0`);
  return ms;
}

/** `true` or `false`. */
export function trueFalse(value: string, name: string): boolean {
  return oneOf(name, value, ["true", "false"] as const) === "true";
}

/** A path, made absolute against the working directory. */
export function absolutePath(value: string): string {
  return resolve(value);
}

export function ipAddress(value: string, name: string): string {
  if (isIP(value) === 0) throw new ConfigError(`${name} must be an IP address (got ${JSON.stringify(value)})`);
  return value;
}

export function workerCount(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new ConfigError(`${name} must be an integer 1..64`);
  return n;
}

export function blockingQueryCount(value: string, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new ConfigError(`${name} must be an integer 1..1000`);
  return n;
}

/** Node identities end up in service IDs (`dockbind:<node>:…`) and workqueue keys (`…@<node>`): no `:`, `@` or `/`. */
const NODE_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$/;

/** A node or instance identity: 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit. */
export function nodeName(value: string, name: string): string {
  if (!NODE_NAME.test(value))
    throw new ConfigError(`${name} must be 1-63 letters, digits, '.', '_' or '-' starting with a letter or digit (got ${JSON.stringify(value)})`);
  return value;
}

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export function isNamespaceName(value: string): boolean {
  return DNS_LABEL.test(value);
}

/** A Kubernetes namespace name (a DNS label). */
export function namespaceName(value: string, name: string): string {
  if (!isNamespaceName(value)) throw new ConfigError(`${name} must be a namespace name (got ${JSON.stringify(value)})`);
  return value;
}

/** A DNS subdomain: the Lease's or the Consul lock's name. */
export function dnsSubdomain(value: string, name: string): string {
  if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(value)) throw new ConfigError(`${name} must be a DNS subdomain (got ${JSON.stringify(value)})`);
  return value;
}

/** A Docker address: unix://PATH, an absolute socket path or tcp://HOST:PORT. */
export function dockerHostAddr(value: string, name: string): string {
  if (value.startsWith("unix://") || value.startsWith("/")) return value;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be unix://PATH, an absolute socket path or tcp://HOST:PORT (got ${JSON.stringify(value)})`);
  }
  if (url.protocol !== "tcp:" || url.hostname === "")
    throw new ConfigError(`${name} must be unix://PATH, an absolute socket path or tcp://HOST:PORT (got ${JSON.stringify(value)})`);
  return value;
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
