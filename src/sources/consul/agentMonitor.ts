/**
 * Consul agent liveness monitor. Polls the cheapest ACL-free
 * endpoint (`/v1/status/leader`) every `intervalMs` and calls `onRecovered`
 * when the agent answers with a leader again after at least one failed (or
 * leaderless) probe.
 *
 * Why: a dev agent (or any agent that lost its state) comes back with NO
 * registrations. Without this, registrations would only be re-asserted at the
 * next full resync (30 s by default); with it, every owned registration is
 * re-asserted within about one interval of the agent answering. A re-assert
 * of converged registrations costs reads only (zero writes), so a false
 * positive (a network blip) is harmless.
 */
import { isAborted, sleep } from "../../runtime/backoff.js";
import { errorMessage, type Logger } from "../../runtime/logger.js";
import type { ConsulApi } from "../../ports/consul.js";

export interface AgentMonitorOptions {
  readonly consul: Pick<ConsulApi, "leader">;
  readonly logger: Logger;
  readonly intervalMs: number;
  readonly onRecovered: () => void;
}

/** Runs until `signal` aborts. Never rejects. */
export async function monitorAgent(opts: AgentMonitorOptions, signal: AbortSignal): Promise<void> {
  let down = false;
  while (!isAborted(signal)) {
    let ok = false;
    let error = "no leader";
    try {
      ok = (await opts.consul.leader()) !== "";
    } catch (err) {
      error = errorMessage(err);
    }
    if (isAborted(signal)) return;
    if (!ok && !down) {
      down = true;
      opts.logger.warn("consul agent unreachable", { error });
    } else if (ok && down) {
      down = false;
      opts.logger.info("consul agent answering again; re-asserting every registration");
      opts.onRecovered();
    }
    await sleep(opts.intervalMs, signal);
  }
}
