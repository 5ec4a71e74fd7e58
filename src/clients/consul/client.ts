/**
 * The Consul client the controller uses: ConsulApi (services, health,
 * leader), ConsulCluster (multi-agent extras) and ConsulLocking (sessions,
 * KV, TTL checks), on top of the failover transport (transport.ts) and the
 * decoders of Consul's untrusted JSON (decode.ts). Every write is counted
 * through `observer`. Methods reject with ConsulError.
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
 *
 * Blocking queries resume on a new agent WITHOUT the old X-Consul-Index (a
 * non-blocking read first): an index is only reused on the agent that issued it.
 */
import type { RegisteredService } from "../../domain/types.js";
import {
  decodeAgentMaintenance,
  decodeAgentServices,
  decodeKvList,
  decodeHealthEntries,
  decodeKvEntry,
  decodeRenewed,
  decodeSessionId,
  encodeRegistration,
  responseIndex,
  type RawResponse,
} from "./decode.js";
import { httpStatus } from "./errors.js";
import { cancellable, createTransport, type Transport } from "./transport.js";
import { ConsulError, type ConsulClientOptions } from "./types.js";
import type {
  ConsulApi,
  ConsulCluster,
  ConsulLocking,
  ConsulMaintenance,
  ConsulObserver,
  ConsulWriteKind,
  HealthQuery,
  HealthResult,
} from "../../ports/consul.js";

/** Timeout of a blocking read that waits up to `waitMs`: Consul adds up to wait/16 of jitter; leave room before timing out. */
const blockingTimeout = (waitMs: number): number => waitMs + waitMs / 16 + 5000;

/**
 * GET /v1/kv/:key (with `recurse`, every key under it) with the answer's headers, blocking while
 * `q.index` is current (up to `q.waitMs`) and cancelled when `q.signal` aborts.
 */
function kvRead(
  t: Transport,
  key: string,
  recurse: boolean,
  q: { readonly index?: string; readonly waitMs?: number; readonly signal?: AbortSignal },
): Promise<[RawResponse, unknown]> {
  const blocking = q.index !== undefined && q.waitMs !== undefined;
  const waitMs = q.waitMs ?? 0;
  const what = `read ${key}`;
  const read = (c: Transport["endpoints"][number]["client"]): Promise<[RawResponse, unknown]> =>
    cancellable(
      q.signal,
      what,
      (ctx) =>
        c.kv.get({
          key,
          ...(recurse ? { recurse: true } : {}),
          ...(blocking ? { index: q.index, wait: `${Math.ceil(waitMs / 1000)}s` } : {}),
          timeout: blocking ? blockingTimeout(waitMs) : t.timeoutMs,
          ctx,
        }) as Promise<[RawResponse, unknown]>,
    );
  return t.call(what, read, q.signal !== undefined ? { signal: q.signal } : {});
}

/** The session and KV calls of ConsulLocking; they fail over like the others and none is counted as a registration write. */
function lockingCalls(t: Transport): ConsulLocking {
  const timeout = t.timeoutMs;
  return {
    async createSession(spec) {
      const body = await t.call("create session", (c) =>
        c.session.create({ name: spec.name, ttl: spec.ttl, lockdelay: spec.lockDelay, checks: [...spec.checks], behavior: "release", timeout }),
      );
      const id = decodeSessionId(body);
      if (id === "") throw new ConsulError("ConsulUnavailable", "create session: no ID in the answer");
      return id;
    },
    async renewSession(id) {
      try {
        return decodeRenewed(await t.call(`renew session ${id}`, (c) => c.session.renew({ id, timeout })));
      } catch (err) {
        if (err instanceof ConsulError && httpStatus(err.cause) === 404) return false;
        throw err;
      }
    },
    async destroySession(id) {
      await t.call(`destroy session ${id}`, (c) => c.session.destroy({ id, timeout }));
    },
    async kvGet(key, q) {
      const [response, body] = await kvRead(t, key, false, q);
      return decodeKvEntry(body, response);
    },
    async kvAcquire(key, value, session) {
      return (await t.call(`acquire ${key}`, (c) => c.kv.set({ key, value, acquire: session, timeout }))) === true;
    },
    async kvRelease(key, session) {
      return (await t.call(`release ${key}`, (c) => c.kv.set({ key, value: "", release: session, timeout }))) === true;
    },
    async passCheck(id) {
      await t.call(`pass check ${id}`, (c) => c.agent.check.pass({ id, timeout }));
    },
  };
}

/** Service maintenance on the current agent and its KV declarations (ConsulMaintenance); they fail over like the others. */
function maintenanceCalls(t: Transport): ConsulMaintenance {
  const timeout = t.timeoutMs;
  return {
    async agentMaintenance() {
      return decodeAgentMaintenance(await t.call("list agent checks", (c) => c.agent.check.list({ timeout })));
    },
    async setMaintenance(id, enable, reason) {
      const what = `${enable ? "enable" : "disable"} maintenance of ${id}`;
      await t.call(what, (c) => c.agent.service.maintenance({ id, enable, ...(enable && reason !== undefined ? { reason } : {}), timeout }));
    },
    async kvList(prefix) {
      const [, body] = await kvRead(t, prefix, true, {});
      return decodeKvList(body);
    },
    async kvListWatch(prefix, q) {
      const [response, body] = await kvRead(t, prefix, true, q);
      return { entries: decodeKvList(body), index: responseIndex(response) };
    },
    async kvPut(key, value) {
      await t.call(`write ${key}`, (c) => c.kv.set({ key, value, timeout }));
    },
    async kvDelete(key, recurse) {
      await t.call(`delete ${key}`, (c) => c.kv.del({ key, ...(recurse === true ? { recurse: true } : {}), timeout }));
    },
  };
}

