/**
 * Typed load-balancer actuator failures. Every LbError leaves the last good
 * config file in place (see configWriter.ts). All are retryable with backoff;
 * ValidationFailed will keep failing until the rendered input changes.
 *
 * - ValidationFailed: `nginx -t` rejected the candidate or the live config
 *   (message carries nginx's trimmed stderr). Nothing was changed.
 * - ReloadFailed: the new file is in place and valid but the reload could not
 *   be asked for (the master could not be signalled, nginx down); the writer keeps a
 *   pending-reload flag and retries on next apply.
 * - ReloadRejected: the load balancer got the reload and kept its previous
 *   configuration (e.g. a listen address taken by another process, which
 *   `nginx -t` tolerates); the writer restores the previous file, so disk
 *   matches what runs and other bindings' reloads are not blocked by it.
 * - OutputDirFull: the output directory's file system has no space (ENOSPC)
 *   or the quota is exhausted (EDQUOT).
 * - OutputDirReadOnly: the output directory cannot be written: read-only file
 *   system (EROFS) or no permission (EACCES, EPERM).
 * - WriteFailed: any other filesystem error while reading/writing/renaming.
 * - StreamModuleMissing: a `protocol: tcp|udp` file for an nginx without the
 *   stream module (nginx -V, or nginx -t's `unknown directive "stream"`).
 * - NotIncluded: the file is valid and in place, but the live configuration
 *   does not include it (nginx -T lists the files it loaded), so nothing in it
 *   is served; not reloaded, left reload-pending. Fixed outside the controller
 *   (an `include` in nginx.conf): carries `retryCapMs`.
 * The two OutputDir* reasons clear by themselves when the operator frees
 * space or remounts read-write: they carry `retryCapMs` (runtime/errors.ts
 * retryCapOf), so the retry comes at most that long after the fix.
 */
export type LbErrorReason =
  "ValidationFailed" | "ReloadFailed" | "ReloadRejected" | "OutputDirFull" | "OutputDirReadOnly" | "WriteFailed" | "StreamModuleMissing" | "NotIncluded";

/** Longest retry delay of an OutputDirFull / OutputDirReadOnly failure. */
export const OUTPUT_DIR_RETRY_CAP_MS = 2_000;
/** Longest retry delay of a NotIncluded failure (each retry runs the LB's config check). */
export const NOT_INCLUDED_RETRY_CAP_MS = 10_000;

export class LbError extends Error {
  override readonly name = "LbError";
  readonly reason: LbErrorReason;
  /** Set for failures an operator fixes outside the controller (see retryCapOf). */
  readonly retryCapMs?: number;

  constructor(reason: LbErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
    if (reason === "OutputDirFull" || reason === "OutputDirReadOnly") this.retryCapMs = OUTPUT_DIR_RETRY_CAP_MS;
    if (reason === "NotIncluded") this.retryCapMs = NOT_INCLUDED_RETRY_CAP_MS;
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

const FS_REASONS: Readonly<Record<string, LbErrorReason>> = {
  ENOSPC: "OutputDirFull",
  EDQUOT: "OutputDirFull",
  EROFS: "OutputDirReadOnly",
  EACCES: "OutputDirReadOnly",
  EPERM: "OutputDirReadOnly",
};

/** The reason of a filesystem error (its Node `code`): OutputDirFull, OutputDirReadOnly, else WriteFailed. */
export function fsErrorReason(err: unknown): LbErrorReason {
  const code = err !== null && typeof err === "object" && "code" in err && typeof err.code === "string" ? err.code : "";
  return FS_REASONS[code] ?? "WriteFailed";
}
