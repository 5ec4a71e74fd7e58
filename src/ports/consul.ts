/**
 * The Consul surface the sources, reconcilers, actuators and observability
 * use, and what the client needs from its callers (token source, observer).
 * The implementation is createConsulClient (the `consul` npm client wrapper,
 * with failover across agents); its methods reject with ConsulError, whose
 * `reason` maps to status-condition reasons.
 */
import type { CheckStatus, HealthInstance, RegisteredService, Registration } from "../domain/types.js";

/** Agent writes the registrar makes: service registrations, and TTL check updates (a `docker` health check's refreshes). */
export type ConsulWriteKind = "register" | "deregister" | "check";

export interface ConsulObserver {
  onWrite?(kind: ConsulWriteKind, ok: boolean): void;
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
  /**
   * Sets the status of a TTL check of this agent and restarts its TTL (PUT /v1/agent/check/pass|warn|fail/:id,
   * without a note: the check's output stays empty, so a refresh with an unchanged status is no catalog write).
   */
  updateTtlCheck(checkId: string, status: CheckStatus): Promise<void>;
  /**
   * Removes one check of this agent (PUT /v1/agent/check/deregister/:id). Consul keeps an existing
   * check's status when its service is registered again, so a status that must change on a check that
   * is not a TTL check is set by removing the check first, then registering the service again.
   */
  deregisterCheck(checkId: string): Promise<void>;
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
 * mode (actuators/consul/consulSessionLock.ts). The client fails these over like the others;
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

/**
 * Service maintenance on the agent (`/v1/agent/service/maintenance/:id`, what `consul maint -service`
 * does) and the KV entries that declare it per container. Not counted as registration writes.
 */
export interface ConsulMaintenance {
  /** Service ID -> reason of every `_service_maintenance:<id>` check on the current agent. */
  agentMaintenance(): Promise<ReadonlyMap<string, string>>;
  /** Enables (with `reason`) or disables maintenance of one service on the current agent. */
  setMaintenance(id: string, enable: boolean, reason?: string): Promise<void>;
  /** Every key under `prefix` with its value (none: []). */
  kvList(prefix: string): Promise<readonly { readonly key: string; readonly value: string }[]>;
  /**
   * kvList as a blocking query: with `index` (an earlier answer's) and `waitMs`, the agent holds the
   * request until something under `prefix` changes or the wait ends. `index` of the answer: for the next call.
   */
  kvListWatch(
    prefix: string,
    opts: { readonly index?: string; readonly waitMs?: number; readonly signal?: AbortSignal },
  ): Promise<{ readonly entries: readonly { readonly key: string; readonly value: string }[]; readonly index: string }>;
  kvPut(key: string, value: string): Promise<void>;
  /** Deletes `key` (with `recurse`, every key under it). */
  kvDelete(key: string, recurse?: boolean): Promise<void>;
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