/**
 * Health of a service, blocking while `q.index` is current when that index
 * came from the agent now asked (`indexOrigin`: `<dc>/<service>` -> agent
 * position, updated on every answer). Any server may answer (stale: true),
 * so rendering keeps working through a leader election.
 */
async function healthService(t: Transport, indexOrigin: Map<string, number>, q: HealthQuery): Promise<HealthResult> {
  const key = `${q.dc ?? ""}/${q.service}`;
  const what = `health of ${q.service}`;
  return t.call(
    what,
    async (_client, idx, lean) => {
      const blocking = q.index !== undefined && indexOrigin.get(key) === idx;
      const query = {
        ...(q.dc !== undefined ? { dc: q.dc } : {}),
        stale: "1",
        ...(blocking ? { index: q.index, wait: `${String(Math.ceil(q.waitMs / 1000))}s` } : {}),
      };
      const path = `/health/service/${encodeURIComponent(q.service)}`;
      const timeout = blocking ? blockingTimeout(q.waitMs) : t.timeoutMs;
      const [response, body] = await cancellable(q.signal, what, (ctx) => lean.get("health.service", path, query, timeout, ctx));
      const instances = decodeHealthEntries(body);
      indexOrigin.set(key, idx);
      return { instances, index: responseIndex(response) };
    },
    q.signal !== undefined ? { signal: q.signal } : {},
  );
}

/**
 * On every agent except the current one that answers, deregisters through
 * that agent the services `owned` selects. Unreachable agents are skipped;
 * nothing is sent while the token is held back. Returns the removed IDs.
 */
async function sweepOtherAgents(t: Transport, observer: ConsulObserver | undefined, owned: (s: RegisteredService) => boolean): Promise<readonly string[]> {
  const removed: string[] = [];
  if (!t.tokenAdmitted()) return removed;
  for (const [idx, ep] of t.endpoints.entries()) {
    if (idx === t.current()) continue;
    let services: RegisteredService[];
    try {
      services = decodeAgentServices(await ep.client.agent.service.list({ timeout: t.timeoutMs }));
    } catch {
      continue; // down or unreachable: its copies are critical; swept once it answers
    }
    for (const s of services.filter(owned)) {
      try {
        await ep.client.agent.service.deregister({ id: s.id, timeout: t.timeoutMs });
        observer?.onWrite?.("deregister", true);
        removed.push(s.id);
      } catch {
        observer?.onWrite?.("deregister", false);
      }
    }
  }
  return removed;
}

export function createConsulClient(opts: ConsulClientOptions): ConsulApi & ConsulCluster & ConsulLocking & ConsulMaintenance {
  const t = createTransport(opts);
  const timeout = t.timeoutMs;
  const indexOrigin = new Map<string, number>();

  /** A counted registration write: the observer sees every outcome. */
  async function write(kind: ConsulWriteKind, what: string, fn: Parameters<Transport["call"]>[1]): Promise<void> {
    try {
      await t.call(what, fn);
      opts.observer?.onWrite?.(kind, true);
    } catch (err) {
      opts.observer?.onWrite?.(kind, false);
      throw err;
    }
  }

  return {
    ...lockingCalls(t),
    ...maintenanceCalls(t),
    currentAgent: () => t.endpoints[t.current()]?.url ?? opts.url,
    sweepOtherAgents: (owned) => sweepOtherAgents(t, opts.observer, owned),
    async listAgentServices() {
      return decodeAgentServices(await t.call("list agent services", (c) => c.agent.service.list({ timeout })));
    },
    register(r) {
      const body = encodeRegistration(r);
      return write("register", `register ${r.id}`, (_c, _idx, lean) => lean.put("agent.service.register", "/agent/service/register", body, timeout));
    },
    deregister(id) {
      return write("deregister", `deregister ${id}`, (c) => c.agent.service.deregister({ id, timeout }));
    },
    healthService: (q) => healthService(t, indexOrigin, q),
    deregisterCheck(checkId) {
      return write("check", `deregister check ${checkId}`, (c) => c.agent.check.deregister({ id: checkId, timeout }));
    },
    async updateTtlCheck(checkId, status) {
      const what = `set check ${checkId} ${status}`;
      if (status === "passing") await write("check", what, (c) => c.agent.check.pass({ id: checkId, timeout }));
      else if (status === "warning") await write("check", what, (c) => c.agent.check.warn({ id: checkId, timeout }));
      else await write("check", what, (c) => c.agent.check.fail({ id: checkId, timeout }));
    },
    async leader() {
      return String(await t.call("status/leader", (c) => c.status.leader({ timeout }), { aclFree: true }));
    },
  };
}
