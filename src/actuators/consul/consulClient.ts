/**
 * The one wrapper around the `consul` npm client. Why a wrapper:
 * - the package is typed with `any`; this file turns Consul's JSON into the
 *   domain types (RegisteredService, HealthInstance) and validates shapes;
 * - blocking queries need the X-Consul-Index response header, which the
 *   package only exposes through an EventEmitter `ctx` with includeResponse;
 * - every write is counted here (Consul writes by kind, issue #5 metrics);
 * - several agents with failover, ACL token and TLS (issue #4), below.
 * Methods reject with ConsulError; `reason` maps to status-condition reasons.
 *
 * Failover (several --consul-addr): one agent is "current" and every call
 * goes there. A call that fails without an HTTP answer (connection refused or
 * reset, timeout, TLS failure) or with a 5xx is retried once on each other
 * agent in order; the first agent that answers becomes current (sticky: no
 * automatic failback, so a flapping agent does not bounce us around) and
 * `onFailover` fires. 4xx answers (ACL denied, bad request) never fail over.
 * Blocking queries resume on the new agent WITHOUT the old X-Consul-Index (a
 * non-blocking read first): an index is only reused on the agent that issued
 * it.
 *
 * Registrations are agent-local in Consul: an agent syncs its own services to
 * the catalog (anti-entropy) and a catalog deregister of them is undone by the
 * next sync. So after a failover the registrar simply registers everything on
 * the new current agent (its listAgentServices() is empty), with unchanged
 * owner meta and the same deterministic IDs. Copies left on the previous agent
 * are removed by sweepOtherAgents() through THAT agent's own API as soon as it
 * answers again (the only deregistration that sticks); while it is down its
 * node is failed in serf, so its copies are critical and never rendered.
 * Garbage collection therefore reads agents (current + sweep), never the
 * catalog: a catalog entry of a dead agent cannot be removed durably anyway.
 */
import Consul from "consul";
import { EventEmitter } from "node:events";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { CheckStatus, HealthInstance, RegisteredService, Registration } from "../../domain/types.js";

export type ConsulWriteKind = "register" | "deregister";

export interface ConsulObserver {
  onWrite?(kind: ConsulWriteKind, ok: boolean): void;
}

export class ConsulError extends Error {
  constructor(
    readonly reason: "ConsulUnavailable" | "ConsulRejected",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ConsulError";
  }
}

export interface HealthQuery {
  readonly service: string;
  readonly dc?: string;
  /** Last X-Consul-Index seen; omit for a non-blocking read. */
  readonly index?: string;
  readonly waitMs: number;
  readonly signal?: AbortSignal;
}

export interface HealthResult {
  readonly instances: readonly HealthInstance[];
  readonly index: string;
}

/** The narrow Consul surface the reconcilers and sources use. */
export interface ConsulApi {
  listAgentServices(): Promise<readonly RegisteredService[]>;
  register(r: Registration): Promise<void>;
  deregister(id: string): Promise<void>;
  healthService(q: HealthQuery): Promise<HealthResult>;
  leader(): Promise<string>;
}

/** Multi-agent extras of the real client (fakes in unit tests need not implement them). */
export interface ConsulCluster {
  /** Base URL of the agent calls currently go to. */
  currentAgent(): string;
  /**
   * On every configured agent except the current one that answers: list its
   * agent services and deregister, through that agent, those `owned` selects.
   * Unreachable agents are skipped. Returns the service IDs removed.
   */
  sweepOtherAgents(owned: (s: RegisteredService) => boolean): Promise<readonly string[]>;
}

/** A KV entry as the lock reads it; `session` is the holder's session ID when the key is locked. */
export interface KvEntry {
  readonly value?: string;
  readonly session?: string;
  /** X-Consul-Index of the answer (for the next blocking read). */
  readonly index: string;
}

export interface SessionSpec {
  readonly name: string;
  /** e.g. "10s" (Consul's minimum); Consul invalidates a session not renewed for twice this. */
  readonly ttl: string;
  readonly lockDelay: string;
  /** Check IDs on the agent's node; any of them critical invalidates the session. */
  readonly checks: readonly string[];
}

/**
 * Sessions, KV locks and TTL checks, for leader election in docker-only
 * mode (see consulSessionLock.ts). These calls fail over like the others;
 * none is counted as a registration write.
 */
