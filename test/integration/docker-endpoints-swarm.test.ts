/**
 * Issue #3 item 6, Swarm: two Docker endpoints of one controller that are both
 * managers of the SAME real swarm (here the shared single-node swarm, reached
 * once over its unix socket as node sw-a and once over tcp+TLS as node sw-b).
 * The swarm is served through the first endpoint only: every running task is
 * registered exactly once (under sw-a), scaling keeps it that way, and the
 * binding's status counts are the tasks', not twice the tasks'.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { controllerGet } from "../support/controllerHttp.js";
import { ensureSwarm, finishSwarm } from "../support/dockerd.js";
import { run } from "../support/exec.js";
import { ensureBackendImage } from "../support/image.js";
import { cleanupAll } from "../support/teardown.js";
import { startTlsDockerEndpoint, type TlsDockerEndpoint } from "../support/tlsDockerProxy.js";
import { freePort, waitFor } from "../support/wait.js";
import { startWorld, type World } from "../support/world.js";

const SERVICE = `dockbind-epsw-${process.pid}`;
const CONSUL_SERVICE = "epsw-web";
let world: World;
let tls: TlsDockerEndpoint;
let initialisedSwarm = false;

async function runningTaskCount(): Promise<number> {
  const ids = (await run("docker", ["service", "ps", "-q", "--filter", "desired-state=running", SERVICE], { check: true })).stdout.split("\n").filter(Boolean);
  if (ids.length === 0) return 0;
  const states = (await run("docker", ["inspect", "-f", "{{.Status.State}}", ...ids], { check: true })).stdout.split("\n").filter(Boolean);
  return states.filter((s) => s === "running").length;
}

/** Waits until `n` tasks run and Consul holds exactly `n` passing instances; returns their owner nodes. */
async function registeredOnce(n: number): Promise<string[]> {
  await waitFor(async () => ((await runningTaskCount()) === n ? true : undefined), { timeoutMs: 60_000, what: `${n} running tasks` });
  return waitFor(
    async () => {
      const h = await world.health(CONSUL_SERVICE);
      return h.length === n && h.every((e) => e.status === "passing") ? h.map((e) => e.meta.dockbind_node ?? "") : undefined;
    },
    { timeoutMs: 60_000, what: `exactly ${n} passing instances of ${CONSUL_SERVICE}` },
  );
}

before(async () => {
  initialisedSwarm = (await run("docker", ["info", "--format", "{{.Swarm.LocalNodeState}}"], { check: true })).stdout.trim() !== "active";
  await ensureSwarm();
  world = await startWorld("epsw");
  tls = await startTlsDockerEndpoint();
  const port = await freePort();
  world.writeFile(
    "sw.yaml",
    `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata:
  name: sw
spec:
  service:
    name: ${CONSUL_SERVICE}
  backends:
    swarm:
      service: ${SERVICE}
    port: 80
  healthCheck:
    type: http
    path: /health/
    interval: 1s
    timeout: 1s
  loadBalancer:
    listen: {port: ${port}}
    output: sw.conf
`,
  );
  await world.startController([
    "--docker-endpoint",
    "node=sw-a,host=unix:///var/run/docker.sock",
    "--docker-endpoint",
    `node=sw-b,host=${tls.host},cert-path=${tls.certPath}`,
    "--swarm-resync",
    "1s",
  ]);
});

after(async () => {
  await run("docker", ["service", "rm", SERVICE]);
  await world.controller?.stop();
  await tls.close();
  await world.proxy.close();
  await cleanupAll();
  await finishSwarm(SERVICE, initialisedSwarm);
});

describe("two endpoints managing one swarm", () => {
  it("registers each task once, through the first endpoint, across create and scale", async () => {
    await run(
      "docker",
      [
        "service",
        "create",
        "-d",
        "--name",
        SERVICE,
        "--replicas",
        "2",
        "--label",
        "dockbind-test=1",
        "--publish",
        "mode=host,target=80",
        await ensureBackendImage(),
      ],
      { check: true },
    );
    assert.deepEqual(await registeredOnce(2), ["sw-a", "sw-a"]);
    await run("docker", ["service", "scale", "-d", `${SERVICE}=3`], { check: true });
    assert.deepEqual(await registeredOnce(3), ["sw-a", "sw-a", "sw-a"]);
    // sw-b reached the same engine (it is a manager of the swarm too) and still registered nothing.
    assert.ok(tls.stats.authorized > 0, "sw-b connected");
    const c = world.controller;
    assert.ok(c);
    const doc = JSON.parse((await controllerGet(c, "/api/status")).body) as {
      bindings: { key: string; counts: { desired: number; registered: number }; conditions: { type: string; status: string; message: string }[] }[];
    };
    const sw = doc.bindings.find((b) => b.key === "default/sw");
    assert.equal(sw?.counts.registered, 3, "counts are the tasks', not twice the tasks'");
    const registered = sw.conditions.find((x) => x.type === "Registered");
    assert.equal(registered?.status, "True");
    assert.equal(registered.message, "sw-a: 3 instance(s) registered", "sw-b abstains: only the serving endpoint speaks");
    const registers = world.proxy.writes().filter((w) => w.path.startsWith("/v1/agent/service/register"));
    assert.ok(
      registers.some((w) => w.body.includes("dockbind:sw-a:")),
      "sw-a's registrations went through the Consul proxy",
    );
    assert.deepEqual(
      registers.filter((w) => w.body.includes("dockbind:sw-b:")).map((w) => w.path),
      [],
      "sw-b never registered a task in Consul",
    );
  });
});
