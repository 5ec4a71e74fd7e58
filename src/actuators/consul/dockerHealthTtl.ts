/**
 * The TTL checks of healthCheck.type docker registrations: the controller
 * vouches for each instance by setting its check from the container's Docker
 * health (CheckDefinition.dockerHealth) and refreshing it before its TTL runs
 * out. A controller that stops refreshing lets them expire to critical.
 *
 * Contract:
 * - track(binding, registrations, justRegistered): the registrar hands, after
 *   each reconcile of a binding, the registrations of that binding it may
 *   write. A check whose status differs from the last one sent (or that this
 *   process has not sent yet) is updated at once; one just registered carried
 *   its status in the registration and counts as sent now. Checks of the
 *   binding that are no longer handed over are forgotten.
 * - run(signal): the checks whose last update is a third of their TTL old
 *   are refreshed with the same status; it sleeps until the next one is due
 *   (track() wakes it), so with nothing tracked it costs no timer at all. The check's output is never
 *   set (always empty), so a refresh with an unchanged status changes nothing
 *   in the agent's view and is no catalog write.
 * - Updates of one check are sent one after another, each with the latest
 *   status at the moment it is sent: a refresh racing an event never lands
 *   an older status last.
 */
import type { CheckStatus, Registration } from "../../domain/types.js";
import type { ConsulApi } from "../../ports/consul.js";
import { Wakeup } from "../../runtime/backoff.js";
import { parseDurationMs } from "../../runtime/duration.js";
import { errorMessage, type Logger } from "../../runtime/logger.js";

/** Consul's ID of a service's only check (registered with the service, no CheckID given). */
export function serviceCheckId(serviceId: string): string {
  return `service:${serviceId}`;
}

/** Shortest sleep of run() between two looks for due refreshes (refreshes due within it are sent together). */
const MIN_SLEEP_MS = 100;
/** After a failed update, the next try of that check waits this long (Consul down: one warning per check, not per tick). */
const RETRY_MS = 1000;

interface Entry {
  readonly binding: string;
  readonly checkId: string;
  status: CheckStatus;
  refreshMs: number;
  /** When the status Consul holds was last set by us (ms epoch); 0 = never by this process. */
  sentAt: number;
  /** The status last sent successfully. */
  sent: CheckStatus | undefined;
  /** Not before this time (after a failure). */
  retryAt: number;
  failing: boolean;
  chain: Promise<void>;
}

export interface DockerHealthTtlOptions {
  readonly consul: Pick<ConsulApi, "updateTtlCheck">;
  readonly logger: Logger;
  readonly now?: () => number;
}

export class DockerHealthTtl {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  /** Ends run()'s current sleep. */
  private readonly wakeup = new Wakeup();

  constructor(private readonly opts: DockerHealthTtlOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Checks currently kept alive (tests, status). */
  size(): number {
    return this.entries.size;
  }

  /**
   * The docker-check registrations of `binding` now (see the module contract). Rejects when an
   * update Consul must see now (a changed status) fails: the caller's reconcile is retried.
   */
  async track(binding: string, registrations: readonly Registration[], justRegistered: ReadonlySet<string>): Promise<void> {
    const wanted = new Set<string>();
    const changed: Entry[] = [];
    for (const r of registrations) {
      const status = r.check?.dockerHealth;
      if (status === undefined || r.check?.ttl === undefined) continue;
      const checkId = serviceCheckId(r.id);
      wanted.add(checkId);
      const e = this.entries.get(checkId) ?? this.create(binding, checkId, status);
      e.status = status;
      e.refreshMs = refreshMs(r.check.ttl);
      if (justRegistered.has(r.id)) {
        e.sent = status;
        e.sentAt = this.now();
      } else if (e.sent !== status) changed.push(e);
    }
    for (const [id, e] of this.entries) if (e.binding === binding && !wanted.has(id)) this.entries.delete(id);
    this.wakeup.wake();
    const failure = (await Promise.all(changed.map((e) => this.send(e)))).find((err) => err !== undefined);
    // The client's own error (a ConsulError): its reason becomes the binding's Registered reason.
    if (failure !== undefined) throw failure;
  }

  /** Refreshes every due check once (what each tick of run() does). */
  async refreshDue(): Promise<void> {
    const now = this.now();
    const due = [...this.entries.values()].filter((e) => now >= e.retryAt && now - e.sentAt >= e.refreshMs);
    await Promise.all(due.map((e) => this.send(e)));
  }

  /** Refreshes due checks until `signal` aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.refreshDue();
      await this.sleepUntilDue(signal);
    }
  }

  /** Milliseconds until the next refresh is due; undefined when nothing is tracked. */
  private untilDue(): number | undefined {
    let next: number | undefined;
    for (const e of this.entries.values()) {
      const at = Math.max(e.retryAt, e.sentAt + e.refreshMs);
      next = next === undefined ? at : Math.min(next, at);
    }
    return next === undefined ? undefined : next - this.now();
  }

  /** Resolves when the next refresh is due, track() changed what is tracked, or `signal` aborts. */
  private sleepUntilDue(signal: AbortSignal): Promise<void> {
    const ms = this.untilDue();
    return this.wakeup.sleep(ms === undefined ? undefined : Math.max(MIN_SLEEP_MS, ms), signal);
  }

  private create(binding: string, checkId: string, status: CheckStatus): Entry {
    const e: Entry = { binding, checkId, status, refreshMs: 0, sentAt: 0, sent: undefined, retryAt: 0, failing: false, chain: Promise.resolve() };
    this.entries.set(checkId, e);
    return e;
  }

  /** Queues one update of `e` with its status at send time; resolves with the error when Consul did not take it. */
  private send(e: Entry): Promise<Error | undefined> {
    const attempt = e.chain.then(async () => {
      const status = e.status;
      try {
        await this.opts.consul.updateTtlCheck(e.checkId, status);
        if (e.sent !== status) this.opts.logger.info("Docker health check set", { binding: e.binding, checkId: e.checkId, status });
        e.sent = status;
        e.sentAt = this.now();
        if (e.failing) this.opts.logger.info("Docker health check updated again", { checkId: e.checkId, status });
        e.failing = false;
        return undefined;
      } catch (err) {
        e.retryAt = this.now() + RETRY_MS;
        if (!e.failing)
          this.opts.logger.warn("cannot update Docker health check", { binding: e.binding, checkId: e.checkId, status, error: errorMessage(err) });
        e.failing = true;
        return err instanceof Error ? err : new Error(`set check ${e.checkId} ${status}: ${errorMessage(err)}`);
      }
    });
    e.chain = attempt.then(() => undefined);
    return attempt;
  }
}

/** A third of the TTL: two refreshes may fail before the check expires. */
function refreshMs(ttl: string): number {
  try {
    return Math.max(100, Math.floor(parseDurationMs(ttl) / 3));
  } catch {
    return 1000;
  }
}
