/**
 * Leader election on a lock record (a coordination.k8s.io/v1 Lease in
 * production), with client-go's semantics and controller-runtime's defaults
 * (lease 15 s, renew deadline 10 s, retry period 2 s):
 *
 * - a candidate tries every retry period (jittered); it may take the lock when
 *   the record is free or the holder has not renewed it for a full lease
 *   duration. Like client-go, expiry is judged on the CANDIDATE's clock from
 *   when it first saw the current record; unlike client-go, the record's own
 *   renewTime may move that point back by at most one (jittered) retry period,
 *   the candidate's own polling lag. So a crashed leader is replaced within
 *   the lease duration of its last renewal (not up to 2 retry periods later),
 *   while clock skew can advance a takeover by at most 2.4 s, less than the
 *   5 s (lease - renew deadline) a live leader keeps as margin: a leader that
 *   could not renew for 10 s has already stopped. The candidate also wakes up
 *   right at the computed expiry instead of at its next fixed retry;
 * - the leader renews every retry period; if it cannot renew for the renew
 *   deadline it has lost: `whileLeading`'s signal aborts and run() resolves
 *   "lost" (the caller exits: a replica that lost the lease must stop writing);
 * - on a normal stop the leader releases the lock (holder cleared, duration
 *   1 s) so a standby takes over at its next retry instead of waiting for expiry.
 * All writes are optimistic (the lock's version), so two candidates can never
 * both succeed on the same record.
 *
 * The state machine shared by every lock kind (campaign, lead while held,
 * stop at once when the hold is lost, release on a normal stop, the
 * onLeaderChange hook behind leader_election_master_status) is runElection()
 * over a LeadershipLock; LeaderElector is that lock for a Lease-like record,
 * consulSessionLock.ts the one for a Consul session + KV key.
 */
import { isAborted, sleep } from "./backoff.js";
import { errorMessage, type Logger } from "./logger.js";

export interface LeaderElectionRecord {
  readonly holderIdentity: string;
  readonly leaseDurationSeconds: number;
  readonly acquireTime: string;
  readonly renewTime: string;
  readonly leaseTransitions: number;
}

export interface LockState {
  readonly record: LeaderElectionRecord;
  /** Opaque version for optimistic updates (resourceVersion). */
  readonly version: string;
}

export interface ResourceLock {
  /** undefined when the lock object does not exist. */
  get(signal: AbortSignal): Promise<LockState | undefined>;
  /** Creates the lock object; rejects if it exists. */
  create(record: LeaderElectionRecord, signal: AbortSignal): Promise<void>;
  /** Replaces the record if `version` is still current; rejects otherwise. */
  update(record: LeaderElectionRecord, version: string, signal: AbortSignal): Promise<void>;
  describe(): string;
}

export interface LeaderElectionOptions {
  readonly lock: ResourceLock;
  readonly identity: string;
  readonly leaseDurationMs?: number;
  readonly renewDeadlineMs?: number;
  readonly retryPeriodMs?: number;
  readonly logger: Logger;
  /** Called with true when this replica starts leading, false when it stops. */
  readonly onLeaderChange?: (leading: boolean) => void;
  /** Called whenever the observed holder changes (identity, "" when free). */
  readonly onNewLeader?: (identity: string) => void;
  /** Clock (tests). */
  readonly now?: () => number;
}

export type ElectionOutcome = "stopped" | "lost";

/** A lock a single leader holds. Every method never rejects. */
export interface LeadershipLock {
  describe(): string;
  /** Campaigns until this candidate holds the lock (true) or `signal` aborts (false). */
  acquire(signal: AbortSignal): Promise<boolean>;
  /**
   * Keeps the lock held. Resolves "lost" as soon as it can no longer be
   * trusted to be held (the caller must stop writing at once), "stopped" once
   * `signal` aborts.
   */
  hold(signal: AbortSignal): Promise<ElectionOutcome>;
  /** Gives the lock up so a standby takes over without waiting for expiry. Best effort. */
  release(): Promise<void>;
}

export interface ElectionHooks {
  readonly identity: string;
  readonly logger: Logger;
  /** Called with true when this candidate starts leading, false when it stops. */
  readonly onLeaderChange?: (leading: boolean) => void;
}

