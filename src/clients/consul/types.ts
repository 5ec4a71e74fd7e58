/**
 * The error and the options of the real client (client.ts). The surface it
 * implements (ConsulApi, ConsulCluster, ConsulLocking) is in ports/consul.ts.
 * Every method rejects with ConsulError; `reason` maps to status-condition
 * reasons.
 */
import type { ConsulObserver, ConsulTokenSource } from "../../ports/consul.js";

export class ConsulError extends Error {
  constructor(
    readonly reason: "ConsulUnavailable" | "ConsulRejected",
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ConsulError";
  }
}

/** PEM texts for HTTPS to Consul (CONSUL_CACERT, CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY). */
export interface ConsulTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export interface ConsulClientOptions {
  /** e.g. http://127.0.0.1:8500; the first agent when `urls` is given too. */
  readonly url: string;
  /** Every agent, in failover order (default: [url]). */
  readonly urls?: readonly string[];
  /** A fixed token, or a source read per request (a rotated token file). */
  readonly token?: string | ConsulTokenSource;
  /** Used for https:// agents. */
  readonly tls?: ConsulTls;
  /** Called after calls moved to another agent (from, to: base URLs). Must not throw. */
  readonly onFailover?: (from: string, to: string) => void;
  /** Called when a call got no HTTP answer from any agent (refused, reset, timeout, TLS failure), with its error message; a 5xx is an answer and does not call it. Must not throw. */
  readonly onUnreachable?: (error: string) => void;
  readonly timeoutMs?: number;
  readonly observer?: ConsulObserver;
  /** Max connections to one agent (default 32); requests beyond it wait for a free one. */
  readonly maxSockets?: number;
}
