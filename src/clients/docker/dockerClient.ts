/**
 * Builds a dockerode client from a DOCKER_HOST-style address: unix:// (or a
 * path), tcp:// (plain HTTP) or tcp:// with TLS material (HTTPS with a client
 * certificate, as `docker --tlsverify` with DOCKER_CERT_PATH).
 */
import Docker from "dockerode";
import { Agent } from "node:https";
import type { DockerTls } from "../../config/config.js";

export function dockerClient(dockerHost: string, tls?: DockerTls): Docker {
  if (dockerHost.startsWith("unix://")) return new Docker({ socketPath: dockerHost.slice("unix://".length) });
  if (dockerHost.startsWith("/")) return new Docker({ socketPath: dockerHost });
  const url = new URL(dockerHost.replace(/^tcp:/, "http:"));
  if (tls === undefined) return new Docker({ host: url.hostname, port: Number(url.port || "2375"), protocol: "http" });
  // docker-modem forwards `agent` to https.request (it drops rejectUnauthorized), so the TLS policy lives in the agent.
  const agent = new Agent({ ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: tls.verify, keepAlive: true });
  // @types/dockerode omits `agent`, which docker-modem supports.
  const options: Docker.DockerOptions & { readonly agent: Agent } = {
    host: url.hostname,
    port: Number(url.port || "2376"),
    protocol: "https",
    ca: tls.ca,
    cert: tls.cert,
    key: tls.key,
    agent,
  };
  return new Docker(options);
}