/**
 * Campaigns on `lock`, runs `whileLeading` with a signal that aborts when the
 * lock is lost or `signal` aborts, and returns how it ended. After "lost" the
 * work is not awaited (the caller exits); after "stopped" it is, then the
 * lock is released.
 */
export async function runElection(
  lock: LeadershipLock,
  hooks: ElectionHooks,
  signal: AbortSignal,
  whileLeading: (leaderSignal: AbortSignal) => Promise<void>,
): Promise<ElectionOutcome> {
  const { logger } = hooks;
  logger.info("leader election: waiting for the lease", { lock: lock.describe(), identity: hooks.identity });
  if (!(await lock.acquire(signal)) || isAborted(signal)) return "stopped";
  hooks.onLeaderChange?.(true);
  logger.info("leader election: acquired the lease", { lock: lock.describe(), identity: hooks.identity });
  const leader = new AbortController();
  const onStop = (): void => {
    leader.abort();
  };
  signal.addEventListener("abort", onStop, { once: true });
  const work = whileLeading(leader.signal).catch((err: unknown) => {
    logger.error("leader work failed", { error: errorMessage(err) });
  });
  const outcome = await lock.hold(signal);
  signal.removeEventListener("abort", onStop);
  hooks.onLeaderChange?.(false);
  leader.abort();
  if (outcome === "lost") {
    logger.error("leader election lost", { lock: lock.describe(), identity: hooks.identity });
    return "lost";
  }
  await work;
  await lock.release();
  return "stopped";
}

const JITTER = 1.2;