export interface ConsulLocking {
  createSession(spec: SessionSpec): Promise<string>;
  /** False when the session no longer exists (invalidated or destroyed). */
  renewSession(id: string): Promise<boolean>;
  destroySession(id: string): Promise<void>;
  /** Reads `key` (undefined value and session when absent); blocks while `index` is current, up to `waitMs`. */
  kvGet(key: string, opts: { readonly index?: string; readonly waitMs?: number; readonly signal?: AbortSignal }): Promise<KvEntry>;
  /** PUT ?acquire=: true when `session` now holds `key`. */
  kvAcquire(key: string, value: string, session: string): Promise<boolean>;
  /** PUT ?release=: true when `key` was released by `session`. */
  kvRelease(key: string, session: string): Promise<boolean>;
  /** Sets a TTL check passing (PUT /v1/agent/check/pass/:id). */
  passCheck(id: string): Promise<void>;
}

/** PEM texts for HTTPS to Consul (CONSUL_CACERT, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY). */
export interface ConsulTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/**
 * Where the ACL token comes from: read for every request (a blocking query
 * keeps the token it was sent with until it returns; the next request reads
 * the token anew). Never logged.
 */
export interface ConsulTokenSource {
  /** The token for the next request; undefined = none (Consul's anonymous token). */
  current(): string | undefined;
  /** Consul answered 403: the token may have been revoked; re-read the source soon. Must not throw. */
  forbidden?(): void;
}

export interface ConsulClientOptions {
  /** e.g. http://127.0.0.1:8500; the first agent when `urls` is given too. */
  readonly url: string;
  /** Every agent, in failover order (default: [url]). */
  readonly urls?: readonly string[];
  /** A fixed token, or a source read per request (a rotated token file). */
  readonly token?: string | ConsulTokenSource;
  /** Used for https:// agents. */
  readonly tls?: ConsulTls;
  /** Called after calls moved to another agent (from, to: base URLs). Must not throw. */
  readonly onFailover?: (from: string, to: string) => void;
  readonly timeoutMs?: number;
  readonly observer?: ConsulObserver;
}

type Json = Record<string, unknown>;

/** papi's request as an `onCreate` extension sees it: headers not yet merged into the HTTP request. */
interface PapiRequest {
  readonly opts: { headers: Record<string, string> };
}

/** papi's extension point (papi README "Extensions"), not in the package's typings: `onCreate` runs for every request before it is built. */
interface PapiExtensible {
  _ext(event: "onCreate", fn: (request: PapiRequest, next: () => void) => void): void;
}

function isExtensible(c: unknown): c is PapiExtensible {
  return typeof c === "object" && c !== null && "_ext" in c && typeof c._ext === "function";
}

/** The subset of the package's (any-typed) surface this wrapper calls, typed once here. */
interface RawClient {
  agent: { service: { list(o: object): Promise<unknown>; register(o: object): Promise<unknown>; deregister(o: object): Promise<unknown> } };
  health: { service(o: object): Promise<unknown> };
  status: { leader(o: object): Promise<unknown> };
  session: { create(o: object): Promise<unknown>; renew(o: object): Promise<unknown>; destroy(o: object): Promise<unknown> };
  kv: { get(o: object): Promise<unknown>; set(o: object): Promise<unknown> };
}

/** The agent's TTL-check call, typed apart (RawClient.agent is shared with service calls). */
interface RawCheckClient {
  agent: { check: { pass(o: object): Promise<unknown> } };
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const strArray = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);
const strMap = (v: unknown): Record<string, string> =>
  v !== null && typeof v === "object"
    ? Object.fromEntries(Object.entries(v as Json).filter((e): e is [string, string] => typeof e[1] === "string"))
    : {};

const SEVERITY: Record<CheckStatus, number> = { passing: 0, warning: 1, critical: 2 };

function aggregate(checks: unknown): CheckStatus {
  let worst: CheckStatus = "passing";
  for (const c of Array.isArray(checks) ? (checks as Json[]) : []) {
    const s = str(c.Status);
    const status: CheckStatus = s === "passing" || s === "warning" ? s : "critical";
    if (SEVERITY[status] > SEVERITY[worst]) worst = status;
  }
  return worst;
}

