/**
 * Consul connection options from the config: every agent (failover order),
 * the ACL token and TLS material. The one place that maps Config -> client, so
 * the controller, Kubernetes finalizer and `plan` all get failover and TLS.
 */
import type { ConsulClientOptions } from "../actuators/consul/consulClient.js";
import type { ConsulConfig } from "../config/config.js";

export function consulConnection(c: ConsulConfig): Pick<ConsulClientOptions, "url" | "urls" | "token" | "tls"> {
  return {
    url: c.url,
    urls: c.urls,
    ...(c.token !== undefined ? { token: c.token } : {}),
    ...(c.tls !== undefined ? { tls: c.tls } : {}),
  };
}
