/**
 * A small typed Kubernetes API client: JSON requests and streaming watches
 * over node:https, with TLS material and credentials taken from a
 * @kubernetes/client-node KubeConfig on every request (so rotated
 * ServiceAccount token files are picked up).
 *
 * Errors are KubeApiError with the HTTP status and the Status `reason`
 * (NotFound, Conflict, Expired, ...), or the transport error as-is.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type RequestOptions } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid?: string;
  readonly resourceVersion?: string;
  readonly generation?: number;
  readonly creationTimestamp?: string;
  readonly deletionTimestamp?: string;
  readonly finalizers?: readonly string[];
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface KubeObject {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: ObjectMeta;
  readonly [field: string]: unknown;
}

export interface KubeList {
  readonly items: readonly KubeObject[];
  readonly metadata: { readonly resourceVersion?: string; readonly continue?: string };
}

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

export interface WatchEvent {
  readonly type: WatchEventType;
  readonly object: KubeObject | KubeStatus;
}

export interface KubeStatus {
  readonly kind: "Status";
  readonly code?: number;
  readonly reason?: string;
  readonly message?: string;
}

export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = "KubeApiError";
  }
}

export function isKubeApiError(err: unknown, status?: number): err is KubeApiError {
  return err instanceof KubeApiError && (status === undefined || err.status === status);
}

export interface RequestOpts {
  readonly body?: unknown;
  /** Default application/json; patches: application/merge-patch+json, application/json-patch+json. */
  readonly contentType?: string;
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly signal?: AbortSignal;
  /** Whole-request timeout; default 30 s. */
  readonly timeoutMs?: number;
}

export interface WatchOpts {
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly signal: AbortSignal;
  /** Abort the stream when nothing arrives for this long (half-open connections). */
  readonly idleTimeoutMs: number;
}

export interface KubeClient {
  /** The API server URL (for logs). */
  readonly server: string;
  request<T>(method: string, path: string, opts?: RequestOpts): Promise<T>;
  /**
   * Streams watch events until the server ends the watch (resolves) or it fails
   * (rejects). An exception thrown by `onEvent` ends the watch with that error.
   */
  watch(path: string, onEvent: (ev: WatchEvent) => void, opts: WatchOpts): Promise<void>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isKubeObject(v: unknown): v is KubeObject {
  return isRecord(v) && isRecord(v.metadata) && typeof v.metadata.name === "string";
}

export function isKubeStatus(v: unknown): v is KubeStatus {
  return isRecord(v) && v.kind === "Status";
}

function statusError(code: number, body: string): KubeApiError {
  let reason = code === 404 ? "NotFound" : code === 409 ? "Conflict" : code === 410 ? "Expired" : `HTTP${code}`;
  let message = body.trim().slice(0, 500);
  try {
    const parsed: unknown = JSON.parse(body);
    if (isKubeStatus(parsed)) {
      if (parsed.reason !== undefined && parsed.reason !== "") reason = parsed.reason;
      if (parsed.message !== undefined) message = parsed.message;
    }
  } catch {
    // not JSON: keep the raw text
  }
  return new KubeApiError(code, reason, `${reason} (HTTP ${code}): ${message}`);
}

function buildPath(path: string, query: RequestOpts["query"]): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, String(v));
  const qs = params.toString();
  return qs === "" ? path : `${path}${path.includes("?") ? "&" : "?"}${qs}`;
}

export interface KubeClientOptions {
  readonly userAgent: string;
}

/** Where requests go: the kubeconfig's current cluster, through one keep-alive pool. */
interface Endpoint {
  readonly kc: KubeConfig;
  readonly server: string;
  readonly base: URL;
  readonly secure: boolean;
  /** The server URL's path without its trailing slash, prepended to every API path. */
  readonly prefix: string;
  readonly agent: HttpAgent | HttpsAgent;
  /** Watches only: no keep-alive (see endpointOf). */
  readonly watchAgent: HttpAgent | HttpsAgent;
  readonly userAgent: string;
}

/** Throws when the kubeconfig has no current cluster. */
function endpointOf(kc: KubeConfig, opts: KubeClientOptions): Endpoint {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error("kubeconfig has no current cluster");
  const base = new URL(cluster.server);
  const secure = base.protocol === "https:";
  const agent = secure ? new HttpsAgent({ keepAlive: true, maxSockets: 16 }) : new HttpAgent({ keepAlive: true, maxSockets: 16 });
  // Each watch on a connection of its own, closed with it: an aborted (stalled) watch's socket is never
  // reused, and a new watch never lands on a pooled socket that went dark.
  const watchAgent = secure ? new HttpsAgent({ keepAlive: false }) : new HttpAgent({ keepAlive: false });
  return { kc, server: cluster.server, base, secure, prefix: base.pathname.replace(/\/$/, ""), agent, watchAgent, userAgent: opts.userAgent };
}

/** Request options for one request, with TLS material and credentials read from the kubeconfig now. */
async function requestOptions(
  ep: Endpoint,
  method: string,
  path: string,
  headers: Record<string, string>,
  signal?: AbortSignal,
  agent = ep.agent,
): Promise<RequestOptions> {
  const { base } = ep;
  const ro: RequestOptions & { ca?: unknown } = {
    method,
    protocol: base.protocol,
    hostname: base.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: base.port === "" ? (ep.secure ? 443 : 80) : Number(base.port),
    path: ep.prefix + path,
    headers: { Accept: "application/json", "User-Agent": ep.userAgent, ...headers },
    ...(signal !== undefined ? { signal } : {}),
  };
  await ep.kc.applyToHTTPSOptions(ro);
  ro.agent = agent; // one keep-alive pool (watches: ep.watchAgent); TLS options above still apply per socket
  return ro;
}

