/** Builds a dockerode client from a DOCKER_HOST-style address (unix:// or tcp://). */
import Docker from "dockerode";

export function dockerClient(dockerHost: string): Docker {
  if (dockerHost.startsWith("unix://")) return new Docker({ socketPath: dockerHost.slice("unix://".length) });
  if (dockerHost.startsWith("/")) return new Docker({ socketPath: dockerHost });
  const url = new URL(dockerHost.replace(/^tcp:/, "http:"));
  return new Docker({ host: url.hostname, port: Number(url.port || "2375"), protocol: "http" });
}