function httpStatus(err: unknown): number | undefined {
  return (err as { response?: { statusCode?: number } } | null)?.response?.statusCode;
}

/** No HTTP answer at all, or a server-side failure (500 "No cluster leader"): another agent may do better. */
function shouldFailOver(err: unknown): boolean {
  const status = httpStatus(err);
  return status === undefined || status >= 500;
}

function toError(err: unknown, what: string): ConsulError {
  const status = httpStatus(err);
  const msg = err instanceof Error ? err.message : String(err);
  if (status !== undefined && status >= 400 && status < 500) return new ConsulError("ConsulRejected", `${what}: HTTP ${status}: ${msg}`, { cause: err });
  return new ConsulError("ConsulUnavailable", `${what}: ${msg}`, { cause: err });
}

const ACL_NOT_FOUND = /ACL not found/i;

/** What an answer says about the token it was sent with (see RevokedTokenGate). */
export type TokenVerdict = "unknown-token" | "valid" | "no-verdict";

/**
 * Holds back requests carrying a token Consul does not know (403 "ACL not
 * found": revoked or deleted). The first such answer closes the gate for that
 * token for a backoff (baseMs doubling up to maxMs); meanwhile every call with
 * it fails locally with the same ConsulRejected. When the backoff is over ONE
 * call is let through as a probe (the others stay held until it is answered):
 * "ACL not found" again doubles the hold, an answer that proves the token valid
 * opens the gate, an answer that proves nothing (no HTTP answer, 5xx, an
 * ACL-free endpoint) lets the next call probe. A different token (the file
 * changed) is never held. So a revoked token costs Consul about one 403 per
 * backoff step in total, not one per key, loop and retry.
 * "Permission denied" (a valid token lacking a rule) is a verdict "valid":
 * other services may still be allowed.
 */
export class RevokedTokenGate {
  private held: { readonly token: string; readonly until: number; readonly failures: number; probing: boolean } | undefined;

  constructor(
    private readonly backoff: { readonly baseMs: number; readonly maxMs: number } = { baseMs: 500, maxMs: 30_000 },
    private readonly now: () => number = () => performance.now(),
  ) {}

  /**
   * 0: send the call (when the token is held and its backoff is over, this
   * call is the probe); otherwise how many ms the token is still held for.
   */
  admit(token: string | undefined): number {
    const h = this.held;
    if (h === undefined || token === undefined || h.token !== token) return 0;
    const left = h.until - this.now();
    if (left > 0) return left;
    if (h.probing) return 1;
    h.probing = true;
    return 0;
  }

  /** Consul's answer to a call made with `token`. */
  answered(token: string | undefined, verdict: TokenVerdict): void {
    const h = this.held;
    if (token === undefined) return;
    if (verdict === "unknown-token") {
      const failures = h?.token === token ? h.failures + 1 : 0;
      this.held = { token, failures, probing: false, until: this.now() + Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** Math.min(failures, 20)) };
    } else if (h?.token === token) {
      if (verdict === "valid") this.held = undefined;
      else h.probing = false;
    }
  }
}

/** The verdict of a failed call on its token: 403 ACL not found = unknown; another 4xx = accepted (valid); else none. */
function verdictOf(err: unknown): TokenVerdict {
  const status = httpStatus(err);
  if (status === 403 && ACL_NOT_FOUND.test(err instanceof Error ? err.message : String(err))) return "unknown-token";
  return status !== undefined && status >= 400 && status < 500 ? "valid" : "no-verdict";
}

/** A call as withFailover runs it on one agent. */
interface Call<T> {
  readonly fn: (client: RawClient & RawCheckClient, idx: number) => Promise<T>;
  /** The endpoint needs no ACL (status/leader): its success says nothing about the token. */
  readonly aclFree?: boolean;
}

/**
 * Max concurrent connections to one Consul agent: under Consul's default
 * `limits.http_max_conns_per_client` (200), above the health watcher's cap on
 * blocking queries (MAX_BLOCKING_QUERIES, 128) so other calls always get a socket.
 */
export const CONSUL_MAX_SOCKETS = 160;

interface Endpoint {
  readonly url: string;
  readonly client: RawClient;
}

