/**
 * healthCheck.type docker on real dockerd, Consul and nginx: the container's
 * own HEALTHCHECK (`test -f /ok`, every 1 s) decides who gets traffic. Each
 * instance has a Consul TTL check the controller sets from Docker's health on
 * every health_status event and refreshes before its TTL (3 s here) runs out:
 * - removing /ok takes the container out of nginx within 1 s of Docker's
 *   `health_status: unhealthy` event; restoring it brings it back (the
 *   measured times are printed);
 * - a container still `starting` is registered critical (initialStatus) and
 *   never served; one without a HEALTHCHECK is not registered, and the
 *   binding's status says which and why (NoDockerHealthcheck);
 * - at rest, 20 such containers cost no catalog write: the service's
 *   X-Consul-Index stays put for 60 s while the controller refreshes every
 *   check about once a second;
 * - kill -9 of the controller: nobody vouches any more, the checks expire to
 *   critical after their TTL (what a renderer of that service, e.g. another
 *   controller's, then leaves out), and a new controller brings them back.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import type { StatusDocument } from "../../src/observability/statusModel.js";
import { controllerGet } from "../support/controllerHttp.js";
import { runBackend, type Backend } from "../support/docker.js";
import { run } from "../support/exec.js";
import { httpGet } from "../support/http.js";
import { metricSum } from "../support/metrics.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const SERVICE = "hc-web";
const REST_SERVICE = "hc-rest";
const TTL_MS = 3000;
const REST_CONTAINERS = 20;
/**
 * One failed probe makes the container unhealthy. The timeout only matters for a probe that hangs: on
 * a loaded machine `docker exec` of the probe itself can take over a second, which is not the
 * container's fault.
 */
const HEALTHCHECK = ["--health-cmd", "test -f /ok", "--health-interval", "1s", "--health-timeout", "10s", "--health-retries", "1"];
/** For containers that must stay healthy: failures before /ok exists (start period) or a single slow probe do not count. */
const STEADY = ["--health-start-period", "60s", "--health-retries", "5"];

let world: World;
let port: number;
let events: ChildProcess;
const seen: { id: string; action: string; atMs: number }[] = [];

function dockerBinding(name: string, service: string, app: string, listenPort?: number): string {
  const doc = bindingYaml({ name, service, app, check: "docker", ...(listenPort !== undefined ? { listenPort } : {}) }).replace(
    "    timeout: 1s\n",
    `    timeout: 1s\n    ttl: ${TTL_MS / 1000}s\n`,
  );
  assert.match(doc, /ttl: 3s/);
  return doc;
}

/** A backend with the `test -f /ok` HEALTHCHECK; `ok`: /ok is created at once (healthy after the first probe). */
async function healthchecked(name: string, app: string, ok: boolean, extra: readonly string[] = []): Promise<Backend> {
  const b = await runBackend({ name: `${name}-${process.pid}`, labels: { app }, env: { NAME: name }, runArgs: [...HEALTHCHECK, ...extra] });
  if (ok) await run("docker", ["exec", b.id, "sh", "-c", "echo ok > /ok"], { check: true });
  return b;
}

/** The first health_status event `status` of container `id` at or after `sinceMs` (Docker's own timestamp). */
function healthEvent(id: string, status: string, sinceMs: number): Promise<{ atMs: number }> {
  return waitFor(() => seen.find((e) => e.id === id && e.action === `health_status: ${status}` && e.atMs >= sinceMs), {
    timeoutMs: 15_000,
    what: `health_status: ${status} of ${id.slice(0, 12)}`,
  });
}

async function dockerHealth(id: string): Promise<string> {
  return (await run("docker", ["inspect", "-f", "{{.State.Health.Status}}", id], { check: true })).stdout.trim();
}

