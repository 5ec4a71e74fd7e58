/**
 * Issue #4 (haproxy renderer): the docker-only walkthrough with
 * `loadBalancer.kind: haproxy` against real dockerd, Consul and a real haproxy
 * master (master-worker mode). Same steps as docker-only-scenario.test.ts plus
 * the last-good contract under a broken custom template. Tests run in order
 * and share one world.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { removeContainer, runBackend, stopContainer, type Backend } from "../support/docker.js";
import { startHaproxy, type HaproxyHandle } from "../support/haproxy.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { waitForCondition } from "../support/status.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";
import { waitForReconciles } from "../support/controller.js";

const SERVICE = "hx-web-server";
let world: World;
let haproxy: HaproxyHandle;
let port: number;
const backends: { name: string; backend: Backend }[] = [];

function haproxyBinding(template?: string, method = "round_robin"): string {
  return bindingYaml({
    name: "web",
    service: SERVICE,
    app: "hx-web",
    extraSpec: `  loadBalancer:
    kind: haproxy
    listen: {port: ${port}}
    output: web.cfg
    method: ${method}
${template !== undefined ? `    template: ${template}\n` : ""}`,
  });
}

/** The generated haproxy file, or undefined when absent. */
function cfg(): string | undefined {
  try {
    return readFileSync(join(haproxy.confDir, "web.cfg"), "utf8");
  } catch {
    return undefined;
  }
}

/** Waits until haproxy answers with exactly the given set of page names (round-robin covers all). */
async function servedSet(expected: readonly string[], timeoutMs = 20_000): Promise<void> {
  const want = [...expected].sort().join(",");
  await waitFor(
    async () => {
      const bodies = await world.sample(port, expected.length * 3);
      const got = [...new Set(bodies)].sort().join(",");
      return got === want ? true : undefined;
    },
    { timeoutMs, what: `haproxy serving exactly [${want}]` },
  );
}

async function passingIds(): Promise<string[]> {
  return (await world.health(SERVICE)).filter((e) => e.status === "passing").map((e) => e.id);
}

