/**
 * The leader-election lock of docker-only mode: a Consul session holding a
 * KV key, as `consul lock` and consul-template's de-duplication mode do.
 *
 * - Every candidate registers, on its agent, a service `dockbind-leader`
 *   (ID `dockbind-leader:<name>:<identity>`) with a TTL check it passes every
 *   renew period, and creates a session bound to that check and to the
 *   agent's serfHealth, with a TTL and a lock-delay (behavior release).
 * - The holder is the session that acquired `dockbind/leader/<name>` with
 *   `?acquire=`. A standby watches the key with blocking queries and tries to
 *   acquire it as soon as it is free (Consul refuses for lock-delay after the
 *   previous holder's session was invalidated).
 * - A candidate that dies stops passing its check: the check turns critical
 *   after checkTtl, which invalidates the session and frees the key; a
 *   standby holds it lock-delay later (kill -9 to takeover: at most about
 *   checkTtl + lock-delay + one poll). The session TTL (Consul invalidates after
 *   twice it) is the backstop when the agent cannot run the check.
 * - The holder loses the lock, and must stop writing at once, when its
 *   session is reported gone, when the key names another session (or none),
 *   or when no renew cycle (check pass + session renew) succeeded for
 *   renewDeadline. renewDeadline < checkTtl + lock-delay, measured from when
 *   the last successful cycle was SENT: the key cannot change hands before
 *   the holder has stopped.
 * - A normal stop releases the key (no lock-delay applies to a release), so a
 *   standby watching it takes over within one round trip; then the session
 *   is destroyed and the service deregistered. A candidate that crashed
 *   leaves its service with a critical check; the agent removes it after
 *   deregisterCriticalServiceAfter.
 */
import type { Registration } from "../../domain/types.js";
import { isAborted, sleep } from "../../runtime/backoff.js";
import type { ElectionOutcome, LeadershipLock } from "../../runtime/leaderElection.js";
import { errorMessage, type Logger } from "../../runtime/logger.js";
import type { ConsulApi, ConsulLocking } from "../../ports/consul.js";

const LEADER_SERVICE = "dockbind-leader";
const LEADER_KEY_PREFIX = "dockbind/leader/";

export interface SessionLockTiming {
  readonly renewMs: number;
  readonly checkTtlMs: number;
  /** Session TTL in seconds (Consul's minimum is 10). */
  readonly sessionTtlS: number;
  readonly lockDelayMs: number;
  readonly renewDeadlineMs: number;
  /** Poll period while the key is free but cannot be acquired yet (lock-delay). */
  readonly freePollMs: number;
  /** Blocking-query wait while another session holds the key. */
  readonly waitMs: number;
}

const DEFAULT_SESSION_LOCK_TIMING: SessionLockTiming = {
  renewMs: 2_000,
  checkTtlMs: 5_000,
  sessionTtlS: 10,
  lockDelayMs: 5_000,
  renewDeadlineMs: 7_000,
  freePollMs: 500,
  waitMs: 30_000,
};

export interface ConsulSessionLockOptions {
  readonly consul: Pick<ConsulApi, "register" | "deregister"> & ConsulLocking;
  /** Lock name: the key is `dockbind/leader/<name>`. */
  readonly name: string;
  readonly identity: string;
  readonly logger: Logger;
  readonly timing?: SessionLockTiming;
  /** Called whenever the observed holder changes (its identity, "" when free). */
  readonly onNewLeader?: (identity: string) => void;
  readonly now?: () => number;
}

/** The key's value: who holds it (for operators and standbys). */
interface HolderRecord {
  readonly holderIdentity: string;
  readonly acquireTime: string;
}

function holderOf(value: string | undefined): string {
  if (value === undefined) return "";
  try {
    const rec = JSON.parse(value) as Partial<HolderRecord> | null;
    return typeof rec?.holderIdentity === "string" ? rec.holderIdentity : "";
  } catch {
    return "";
  }
}

