/**
 * The ACL-token side of the transport: what an answer says about the token it
 * was sent with, and the gate that holds back a token Consul does not know.
 */
import { httpStatus } from "./errors.js";

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
export function verdictOf(err: unknown): TokenVerdict {
  const status = httpStatus(err);
  if (status === 403 && ACL_NOT_FOUND.test(err instanceof Error ? err.message : String(err))) return "unknown-token";
  return status !== undefined && status >= 400 && status < 500 ? "valid" : "no-verdict";
}
