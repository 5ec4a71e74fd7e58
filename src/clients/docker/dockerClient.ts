/**
 * Builds a dockerode client from a DOCKER_HOST-style address: unix:// (or a
 * path), tcp:// (plain HTTP) or tcp:// with TLS material (HTTPS with a client
 * certificate, as `docker --tlsverify` with DOCKER_CERT_PATH).
 */
import type Docker from "dockerode";
import { Agent } from "node:https";
import { createRequire, Module } from "node:module";
import type { DockerTls } from "../../config/config.js";

/**
 * dockerode, when first required, loads its BuildKit session support (@grpc/grpc-js,
 * @grpc/proto-loader, protobufjs, uuid) and docker-modem its ssh:// transport (ssh2): modules
 * dockbind never runs (it builds no image and takes no ssh:// address), loaded by every
 * controller and CLI start. Before dockerode is required, those two files are entered in
 * require.cache as modules whose export throws when called. A dockerode whose files moved simply
 * loads in full.
 */
function loadDockerode(): typeof Docker {
  const require = createRequire(import.meta.url);
  const fromDockerode = createRequire(require.resolve("dockerode"));
  const unused: readonly [string, string][] = [
    ["dockerode/lib/session.js", "BuildKit sessions (image builds)"],
    ["docker-modem/lib/ssh.js", "ssh:// Docker hosts"],
  ];
  for (const [file, what] of unused) {
    let path: string;
    try {
      path = fromDockerode.resolve(file);
    } catch {
      continue;
    }
    const stub = new Module(path);
    stub.filename = path;
    stub.loaded = true;
    stub.exports = (): never => {
      throw new Error(`dockbind does not load dockerode's ${what}`);
    };
    require.cache[path] = stub;
  }
  return require("dockerode") as typeof Docker;
}

const DockerClient = loadDockerode();

export function dockerClient(dockerHost: string, tls?: DockerTls): Docker {
  if (dockerHost.startsWith("unix://")) return new DockerClient({ socketPath: dockerHost.slice("unix://".length) });
  if (dockerHost.startsWith("/")) return new DockerClient({ socketPath: dockerHost });
  const url = new URL(dockerHost.replace(/^tcp:/, "http:"));
  if (tls === undefined) return new DockerClient({ host: url.hostname, port: Number(url.port || "2375"), protocol: "http" });
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
  return new DockerClient(options);
}
