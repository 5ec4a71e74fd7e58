/**
 * The one wrapper around the `consul` npm client. Why a wrapper:
 * - the package is typed with `any`; this file turns Consul's JSON into the
 *   domain types (RegisteredService, HealthInstance) and validates shapes;
 * - blocking queries need the X-Consul-Index response header, which the
 *   package only exposes through an EventEmitter `ctx` with includeResponse;
 * - every write is counted here (Consul writes by kind, issue #5 metrics).
 * Methods reject with ConsulError; `reason` maps to status-condition reasons.
 */
import Consul from "consul";
import { EventEmitter } from "node:events";
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

export interface ConsulClientOptions {
  /** e.g. http://127.0.0.1:8500 */
  readonly url: string;
  readonly token?: string;
  readonly timeoutMs?: number;
  readonly observer?: ConsulObserver;
}

type Json = Record<string, unknown>;

/** The subset of the package's (any-typed) surface this wrapper calls, typed once here. */
interface RawClient {
  agent: { service: { list(o: object): Promise<unknown>; register(o: object): Promise<unknown>; deregister(o: object): Promise<unknown> } };
  health: { service(o: object): Promise<unknown> };
  status: { leader(o: object): Promise<unknown> };
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

function toError(err: unknown, what: string): ConsulError {
  const status = (err as { response?: { statusCode?: number } } | null)?.response?.statusCode;
  const msg = err instanceof Error ? err.message : String(err);
  if (status !== undefined && status >= 400 && status < 500) return new ConsulError("ConsulRejected", `${what}: HTTP ${status}: ${msg}`, { cause: err });
  return new ConsulError("ConsulUnavailable", `${what}: ${msg}`, { cause: err });
}

export function createConsulClient(opts: ConsulClientOptions): ConsulApi {
  const url = new URL(opts.url);
  const secure = url.protocol === "https:";
  const client: RawClient = new Consul({
    host: url.hostname.replace(/^\[|\]$/g, ""),
    port: url.port === "" ? (secure ? 443 : 80) : Number(url.port),
    secure,
    ...(opts.token !== undefined ? { defaults: { token: opts.token } } : {}),
  });
  const timeout = opts.timeoutMs ?? 10_000;

  async function write(kind: ConsulWriteKind, what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
      opts.observer?.onWrite?.(kind, true);
    } catch (err) {
      opts.observer?.onWrite?.(kind, false);
      throw toError(err, what);
    }
  }

  return {
    async listAgentServices() {
      let raw: unknown;
      try {
        raw = await client.agent.service.list({ timeout });
      } catch (err) {
        throw toError(err, "list agent services");
      }
      return Object.values((raw ?? {}) as Record<string, Json>).map((s) => ({
        id: str(s.ID),
        name: str(s.Service),
        address: str(s.Address),
        port: num(s.Port),
        tags: strArray(s.Tags),
        meta: strMap(s.Meta),
      }));
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
      return write("register", `register ${r.id}`, () =>
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
      return write("deregister", `deregister ${id}`, () => client.agent.service.deregister({ id, timeout }));
    },

    async healthService(q) {
      // includeResponse makes the package return [response, body] so we can read X-Consul-Index.
      const ctx = Object.assign(new EventEmitter(), { includeResponse: true });
      let rejectAborted: (err: Error) => void = () => undefined;
      const aborted = new Promise<never>((_, reject) => {
        rejectAborted = reject;
      });
      const cancel = (): void => {
        ctx.emit("cancel");
        // papi may never settle a cancelled request; settle ours now.
        rejectAborted(new ConsulError("ConsulUnavailable", `health of ${q.service}: aborted`));
      };
      q.signal?.addEventListener("abort", cancel, { once: true });
      try {
        const request = client.health.service({
          service: q.service,
          ...(q.dc !== undefined ? { dc: q.dc } : {}),
          ...(q.index !== undefined ? { index: q.index, wait: `${Math.ceil(q.waitMs / 1000)}s` } : {}),
          // Consul adds up to wait/16 of jitter; leave room before timing out.
          timeout: q.waitMs + q.waitMs / 16 + 5000,
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
        return { instances, index: response.headers["x-consul-index"] ?? "0" };
      } catch (err) {
        throw toError(err, `health of ${q.service}`);
      } finally {
        q.signal?.removeEventListener("abort", cancel);
      }
    },

    async leader() {
      try {
        return String(await client.status.leader({ timeout }));
      } catch (err) {
        throw toError(err, "status/leader");
      }
    },
  };
}
