/**
 * `docker network connect` / `disconnect` change the addresses of a running
 * container without any container event. The Docker source re-reads the
 * container on the network event: against the real engine, a running
 * container connected to the binding's network is registered with its
 * address there, and deregistered when disconnected, long before any
 * periodic resync (5 minutes here) could do it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { containerIp, createTestNetwork, runBackend } from "../support/docker.js";
import { run } from "../support/exec.js";
import { controllerStatus } from "../support/status.js";
import { cleanupAll } from "../support/teardown.js";
import { waitFor } from "../support/wait.js";
import { startWorld, type World } from "../support/world.js";

const NET = `dockbind-netconn-${process.pid}`;
const SERVICE = "netconn-web";
let world: World;

before(async () => {
  world = await startWorld("netconn");
  await createTestNetwork(NET);
  world.writeFile(
    "netconn.yaml",
    `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata:
  name: netconn
spec:
  service:
    name: ${SERVICE}
  backends:
    selector:
      matchLabels: {app: ${SERVICE}}
    port: 80
    addressMode: internal
    network: ${NET}
  healthCheck:
    type: http
    path: /health/
    interval: 1s
    timeout: 1s
`,
  );
  await world.startController(["--resync", "5m"]);
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
  await run("docker", ["network", "rm", NET]);
});

const addresses = async (): Promise<string[]> => (await world.health(SERVICE)).map((e) => e.address).sort();

describe("docker network connect / disconnect", () => {
  it("a running container connected to the binding's network is registered at once with its address there; disconnected, it is deregistered", async () => {
    // On the default bridge only: selected, but without an address on the binding's network.
    const { id } = await runBackend({ name: `netconn-${process.pid}`, labels: { app: SERVICE }, env: { NAME: "n1" }, publish: "none" });
    const synced = Date.now();
    const ctl = world.controller;
    assert.ok(ctl !== undefined);
    const skipped = await waitFor(
      async () =>
        (await controllerStatus(ctl)).bindings
          .find((b) => b.key === "default/netconn")
          ?.backends.find((b) => b.container === id.slice(0, 12) && b.health === "skipped"),
      { timeoutMs: 30_000, intervalMs: 100, what: "the container seen and skipped" },
    );
    assert.match(skipped.reason ?? "", new RegExp(`not attached to network ${NET}`));
    assert.deepEqual(await addresses(), [], "not on the binding's network: nothing registered");

    const connectedAt = Date.now();
    await run("docker", ["network", "connect", NET, id], { check: true });
    const ip = await containerIp(id, NET);
    await waitFor(async () => ((await addresses()).join() === ip ? true : undefined), { timeoutMs: 10_000, intervalMs: 20, what: `registered at ${ip}` });
    const registeredMs = Date.now() - connectedAt;

    const disconnectedAt = Date.now();
    await run("docker", ["network", "disconnect", NET, id], { check: true });
    await waitFor(async () => ((await addresses()).length === 0 ? true : undefined), { timeoutMs: 10_000, intervalMs: 20, what: "deregistered" });
    const deregisteredMs = Date.now() - disconnectedAt;
    assert.ok(Date.now() - synced < 60_000, "all within a minute: no periodic resync (5 m) took part");
    process.stdout.write(`# registered ${String(registeredMs)} ms after connect, deregistered ${String(deregisteredMs)} ms after disconnect\n`);
  });
});
