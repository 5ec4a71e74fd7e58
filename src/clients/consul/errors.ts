/**
 * How a failed call of the `consul` package is classified: the HTTP status
 * (when Consul answered at all), whether another agent may do better, and the
 * ConsulError callers see.
 */
import { ConsulError } from "./types.js";

/** The HTTP status of a package error; undefined = no HTTP answer (refused, reset, timeout, TLS failure). */
export function httpStatus(err: unknown): number | undefined {
  return (err as { response?: { statusCode?: number } } | null)?.response?.statusCode;
}

/** No HTTP answer at all, or a server-side failure (500 "No cluster leader"): another agent may do better. */
export function shouldFailOver(err: unknown): boolean {
  const status = httpStatus(err);
  return status === undefined || status >= 500;
}

/** A 4xx is ConsulRejected (retrying will not help), anything else ConsulUnavailable; `what` names the call. */
export function toError(err: unknown, what: string): ConsulError {
  const status = httpStatus(err);
  const msg = err instanceof Error ? err.message : String(err);
  if (status !== undefined && status >= 400 && status < 500) return new ConsulError("ConsulRejected", `${what}: HTTP ${status}: ${msg}`, { cause: err });
  return new ConsulError("ConsulUnavailable", `${what}: ${msg}`, { cause: err });
}
