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
 * Ports the test bed hands out: below the kernel's ephemeral range (ip_local_port_range, 32768-60999
 * by default). Docker allocates published host ports sequentially from that range, and the kernel
 * picks source ports and port-0 binds from it, so a port read from a port-0 bind could be taken by
 * another file's container before its listener bound it.
 */
const PORT_RANGE = { from: 20_000, to: 32_767 } as const;

/**
 * A TCP port that was free on `host` a moment ago: a random one of PORT_RANGE that could be bound
 * (and was closed again). Racy by nature: callers that bind later should retry on "address in use".
 */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = PORT_RANGE.from + Math.floor(Math.random() * (PORT_RANGE.to - PORT_RANGE.from + 1));
    if (await canBind(host, port)) return port;
  }
  throw new Error(`freePort: no free port on ${host} in ${PORT_RANGE.from}-${PORT_RANGE.to} after 100 tries`);
}

/**
 * A picker of freePort ports that never hands out one it handed out before: callers that start several
 * listeners before any of them binds (a Consul agent's five ports, a private engine's containers) cannot
 * be given the same port twice.
 */
export function distinctPorts(host = "127.0.0.1"): () => Promise<number> {
  const handedOut = new Set<number>();
  return async () => {
    for (;;) {
      const port = await freePort(host);
      if (!handedOut.has(port)) {
        handedOut.add(port);
        return port;
      }
    }
  };
}

/** True when `host:port` could be bound exclusively (then closed); false on EADDRINUSE/EACCES. */
function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE" || err.code === "EACCES") resolve(false);
      else reject(err);
    });
    srv.listen({ port, host, exclusive: true }, () => {
      srv.close(() => {
        resolve(true);
      });
    });
  });
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
