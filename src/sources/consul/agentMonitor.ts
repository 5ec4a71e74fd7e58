/**
 * Consul agent liveness monitor. Probes the cheapest ACL-free endpoint
 * (`/v1/status/leader`) and calls `onRecovered` when the agent answers with a
 * leader again after it was seen down.
 *
 * Why: a dev agent (or any agent that lost its state) comes back with NO
 * registrations. Without this, registrations would only be re-asserted at the
 * next full resync; with it, every owned registration is re-asserted within
 * about `downIntervalMs` of the agent answering. A re-assert of converged
 * registrations costs reads only (zero writes), so a false positive (a
 * network blip) is harmless.
 *
 * Contract:
 * - "down" is entered by a failed (or leaderless) probe, or by `unreachable()`:
 *   any other Consul call that got no answer from any agent (the health
 *   watcher's blocking queries break the moment the agent dies). That evidence
 *   also wakes the monitor at once;
 * - while up, the agent is probed every `intervalMs` (a fallback for an agent
 *   nothing else talked to); while down, every `downIntervalMs`;
 * - `unreachable()` while already down does nothing: the probe's own failure
 *   reaches it too and must not turn the down cadence into a busy loop.
 */
import { isAborted, Wakeup } from "../../runtime/backoff.js";
import { errorMessage, type Logger } from "../../runtime/logger.js";
import type { ConsulApi } from "../../ports/consul.js";

export interface AgentMonitorOptions {
  readonly consul: Pick<ConsulApi, "leader">;
  readonly logger: Logger;
  /** Probe period while the agent answers. */
  readonly intervalMs: number;
  /** Probe period while it does not (bounds the re-assert delay once it is back). */
  readonly downIntervalMs: number;
  readonly onRecovered: () => void;
}

export class AgentMonitor {
  private down = false;
  private readonly wakeup = new Wakeup();

  constructor(private readonly opts: AgentMonitorOptions) {}

  /** A Consul call got no answer from any agent: the agent counts as down and is probed now. Never throws. */
  unreachable(error: string): void {
    if (this.down) return;
    this.markDown(error);
    this.wakeup.wake();
  }

  /** Runs until `signal` aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    while (!isAborted(signal)) {
      await this.probe();
      if (isAborted(signal)) return;
      await this.wakeup.sleep(this.down ? this.opts.downIntervalMs : this.opts.intervalMs, signal);
    }
  }

  private async probe(): Promise<void> {
    let ok = false;
    let error = "no leader";
    try {
      ok = (await this.opts.consul.leader()) !== "";
    } catch (err) {
      error = errorMessage(err);
    }
    if (!ok) this.markDown(error);
    else if (this.down) {
      this.down = false;
      this.opts.logger.info("consul agent answering again; re-asserting every registration");
      this.opts.onRecovered();
    }
  }

  private markDown(error: string): void {
    if (this.down) return;
    this.down = true;
    this.opts.logger.warn("consul agent unreachable", { error });
  }
}
