/**
 * Docker over tcp+TLS (DOCKER_CERT_PATH conventions, used by the Helm chart's
 * docker.tlsSecret): the controller reaches the real dockerd through an
 * endpoint that requires a client certificate, registers and serves.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import Docker from "dockerode";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { dockerClient } from "../../src/clients/docker/dockerClient.js";
import { loadConfig } from "../../src/config/config.js";
import { runBackend } from "../support/docker.js";
import { cleanupAll } from "../support/teardown.js";
import { startTlsDockerEndpoint, type TlsDockerEndpoint } from "../support/tlsDockerProxy.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

let world: World;
let endpoint: TlsDockerEndpoint;

before(async () => {
  world = await startWorld("dockertls");
  endpoint = await startTlsDockerEndpoint();
});

after(async () => {
  await world.controller?.stop();
  await endpoint.close();
  await world.proxy.close();
  await cleanupAll();
});

test("the endpoint refuses a client without a certificate and accepts the controller's TLS client", async () => {
  const port = Number(new URL(endpoint.host.replace("tcp:", "http:")).port);
  // Trusts the CA but presents no client certificate: the endpoint must refuse the handshake.
  const anonymous = new Docker({ host: "127.0.0.1", port, protocol: "https", ca: readFileSync(join(endpoint.certPath, "ca.pem"), "utf8") });
  const refusedBefore = endpoint.stats.refused;
  await assert.rejects(anonymous.ping());
  await waitFor(() => (endpoint.stats.refused > refusedBefore ? true : undefined), { timeoutMs: 5_000, what: "handshake refused by the endpoint" });
  const config = loadConfig(["--docker-only", "--bindings", "/tmp", "--docker-host", endpoint.host, "--docker-cert-path", endpoint.certPath], {});
  const [e] = config.dockerEndpoints;
  assert.ok(e !== undefined && config.dockerEndpoints.length === 1);
  assert.equal(e.tls?.verify, true);
  assert.equal(String(await dockerClient(e.host, e.tls).ping()), "OK");
});

test("the controller registers and serves through Docker over tcp+TLS with a client certificate", async () => {
  const port = await freePort();
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: "tls-web", app: "tls-web", listenPort: port }));
  await world.startController(["--docker-host", endpoint.host, "--docker-cert-path", endpoint.certPath]);
  await runBackend({ name: `tls-web-${process.pid}`, labels: { app: "tls-web" }, env: { NAME: "over-tls" } });
  await waitFor(async () => ((await world.health("tls-web")).filter((e) => e.status === "passing").length === 1 ? true : undefined), {
    timeoutMs: 30_000,
    what: "registered through the TLS endpoint",
  });
  await waitFor(async () => ((await world.nginx.get(port)).body === "over-tls" ? true : undefined), { timeoutMs: 20_000, what: "served" });
  assert.ok(endpoint.stats.authorized > 0, "the controller connected with a verified client certificate");
});
