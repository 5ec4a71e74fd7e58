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

/**
 * A sleep another party can cut short: `sleep(ms, signal)` resolves after `ms` (never, when `ms` is
 * undefined), when `signal` aborts, or at `wake()`, whichever comes first; it never rejects. A
 * `wake()` while nobody sleeps does nothing, so a sleeper re-checks its state after every sleep. One
 * sleeper at a time.
 */
export class Wakeup {
  private end: (() => void) | undefined;

  wake(): void {
    this.end?.();
  }

  sleep(ms: number | undefined, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        if (this.end === done) this.end = undefined;
        resolve();
      };
      if (ms !== undefined) timer = setTimeout(done, ms);
      this.end = done;
      signal.addEventListener("abort", done, { once: true });
      if (signal.aborted) done();
    });
  }
}