before(async () => {
  [world, haproxy] = await Promise.all([startWorld("hxscenario"), startHaproxy()]);
  port = await freePort();
  world.writeFile("web.yaml", haproxyBinding());
  await world.startController(haproxy.controllerArgs);
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("haproxy walkthrough", () => {
  it("answers 503 from the frontend while no backend passes (never an empty backend)", async () => {
    await waitFor(() => cfg()?.includes("http-request return status 503") === true || undefined, { timeoutMs: 20_000, what: "503 frontend rendered" });
    assert.doesNotMatch(cfg() ?? "", /^backend /m);
    await waitFor(async () => (await haproxy.get(port)).status === 503 || undefined, { timeoutMs: 10_000, what: "haproxy answering 503" });
  });

  it("registers each started container and round-robins across all of them through haproxy", async () => {
    for (let i = 1; i <= 4; i++) {
      const name = `hx0${i <= 2 ? 1 : 2}:8${i}`;
      const backend = await runBackend({ name: `hx-web-${i}-${process.pid}`, labels: { app: "hx-web" }, env: { NAME: name } });
      backends.push({ name, backend });
      await waitFor(async () => ((await passingIds()).length === i ? true : undefined), { timeoutMs: 20_000, what: `${i} passing instances in Consul` });
      await servedSet(backends.map((b) => b.name));
    }
    const text = cfg() ?? "";
    assert.match(text, /^\s+balance roundrobin$/m);
    assert.equal(text.match(/^\s+server srv_/gm)?.length, 4);
    // Round-robin: once no reload is in flight, 8 requests over 4 backends hit each exactly twice.
    await haproxy.settled();
    const bodies = await world.sample(port, 8);
    for (const b of backends) assert.equal(bodies.filter((x) => x === b.name).length, 2, `round-robin share of ${b.name}`);
  });

  it("removes a stopped container from Consul and the backend while haproxy keeps serving the rest", async () => {
    const gone = backends.shift();
    assert.ok(gone);
    await stopContainer(gone.backend.id);
    await waitFor(async () => ((await world.health(SERVICE)).length === 3 ? true : undefined), { timeoutMs: 20_000, what: "3 instances in Consul" });
    // haproxy redispatches a refused connection, so the bodies alone do not prove the server line is gone.
    await waitFor(() => (new RegExp(`:${gone.backend.hostPort ?? -1}\\b`).test(cfg() ?? "") ? undefined : true), {
      timeoutMs: 20_000,
      what: "stopped backend gone from web.cfg",
    });
    await servedSet(backends.map((b) => b.name));
  });

  it("registers a container whose health check fails but keeps it out of the backend", async () => {
    const bad = await runBackend({ name: `hx-web-bad-${process.pid}`, labels: { app: "hx-web" }, env: { NAME: "bad", FAIL_HEALTH: "1" } });
    const badPort = bad.hostPort;
    assert.ok(badPort !== undefined);
    await waitFor(async () => (await world.health(SERVICE)).find((e) => e.port === badPort && e.status === "critical"), {
      timeoutMs: 20_000,
      what: "failing backend registered as critical",
    });
    await servedSet(backends.map((b) => b.name));
    assert.ok(!(await world.sample(port, 12)).includes("bad"), "the failing backend must never be served");
    assert.doesNotMatch(cfg() ?? "", new RegExp(`:${badPort}\\b`));
  });

  it("restarting the controller makes zero Consul writes and zero haproxy reloads", async () => {
    const controller = world.controller;
    assert.ok(controller);
    await controller.stop();
    const writesBefore = world.proxy.writes().length;
    const reloadsBefore = haproxy.reloadCount();
    const fileBefore = cfg();
    const next = await world.startController([...haproxy.controllerArgs, "--log-level", "debug"]);
    await waitForReconciles(next, "default/web", 3);
    assert.deepEqual(world.proxy.writes().slice(writesBefore), [], "Consul writes after restart");
    assert.equal(haproxy.reloadCount(), reloadsBefore, "haproxy reloads after restart");
    assert.equal(cfg(), fileBefore);
  });

  it("keeps the last good config when haproxy -c rejects a render, reports it, and recovers", async () => {
    const controller = world.controller;
    assert.ok(controller);
    const fileBefore = cfg();
    assert.ok(fileBefore !== undefined);
    const reloadsBefore = haproxy.reloadCount();
    writeFileSync(join(world.bindingsDir, "broken.tmpl"), "frontend {{frontend}}\n    bind {{listenAddress}}:{{listenPort}}\n    no_such_keyword on\n");
    world.writeFile("web.yaml", haproxyBinding("broken.tmpl"));
    const degraded = await waitForCondition(
      controller,
      "default/web",
      "Degraded",
      (c) => c.status === "True" && c.reason === "ValidationFailed",
      "default/web Degraded (ValidationFailed)",
    );
    assert.match(degraded.message, /no_such_keyword/);
    assert.equal(cfg(), fileBefore, "last good config kept byte for byte");
    assert.equal(haproxy.reloadCount(), reloadsBefore, "no reload of a rejected config");
    await servedSet(backends.map((b) => b.name));
    // A valid custom template goes live without operator action.
    writeFileSync(
      join(world.bindingsDir, "broken.tmpl"),
      "# custom-template-ok\nfrontend {{frontend}}\n    bind {{listenAddress}}:{{listenPort}}\n{{#hasServers}}    default_backend {{backend}}\n" +
        "backend {{backend}}\n    balance {{balance}}\n{{#servers}}    server {{name}} {{address}}:{{port}}\n{{/servers}}{{/hasServers}}" +
        "{{#noServers}}    http-request return status 503\n{{/noServers}}",
    );
    await waitFor(() => (cfg()?.includes("# custom-template-ok") === true ? true : undefined), { timeoutMs: 30_000, what: "custom template rendered" });
    await waitFor(() => (haproxy.reloadCount() > reloadsBefore ? true : undefined), { timeoutMs: 10_000, what: "reload after recovery" });
    await waitForCondition(controller, "default/web", "Degraded", (c) => c.status === "False", "default/web no longer Degraded");
    await servedSet(backends.map((b) => b.name));
    world.writeFile("web.yaml", haproxyBinding());
    await waitFor(() => (cfg() === fileBefore ? true : undefined), { timeoutMs: 20_000, what: "default template restored" });
  });

  // Backends are never killed under load here: a request cut by a killed backend is the drain
  // problem (docker stop before Consul knows), not a reload problem.
  it("reloads gracefully: no failed request across reloads under load (backend joins, balance changes)", async () => {
    const reloadsBefore = haproxy.reloadCount();
    const state = { stop: false };
    const results: string[] = [];
    const load = (async () => {
      while (!state.stop) {
        const r = await haproxy.get(port).catch((err: unknown) => ({ status: 0, body: String(err) }));
        results.push(r.status === 200 ? r.body : `HTTP ${r.status} ${r.body.slice(0, 80)}`);
      }
    })();
    const created: string[] = [];
    try {
      const extra = await runBackend({ name: `hx-web-extra-${process.pid}`, labels: { app: "hx-web" }, env: { NAME: "extra" } });
      created.push(extra.id);
      await servedSet([...backends.map((b) => b.name), "extra"]);
      world.writeFile("web.yaml", haproxyBinding(undefined, "least_conn"));
      await waitFor(() => (/^\s+balance leastconn$/m.test(cfg() ?? "") ? true : undefined), { timeoutMs: 20_000, what: "balance leastconn rendered" });
      world.writeFile("web.yaml", haproxyBinding());
      await waitFor(() => (/^\s+balance roundrobin$/m.test(cfg() ?? "") ? true : undefined), { timeoutMs: 20_000, what: "balance roundrobin rendered" });
      await waitFor(() => (haproxy.reloadCount() >= reloadsBefore + 3 ? true : undefined), { timeoutMs: 10_000, what: "three reloads under load" });
      await haproxy.settled();
      await servedSet([...backends.map((b) => b.name), "extra"]);
    } finally {
      // Never leave the load loop running when an assertion above fails.
      state.stop = true;
      await load;
    }
    for (const id of created) await removeContainer(id);
    const failed = results.filter((r) => r.startsWith("HTTP "));
    assert.ok(results.length > 50, `enough requests under load (${results.length})`);
    assert.deepEqual(failed, [], `failed requests out of ${results.length}`);
  });
});