export class ConsulSessionLock implements LeadershipLock {
  private readonly key: string;
  private readonly serviceId: string;
  private readonly timing: SessionLockTiming;
  private readonly now: () => number;
  private session: string | undefined;
  /** Aborts when the current session is reported gone, or when the keeper stops. */
  private sessionAlive = new AbortController();
  /** When the last successful renew cycle was sent (candidate's clock). */
  private lastRenewOk = 0;
  private keeper: Promise<void> | undefined;
  private observedHolder: string | undefined;
  private failures = 0;
  private lastWarnAt = 0;

  constructor(private readonly opts: ConsulSessionLockOptions) {
    this.key = `${LEADER_KEY_PREFIX}${opts.name}`;
    this.serviceId = `${LEADER_SERVICE}:${opts.name}:${opts.identity.replace(/[^A-Za-z0-9_.-]/g, "-")}`;
    this.timing = opts.timing ?? DEFAULT_SESSION_LOCK_TIMING;
    this.now = opts.now ?? Date.now;
    const t = this.timing;
    if (t.renewDeadlineMs >= t.checkTtlMs + t.lockDelayMs) throw new Error("consul session lock: renew deadline must be shorter than check TTL + lock-delay");
    if (t.renewMs * 2 > t.checkTtlMs) throw new Error("consul session lock: the check must be passed at least twice per check TTL");
  }

  describe(): string {
    return `consul key ${this.key}`;
  }

  async acquire(signal: AbortSignal): Promise<boolean> {
    let index: string | undefined;
    while (!isAborted(signal)) {
      try {
        const session = await this.ensureSession();
        const entry = await this.opts.consul.kvGet(this.key, index === undefined ? { signal } : { index, waitMs: this.timing.waitMs, signal });
        if (entry.session === session) return true;
        this.observe(entry.session === undefined ? "" : holderOf(entry.value));
        if (entry.session !== undefined) {
          index = entry.index;
          continue;
        }
        const record: HolderRecord = { holderIdentity: this.opts.identity, acquireTime: new Date(this.now()).toISOString() };
        if (await this.opts.consul.kvAcquire(this.key, JSON.stringify(record), session)) {
          this.observe(this.opts.identity);
          return true;
        }
        // Free but refused: lock-delay after the previous holder's session was invalidated, or a race lost.
        index = undefined;
        await sleep(this.timing.freePollMs, signal);
      } catch (err) {
        if (isAborted(signal)) break;
        this.attemptFailed(err);
        index = undefined;
        await sleep(this.timing.renewMs, signal);
      }
    }
    await this.cleanup();
    return false;
  }

  async hold(signal: AbortSignal): Promise<ElectionOutcome> {
    while (!isAborted(signal)) {
      await sleep(this.timing.renewMs, AbortSignal.any([signal, this.sessionAlive.signal]));
      if (isAborted(signal)) break;
      const why = await this.holdProblem();
      if (why !== undefined) {
        this.opts.logger.warn("leader election: the consul lock is no longer ours", { lock: this.describe(), why });
        await this.stopKeeper();
        return "lost";
      }
    }
    return "stopped";
  }

  async release(): Promise<void> {
    const session = this.session;
    await this.stopKeeper();
    if (session !== undefined) {
      try {
        if (await this.opts.consul.kvRelease(this.key, session)) this.opts.logger.info("leader election: lease released", { lock: this.describe() });
      } catch (err) {
        this.opts.logger.warn("leader election: cannot release the lease", { lock: this.describe(), error: errorMessage(err) });
      }
    }
    await this.cleanup();
  }