function rawClient(base: string, token: ConsulTokenSource, tls: ConsulTls | undefined): RawClient & RawCheckClient {
  const url = new URL(base);
  const secure = url.protocol === "https:";
  // The agent carries the CA and client certificate, and caps the connections to one Consul agent
  // (blocking queries each hold one): requests beyond the cap wait for a free socket instead of
  // being refused by Consul's per-client connection limit.
  const pool = { keepAlive: true, maxSockets: CONSUL_MAX_SOCKETS };
  const agent = secure ? new HttpsAgent({ ...pool, ...(tls?.ca !== undefined ? { ca: tls.ca } : {}), ...(tls?.cert !== undefined ? { cert: tls.cert } : {}), ...(tls?.key !== undefined ? { key: tls.key } : {}) }) : new HttpAgent(pool);
  const client: RawClient & RawCheckClient = new Consul({
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port === "" ? (secure ? 443 : 80) : Number(url.port),
    secure,
    agent,
  });
  // The token is read when each request is created, never fixed at construction: a rotated token applies to the next request.
  if (!isExtensible(client)) throw new Error("consul client: papi extension point _ext missing (unsupported package version)");
  client._ext("onCreate", (request, next) => {
    const t = token.current();
    if (t !== undefined && t !== "") request.opts.headers["x-consul-token"] = t;
    next();
  });
  return client;
}

function toServices(raw: unknown): RegisteredService[] {
  return Object.values((raw ?? {}) as Record<string, Json>).map((s) => ({
    id: str(s.ID),
    name: str(s.Service),
    address: str(s.Address),
    port: num(s.Port),
    tags: strArray(s.Tags),
    meta: strMap(s.Meta),
  }));
}

/** Runs a request that may block, settling at once when `signal` aborts (the package may never settle a cancelled request). */
async function cancellable<T>(signal: AbortSignal | undefined, what: string, run: (ctx: EventEmitter) => Promise<T>): Promise<T> {
  const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
  let onAbort: () => void = () => undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => {
      ctx.emit("cancel");
      reject(new ConsulError("ConsulUnavailable", `${what}: aborted`));
    };
  });
  if (signal?.aborted === true) onAbort();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([run(ctx), aborted]);
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** The session and KV calls of ConsulLocking on top of `withFailover`. */
function lockingCalls(
  withFailover: <T>(what: string, fn: (client: RawClient & RawCheckClient) => Promise<T>, signal?: AbortSignal) => Promise<T>,
  timeout: number,
): ConsulLocking {
  return {
    async createSession(spec) {
      const body = await withFailover("create session", (c) =>
        c.session.create({ name: spec.name, ttl: spec.ttl, lockdelay: spec.lockDelay, checks: [...spec.checks], behavior: "release", timeout }),
      );
      const id = str((body as Json | null)?.ID);
      if (id === "") throw new ConsulError("ConsulUnavailable", "create session: no ID in the answer");
      return id;
    },
    async renewSession(id) {
      try {
        const body = await withFailover(`renew session ${id}`, (c) => c.session.renew({ id, timeout }));
        return Array.isArray(body) && body.length > 0;
      } catch (err) {
        if (err instanceof ConsulError && httpStatus(err.cause) === 404) return false;
        throw err;
      }
    },
    async destroySession(id) {
      await withFailover(`destroy session ${id}`, (c) => c.session.destroy({ id, timeout }));
    },
    async kvGet(key, q) {
      const blocking = q.index !== undefined && q.waitMs !== undefined;
      const [response, body] = await withFailover(
        `read ${key}`,
        (c) =>
          cancellable(q.signal, `read ${key}`, (ctx) =>
            c.kv.get({
              key,
              ...(blocking ? { index: q.index, wait: `${Math.ceil((q.waitMs ?? 0) / 1000)}s` } : {}),
              timeout: blocking ? (q.waitMs ?? 0) + (q.waitMs ?? 0) / 16 + 5000 : timeout,
              ctx,
            }) as Promise<[{ headers: Record<string, string | undefined> }, unknown]>,
          ),
        q.signal,
      );
      const entry = (body ?? {}) as Json;
      const value = typeof entry.Value === "string" ? entry.Value : undefined;
      const session = typeof entry.Session === "string" && entry.Session !== "" ? entry.Session : undefined;
      return { ...(value !== undefined ? { value } : {}), ...(session !== undefined ? { session } : {}), index: response.headers["x-consul-index"] ?? "0" };
    },
    async kvAcquire(key, value, session) {
      return (await withFailover(`acquire ${key}`, (c) => c.kv.set({ key, value, acquire: session, timeout }))) === true;
    },
    async kvRelease(key, session) {
      return (await withFailover(`release ${key}`, (c) => c.kv.set({ key, value: "", release: session, timeout }))) === true;
    },
    async passCheck(id) {
      await withFailover(`pass check ${id}`, (c) => c.agent.check.pass({ id, timeout }));
    },
  };
}

