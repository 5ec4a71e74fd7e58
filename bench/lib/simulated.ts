/** Helpers shared by the benchmarks that drive the controller against simulated Docker engines (P5, fleet). */
import type { ConsulHandle } from "../../test/support/consul.js";
import { httpGet } from "../../test/support/http.js";
import { waitFor } from "../../test/support/wait.js";

/** A positive number from the environment, else `d`. */
export function envNumber(k: string, d: number): number {
  const v = Number(process.env[k] ?? d);
  return Number.isFinite(v) && v > 0 ? v : d;
}

/** How many services the agent holds (-1 when it does not answer 200). */
export async function agentServiceCount(consul: ConsulHandle): Promise<number> {
  const r = await httpGet(`${consul.url}/v1/agent/services`, 30_000);
  return r.status === 200 ? Object.keys(JSON.parse(r.body) as object).length : -1;
}

/** Resolves once no simulated engine has served a request for `ms` (the controller settled). */
export async function quiet(lastRequestAt: () => number, ms: number, timeoutMs: number): Promise<void> {
  await waitFor(() => performance.now() - lastRequestAt() > ms || undefined, { timeoutMs, intervalMs: 100, what: "simulated engines quiet" });
}
