/**
 * Polling and port helpers for the integration test bed. No mocks: these only
 * observe real processes.
 */
import { createServer } from "node:net";

export interface WaitOptions {
  /** Give up after this long (measured from the first probe). */
  readonly timeoutMs: number;
  /** Pause between probes; default 100 ms. */
  readonly intervalMs?: number;
  /** Human description used in the timeout error ("consul leader on 127.0.0.1:8500"). */
  readonly what: string;
  /** Stop early: waitFor rejects with the abort reason (e.g. "process exited"). */
  readonly signal?: AbortSignal;
}

/**
 * Calls `probe` until it returns something other than `undefined` or `false`
 * and resolves with that value. A probe that throws counts as "not yet".
 * On timeout rejects with an Error naming `what` and the last error or value;
 * when `signal` aborts, rejects with its reason at the next poll.
 */
export async function waitFor<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, opts: WaitOptions): Promise<T> {
  const interval = opts.intervalMs ?? 100;
  const deadline = Date.now() + opts.timeoutMs;
  let last = "no probe completed";
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      last = `last value: ${String(value)}`;
    } catch (err) {
      last = `last error: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what} (${last})`);
    }
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * A TCP port that was free on `host` a moment ago (bind port 0, read, close).
 * Racy by nature: callers that bind later should retry on "address in use".
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen({ port: 0, host, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => {
        if (port > 0) resolve(port);
        else reject(new Error(`freePort: no port from ${JSON.stringify(addr)}`));
      });
    });
  });
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