/** Resolves with the response once its headers arrive; rejects on a transport error. */
function send(ep: Endpoint, ro: RequestOptions, body: string | undefined): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = (ep.secure ? httpsRequest : httpRequest)(ro, resolve);
    req.once("error", reject);
    req.end(body);
  });
}

/** The whole response body as UTF-8; rejects when the response errors or is aborted. */
function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.once("end", () => {
      resolve(Buffer.concat(chunks).toString("utf8"));
    });
    res.once("error", reject);
    res.once("aborted", () => {
      reject(new Error("response aborted"));
    });
  });
}

/** KubeClient.request: a non-2xx status rejects with a KubeApiError; an empty body resolves undefined. */
async function jsonRequest<T>(ep: Endpoint, method: string, path: string, ro: RequestOpts = {}): Promise<T> {
  const timeout = AbortSignal.timeout(ro.timeoutMs ?? 30_000);
  const signal = ro.signal === undefined ? timeout : AbortSignal.any([ro.signal, timeout]);
  const body = ro.body === undefined ? undefined : JSON.stringify(ro.body);
  const headers: Record<string, string> = body === undefined ? {} : { "Content-Type": ro.contentType ?? "application/json" };
  const res = await send(ep, await requestOptions(ep, method, buildPath(path, ro.query), headers, signal), body);
  const text = await readAll(res);
  const code = res.statusCode ?? 0;
  if (code < 200 || code >= 300) throw statusError(code, text);
  return (text === "" ? undefined : JSON.parse(text)) as T;
}

/** Aborts `ctl` when `poke` has not been called for `ms`; `fired` tells whether it did. */
class IdleTimer {
  private timer: NodeJS.Timeout | undefined;
  fired = false;

  constructor(
    private readonly ctl: AbortController,
    private readonly ms: number,
  ) {}

  poke(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.fired = true;
      this.ctl.abort();
    }, this.ms);
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}

/**
 * Delivers one newline-delimited watch line to `onEvent`. Returns the error that ends the
 * watch: an unparseable line, or whatever `onEvent` threw; lines that are not watch events
 * are skipped.
 */
function deliverWatchLine(path: string, line: string, onEvent: (ev: WatchEvent) => void): Error | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return new Error(`watch ${path}: unparseable event`);
  }
  if (!isRecord(parsed) || typeof parsed.type !== "string" || !(isKubeObject(parsed.object) || isKubeStatus(parsed.object))) return undefined;
  try {
    onEvent({ type: parsed.type as WatchEventType, object: parsed.object });
    return undefined;
  } catch (err) {
    // The handler ends the watch (e.g. an ERROR event): the caller sees its error.
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * Feeds the watch response body, line by line, to `onEvent`; every chunk pokes `idle`.
 * Resolves when the server ends the stream; rejects (and destroys the response) on the first
 * error, or when the connection closes early.
 */
function pumpWatch(res: IncomingMessage, path: string, onEvent: (ev: WatchEvent) => void, idle: IdleTimer, idleTimeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let buf = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      idle.poke();
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === "") continue;
        const err = deliverWatchLine(path, line, onEvent);
        if (err !== undefined) {
          reject(err);
          res.destroy();
          return;
        }
      }
    });
    res.once("end", resolve);
    res.once("error", reject);
    res.once("aborted", () => {
      reject(new Error("watch stream aborted"));
    });
    res.once("close", () => {
      if (!res.complete) reject(new Error(idle.fired ? `watch idle for ${idleTimeoutMs} ms` : "watch connection closed"));
    });
  });
}

/** KubeClient.watch: see the interface for the resolve/reject contract. */
async function watchStream(ep: Endpoint, path: string, onEvent: (ev: WatchEvent) => void, wo: WatchOpts): Promise<void> {
  const ctl = new AbortController();
  const signal = AbortSignal.any([wo.signal, ctl.signal]);
  const idle = new IdleTimer(ctl, wo.idleTimeoutMs);
  idle.poke();
  try {
    const res = await send(ep, await requestOptions(ep, "GET", buildPath(path, { ...wo.query, watch: true }), {}, signal, ep.watchAgent), undefined);
    const code = res.statusCode ?? 0;
    if (code !== 200) throw statusError(code, await readAll(res));
    await pumpWatch(res, path, onEvent, idle, wo.idleTimeoutMs);
  } catch (err) {
    if (idle.fired) throw new Error(`watch ${path}: no data for ${wo.idleTimeoutMs} ms`, { cause: err });
    throw err;
  } finally {
    idle.stop();
  }
}

/** Throws when the kubeconfig has no current cluster; makes no request until one is asked for. */
export function createKubeClient(kc: KubeConfig, opts: KubeClientOptions): KubeClient {
  const ep = endpointOf(kc, opts);
  return {
    server: ep.server,
    request: <T>(method: string, path: string, ro?: RequestOpts) => jsonRequest<T>(ep, method, path, ro),
    watch: (path, onEvent, wo) => watchStream(ep, path, onEvent, wo),
  };
}
