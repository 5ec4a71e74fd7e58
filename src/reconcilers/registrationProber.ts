/**
 * healthCheck.probeBeforeRegister for the registrar: probes
 * backends before they are registered and follows up on those that did not
 * answer yet. State: service id -> until when (ms epoch) to re-probe — one
 * check interval after registration, by when Consul has run its own first
 * check. In memory only: a restarted controller leaves the follow-up to
 * Consul's checks. Not safe for concurrent use on one binding: the workqueue
 * never runs one key twice at once.
 */
import { probeCheck, type CheckProbe } from "../actuators/probe/checkProbe.js";
import { parseDurationMs } from "../runtime/duration.js";
import type { CheckStatus, Registration } from "../domain/types.js";

/** At most this many probes run at once. */
const PROBE_CONCURRENCY = 16;
/**
 * Longest a probe may take, whatever the check's timeout: a ready backend answers in milliseconds,
 * and a probe that cannot tell (e.g. a SYN to an address whose network is not up yet) must not hold
 * the registration back. A miss costs nothing: Consul's own check decides.
 */
export const PROBE_TIMEOUT_CAP_MS = 150;

/** `r` as sent with its check's status set to `status`: only the status differs (its meta hash stays that of the configured check). */
export function withCheckStatus(r: Registration, status: CheckStatus): Registration {
  return r.check === undefined ? r : { ...r, check: { ...r.check, status } };
}

/** `r` as sent after a passing probe. */
export function asPassing(r: Registration): Registration {
  return withCheckStatus(r, "passing");
}

function durationMs(d: string | undefined, fallback: number): number {
  try {
    return d === undefined ? fallback : parseDurationMs(d);
  } catch {
    return fallback;
  }
}

function intervalMs(r: Registration): number {
  return durationMs(r.check?.interval, 0);
}

export class RegistrationProber {
  private readonly pending = new Map<string, number>();

  constructor(private readonly probe: CheckProbe = probeCheck) {}

  /** One probe of each registration that asks for it; true/false per registration, undefined when not probed. */
  async probeAll(registrations: readonly Registration[]): Promise<(boolean | undefined)[]> {
    const out: (boolean | undefined)[] = registrations.map(() => undefined);
    const todo = registrations.flatMap((r, i) => (r.check?.probeBeforeRegister === true ? [i] : []));
    const worker = async (): Promise<void> => {
      for (let i = todo.shift(); i !== undefined; i = todo.shift()) {
        const check = registrations[i]?.check;
        out[i] =
          check === undefined
            ? undefined
            : await this.probe({ ...check, timeout: `${Math.min(PROBE_TIMEOUT_CAP_MS, durationMs(check.timeout, PROBE_TIMEOUT_CAP_MS))}ms` });
      }
    };
    await Promise.all(Array.from({ length: Math.min(PROBE_CONCURRENCY, todo.length) }, worker));
    return out;
  }

  /** `r` was just registered after probe result `probed` (undefined: not probed): a failure starts a follow-up. */
  registered(r: Registration, probed: boolean | undefined): void {
    if (probed === false) this.pending.set(r.id, Date.now() + intervalMs(r));
    else this.pending.delete(r.id);
  }

  /** The follow-up of `id` is over (it passed, or the registration went away). */
  settle(id: string): void {
    this.pending.delete(id);
  }

  /** Registrations of `desired` whose follow-up is still running (expired ones are dropped). */
  due(desired: readonly Registration[]): Registration[] {
    const now = Date.now();
    return desired.filter((r) => {
      const until = this.pending.get(r.id);
      if (until === undefined) return false;
      if (now <= until) return true;
      this.pending.delete(r.id);
      return false;
    });
  }

  /** True while any of `desired` has a follow-up running. */
  anyPending(desired: readonly Registration[]): boolean {
    return desired.some((r) => this.pending.has(r.id));
  }
}
