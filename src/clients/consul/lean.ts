/**
 * The two Consul calls made once per registration (PUT /v1/agent/service/register) and once per
 * health answer (GET /v1/health/service/<name>), sent with node:http directly instead of through the
 * `consul` package. The package's request pipeline (papi: extension hooks, per-request header and
 * option merging, codec lookup, logging hooks) costs CPU on every call; at a thousand registrations
 * in an initial sync that is a visible part of the controller's CPU. Everything else goes through
 * the package (transport.ts).
 *
 * Contract: same wire requests as the package's (query `stale=1`, `index`, `wait`, `dc`; JSON
 * body), the same keep-alive agent and token header (read when each request is created), and
 * errors of the same shape, so errors.ts classifies both alike: an HTTP answer other than 2xx
 * rejects with an Error whose `response.statusCode` is set and whose message is the body when it is
 * short plain text, else the status text (`consul: <call>: <message>`, as the package words it); no
 * HTTP answer (refused, reset, TLS failure, timeout after `timeoutMs`) rejects with an Error without
 * `response`. A `cancel` emitted on `ctx` destroys the request (cancellable() in transport.ts).
 */
import type { EventEmitter } from "node:events";
import { type Agent as HttpAgent, request as httpRequest, STATUS_CODES } from "node:http";
import { type Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { RawResponse } from "./decode.js";
import type { ConsulTokenSource } from "../../ports/consul.js";

export interface LeanCalls {
  /** PUT `path` (below /v1) with `body` as JSON; resolves on a 2xx answer. */
  put(name: string, path: string, body: object, timeoutMs: number): Promise<void>;
  /** GET `path` (below /v1) with `query`; resolves with the answer's headers and decoded JSON body. */
  get(name: string, path: string, query: Readonly<Record<string, string>>, timeoutMs: number, ctx?: EventEmitter): Promise<[RawResponse, unknown]>;
}

/** A failed call: `response` is set when Consul answered (errors.ts reads its statusCode). */
class LeanHttpError extends Error {
  constructor(
    message: string,
    readonly response?: { readonly statusCode: number },
  ) {
    super(message);
  }
}

interface Answer {
  readonly statusCode: number;
  readonly headers: Record<string, string | undefined>;
  readonly body: Buffer;
  readonly contentType: string;
}

function headersOf(raw: NodeJS.Dict<string | string[]>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(raw)) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

/** The package's wording of a non-2xx answer: short plain-text bodies as they are, else the status text. */
function failureMessage(a: Answer): string {
  if (a.contentType === "text/plain" && a.body.length > 0 && a.body.length < 80) return a.body.toString("utf8");
  return STATUS_CODES[a.statusCode]?.toLowerCase() ?? `request failed: ${String(a.statusCode)}`;
}

export function leanCalls(base: URL, agent: HttpAgent | HttpsAgent, token: ConsulTokenSource): LeanCalls {
  const secure = base.protocol === "https:";
  const send = secure ? httpsRequest : httpRequest;
  const hostname = base.hostname.replace(/^\[|\]$/g, "");
  const port = base.port === "" ? (secure ? 443 : 80) : Number(base.port);

  /** One request; settles once, with the whole answer or the first error. */
  function exchange(name: string, method: string, path: string, payload: string | undefined, timeoutMs: number, ctx?: EventEmitter): Promise<Answer> {
    return new Promise<Answer>((resolve, reject) => {
      const headers: Record<string, string | number> = {};
      const t = token.current();
      if (t !== undefined && t !== "") headers["x-consul-token"] = t;
      if (payload !== undefined) {
        headers["content-type"] = "application/json";
        headers["content-length"] = Buffer.byteLength(payload);
      }
      const req = send({ hostname, port, path: `/v1${path}`, method, agent, headers });
      const fail = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const timer = setTimeout(() => req.destroy(new LeanHttpError(`consul: ${name}: request timed out (${String(timeoutMs)}ms)`)), timeoutMs);
      const cancel = (): void => {
        req.destroy(new LeanHttpError(`consul: ${name}: request aborted`));
      };
      const cleanup = (): void => {
        clearTimeout(timer);
        ctx?.removeListener("cancel", cancel);
      };
      ctx?.once("cancel", cancel);
      req.on("error", (err) => {
        // Our own timeout and cancel destroy the request with a LeanHttpError; Node's errors get the call's name.
        fail(err instanceof LeanHttpError ? err : new LeanHttpError(`consul: ${name}: ${err.message}`));
      });
      req.on("response", (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (err) => {
          fail(new LeanHttpError(`consul: ${name}: ${err.message}`));
        });
        res.on("end", () => {
          cleanup();
          const contentType = (res.headers["content-type"] ?? "").split(";")[0]?.trim() ?? "";
          resolve({ statusCode: res.statusCode ?? 0, headers: headersOf(res.headers), body: Buffer.concat(chunks), contentType });
        });
      });
      req.end(payload);
    });
  }

  function checked(name: string, a: Answer): Answer {
    if (Math.floor(a.statusCode / 100) !== 2) throw new LeanHttpError(`consul: ${name}: ${failureMessage(a)}`, { statusCode: a.statusCode });
    return a;
  }

  return {
    async put(name, path, body, timeoutMs) {
      checked(name, await exchange(name, "PUT", path, JSON.stringify(body), timeoutMs));
    },
    async get(name, path, query, timeoutMs, ctx) {
      const qs = new URLSearchParams(query).toString();
      const a = checked(name, await exchange(name, "GET", qs === "" ? path : `${path}?${qs}`, undefined, timeoutMs, ctx));
      let body: unknown;
      try {
        body = a.body.length > 0 && a.contentType === "application/json" ? JSON.parse(a.body.toString("utf8")) : undefined;
      } catch (err) {
        throw new LeanHttpError(`consul: ${name}: decode (application/json) failed: ${err instanceof Error ? err.message : String(err)}`);
      }
      return [{ headers: a.headers }, body];
    },
  };
}
