/**
 * Issue #2 acceptance: the classic registrator + consul-template + nginx
 * walkthrough against real dockerd, Consul and nginx, with the controller as
 * a child process. Tests run in order and share one world.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { runBackend, stopContainer, type Backend } from "../support/docker.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";
import { waitForReconciles } from "../support/controller.js";

const SERVICE = "my-web-server";
let world: World;
let port: number;
const backends: { name: string; backend: Backend }[] = [];

/** Waits until nginx answers with exactly the given set of page names (round-robin covers all). */
async function servedSet(expected: readonly string[], timeoutMs = 20_000): Promise<void> {
  const want = [...expected].sort().join(",");
  await waitFor(
    async () => {
      const bodies = await world.sample(port, expected.length * 3);
      const got = [...new Set(bodies)].sort().join(",");
      return got === want ? true : undefined;
    },
    { timeoutMs, what: `nginx serving exactly [${want}]` },
  );
}

/**
 * Waits until the generated upstream lists exactly the passing instances in
 * Consul. (Serving alone is not proof: proxy_next_upstream hides a dead server,
 * and reloads are rate-limited, so the file may trail Consul briefly.)
 */
async function fileConverged(): Promise<void> {
  await waitFor(
    async () => {
      const want = (await world.health(SERVICE))
        .filter((e) => e.status === "passing")
        .map((e) => e.port)
        .sort()
        .join(",");
      const got = [...(world.lbFile("web.conf") ?? "").matchAll(/server 127\.0\.0\.1:(\d+);/g)]
        .map((m) => Number(m[1]))
        .sort()
        .join(",");
      return got === want ? true : undefined;
    },
    { timeoutMs: 20_000, what: "generated upstream equals passing instances" },
  );
}

async function passingIds(): Promise<string[]> {
  return (await world.health(SERVICE)).filter((e) => e.status === "passing").map((e) => e.id);
}

before(async () => {
  world = await startWorld("scenario");
  port = await freePort();
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: SERVICE, app: "scenario-web", listenPort: port }));
  await world.startController();
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("docker-only walkthrough", () => {
  it("registers each started container and round-robins across all of them through nginx", async () => {
    for (let i = 1; i <= 4; i++) {
      const name = `docker0${i <= 2 ? 1 : 2}:8${i}`;
      const backend = await runBackend({ name: `scenario-web-${i}`, labels: { app: "scenario-web" }, env: { NAME: name } });
      backends.push({ name, backend });
      await waitFor(async () => ((await passingIds()).length === i ? true : undefined), { timeoutMs: 20_000, what: `${i} passing instances in Consul` });
      await servedSet(backends.map((b) => b.name));
    }
    const entries = await world.health(SERVICE);
    for (const e of entries) {
      assert.equal(e.address, "127.0.0.1");
      assert.equal(e.meta.dockbind_node, "scenario");
      assert.equal(e.meta.dockbind_binding, "default/web");
    }
    // Round-robin: once no reload is in flight, 8 requests over 4 backends hit each exactly twice.
    await world.nginx.settled();
    const bodies = await world.sample(port, 8);
    for (const b of backends) assert.equal(bodies.filter((x) => x === b.name).length, 2, `round-robin share of ${b.name}`);
  });

  it("removes a stopped container from Consul and the upstream while nginx keeps serving the rest", async () => {
    const gone = backends.shift();
    assert.ok(gone);
    await stopContainer(gone.backend.id);
    await waitFor(async () => ((await world.health(SERVICE)).length === 3 ? true : undefined), { timeoutMs: 20_000, what: "3 instances in Consul" });
    await servedSet(backends.map((b) => b.name));
    await fileConverged();
    assert.doesNotMatch(world.lbFile("web.conf") ?? "", new RegExp(`:${gone.backend.hostPort ?? -1};`));
  });

  it("registers a container whose health check fails but keeps it out of the upstream", async () => {
    const bad = await runBackend({ name: "scenario-web-bad", labels: { app: "scenario-web" }, env: { NAME: "bad", FAIL_HEALTH: "1" } });
    const badPort = bad.hostPort;
    assert.ok(badPort !== undefined);
    const entry = await waitFor(async () => (await world.health(SERVICE)).find((e) => e.port === badPort && e.status === "critical"), {
      timeoutMs: 20_000,
      what: "failing backend registered as critical",
    });
    assert.equal(entry.address, "127.0.0.1");
    // Give the renderer every chance to (wrongly) include it: several health changes have been rendered by now.
    await servedSet(backends.map((b) => b.name));
    await fileConverged();
    assert.ok(!(await world.sample(port, 12)).includes("bad"), "the failing backend must never be served");
    assert.doesNotMatch(world.lbFile("web.conf") ?? "", new RegExp(`:${badPort};`));
  });

  it("restarting the controller makes zero Consul writes and zero nginx reloads", async () => {
    const controller = world.controller;
    assert.ok(controller);
    await fileConverged();
    await world.nginx.settled();
    await controller.stop();
    const writesBefore = world.proxy.writes().length;
    const reloadsBefore = await world.nginx.reloadCount();
    const fileBefore = world.lbFile("web.conf");
    const next = await world.startController(["--log-level", "debug"]);
    // Converged means: several full reconciles of both loops happened (resync is 2 s) and wrote nothing.
    await waitForReconciles(next, "default/web", 3);
    assert.deepEqual(world.proxy.writes().slice(writesBefore), [], "Consul writes after restart");
    assert.equal(await world.nginx.reloadCount(), reloadsBefore, "nginx reloads after restart");
    assert.equal(world.lbFile("web.conf"), fileBefore);
    assert.equal((await world.health(SERVICE)).length, 4);
  });
});
