/**
 * Issue #4 item 1 on a real single-node swarm: a replicated service of the
 * backend image with host-mode published ports (Docker picks one per task) is
 * selected by service labels; its running tasks are registered in Consul and
 * served through nginx; `docker service scale` to 5 and to 1 is followed.
 * Prints the measured time from `docker service scale` to nginx serving the
 * new set. Scale-down runs under request load: zero failed requests, and the
 * removed tasks leave Consul before their containers die.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ensureBackendImage } from "../support/image.js";
import { ensureSwarm, finishSwarm } from "../support/dockerd.js";
import { run } from "../support/exec.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { startWorld, type World } from "../support/world.js";

const SERVICE = `dockbind-swarm-web-${process.pid}`;
let world: World;
let port: number;
let initialisedSwarm = false;

interface TaskRow {
  readonly id: string;
  readonly containerId: string;
  readonly publishedPort: number;
}

/** Running tasks of the service, from the engine (not from the controller). */
async function runningTasks(): Promise<TaskRow[]> {
  const ids = (await run("docker", ["service", "ps", "-q", "--filter", "desired-state=running", SERVICE], { check: true })).stdout.split("\n").filter(Boolean);
  if (ids.length === 0) return [];
  const out = (
    await run(
      "docker",
      [
        "inspect",
        "-f",
        "{{.ID}} {{.Status.State}} {{.Status.ContainerStatus.ContainerID}} {{range .Status.PortStatus.Ports}}{{.PublishedPort}} {{end}}",
        ...ids,
      ],
      { check: true },
    )
  ).stdout;
  return out
    .split("\n")
    .filter(Boolean)
    .map((l) => l.split(" "))
    .filter((f) => f[1] === "running")
    .map((f) => ({ id: f[0] ?? "", containerId: f[2] ?? "", publishedPort: Number(f[3]) }));
}

/** Hostnames of the task containers (= the body each answers). */
async function bodiesOf(tasks: readonly TaskRow[]): Promise<string[]> {
  const out = (await run("docker", ["inspect", "-f", "{{.Config.Hostname}}", ...tasks.map((t) => t.containerId)], { check: true })).stdout;
  return out.split("\n").filter(Boolean).sort();
}

/** Resolves once `n` tasks run, Consul holds exactly them (passing) and nginx serves exactly their bodies. */
async function converged(n: number): Promise<{ tasksMs: number; consulMs: number; servedMs: number }> {
  const start = Date.now();
  const tasks = await waitFor(
    async () => {
      const t = await runningTasks();
      return t.length === n ? t : undefined;
    },
    { timeoutMs: 30_000, what: `${n} running tasks` },
  );
  const tasksMs = Date.now() - start;
  const wantPorts = tasks.map((t) => t.publishedPort).sort();
  await waitFor(
    async () => {
      const h = await world.health("swarm-web");
      const ports = h
        .filter((e) => e.status === "passing")
        .map((e) => e.port)
        .sort();
      if (h.length === n && JSON.stringify(ports) === JSON.stringify(wantPorts)) return true;
      throw new Error(`want ports ${wantPorts.join(",")}; Consul has ${h.map((e) => `${e.port}:${e.status}`).join(",")}`);
    },
    { timeoutMs: 30_000, what: `Consul: exactly the ${n} running tasks, passing` },
  );
  const consulMs = Date.now() - start;
  const bodies = await bodiesOf(tasks);
  await waitFor(
    async () => {
      const conf = world.lbFile("swarm.conf") ?? "";
      if (!wantPorts.every((p) => conf.includes(`127.0.0.1:${p}`)) || (conf.match(/^\s*server 127\.0\.0\.1:/gm) ?? []).length !== n) return undefined;
      const seen = [...new Set(await world.sample(port, 2 * n + 2))].sort();
      return JSON.stringify(seen) === JSON.stringify(bodies) ? true : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 50, what: `nginx serving exactly the ${n} tasks` },
  );
  return { tasksMs, consulMs, servedMs: Date.now() - start };
}

before(async () => {
  initialisedSwarm = (await run("docker", ["info", "--format", "{{.Swarm.LocalNodeState}}"], { check: true })).stdout.trim() !== "active";
  await ensureSwarm();
  await ensureBackendImage();
  world = await startWorld("swarm");
  port = await freePort();
  world.writeFile(
    "swarm.yaml",
    `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata:
  name: sw
spec:
  service:
    name: swarm-web
    tags: [dockbind-test]
  backends:
    swarm:
      selector:
        matchLabels: {app: swarm-web-${process.pid}}
    port: 80
  healthCheck:
    type: http
    path: /health/
    interval: 1s
    timeout: 1s
  loadBalancer:
    listen: {port: ${port}}
    output: swarm.conf
`,
  );
  await world.startController(["--swarm-resync", "2s", "--drain-delay", "10s"]);
});

after(async () => {
  await run("docker", ["service", "rm", SERVICE]);
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
  await finishSwarm(SERVICE, initialisedSwarm);
});