function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class LeaderElector implements LeadershipLock {
  private observed: LeaderElectionRecord | undefined;
  private observedVersion = "";
  /** When the observed record expires (candidate's clock). */
  private expiresAt = 0;
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private readonly now: () => number;
  private leading = false;
  private failures = 0;
  private lastWarnAt = 0;

  constructor(private readonly opts: LeaderElectionOptions) {
    this.leaseMs = opts.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = opts.renewDeadlineMs ?? 10_000;
    this.retryMs = opts.retryPeriodMs ?? 2_000;
    this.now = opts.now ?? Date.now;
    if (this.leaseMs <= this.renewDeadlineMs) throw new Error("leader election: lease duration must be greater than the renew deadline");
    if (this.renewDeadlineMs <= JITTER * this.retryMs) throw new Error("leader election: renew deadline must be greater than retry period * 1.2");
  }

  isLeader(): boolean {
    return this.leading;
  }

  describe(): string {
    return this.opts.lock.describe();
  }

  /**
   * Campaigns until elected, runs `whileLeading` with a signal that aborts when
   * leadership is lost or `signal` aborts, and returns how it ended.
   */
  run(signal: AbortSignal, whileLeading: (leaderSignal: AbortSignal) => Promise<void>): Promise<ElectionOutcome> {
    return runElection(this, this.hooks(), signal, whileLeading);
  }

  /** The hooks runElection() (or a Manager) needs to campaign on this lock: they keep isLeader() and onLeaderChange current. */
  hooks(): ElectionHooks {
    return {
      identity: this.opts.identity,
      logger: this.opts.logger,
      onLeaderChange: (v) => {
        this.setLeading(v);
      },
    };
  }

  async acquire(signal: AbortSignal): Promise<boolean> {
    while (!isAborted(signal)) {
      if (await this.tryAcquireOrRenew(signal)) return true;
      const retry = this.retryMs * (1 + Math.random() * (JITTER - 1));
      const untilExpiry = this.expiresAt - this.now() + 20;
      await sleep(untilExpiry > 0 ? Math.min(retry, untilExpiry) : retry, signal);
    }
    return false;
  }

  async hold(signal: AbortSignal): Promise<ElectionOutcome> {
    let lastRenew = this.now();
    while (!isAborted(signal)) {
      await sleep(this.retryMs, signal);
      if (isAborted(signal)) break;
      const ok = await this.tryAcquireOrRenew(signal, this.renewDeadlineMs - (this.now() - lastRenew));
      if (ok) {
        lastRenew = this.now();
        continue;
      }
      if (this.now() - lastRenew >= this.renewDeadlineMs || (this.observed !== undefined && this.observed.holderIdentity !== this.opts.identity)) {
        this.opts.logger.warn("leader election: the lease is no longer ours", { lock: this.opts.lock.describe(), holder: this.observed?.holderIdentity });
        return "lost";
      }
    }
    return "stopped";
  }

  private setLeading(v: boolean): void {
    if (this.leading === v) return;
    this.leading = v;
    this.opts.onLeaderChange?.(v);
  }

  /** One attempt (client-go tryAcquireOrRenew). Never rejects. */
  private async tryAcquireOrRenew(signal: AbortSignal, budgetMs = this.renewDeadlineMs): Promise<boolean> {
    const attempt = AbortSignal.any([signal, AbortSignal.timeout(Math.max(500, budgetMs))]);
    const now = this.now();
    const mine = (acquireTime: string, transitions: number): LeaderElectionRecord => ({
      holderIdentity: this.opts.identity,
      leaseDurationSeconds: Math.round(this.leaseMs / 1000),
      acquireTime,
      renewTime: microTime(now),
      leaseTransitions: transitions,
    });
    try {
      const state = await this.opts.lock.get(attempt);
      if (state === undefined) {
        const rec = mine(microTime(now), 0);
        await this.opts.lock.create(rec, attempt);
        this.observe(rec, "", this.now());
        return true;
      }
      if (this.observed === undefined || JSON.stringify(state.record) !== JSON.stringify(this.observed) || state.version !== this.observedVersion) {
        this.observe(state.record, state.version, now);
      }
      const held = state.record.holderIdentity !== "" && state.record.holderIdentity !== this.opts.identity;
      if (held && this.expiresAt > now) return false;
      const rec =
        state.record.holderIdentity === this.opts.identity
          ? mine(state.record.acquireTime, state.record.leaseTransitions)
          : mine(microTime(now), state.record.leaseTransitions + 1);
      await this.opts.lock.update(rec, state.version, attempt);
      this.observe(rec, "", this.now());
      this.failures = 0;
      return true;
    } catch (err) {
      if (isAborted(signal)) return false;
      // Conflicts are routine (someone else renewed first); a lock we cannot even read is not: warn, at most every 30 s.
      this.failures++;
      const fields = { lock: this.opts.lock.describe(), error: errorMessage(err), failures: this.failures };
      if (this.now() - this.lastWarnAt >= 30_000 && this.failures >= 2) {
        this.lastWarnAt = this.now();
        this.opts.logger.warn("leader election: cannot read or update the lock", fields);
      } else this.opts.logger.debug("leader election: attempt failed", fields);
      return false;
    }
  }

  private observe(rec: LeaderElectionRecord, version: string, at: number): void {
    const holderChanged = this.observed?.holderIdentity !== rec.holderIdentity;
    this.observed = rec;
    this.observedVersion = version;
    const leaseMs = rec.leaseDurationSeconds > 0 ? rec.leaseDurationSeconds * 1000 : this.leaseMs;
    const renewed = Date.parse(rec.renewTime);
    const floor = at - this.retryMs * JITTER; // our polling lag: the most renewTime may move expiry back
    this.expiresAt = (Number.isFinite(renewed) ? Math.max(renewed, floor) : at) + leaseMs;
    if (holderChanged) this.opts.onNewLeader?.(rec.holderIdentity);
  }

  /** Gives the lock up (holder cleared) so a standby need not wait for expiry. Best effort. */
  async release(): Promise<void> {
    const signal = AbortSignal.timeout(this.renewDeadlineMs);
    try {
      const state = await this.opts.lock.get(signal);
      if (state?.record.holderIdentity !== this.opts.identity) return;
      const now = microTime(this.now());
      await this.opts.lock.update({ ...state.record, holderIdentity: "", leaseDurationSeconds: 1, renewTime: now }, state.version, signal);
      this.opts.logger.info("leader election: lease released", { lock: this.opts.lock.describe() });
    } catch (err) {
      this.opts.logger.warn("leader election: cannot release the lease", { lock: this.opts.lock.describe(), error: errorMessage(err) });
    }
  }
}
