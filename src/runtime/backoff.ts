/**
 * Exponential backoff with full jitter disabled by default (deterministic for
 * tests): delay(n) = min(max, base * 2^n). Pure.
 */
export interface BackoffOptions {
  readonly baseMs: number;
  readonly maxMs: number;
}

export function backoffDelay(failures: number, opts: BackoffOptions): number {
  const exp = Math.min(failures, 30);
  return Math.min(opts.maxMs, opts.baseMs * 2 ** exp);
}

/** Resolves after `ms`, or early (without error) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve();
      return;
    }
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * `signal.aborted` read through a call, so TypeScript does not narrow it to a
 * constant across awaits (it changes while a loop is suspended).
 */
export function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}