describe("Swarm services as backends", () => {
  it("3 replicas published in host mode: registered as 3 instances and served through nginx", async () => {
    const t0 = Date.now();
    await run(
      "docker",
      [
        "service",
        "create",
        "-d",
        "--name",
        SERVICE,
        "--replicas",
        "3",
        "--label",
        `app=swarm-web-${process.pid}`,
        "--label",
        "dockbind-test=1",
        // Host mode without a published port: Docker picks a free port per task.
        "--publish",
        "mode=host,target=80",
        // Each task keeps serving 1 s after SIGTERM: scale-down has a real drain window.
        "--env",
        "DRAIN_SECONDS=1",
        "--stop-grace-period",
        "5s",
        await ensureBackendImage(),
      ],
      { check: true },
    );
    const r = await converged(3);
    console.log(`swarm: service create (3 tasks) -> Consul ${r.consulMs} ms, nginx serving the 3 tasks ${Date.now() - t0} ms`);
    const h = await world.health("swarm-web");
    const tasks = await runningTasks();
    assert.deepEqual(h.map((e) => e.id).sort(), tasks.map((t) => `dockbind:swarm:default:sw:${t.id}:80`).sort(), "service IDs are per task");
    assert.ok(h.every((e) => e.address === "127.0.0.1" && e.meta.dockbind_swarm_service === SERVICE));
  });

  it("scale to 5: Consul and nginx follow", async () => {
    const t0 = Date.now();
    await run("docker", ["service", "scale", "-d", `${SERVICE}=5`], { check: true });
    const r = await converged(5);
    console.log(
      `swarm: docker service scale 3->5 -> engine reports 5 running tasks ${r.tasksMs} ms, Consul ${r.consulMs} ms, nginx serving the new set ${r.servedMs} ms (since scale: ${Date.now() - t0} ms)`,
    );
  });

  it("scale to 1 under request load: zero failed requests, removed tasks leave Consul before their containers die", async () => {
    const before = await runningTasks();
    const halt = new AbortController();
    const samples: { status: number }[] = [];
    const loop = (async () => {
      // Bounded: at most 600 requests (~30 s at 20 req/s).
      for (let i = 0; i < 600 && !halt.signal.aborted; i++) {
        const r = await world.nginx.get(port).catch(() => ({ status: 0 }));
        samples.push({ status: r.status });
        await new Promise((res) => setTimeout(res, 50));
      }
    })();
    const t0 = Date.now();
    try {
      await run("docker", ["service", "scale", "-d", `${SERVICE}=1`], { check: true });
      const r = await converged(1);
      console.log(
        `swarm: docker service scale 5->1 -> Consul ${r.consulMs} ms, nginx serving the new set ${r.servedMs} ms (since scale: ${Date.now() - t0} ms)`,
      );
      // Keep the load on until every removed task's container has exited (DRAIN_SECONDS=1 after SIGTERM).
      const remaining = new Set((await runningTasks()).map((t) => t.id));
      for (const t of before.filter((x) => !remaining.has(x.id))) {
        // Scaled-down tasks are removed with their containers: gone counts as stopped.
        await waitFor(async () => (await run("docker", ["inspect", "-f", "{{.State.Running}}", t.containerId])).stdout.trim() !== "true" || undefined, {
          timeoutMs: 20_000,
          what: `task container ${t.containerId.slice(0, 12)} stopped`,
        });
      }
    } finally {
      halt.abort();
      await loop;
    }
    const failed = samples.filter((s) => s.status !== 200);
    console.log(`swarm: scale-down under load: ${samples.length} requests, ${failed.length} failed`);
    assert.deepEqual(failed, [], "no request failed while scaling down");

    const remaining = new Set((await runningTasks()).map((t) => t.id));
    const removed = before.filter((t) => !remaining.has(t.id));
    assert.equal(removed.length, 4);
    const logs = world.controller?.logs() ?? [];
    // The engine's own record of when each container died (the containers themselves are removed).
    const events = await run(
      "docker",
      [
        "events",
        "--since",
        String(Math.floor(t0 / 1000) - 1),
        "--until",
        String(Math.ceil(Date.now() / 1000) + 1),
        "--filter",
        "event=die",
        "--filter",
        `label=com.docker.swarm.service.name=${SERVICE}`,
        "--format",
        "{{.Actor.ID}} {{.TimeNano}}",
      ],
      { check: true },
    );
    const diedAt = new Map(
      events.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => [l.split(" ")[0] ?? "", Number(BigInt(l.split(" ")[1] ?? "0") / 1_000_000n)]),
    );
    for (const t of removed) {
      const died = diedAt.get(t.containerId);
      assert.ok(died !== undefined, `die event of task ${t.id}`);
      const dereg = logs.find((l) => l.message === "deregistered" && String(l.serviceId).includes(t.id));
      assert.ok(dereg, `task ${t.id} deregistered`);
      const deregAt = Date.parse(String(dereg.timestamp));
      assert.ok(deregAt < died, `task ${t.id} left Consul (${String(dereg.timestamp)}) before its container died (${new Date(died).toISOString()})`);
      console.log(`swarm: task ${t.id.slice(0, 12)} deregistered ${died - deregAt} ms before its container died`);
    }
  });
});
