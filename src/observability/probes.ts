/**
 * /healthz and /readyz logic.
 *
 * - live: the process answers and no worker loop is wedged (LoopMonitor).
 *   Dependencies being down never make the controller un-live (a restart
 *   would not bring Consul or Docker back).
 * - ready: the manager runs, the binding source and the Docker cache are
 *   synced, and the Consul agent answers /v1/status/leader with a leader
 *   (within `consulTimeoutMs`; the answer is cached for `cacheMs`).
 */
import { errorMessage } from "../runtime/logger.js";
import type { Telemetry } from "./telemetry.js";

export interface ProbeCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly message: string;
}

export interface ProbeReport {
  readonly ok: boolean;
  readonly checks: readonly ProbeCheck[];
}

export interface ProbeOptions {
  /** A reconcile running, or a queue stalled, longer than this is a wedge. */
  readonly wedgeAfterMs: number;
  readonly consulTimeoutMs?: number;
  readonly cacheMs?: number;
}

function report(checks: ProbeCheck[]): ProbeReport {
  return { ok: checks.every((c) => c.ok), checks };
}

export class Probes {
  private consulCache: { at: number; check: ProbeCheck } | undefined;

  constructor(
    private readonly t: Telemetry,
    private readonly opts: ProbeOptions,
  ) {}

  live(): ProbeReport {
    const loops = this.t.loops.check(this.opts.wedgeAfterMs);
    return report([{ name: "loops", ok: loops.ok, message: loops.ok ? "no worker loop wedged" : loops.problems.join("; ") }]);
  }

  async ready(): Promise<ProbeReport> {
    const parts = this.t.parts();
    if (parts === undefined) return report([{ name: "manager", ok: false, message: "controller not started" }]);
    const bindings = parts.bindings.synced();
    const docker = parts.containers.synced();
    const behind = parts.endpoints.length > 1 ? parts.endpoints.filter((e) => !e.containers.synced()).map((e) => e.node) : [];
    const dockerWhy =
      behind.length > 0
        ? `Docker endpoint(s) ${behind.join(", ")} not synced (unreachable or first list pending)`
        : "Docker not synced (unreachable or first list pending)";
    return report([
      { name: "bindings", ok: bindings, message: bindings ? "binding source synced" : "binding source not synced yet" },
      { name: "docker", ok: docker, message: docker ? "Docker cache synced" : dockerWhy },
      await this.consul(parts.consul),
    ]);
  }

  private async consul(consul: { leader(): Promise<string> }): Promise<ProbeCheck> {
    const now = Date.now();
    if (this.consulCache !== undefined && now - this.consulCache.at < (this.opts.cacheMs ?? 1000)) return this.consulCache.check;
    let check: ProbeCheck;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeoutMs = this.opts.consulTimeoutMs ?? 2000;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      });
      const leader = await Promise.race([consul.leader(), timeout]);
      const has = leader !== "" && leader !== '""';
      check = { name: "consul", ok: has, message: has ? "Consul agent reachable, cluster has a leader" : "Consul agent reachable but reports no leader" };
    } catch (err) {
      check = { name: "consul", ok: false, message: `Consul unreachable: ${errorMessage(err)}` };
    } finally {
      clearTimeout(timer);
    }
    this.consulCache = { at: Date.now(), check };
    return check;
  }
}
