/**
 * HTTP transport to one or several Consul agents: the `consul` package's
 * clients (TLS, the ACL token header read per request) and, on the same
 * keep-alive agent, the lean calls for registrations and health reads
 * (lean.ts), the revoked-token gate, and agent failover.
 *
 * Failover (several --consul-addr): one agent is "current" and every call
 * goes there. A call that fails without an HTTP answer (connection refused or
 * reset, timeout, TLS failure) or with a 5xx is retried once on each other
 * agent in order; the first agent that answers becomes current (sticky: no
 * automatic failback, so a flapping agent does not bounce us around) and
 * `onFailover` fires. 4xx answers (ACL denied, bad request) never fail over.
 * A call that got no HTTP answer from any agent fires `onUnreachable` before
 * it rejects. A 5xx is an answer: the agent is there, only this call failed
 * (a query for another datacenter whose servers are down answers 500 "rpc
 * error making call"), so it rejects without `onUnreachable`.
 * A blocking query's index is only meaningful to the agent that issued it:
 * callers get the agent's position (`idx`) to track that (client.ts).
 */
import Consul from "consul";
import { EventEmitter } from "node:events";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import { httpStatus, shouldFailOver, toError } from "./errors.js";
import { leanCalls, type LeanCalls } from "./lean.js";
import { RevokedTokenGate, verdictOf } from "./tokenGate.js";
import { ConsulError, type ConsulClientOptions, type ConsulTls } from "./types.js";
import type { ConsulTokenSource } from "../../ports/consul.js";

/** papi's request as an `onCreate` extension sees it: headers not yet merged into the HTTP request. */
interface PapiRequest {
  readonly opts: { headers: Record<string, string> };
}

/**
 * papi's extension method (papi README "Extensions"), not in the package's typings: `onCreate` runs for
 * every request before it is built.
 */
interface PapiExtensible {
  _ext(event: "onCreate", fn: (request: PapiRequest, next: () => void) => void): void;
}

function isExtensible(c: unknown): c is PapiExtensible {
  return typeof c === "object" && c !== null && "_ext" in c && typeof c._ext === "function";
}

/**
 * The subset of the package's (any-typed) surface the client calls, typed once here. Answers are untrusted
 * `unknown` (decode.ts). Registrations and health reads go through lean.ts instead (its agent.service.register
 * would also drop `Weights`).
 */
export interface RawClient {
  agent: {
    service: {
      list(o: object): Promise<unknown>;
      deregister(o: object): Promise<unknown>;
      maintenance(o: object): Promise<unknown>;
    };
    check: {
      pass(o: object): Promise<unknown>;
      warn(o: object): Promise<unknown>;
      fail(o: object): Promise<unknown>;
      list(o: object): Promise<unknown>;
      deregister(o: object): Promise<unknown>;
    };
  };
  status: { leader(o: object): Promise<unknown> };
  session: { create(o: object): Promise<unknown>; renew(o: object): Promise<unknown>; destroy(o: object): Promise<unknown> };
  kv: { get(o: object): Promise<unknown>; set(o: object): Promise<unknown>; del(o: object): Promise<unknown> };
}

/**
 * Default max concurrent connections to one Consul agent. The pipeline sets
 * it above the health watcher's cap on blocking queries, so other calls always
 * get a socket, and at most half of Consul's `limits.http_max_conns_per_client`
 * (200): Consul keeps counting a blocking query until its wait ends even after
 * the client closed it, so a restarted controller shares the limit with its
 * predecessor's queries for up to one wait.
 */
const DEFAULT_MAX_SOCKETS = 32;

/** One configured agent: its base URL, its package client and the lean calls (lean.ts), both on one keep-alive agent. */
export interface Endpoint {
  readonly url: string;
  readonly client: RawClient;
  readonly lean: LeanCalls;
}

/**
 * The package client and the lean calls for `base`; https:// uses `tls` through their keep-alive
 * agent. The token is read when each request is created.
 */
function endpoint(base: string, token: ConsulTokenSource, tls: ConsulTls | undefined, maxSockets: number): Endpoint {
  const url = new URL(base);
  const secure = url.protocol === "https:";
  // The agent caps the connections to one Consul agent (blocking queries each hold one): requests
  // beyond the cap wait for a free socket instead of being refused by Consul's per-client limit.
  const pool = { keepAlive: true, maxSockets };
  const agent = secure
    ? new HttpsAgent({
        ...pool,
        ...(tls?.ca !== undefined ? { ca: tls.ca } : {}),
        ...(tls?.cert !== undefined ? { cert: tls.cert } : {}),
        ...(tls?.key !== undefined ? { key: tls.key } : {}),
      })
    : new HttpAgent(pool);
  const client = new Consul({
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port === "" ? (secure ? 443 : 80) : Number(url.port),
    secure,
    agent,
  });
  // Never fixed at construction: a rotated token applies to the next request.
  if (!isExtensible(client)) throw new Error("consul client: papi method _ext missing (unsupported package version)");
  client._ext("onCreate", (request, next) => {
    const t = token.current();
    if (t !== undefined && t !== "") request.opts.headers["x-consul-token"] = t;
    next();
  });
  return { url: base, client, lean: leanCalls(url, agent, token) };
}

