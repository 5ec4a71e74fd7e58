import type { LoadBalancerKind } from "../../domain/types.js";

/** What a check of the live configuration learned. */
export interface LiveConfig {
  /** Every configuration file the LB loaded, as absolute paths; absent when the LB does not report them. */
  readonly files?: ReadonlySet<string>;
}

/**
 * What the config writer needs from a load balancer. All methods are async,
 * spawn the LB binary (blocking on it up to the driver's timeout), have no
 * effect on files, and reject with LbError on failure.
 */
export interface LoadBalancerDriver {
  readonly kind: LoadBalancerKind;
  /**
   * Check one generated snippet on its own, isolated from the live config.
   * Read-only w.r.t. live state; idempotent. Rejects LbError("ValidationFailed").
   */
  validateCandidate(candidatePath: string): Promise<void>;
  /**
   * Check the full live config (all included files). Idempotent. Rejects LbError("ValidationFailed").
   * Resolves with the files it loaded when the LB reports them (nginx -T), so a generated file
   * nothing includes is found.
   */
  validateLive(): Promise<LiveConfig>;
  /**
   * Ask the running LB to reload its config and confirm it took effect. Idempotent.
   * Rejects LbError("ReloadFailed") when the reload could not be asked for, and
   * LbError("ReloadRejected") when the LB kept its previous configuration.
   */
  reload(): Promise<void>;
}