export function createConsulClient(opts: ConsulClientOptions): ConsulApi & ConsulCluster & ConsulLocking {
  const urls = opts.urls !== undefined && opts.urls.length > 0 ? opts.urls : [opts.url];
  const fixed = opts.token;
  const token: ConsulTokenSource = typeof fixed === "object" ? fixed : { current: () => fixed };
  const gate = new RevokedTokenGate();
  const endpoints: readonly (Endpoint & { readonly client: RawClient & RawCheckClient })[] = urls.map((u) => ({ url: u, client: rawClient(u, token, opts.tls) }));
  let current = 0;
  /** `<dc>/<service>` -> endpoint index that issued the last X-Consul-Index for it. */
  const indexOrigin = new Map<string, number>();
  const timeout = opts.timeoutMs ?? 10_000;

  /**
   * One call on one agent, with the token read now (the request reads the same value): its answer goes to the gate,
   * a 403 to the token source. `aclFree` (status/leader): a success proves nothing about the token.
   */
  async function attempt<T>(call: Call<T>, ep: Endpoint & { readonly client: RawClient & RawCheckClient }, idx: number): Promise<T> {
    const sent = token.current();
    try {
      const result = await call.fn(ep.client, idx);
      gate.answered(sent, call.aclFree === true ? "no-verdict" : "valid");
      return result;
    } catch (err) {
      if (httpStatus(err) === 403) token.forbidden?.();
      gate.answered(sent, verdictOf(err));
      throw err;
    }
  }

  /** Runs `fn` on the current agent, then on each other agent while failures are failover-worthy. */
  async function withFailover<T>(what: string, fn: (client: RawClient & RawCheckClient, idx: number) => Promise<T>, signal?: AbortSignal, aclFree = false): Promise<T> {
    const held = gate.admit(token.current());
    if (held > 0) throw new ConsulError("ConsulRejected", `${what}: HTTP 403: ACL not found (Consul rejected this token; held back for ${Math.ceil(held)} ms unless the token changes)`);
    const start = current;
    let lastErr: unknown;
    for (let i = 0; i < endpoints.length; i++) {
      const idx = (start + i) % endpoints.length;
      const ep = endpoints[idx];
      if (ep === undefined) continue;
      try {
        const result = await attempt({ fn, aclFree }, ep, idx);
        if (idx !== current) {
          const from = endpoints[current]?.url ?? "";
          current = idx;
          opts.onFailover?.(from, ep.url);
        }
        return result;
      } catch (err) {
        if (signal?.aborted === true || err instanceof ConsulError || !shouldFailOver(err)) throw err instanceof ConsulError ? err : toError(err, what);
        lastErr = err;
      }
    }
    throw toError(lastErr, endpoints.length > 1 ? `${what} (all ${endpoints.length} agents failed, last)` : what);
  }

  async function write(kind: ConsulWriteKind, what: string, fn: (client: RawClient) => Promise<unknown>): Promise<void> {
    try {
      await withFailover(what, (c) => fn(c));
      opts.observer?.onWrite?.(kind, true);
    } catch (err) {
      opts.observer?.onWrite?.(kind, false);
      throw err;
    }
  }

  return {
    ...lockingCalls(withFailover, timeout),
    currentAgent: () => endpoints[current]?.url ?? opts.url,

    async sweepOtherAgents(owned) {
      const removed: string[] = [];
      if (gate.admit(token.current()) > 0) return removed;
      for (const [idx, ep] of endpoints.entries()) {
        if (idx === current) continue;
        let services: RegisteredService[];
        try {
          services = toServices(await ep.client.agent.service.list({ timeout }));
        } catch {
          continue; // down or unreachable: its copies are critical; swept once it answers
        }
        for (const s of services.filter(owned)) {
          try {
            await ep.client.agent.service.deregister({ id: s.id, timeout });
            opts.observer?.onWrite?.("deregister", true);
            removed.push(s.id);
          } catch {
            opts.observer?.onWrite?.("deregister", false);
          }
        }
      }
      return removed;
    },

    async listAgentServices() {
      return toServices(await withFailover("list agent services", (c) => c.agent.service.list({ timeout })));
    },

    register(r) {
      const c = r.check;
      const check =
        c === undefined
          ? undefined
          : {
              ...(c.http !== undefined ? { http: c.http } : {}),
              ...(c.tcp !== undefined ? { tcp: c.tcp } : {}),
              ...(c.ttl !== undefined ? { ttl: c.ttl } : {}),
              ...(c.interval !== undefined ? { interval: c.interval } : {}),
              ...(c.timeout !== undefined ? { timeout: c.timeout } : {}),
              ...(c.status !== undefined ? { status: c.status } : {}),
              ...(c.deregisterCriticalServiceAfter !== undefined ? { deregistercriticalserviceafter: c.deregisterCriticalServiceAfter } : {}),
            };
      return write("register", `register ${r.id}`, (client) =>
        client.agent.service.register({
          id: r.id,
          name: r.name,
          address: r.address,
          port: r.port,
          tags: [...r.tags],
          meta: { ...r.meta },
          ...(check !== undefined ? { check } : {}),
          timeout,
        }),
      );
    },

    deregister(id) {
      return write("deregister", `deregister ${id}`, (client) => client.agent.service.deregister({ id, timeout }));
    },

    async healthService(q) {
      const key = `${q.dc ?? ""}/${q.service}`;
      let rejectAborted: (err: Error) => void = () => undefined;
      const aborted = new Promise<never>((_, reject) => {
        rejectAborted = reject;
      });
      let ctx: EventEmitter | undefined;
      const cancel = (): void => {
        ctx?.emit("cancel");
        // papi may never settle a cancelled request; settle ours now.
        rejectAborted(new ConsulError("ConsulUnavailable", `health of ${q.service}: aborted`));
      };
      q.signal?.addEventListener("abort", cancel, { once: true });
      try {
        return await withFailover(
          `health of ${q.service}`,
          async (client, idx) => {
            // includeResponse makes the package return [response, body] so we can read X-Consul-Index.
            ctx = Object.assign(new EventEmitter(), { includeResponse: true });
            // An index is only meaningful to the agent that issued it: elsewhere, read without blocking first.
            const blocking = q.index !== undefined && indexOrigin.get(key) === idx;
            const request = client.health.service({
              service: q.service,
              ...(q.dc !== undefined ? { dc: q.dc } : {}),
              // Any server may answer (not only the leader): rendering keeps working through a leader election.
              stale: true,
              ...(blocking ? { index: q.index, wait: `${Math.ceil(q.waitMs / 1000)}s` } : {}),
              // Consul adds up to wait/16 of jitter; leave room before timing out.
              timeout: blocking ? q.waitMs + q.waitMs / 16 + 5000 : timeout,
              ctx,
            });
            const res = (await Promise.race([request, aborted])) as [{ headers: Record<string, string | undefined> }, unknown];
            const [response, body] = res;
            const entries = Array.isArray(body) ? (body as Json[]) : [];
            const instances = entries.map((e): HealthInstance => {
              const svc = (e.Service ?? {}) as Json;
              const node = (e.Node ?? {}) as Json;
              const address = str(svc.Address) !== "" ? str(svc.Address) : str(node.Address);
              return {
                serviceId: str(svc.ID),
                node: str(node.Node),
                address,
                port: num(svc.Port),
                tags: strArray(svc.Tags),
                status: aggregate(e.Checks),
              };
            });
            indexOrigin.set(key, idx);
            return { instances, index: response.headers["x-consul-index"] ?? "0" };
          },
          q.signal,
        );
      } finally {
        q.signal?.removeEventListener("abort", cancel);
      }
    },

    async leader() {
      return String(await withFailover("status/leader", (c) => c.status.leader({ timeout }), undefined, true));
    },
  };
}