function upstreamPorts(): number[] {
  return [...(world.lbFile("web.conf") ?? "").matchAll(/server 127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
}

/** Sequential GETs through nginx until stopped: when each started and what answered. */
function sampler(): { samples: { t: number; body: string }[]; stop: () => Promise<void> } {
  const samples: { t: number; body: string }[] = [];
  const state = { running: true };
  const loop = (async () => {
    while (state.running) {
      const t = Date.now();
      const r = await world.nginx.get(port).catch((err: unknown) => ({ status: 0, body: String(err) }));
      samples.push({ t, body: r.status === 200 ? r.body : `HTTP ${r.status}` });
    }
  })();
  return {
    samples,
    stop: async () => {
      state.running = false;
      await loop;
    },
  };
}

async function status(): Promise<StatusDocument> {
  const c = world.controller;
  assert.ok(c);
  return JSON.parse((await controllerGet(c, "/api/status")).body) as StatusDocument;
}

async function restIndex(): Promise<{ index: string; passing: number; checks: string }> {
  const res = await httpGet(`${world.consul.url}/v1/health/service/${REST_SERVICE}`);
  const entries = JSON.parse(res.body) as { Checks: { CheckID: string; ServiceID: string; Status: string; ModifyIndex: number }[] }[];
  const checks = entries.flatMap((e) => e.Checks.filter((c) => c.ServiceID !== ""));
  return {
    index: String(res.headers["x-consul-index"]),
    passing: checks.filter((c) => c.Status === "passing").length,
    checks: checks
      .map((c) => `${c.CheckID}@${c.ModifyIndex}`)
      .sort()
      .join(","),
  };
}

let a: Backend;
let b: Backend;

before(async () => {
  world = await startWorld("dockerhc");
  port = await freePort();
  events = spawn("docker", ["events", "--filter", `label=dockbind-test.pid=${process.pid}`, "--format", "{{json .}}"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  assert.ok(events.stdout);
  createInterface({ input: events.stdout }).on("line", (line) => {
    const e = JSON.parse(line) as { Action?: string; Actor?: { ID?: string }; timeNano?: number };
    if (e.Action?.startsWith("health_status") === true && e.Actor?.ID !== undefined) {
      seen.push({ id: e.Actor.ID, action: e.Action, atMs: (e.timeNano ?? 0) / 1e6 });
    }
  });
  world.writeFile("web.yaml", dockerBinding("web", SERVICE, SERVICE, port));
  world.writeFile("rest.yaml", dockerBinding("rest", REST_SERVICE, REST_SERVICE));
  await world.startController();
});

after(async () => {
  events.kill();
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("healthCheck.type docker", () => {
  it("serves healthy containers; a container in `starting` is registered critical and never served", async () => {
    const t0 = Date.now();
    // start-period: failed probes do not count, so it stays `starting` for the whole file.
    const starting = await healthchecked("starting", SERVICE, false, ["--health-start-period", "300s"]);
    a = await healthchecked("a", SERVICE, true);
    b = await healthchecked("b", SERVICE, true, STEADY);
    await Promise.all([healthEvent(a.id, "healthy", t0), healthEvent(b.id, "healthy", t0)]);
    await waitFor(
      async () => {
        const bodies = await world.sample(port, 6);
        return bodies.includes("a") && bodies.includes("b") ? true : undefined;
      },
      { timeoutMs: 15_000, what: "a and b served through nginx" },
    );
    const entry = await waitFor(async () => (await world.health(SERVICE)).find((e) => e.port === starting.hostPort), {
      timeoutMs: 10_000,
      what: "the starting container registered",
    });
    assert.equal(entry.status, "critical");
    assert.equal(await dockerHealth(starting.id), "starting");
    const bodies = await world.sample(port, 20);
    assert.ok(!bodies.includes("starting"), bodies.join(","));
    assert.deepEqual(upstreamPorts().sort(), [a.hostPort, b.hostPort].sort());
  });

  it("removing /ok takes the container out of nginx within 1 s of Docker's unhealthy event; restoring /ok brings it back", async () => {
    const traffic = sampler();
    // Served steadily for 1.5 s first: the last reload is then older than --min-reload-interval (1 s), so the
    // removal measured below is not paced behind it.
    const steadyFrom = Date.now();
    await waitFor(() => (traffic.samples.some((x) => x.t > steadyFrom + 1500) ? true : undefined), { timeoutMs: 10_000, what: "1.5 s of samples" });
    assert.deepEqual([...new Set(traffic.samples.map((x) => x.body))].sort(), ["a", "b"]);
    const tRemove = Date.now();
    await run("docker", ["exec", a.id, "rm", "/ok"], { check: true });
    const unhealthy = await healthEvent(a.id, "unhealthy", tRemove);
    await waitFor(() => (upstreamPorts().includes(a.hostPort ?? -1) ? undefined : true), { timeoutMs: 10_000, intervalMs: 5, what: "a out of web.conf" });
    const fileOut = Date.now();
    // Keep sampling long enough that a late answer from a would show.
    await waitFor(() => (traffic.samples.filter((s) => s.t > fileOut + 1500).length > 20 ? true : undefined), { timeoutMs: 20_000, what: "samples" });
    const lastA = traffic.samples.filter((s) => s.body === "a").at(-1);
    const firstAfter = traffic.samples.find((s) => lastA !== undefined && s.t > lastA.t);
    const outMs = Math.max(0, (firstAfter?.t ?? unhealthy.atMs) - unhealthy.atMs);
    console.log(
      `docker health: rm /ok -> health_status: unhealthy ${(unhealthy.atMs - tRemove).toFixed(0)} ms; ` +
        `unhealthy event -> web.conf without it ${(fileOut - unhealthy.atMs).toFixed(0)} ms; unhealthy event -> no request reaches it ${outMs.toFixed(0)} ms`,
    );
    assert.ok(outMs <= 1000, `out of nginx ${outMs.toFixed(0)} ms after the unhealthy event`);
    assert.equal((await world.health(SERVICE)).find((e) => e.port === a.hostPort)?.status, "critical");

    const tRestore = Date.now();
    await run("docker", ["exec", a.id, "sh", "-c", "echo ok > /ok"], { check: true });
    const healthy = await healthEvent(a.id, "healthy", tRestore);
    const back = await waitFor(() => traffic.samples.find((s) => s.body === "a" && s.t > healthy.atMs), { timeoutMs: 10_000, what: "a served again" });
    await traffic.stop();
    console.log(
      `docker health: echo ok > /ok -> health_status: healthy ${(healthy.atMs - tRestore).toFixed(0)} ms; healthy event -> served again ${(back.t - healthy.atMs).toFixed(0)} ms`,
    );
    const failed = traffic.samples.filter((s) => s.body !== "a" && s.body !== "b");
    assert.deepEqual(failed, [], "no failed request through nginx (b stayed healthy)");
  });

  it("a selected container without a HEALTHCHECK is not registered and the binding's status names it (NoDockerHealthcheck)", async () => {
    const plain = await runBackend({ name: `plain-${process.pid}`, labels: { app: SERVICE }, env: { NAME: "plain" } });
    const view = await waitFor(
      async () => {
        const v = (await status()).bindings.find((x) => x.key === "default/web");
        return v?.conditions.find((c) => c.type === "Registered")?.reason === "NoDockerHealthcheck" ? v : undefined;
      },
      { timeoutMs: 10_000, what: "Registered reason NoDockerHealthcheck" },
    );
    const registered = view.conditions.find((c) => c.type === "Registered");
    assert.ok(registered);
    assert.equal(registered.status, "True");
    assert.match(registered.message, new RegExp(`container plain-${process.pid} has no Docker HEALTHCHECK`));
    const skipped = view.backends.find((x) => x.containerName === `plain-${process.pid}`);
    assert.ok(skipped);
    assert.equal(skipped.health, "skipped");
    assert.match(skipped.reason ?? "", /no Docker HEALTHCHECK/);
    assert.equal(
      (await world.health(SERVICE)).find((e) => e.port === plain.hostPort),
      undefined,
    );
    await run("docker", ["rm", "-f", plain.id], { check: true });
  });

  it(`at rest: ${REST_CONTAINERS} healthchecked containers, X-Consul-Index of the service steady for 60 s while every TTL is refreshed`, async () => {
    const t0 = Date.now();
    const rest = await Promise.all(Array.from({ length: REST_CONTAINERS }, (_, i) => healthchecked(`rest-${i}`, REST_SERVICE, true, STEADY)));
    const restIds = new Set(rest.map((r) => r.id));
    await waitFor(async () => ((await restIndex()).passing === REST_CONTAINERS ? true : undefined), {
      timeoutMs: 60_000,
      what: `${REST_CONTAINERS} passing instances of ${REST_SERVICE}`,
    });
    console.log(`docker health: ${REST_CONTAINERS} containers run and passing in ${Date.now() - t0} ms`);
    const before = await restIndex();
    assert.ok(world.controller);
    const checkWrites = (): Promise<number> =>
      world.controller === undefined ? Promise.resolve(0) : metricSum(world.controller, "dockbind_consul_writes_total", { kind: "check" });
    const metricBefore = await checkWrites();
    const refreshesBefore = world.proxy.writes().filter((w) => w.path.startsWith("/v1/agent/check/pass/")).length;
    const started = Date.now();
    // Blocking query: answers as soon as the service's index moves, else after 60 s.
    const res = await httpGet(`${world.consul.url}/v1/health/service/${REST_SERVICE}?index=${before.index}&wait=60s`, 75_000);
    const waited = Date.now() - started;
    const refreshes = world.proxy.writes().filter((w) => w.path.startsWith("/v1/agent/check/pass/")).length - refreshesBefore;
    const metricRefreshes = (await checkWrites()) - metricBefore;
    const afterIdx = await restIndex();
    console.log(
      `docker health at rest: X-Consul-Index ${before.index} -> ${String(res.headers["x-consul-index"])} over ${waited} ms; ${refreshes} TTL refreshes sent meanwhile (the controller's metric: ${metricRefreshes})`,
    );
    const flaps = seen.filter((e) => restIds.has(e.id) && e.atMs >= started && e.atMs <= started + waited);
    assert.deepEqual(flaps, [], "Docker reported no health change of these containers meanwhile");
    assert.equal(String(res.headers["x-consul-index"]), before.index, "no catalog write for the service");
    assert.ok(waited >= 59_000, `the blocking query returned after ${waited} ms: the index moved`);
    assert.equal(afterIdx.checks, before.checks, "no check's ModifyIndex moved");
    assert.equal(afterIdx.passing, REST_CONTAINERS);
    // One refresh per check per second nominally (TTL 3 s / 3); at least one per TTL on a loaded machine.
    assert.ok(refreshes >= REST_CONTAINERS * (60_000 / TTL_MS), `${refreshes} refreshes`);
    // The controller's own count of the same writes. Its window holds the proxy's (read before it
    // starts and after it ends, each read an HTTP request), so it may add the refreshes of those reads.
    assert.ok(
      metricRefreshes >= refreshes && metricRefreshes <= refreshes * 1.1,
      `dockbind_consul_writes_total{kind="check"} +${metricRefreshes}, the proxy saw ${refreshes}`,
    );
  });

  it("kill -9 of the controller: the checks expire to critical after their TTL; a new controller vouches again", async () => {
    const c = world.controller;
    assert.ok(c);
    const ours = async (): Promise<string[]> =>
      (await world.health(SERVICE)).filter((e) => e.port === a.hostPort || e.port === b.hostPort).map((e) => e.status);
    assert.deepEqual(await ours(), ["passing", "passing"]);
    const killed = Date.now();
    c.proc.kill();
    await c.proc.exited;
    await waitFor(async () => ((await ours()).every((s) => s === "critical") ? true : undefined), {
      timeoutMs: TTL_MS + 10_000,
      intervalMs: 50,
      what: "checks critical after the TTL",
    });
    const expiredMs = Date.now() - killed;
    console.log(`docker health: kill -9 -> both checks critical after ${expiredMs} ms (TTL ${TTL_MS} ms)`);
    // The last refresh was at most a third of the TTL (plus a tick) before the kill.
    assert.ok(expiredMs >= TTL_MS / 2, `critical ${expiredMs} ms after the kill: before the TTL could run out`);
    assert.ok(expiredMs <= TTL_MS + 3000, `critical only ${expiredMs} ms after the kill`);
    await world.startController();
    await waitFor(async () => ((await ours()).every((s) => s === "passing") ? true : undefined), { timeoutMs: 15_000, what: "passing again" });
  });
});
