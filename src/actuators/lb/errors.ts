/**
 * Typed load-balancer actuator failures. Every LbError leaves the last good
 * config file in place (see configWriter.ts). All are retryable with backoff;
 * ValidationFailed will keep failing until the rendered input changes.
 *
 * - ValidationFailed: `nginx -t` rejected the candidate or the live config
 *   (message carries nginx's trimmed stderr). Nothing was changed.
 * - ReloadFailed: the new file is in place and valid but the reload could not
 *   be asked for (`nginx -s reload` failed, nginx down); the writer keeps a
 *   pending-reload flag and retries on next apply.
 * - ReloadRejected: the load balancer got the reload and kept its previous
 *   configuration (e.g. a listen address taken by another process, which
 *   `nginx -t` tolerates); the writer restores the previous file, so disk
 *   matches what runs and other bindings' reloads are not blocked by it.
 * - WriteFailed: filesystem error while reading/writing/renaming.
 */
export type LbErrorReason = "ValidationFailed" | "ReloadFailed" | "ReloadRejected" | "WriteFailed";

export class LbError extends Error {
  override readonly name = "LbError";
  readonly reason: LbErrorReason;

  constructor(reason: LbErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Pass LbErrors through unchanged; wrap anything else with `reason`. */
export function asLbError(err: unknown, reason: LbErrorReason, context: string): LbError {
  if (err instanceof LbError) return err;
  return new LbError(reason, `${context}: ${errorMessage(err)}`, { cause: err });
}