/**
 * Runs a request that may block, settling at once when `signal` aborts (the
 * package may never settle a cancelled request): rejects with ConsulUnavailable
 * "aborted". `run` gets a ctx with includeResponse, so the package answers
 * `[response, body]`.
 */
export async function cancellable<T>(signal: AbortSignal | undefined, what: string, run: (ctx: EventEmitter) => Promise<T>): Promise<T> {
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

/** How a call is sent: `aclFree` = the endpoint needs no ACL (status/leader), so its success says nothing about the token. */
export interface CallOptions {
  readonly signal?: AbortSignal;
  readonly aclFree?: boolean;
}

export interface Transport {
  /**
   * Runs `fn` on the current agent, then on each other agent while failures
   * are failover-worthy (see the file comment). Rejects with ConsulError:
   * ConsulRejected for a 4xx or a held-back token, ConsulUnavailable otherwise.
   * `idx` is the agent's position in `endpoints`; `lean` sends that agent the calls lean.ts covers.
   */
  call<T>(what: string, fn: (client: RawClient, idx: number, lean: LeanCalls) => Promise<T>, opts?: CallOptions): Promise<T>;
  readonly endpoints: readonly Endpoint[];
  /** Position of the current agent in `endpoints`. */
  current(): number;
  /** False while the current token is held back by the revoked-token gate (nothing should be sent with it). */
  tokenAdmitted(): boolean;
  /** Per-request timeout (ms) for non-blocking calls. */
  readonly timeoutMs: number;
}

export function createTransport(opts: ConsulClientOptions): Transport {
  const urls = opts.urls !== undefined && opts.urls.length > 0 ? opts.urls : [opts.url];
  const fixed = opts.token;
  const token: ConsulTokenSource = typeof fixed === "object" ? fixed : { current: () => fixed };
  const gate = new RevokedTokenGate();
  const endpoints: readonly Endpoint[] = urls.map((u) => endpoint(u, token, opts.tls, opts.maxSockets ?? DEFAULT_MAX_SOCKETS));
  let current = 0;

  /** One call on one agent with the token read now (the request reads the same value): its answer goes to the gate, a 403 to the token source. */
  async function attempt<T>(fn: (client: RawClient, idx: number, lean: LeanCalls) => Promise<T>, idx: number, ep: Endpoint, aclFree: boolean): Promise<T> {
    const sent = token.current();
    try {
      const result = await fn(ep.client, idx, ep.lean);
      gate.answered(sent, aclFree ? "no-verdict" : "valid");
      return result;
    } catch (err) {
      if (httpStatus(err) === 403) token.forbidden?.();
      gate.answered(sent, verdictOf(err));
      throw err;
    }
  }

  async function call<T>(what: string, fn: (client: RawClient, idx: number, lean: LeanCalls) => Promise<T>, callOpts: CallOptions = {}): Promise<T> {
    const held = gate.admit(token.current());
    if (held > 0)
      throw new ConsulError(
        "ConsulRejected",
        `${what}: HTTP 403: ACL not found (Consul rejected this token; held back for ${Math.ceil(held)} ms unless the token changes)`,
      );
    const start = current;
    let lastErr: unknown;
    let answered = false;
    for (let i = 0; i < endpoints.length; i++) {
      const idx = (start + i) % endpoints.length;
      const ep = endpoints[idx];
      if (ep === undefined) continue;
      try {
        const result = await attempt(fn, idx, ep, callOpts.aclFree === true);
        if (idx !== current) {
          const from = endpoints[current]?.url ?? "";
          current = idx;
          opts.onFailover?.(from, ep.url);
        }
        return result;
      } catch (err) {
        if (callOpts.signal?.aborted === true || err instanceof ConsulError || !shouldFailOver(err))
          throw err instanceof ConsulError ? err : toError(err, what);
        lastErr = err;
        answered ||= httpStatus(err) !== undefined;
      }
    }
    const err = toError(lastErr, endpoints.length > 1 ? `${what} (all ${endpoints.length} agents failed, last)` : what);
    if (!answered) opts.onUnreachable?.(err.message);
    throw err;
  }

  return { call, endpoints, current: () => current, tokenAdmitted: () => gate.admit(token.current()) === 0, timeoutMs: opts.timeoutMs ?? 10_000 };
}
