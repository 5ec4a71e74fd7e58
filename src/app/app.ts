/**
 * What both run modes (dockerOnly.ts, kubernetes.ts) take from the process
 * and how their Manager's outcome becomes the process exit code.
 */
import type { ConsulTokenFile } from "../config/consulToken.js";
import type { ManagerOutcome, Runnable } from "../runtime/manager.js";

export interface AppOptions {
  /** The process's rotating token holder (--consul-token-file), shared by every Consul client. */
  readonly consulToken?: ConsulTokenFile;
  /** Runnables of the process (HTTP server, token file follower), added to the Manager before the mode's own. */
  readonly runnables?: readonly Runnable[];
}

/** 0 after a requested stop; 1 when leadership was lost or a runnable failed. */
export function exitCode(outcome: ManagerOutcome): number {
  return outcome === "stopped" ? 0 : 1;
}
