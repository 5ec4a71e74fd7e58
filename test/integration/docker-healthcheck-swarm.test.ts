/**
 * healthCheck.type docker for Swarm task containers, on a real single-node
 * swarm with Consul and nginx: a replicated service whose HEALTHCHECK is
 * `test ! -f /down` (every 1 s). Its task is registered with a Consul TTL check
 * the controller sets from the task container's Docker health, and served;
 * creating /down in the task makes Docker report it unhealthy, and within 1 s
 * of that event the generated nginx file no longer holds it (Swarm then
 * replaces the task; the new one is served once healthy).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { ensureSwarm, finishSwarm } from "../support/dockerd.js";
import { run } from "../support/exec.js";
import { httpGet } from "../support/http.js";
import { ensureBackendImage } from "../support/image.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { startWorld, type World } from "../support/world.js";

const SERVICE = `dockbind-hc-swarm-${process.pid}`;
const CONSUL_SERVICE = "hc-swarm";
let world: World;
let port: number;
let initialisedSwarm = false;
let events: ChildProcess;
const seen: { id: string; action: string; atMs: number }[] = [];

/** The running task's container ID and hostname (= the body it answers). */
async function runningTask(): Promise<{ containerId: string; body: string } | undefined> {
  const ids = (await run("docker", ["ps", "-q", "--no-trunc", "--filter", `label=com.docker.swarm.service.name=${SERVICE}`], { check: true })).stdout
    .split("\n")
    .filter(Boolean);
  if (ids.length !== 1 || ids[0] === undefined) return undefined;
  const body = (await run("docker", ["inspect", "-f", "{{.Config.Hostname}}", ids[0]], { check: true })).stdout.trim();
  return { containerId: ids[0], body };
}

before(async () => {
  initialisedSwarm = (await run("docker", ["info", "--format", "{{.Swarm.LocalNodeState}}"], { check: true })).stdout.trim() !== "active";
  await ensureSwarm();
  await ensureBackendImage();
  world = await startWorld("dockerhc-swarm");
  port = await freePort();
  events = spawn("docker", ["events", "--filter", `label=com.docker.swarm.service.name=${SERVICE}`, "--format", "{{json .}}"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  assert.ok(events.stdout);
  createInterface({ input: events.stdout }).on("line", (line) => {
    const e = JSON.parse(line) as { Action?: string; Actor?: { ID?: string }; timeNano?: number };
    if (e.Action?.startsWith("health_status") === true && e.Actor?.ID !== undefined)
      seen.push({ id: e.Actor.ID, action: e.Action, atMs: (e.timeNano ?? 0) / 1e6 });
  });
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
    type: docker
    ttl: 3s
  loadBalancer:
    listen: {port: ${port}}
    output: sw.conf
`,
  );
  await world.startController(["--swarm-resync", "2s"]);
});

after(async () => {
  events.kill();
  await run("docker", ["service", "rm", SERVICE]);
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
  await finishSwarm(SERVICE, initialisedSwarm);
});

describe("healthCheck.type docker: Swarm task containers", () => {
  it("a task is registered with a TTL check set from its container's health; unhealthy -> out of nginx within 1 s", async () => {
    await run(
      "docker",
      [
        "service",
        "create",
        "-d",
        "--name",
        SERVICE,
        "--label",
        "dockbind-test=1",
        "--publish",
        "mode=host,target=80",
        "--health-cmd",
        "test ! -f /down",
        "--health-interval",
        "1s",
        "--health-timeout",
        "10s",
        "--health-retries",
        "1",
        await ensureBackendImage(),
      ],
      { check: true },
    );
    const task = await waitFor(
      async () => {
        const t = await runningTask();
        return t !== undefined && (await world.sample(port, 2)).includes(t.body) ? t : undefined;
      },
      { timeoutMs: 60_000, what: "the task served through nginx" },
    );
    const res = await httpGet(`${world.consul.url}/v1/health/service/${CONSUL_SERVICE}`);
    const checks = (JSON.parse(res.body) as { Checks: { ServiceID: string; Type: string; Status: string }[] }[]).flatMap((e) =>
      e.Checks.filter((c) => c.ServiceID !== ""),
    );
    assert.deepEqual(
      checks.map((c) => [c.Type, c.Status]),
      [["ttl", "passing"]],
    );
    const oldPort = (await world.health(CONSUL_SERVICE))[0]?.port;
    assert.ok(oldPort !== undefined && world.lbFile("sw.conf")?.includes(`127.0.0.1:${oldPort}`) === true);

    // The reload that added the task may still be in flight (an older worker answering from the empty upstream).
    await world.nginx.settled();
    const samples: { t: number; body: string }[] = [];
    const state = { running: true };
    const loop = (async () => {
      while (state.running) {
        const t = Date.now();
        const r = await world.nginx.get(port).catch(() => ({ status: 0, body: "" }));
        samples.push({ t, body: r.status === 200 ? r.body : `HTTP ${r.status}` });
      }
    })();
    try {
      // Served steadily for 1.5 s first: the reload that added the task is then older than --min-reload-interval
      // (1 s), so the removal measured below is not paced behind it.
      const steadyFrom = Date.now();
      await waitFor(() => (samples.some((x) => x.t > steadyFrom + 1500) ? true : undefined), { timeoutMs: 10_000, what: "1.5 s of samples" });
      const others = samples.filter((x) => x.body !== task.body).map((x) => `${x.t - steadyFrom} ms: ${x.body}`);
      assert.deepEqual(others, [], `every answer in the steady window comes from the task ${task.body}`);
      const tDown = Date.now();
      await run("docker", ["exec", task.containerId, "sh", "-c", "echo down > /down"], { check: true });
      const unhealthy = await waitFor(() => seen.find((e) => e.id === task.containerId && e.action === "health_status: unhealthy" && e.atMs >= tDown), {
        timeoutMs: 15_000,
        what: "health_status: unhealthy of the task container",
      });
      // The task's own answers stop when Swarm kills it; what the controller does is the generated file.
      await waitFor(() => (world.lbFile("sw.conf")?.includes(`127.0.0.1:${oldPort}`) === true ? undefined : true), {
        timeoutMs: 10_000,
        intervalMs: 5,
        what: "the task out of sw.conf",
      });
      const outMs = Math.max(0, Date.now() - unhealthy.atMs);
      console.log(`docker health (swarm): unhealthy event -> the task out of the generated nginx file ${outMs.toFixed(0)} ms`);
      assert.ok(outMs <= 1000, `out of nginx ${outMs.toFixed(0)} ms after the unhealthy event`);
      const replaced = await waitFor(
        async () => {
          const t = await runningTask();
          return t !== undefined && t.containerId !== task.containerId && samples.some((s) => s.body === t.body) ? t : undefined;
        },
        { timeoutMs: 60_000, what: "Swarm's replacement task served" },
      );
      assert.notEqual(replaced.body, task.body);
    } finally {
      state.running = false;
      await loop;
    }
  });
});