  /** Why the lock can no longer be trusted to be ours, or undefined. */
  private async holdProblem(): Promise<string | undefined> {
    if (this.sessionAlive.signal.aborted || this.session === undefined) return "session invalidated";
    if (this.now() - this.lastRenewOk >= this.timing.renewDeadlineMs) return `no successful renew for ${this.timing.renewDeadlineMs} ms`;
    try {
      const entry = await this.opts.consul.kvGet(this.key, { signal: AbortSignal.timeout(this.timing.renewMs) });
      if (entry.session !== this.session) {
        this.observe(entry.session === undefined ? "" : holderOf(entry.value));
        return entry.session === undefined ? "the key is not held" : "the key is held by another session";
      }
    } catch {
      // Unreadable: the renew deadline decides.
    }
    return undefined;
  }

  /** The current session, creating the check and the session first when there is none. */
  private async ensureSession(): Promise<string> {
    if (this.session !== undefined && !this.sessionAlive.signal.aborted) return this.session;
    await this.stopKeeper();
    const t = this.timing;
    const reg: Registration = {
      id: this.serviceId,
      name: LEADER_SERVICE,
      address: "",
      port: 0,
      tags: [],
      meta: { dockbind_leader_lock: this.opts.name, dockbind_leader_identity: this.opts.identity },
      check: { ttl: `${Math.ceil(t.checkTtlMs / 1000)}s`, status: "passing", deregisterCriticalServiceAfter: "1m" },
    };
    await this.opts.consul.register(reg);
    // Re-registering keeps an existing check's status: a crashed predecessor's critical check would refuse the session.
    await this.opts.consul.passCheck(`service:${this.serviceId}`);
    const sentAt = this.now();
    const session = await this.opts.consul.createSession({
      name: `dockbind leader ${this.opts.name} (${this.opts.identity})`,
      ttl: `${t.sessionTtlS}s`,
      lockDelay: `${Math.ceil(t.lockDelayMs / 1000)}s`,
      checks: ["serfHealth", `service:${this.serviceId}`],
    });
    this.session = session;
    this.lastRenewOk = sentAt;
    this.sessionAlive = new AbortController();
    this.keeper = this.keep(session, this.sessionAlive);
    return session;
  }

  /** Passes the check and renews the session every renew period until `alive` aborts. Never rejects. */
  private async keep(session: string, alive: AbortController): Promise<void> {
    const stopped = (): boolean => alive.signal.aborted;
    for (;;) {
      await sleep(this.timing.renewMs, alive.signal);
      if (stopped()) return;
      const sentAt = this.now();
      try {
        await this.opts.consul.passCheck(`service:${this.serviceId}`);
        if (!(await this.opts.consul.renewSession(session))) {
          this.opts.logger.warn("leader election: consul session invalidated", { lock: this.describe() });
          alive.abort();
          return;
        }
        this.lastRenewOk = sentAt;
        this.failures = 0;
      } catch (err) {
        this.attemptFailed(err);
      }
    }
  }

  private async stopKeeper(): Promise<void> {
    this.sessionAlive.abort();
    await this.keeper;
    this.keeper = undefined;
  }

  /** Destroys the session and deregisters the check. Best effort. */
  private async cleanup(): Promise<void> {
    await this.stopKeeper();
    const session = this.session;
    this.session = undefined;
    try {
      if (session !== undefined) await this.opts.consul.destroySession(session);
      await this.opts.consul.deregister(this.serviceId);
    } catch (err) {
      this.opts.logger.warn("leader election: cannot remove the consul session or its check", { lock: this.describe(), error: errorMessage(err) });
    }
  }

  private observe(holder: string): void {
    if (holder === this.observedHolder) return;
    this.observedHolder = holder;
    this.opts.onNewLeader?.(holder);
  }

  /** A failed Consul call: warned at most every 30 s once it repeats, else debug. */
  private attemptFailed(err: unknown): void {
    this.failures++;
    const fields = { lock: this.describe(), error: errorMessage(err), failures: this.failures };
    if (this.failures >= 2 && this.now() - this.lastWarnAt >= 30_000) {
      this.lastWarnAt = this.now();
      this.opts.logger.warn("leader election: consul lock call failed", fields);
    } else this.opts.logger.debug("leader election: consul lock call failed", fields);
  }
}
