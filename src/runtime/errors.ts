/**
 * Typed reconcile errors. `reason` is a CamelCase string that maps 1:1 to a
 * status-condition reason; `terminal` errors are counted and not retried
 * (retrying cannot fix them: the input must change, which re-queues the key).
 */
export class ReconcileError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    readonly terminal = false,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ReconcileError";
  }
}

export function reasonOf(err: unknown): string {
  if (err instanceof ReconcileError) return err.reason;
  if (err !== null && typeof err === "object" && "reason" in err && typeof err.reason === "string") return err.reason;
  return "InternalError";
}

export function isTerminal(err: unknown): boolean {
  return err instanceof ReconcileError && err.terminal;
}

/**
 * The longest retry delay `err` allows, when it says (a numeric `retryCapMs`
 * property): failures that clear outside the controller (disk space freed, a
 * file system remounted read-write) are retried at least that often, so
 * recovery is seen within that bound however long the failure lasted.
 */
export function retryCapOf(err: unknown): number | undefined {
  if (err !== null && typeof err === "object" && "retryCapMs" in err && typeof err.retryCapMs === "number") return err.retryCapMs;
  return undefined;
}
