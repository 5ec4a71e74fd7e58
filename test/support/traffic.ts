/**
 * Request loops and served-set checks through a test nginx, on 127.0.0.1 only.
 */
import type { NginxHandle } from "./nginx.js";
import { delay, waitFor } from "./wait.js";

export interface Load {
  /** Stops the loop; resolves with the request counts. */
  stop(): Promise<{ readonly sent: number; readonly failed: number; readonly failures: readonly string[] }>;
}

/** GETs through nginx on `port` every `intervalMs` (default 50 ms, 20/s), one at a time; bounded to `maxMs` (default 60 s). */
export function startLoad(nginx: Pick<NginxHandle, "get">, port: number, opts: { readonly intervalMs?: number; readonly maxMs?: number } = {}): Load {
  const interval = opts.intervalMs ?? 50;
  const loop = { running: true };
  let sent = 0;
  const failures: string[] = [];
  const done = (async () => {
    const until = Date.now() + (opts.maxMs ?? 60_000);
    while (loop.running && Date.now() < until) {
      const started = Date.now();
      sent++;
      const r = await nginx.get(port).catch((err: unknown) => ({ status: 0, body: String(err) }));
      if (r.status !== 200) failures.push(`${new Date().toISOString()} HTTP ${r.status} ${r.body.slice(0, 80)}`);
      await delay(Math.max(0, interval - (Date.now() - started)));
    }
  })();
  return {
    async stop() {
      loop.running = false;
      await done;
      return { sent, failed: failures.length, failures };
    },
  };
}

/** Bodies of `n` sequential GETs through nginx on `port`; a non-200 answer (or none: status 0) is `HTTP <code>`. */
export async function sample(nginx: Pick<NginxHandle, "get">, port: number, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await nginx.get(port).catch(() => ({ status: 0, body: "" }));
    out.push(r.status === 200 ? r.body : `HTTP ${r.status}`);
  }
  return out;
}

/**
 * Waits until the bodies answered through nginx on `port` are exactly `expected` (3 samples per
 * name; a non-200 answer counts as `HTTP <code>`, so "one backend + 503" is never "two backends"),
 * then until nginx runs one worker generation (right after a reload a worker of the older one may
 * still take a connection and answer from the old config), then checks the set once more.
 */
export async function servedExactly(
  nginx: Pick<NginxHandle, "get" | "oneGeneration">,
  port: number,
  expected: readonly string[],
  timeoutMs = 20_000,
): Promise<void> {
  const want = [...new Set(expected)].sort().join(",");
  const matches = async (): Promise<true | undefined> => [...new Set(await sample(nginx, port, expected.length * 3))].sort().join(",") === want || undefined;
  await waitFor(matches, { timeoutMs, intervalMs: 100, what: `nginx serving exactly [${want}]` });
  await nginx.oneGeneration(timeoutMs);
  await waitFor(matches, { timeoutMs, intervalMs: 100, what: `nginx serving exactly [${want}] with one worker generation` });
}
