/**
 * Consul connection options from the config: every agent (failover order),
 * the ACL token and TLS material. The one place that maps Config -> client, so
 * the controller, Kubernetes finalizer and `plan` all get failover and TLS.
 * `token`, when given, is the process's token holder (a rotated
 * --consul-token-file, config/consulToken.ts), read by every request of every
 * client made from it; without it the start-up token is used as is.
 */
import type { ConsulClientOptions } from "../clients/consul/types.js";
import type { ConsulConfig } from "../config/config.js";
import type { ConsulTokenSource } from "../ports/consul.js";

export function consulConnection(c: ConsulConfig, token?: ConsulTokenSource): Pick<ConsulClientOptions, "url" | "urls" | "token" | "tls"> {
  const t = token ?? c.token;
  return {
    url: c.url,
    urls: c.urls,
    ...(t !== undefined ? { token: t } : {}),
    ...(c.tls !== undefined ? { tls: c.tls } : {}),
  };
}
