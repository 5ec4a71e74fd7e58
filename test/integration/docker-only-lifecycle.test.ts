/**
 * Issue #2 acceptance: registrator compatibility, binding deletion and
 * "Docker unreachable is not no containers", on real dockerd/Consul/nginx.
 * The containers run on a private engine of its own (test/support/extraDockerd.ts):
 * registrator-compat registers every published container of its engine.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startExtraDockerd, type ExtraDockerd } from "../support/extraDockerd.js";
import { startSocketProxy, type SocketProxy } from "../support/socketProxy.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

let world: World;
let engine: ExtraDockerd;
let docker: SocketProxy;

before(async () => {
  world = await startWorld("lifecycle");
  engine = await startExtraDockerd({ name: "lifecyc", bridgeCidr: "172.31.248.1/24" });
  docker = await startSocketProxy(join(world.bindingsDir, "..", `docker-lifecycle-${process.pid}.sock`), engine.socket);
  await world.startController(["--registrator-compat", "--docker-host", `unix://${docker.path}`]);
});

after(async () => {
  await world.controller?.stop();
  await docker.cut();
  await world.proxy.close();
  await cleanupAll();
  await engine.stop();
});

describe("registrator compatibility", () => {
  it("registers a container from registrator's SERVICE_* labels and env without any binding file", async () => {
    const c = await engine.runBackend({
      name: "lifecycle-compat",
      labels: { SERVICE_NAME: "legacy-web", SERVICE_TAGS: "blue,v1" },
      env: { NAME: "compat", SERVICE_CHECK_HTTP: "/health/", SERVICE_CHECK_INTERVAL: "1s" },
    });
    const entry = await waitFor(async () => (await world.health("legacy-web")).find((e) => e.status === "passing"), {
      timeoutMs: 20_000,
      what: "legacy-web passing in Consul",
    });
    assert.equal(entry.id, "lifecycle:lifecycle-compat:80");
    assert.equal(entry.port, c.hostPort);
    assert.equal(entry.meta.dockbind_binding, "registrator-compat");
    await engine.docker(["stop", c.id], { check: true });
    await waitFor(async () => ((await world.health("legacy-web")).length === 0 ? true : undefined), { timeoutMs: 20_000, what: "legacy-web gone" });
  });

  it("ignores containers with SERVICE_IGNORE", async () => {
    await engine.runBackend({ name: "lifecycle-ignored", labels: { SERVICE_NAME: "ignored-web", SERVICE_IGNORE: "true" }, env: { NAME: "x" } });
    // A container started after it is registered: by then the ignored one has been processed too.
    await engine.runBackend({ name: "lifecycle-after", labels: { SERVICE_NAME: "after-web" }, env: { NAME: "y" } });
    await waitFor(async () => ((await world.health("after-web")).length === 1 ? true : undefined), { timeoutMs: 20_000, what: "after-web registered" });
    assert.equal((await world.health("ignored-web")).length, 0);
  });
});

describe("binding lifecycle", () => {
  it("deleting a binding file deregisters its instances and removes its generated config", async () => {
    const port = await freePort();
    world.writeFile("gone.yaml", bindingYaml({ name: "gone", service: "gone-web", app: "gone-web", listenPort: port }));
    const only = await engine.runBackend({ name: "lifecycle-gone", labels: { app: "gone-web" }, env: { NAME: "gone" } });
    await waitFor(async () => ((await world.health("gone-web")).length === 1 ? true : undefined), { timeoutMs: 20_000, what: "gone-web registered" });
    await waitFor(() => (world.lbFile("gone.conf")?.includes("upstream") === true ? true : undefined), { timeoutMs: 20_000, what: "gone.conf rendered" });
    await waitFor(async () => ((await world.nginx.get(port)).body === "gone" ? true : undefined), { timeoutMs: 20_000, what: "gone served" });
    // No healthy backend left: never an empty upstream (nginx would reject it); the server answers 503.
    await engine.docker(["stop", only.id], { check: true });
    await waitFor(() => (world.lbFile("gone.conf")?.includes("return 503;") === true ? true : undefined), {
      timeoutMs: 20_000,
      what: "503 placeholder rendered",
    });
    assert.doesNotMatch(world.lbFile("gone.conf") ?? "", /upstream/);
    await waitFor(async () => ((await world.nginx.get(port)).status === 503 ? true : undefined), { timeoutMs: 20_000, what: "nginx answers 503" });
    world.removeFile("gone.yaml");
    await waitFor(async () => ((await world.health("gone-web")).length === 0 ? true : undefined), { timeoutMs: 20_000, what: "gone-web deregistered" });
    await waitFor(() => (world.lbFile("gone.conf") === undefined ? true : undefined), { timeoutMs: 20_000, what: "gone.conf removed" });
  });

  it("never deregisters while Docker is unreachable, and converges after it returns", async () => {
    const controller = world.controller;
    assert.ok(controller);
    world.writeFile("keep.yaml", bindingYaml({ name: "keep", service: "keep-web", app: "keep-web" }));
    const first = await engine.runBackend({ name: "lifecycle-keep-1", labels: { app: "keep-web" }, env: { NAME: "k1" } });
    const second = await engine.runBackend({ name: "lifecycle-keep-2", labels: { app: "keep-web" }, env: { NAME: "k2" } });
    await waitFor(async () => ((await world.health("keep-web")).length === 2 ? true : undefined), { timeoutMs: 20_000, what: "2 keep-web instances" });
    const deregsBefore = world.proxy.writes().filter((w) => w.path.includes("deregister")).length;
    await docker.cut();
    await controller.waitForLog(
      (l) => l.message === "docker unreachable; keeping last known containers" || l.message === "docker event stream ended; reconnecting",
      "docker loss noticed",
    );
    // While Docker is away: one backend dies. Nothing may be deregistered until Docker answers again.
    await engine.docker(["stop", first.id], { check: true });
    // Several failed reconnects (backoff 200, 400, 800 ms): registrar keys are re-checked meanwhile.
    await waitFor(() => (controller.logs().filter((l) => l.message === "docker unreachable; keeping last known containers").length >= 3 ? true : undefined), {
      timeoutMs: 20_000,
      what: "3 failed reconnects",
    });
    assert.equal(world.proxy.writes().filter((w) => w.path.includes("deregister")).length, deregsBefore, "no deregistration while Docker is unreachable");
    assert.equal((await world.health("keep-web")).length, 2);
    await docker.restore();
    await waitFor(
      async () => {
        const ids = (await world.health("keep-web")).map((e) => e.meta.dockbind_container);
        return ids.length === 1 && ids[0] === second.id ? true : undefined;
      },
      { timeoutMs: 30_000, what: "dead backend removed after Docker returned" },
    );
  });
});
