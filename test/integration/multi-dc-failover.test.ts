/**
 * Multi-datacenter failover (`spec.service.datacenters: [dc1, dc2]`) on a real WAN federation:
 * two single-server Consul datacenters on loopback joined with -retry-join-wan, real nginx and
 * haproxy, real backend containers. dc1 backends are registered by the controller (its agent is
 * dc1's server); dc2 backends are registered in dc2's agent with HTTP checks. Tests run in order
 * and share one world.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { startConsul, type ConsulHandle } from "../support/consul.js";
import { removeContainer, runBackend, stopContainer, type Backend } from "../support/docker.js";
import { startHaproxy, type HaproxyHandle } from "../support/haproxy.js";
import { httpGet } from "../support/http.js";
import { controllerGet, controllerHttpAddr } from "../support/controllerHttp.js";
import { run } from "../support/exec.js";
import { controllerStatus } from "../support/status.js";
import { cleanupAll } from "../support/teardown.js";
import { delay, freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";
import { controllerCommand } from "../support/controller.js";

const SERVICE = "mdc-web";
let world: World;
let dc2: ConsulHandle;
let haproxy: HaproxyHandle;
let nginxPort: number;
let haproxyPort: number;
const dc1Backends = new Map<string, Backend>();

function binding(name: string, app: string, lb: string): string {
  return bindingYaml({
    name,
    service: SERVICE,
    app,
    extraSpec: `  loadBalancer:
${lb}`,
  }).replace("    tags: [dockbind-test]\n", "    tags: [dockbind-test]\n    datacenters: [dc1, dc2]\n");
}

function put(url: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "PUT", headers: { "content-type": "application/json" } }, (res) => {
      res.resume();
      res.on("end", () => {
        resolve(res.statusCode ?? 0);
      });
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

async function passingIn(consul: ConsulHandle, dc: string): Promise<number> {
  const res = await httpGet(`${consul.url}/v1/health/service/${SERVICE}?passing=1&dc=${dc}`);
  if (res.status !== 200) throw new Error(`consul health ${SERVICE} dc=${dc}: HTTP ${res.status}`);
  return (JSON.parse(res.body) as unknown[]).length;
}

/** A backend container registered in dc2's own agent with an HTTP check (what a dockbind in dc2 would do). */
async function dc2Backend(name: string): Promise<void> {
  const b = await runBackend({ name: `mdc-${name}-${process.pid}`, labels: { app: "mdc-dc2" }, env: { NAME: name } });
  const port = b.hostPort ?? 0;
  const code = await put(`${dc2.url}/v1/agent/service/register`, {
    ID: `mdc-${name}`,
    Name: SERVICE,
    Address: "127.0.0.1",
    Port: port,
    Check: { HTTP: `http://127.0.0.1:${port}/health/`, Interval: "1s", Timeout: "1s" },
  });
  assert.equal(code, 200, "dc2 registration");
}

type Getter = (port: number) => Promise<{ readonly status: number; readonly body: string }>;

interface Sample {
  readonly at: number;
  readonly lb: string;
  readonly status: number;
  readonly body: string;
}

/** Steady load (20 req/s per load balancer), every answer recorded with its time. */
function startLoad(targets: readonly { readonly lb: string; readonly get: Getter; readonly port: number }[]): () => Promise<Sample[]> {
  const samples: Sample[] = [];
  let running = true;
  const loops = targets.map(async (t) => {
    while (running) {
      const started = Date.now();
      const r = await t.get(t.port).catch(() => ({ status: 0, body: "" }));
      samples.push({ at: Date.now(), lb: t.lb, status: r.status, body: r.status === 200 ? r.body : "" });
      await delay(Math.max(0, 50 - (Date.now() - started)));
    }
  });
  return async () => {
    running = false;
    await Promise.all(loops);
    return samples;
  };
}

/** Waits until `get` answers only bodies in `expected` (8 in a row); returns ms since `since`. */
async function switchedTo(get: Getter, port: number, expected: readonly string[], since: number, what: string): Promise<number> {
  await waitFor(
    async () => {
      for (let i = 0; i < 8; i++) {
        const r = await get(port).catch(() => ({ status: 0, body: "" }));
        if (r.status !== 200 || !expected.includes(r.body)) return undefined;
      }
      return true;
    },
    { timeoutMs: 60_000, intervalMs: 50, what },
  );
  return Date.now() - since;
}

/** The first time after `since` from which every answer of `lb` is a 200 with an expected body. */
function settledAt(samples: readonly Sample[], lb: string, since: number, expected: readonly string[]): number {
  const mine = samples.filter((s) => s.lb === lb && s.at >= since);
  let last = since;
  for (const s of mine) if (s.status !== 200 || !expected.includes(s.body)) last = s.at;
  return last - since;
}

function bad(samples: readonly Sample[], lb: string, after: number): Sample[] {
  return samples.filter((s) => s.lb === lb && s.at > after && s.status !== 200);
}

/** `3 (502 x3)`: failed answers and their statuses (0: connection error). */
function failedSummary(samples: readonly Sample[]): string {
  const byStatus = new Map<number, number>();
  for (const s of samples) byStatus.set(s.status, (byStatus.get(s.status) ?? 0) + 1);
  return `${samples.length}${samples.length > 0 ? ` (${[...byStatus].map(([st, n]) => `${st} x${n}`).join(", ")})` : ""}`;
}

async function servingDc(): Promise<string | undefined> {
  const doc = await controllerStatus(world.controller ?? assert.fail("no controller"));
  const b = doc.bindings.find((x) => x.key === "default/web");
  return b?.datacenters?.serving;
}

before(async () => {
  world = await startWorld("mdc", { consul: { server: true, datacenter: "dc1" } });
  dc2 = await startConsul({ node: "consul-mdc-dc2", server: true, datacenter: "dc2", joinWan: `127.0.0.1:${world.consul.ports.serfWan}` });
  haproxy = await startHaproxy();
  [nginxPort, haproxyPort] = [await freePort(), await freePort()];
  await waitFor(
    async () => {
      const r = await httpGet(`${world.consul.url}/v1/catalog/datacenters`);
      return (r.status === 200 && (JSON.parse(r.body) as string[]).includes("dc2")) || undefined;
    },
    { timeoutMs: 60_000, what: "dc1 and dc2 WAN-federated" },
  );
  await dc2Backend("dc2-a");
  await dc2Backend("dc2-b");
  await waitFor(async () => ((await passingIn(world.consul, "dc2")) === 2 ? true : undefined), { timeoutMs: 30_000, what: "2 passing in dc2 (seen from dc1)" });
  for (const name of ["dc1-a", "dc1-b"]) {
    dc1Backends.set(name, await runBackend({ name: `mdc-${name}-${process.pid}`, labels: { app: "mdc-dc1" }, env: { NAME: name } }));
  }
  world.writeFile("web.yaml", binding("web", "mdc-dc1", `    listen: {port: ${nginxPort}}\n    output: web.conf\n`));
  // The haproxy binding registers nothing (no container has its label): it renders the same service.
  world.writeFile("web-hx.yaml", binding("web-hx", "mdc-none", `    kind: haproxy\n    listen: {port: ${haproxyPort}}\n    output: web-hx.cfg\n`));
  await world.startController(haproxy.controllerArgs);
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await dc2.stop();
  await cleanupAll();
});

const nginxGet: Getter = (p) => world.nginx.get(p);
const haproxyGet: Getter = (p) => haproxy.get(p);

describe("multi-datacenter failover on a WAN federation", () => {
  it("serves the local datacenter (dc1) while it has passing instances", async () => {
    for (const b of dc1Backends.values()) {
      await waitFor(() => world.lbFile("web.conf")?.includes(`127.0.0.1:${b.hostPort ?? -1};`) || undefined, {
        timeoutMs: 30_000,
        what: "both dc1 backends in web.conf",
      });
    }
    await switchedTo(nginxGet, nginxPort, ["dc1-a", "dc1-b"], Date.now(), "nginx serving dc1");
    await switchedTo(haproxyGet, haproxyPort, ["dc1-a", "dc1-b"], Date.now(), "haproxy serving dc1");
    await waitFor(async () => ((await servingDc()) === "dc1" ? true : undefined), { timeoutMs: 10_000, what: "status serving dc1" });
  });

  it("fails over to dc2 when every dc1 backend stops, with no failed request beyond the switch", async () => {
    const stopLoad = startLoad([
      { lb: "nginx", get: nginxGet, port: nginxPort },
      { lb: "haproxy", get: haproxyGet, port: haproxyPort },
    ]);
    await delay(500);
    const t0 = Date.now();
    await Promise.all([...dc1Backends.values()].map((b) => stopContainer(b.id)));
    const dc2Names = ["dc2-a", "dc2-b"];
    const [nginxMs, haproxyMs] = await Promise.all([
      switchedTo(nginxGet, nginxPort, dc2Names, t0, "nginx serving dc2"),
      switchedTo(haproxyGet, haproxyPort, dc2Names, t0, "haproxy serving dc2"),
    ]);
    await delay(3_000);
    const samples = await stopLoad();
    const nginxWindow = settledAt(samples, "nginx", t0, dc2Names);
    const haproxyWindow = settledAt(samples, "haproxy", t0, dc2Names);
    console.log(
      `failover dc1 -> dc2: nginx serving dc2 ${nginxMs} ms after the stop (last non-dc2 answer at +${nginxWindow} ms), haproxy ${haproxyMs} ms (+${haproxyWindow} ms); ` +
        `failed during the window: nginx ${failedSummary(bad(samples, "nginx", t0))}, haproxy ${failedSummary(bad(samples, "haproxy", t0))} of ${samples.length}`,
    );
    assert.deepEqual(bad(samples, "nginx", t0 + nginxMs), [], "nginx answers after the switch");
    assert.deepEqual(bad(samples, "haproxy", t0 + haproxyMs), [], "haproxy answers after the switch");
    assert.ok(nginxMs < 15_000 && haproxyMs < 15_000, `failover within a few seconds (nginx ${nginxMs} ms, haproxy ${haproxyMs} ms)`);
    await waitFor(async () => ((await servingDc()) === "dc2" ? true : undefined), { timeoutMs: 10_000, what: "status serving dc2" });
    const doc = await controllerStatus(world.controller ?? assert.fail("no controller"));
    assert.equal(doc.bindings.find((x) => x.key === "default/web")?.datacenters?.failover, true);
  });

  it("controller plan, controller status and the status page show the served datacenter", async () => {
    const cli = (args: readonly string[]): Promise<{ readonly code: number | null; readonly stdout: string }> =>
      run(process.execPath, [...controllerCommand(), ...args], { timeoutMs: 60_000 });
    const plan = await cli([
      "plan",
      "-f",
      world.bindingsDir,
      "--consul-addr",
      world.proxy.addr,
      "--node",
      "mdc",
      "--lb-output-dir",
      world.nginx.confDir,
      ...haproxy.controllerArgs,
    ]);
    assert.match(plan.stdout, /web\.conf \(default\/web\): unchanged, serving datacenter dc2 \(failover: dc1 0 passing; dc2 2 passing\)/);
    assert.match(plan.stdout, /web-hx\.cfg \(default\/web-hx\): unchanged, serving datacenter dc2/);
    const status = await cli(["status", "--addr", await controllerHttpAddr(world.controller ?? assert.fail("no controller"))]);
    assert.match(status.stdout, /serving datacenter: dc2 \(FAILOVER\) \[dc1 0 passing; dc2 2 passing\]/);
    const page = await controllerGet(world.controller ?? assert.fail("no controller"), "/");
    assert.match(page.body, /serving datacenter <b data-serving-dc="dc2">dc2<\/b>/);
  });

  it("returns to dc1 once a dc1 backend passes again", async () => {
    const b = await runBackend({ name: `mdc-dc1-c-${process.pid}`, labels: { app: "mdc-dc1" }, env: { NAME: "dc1-c" } });
    dc1Backends.set("dc1-c", b);
    const t0 = Date.now();
    const [nginxMs, haproxyMs] = await Promise.all([
      switchedTo(nginxGet, nginxPort, ["dc1-c"], t0, "nginx back on dc1"),
      switchedTo(haproxyGet, haproxyPort, ["dc1-c"], t0, "haproxy back on dc1"),
    ]);
    console.log(
      `failback dc2 -> dc1: nginx ${nginxMs} ms, haproxy ${haproxyMs} ms after the new dc1 backend answered (includes registration and its first passing check)`,
    );
    await waitFor(async () => ((await servingDc()) === "dc1" ? true : undefined), { timeoutMs: 10_000, what: "status serving dc1 again" });
  });

  it("keeps serving dc1 when dc2's server stops, and reports dc2 unreachable", async () => {
    const t0 = Date.now();
    const stopLoad = startLoad([{ lb: "nginx", get: nginxGet, port: nginxPort }]);
    await dc2.stop();
    await waitFor(
      async () => {
        const doc = await controllerStatus(world.controller ?? assert.fail("no controller"));
        const c = doc.bindings.find((x) => x.key === "default/web")?.datacenters?.candidates.find((x) => x.dc === "dc2");
        return c?.state === "stale" || undefined;
      },
      { timeoutMs: 30_000, what: "status: dc2 unreachable (last known kept)" },
    );
    await delay(2_000);
    const samples = await stopLoad();
    assert.deepEqual(bad(samples, "nginx", 0), [], "no failed request while dc2 is down");
    const others = samples.filter((s) => s.body !== "dc1-c");
    assert.deepEqual(
      others.map((s) => `${s.body} at +${s.at - t0} ms`),
      [],
      `dc1 served throughout (${samples.length} answers)`,
    );
    assert.equal(await servingDc(), "dc1");
    // The local agent answered throughout: dc2's failing queries (HTTP 500) are not the agent being unreachable.
    const logs = world.controller?.logs() ?? [];
    assert.deepEqual(
      logs.filter((l) => l.message === "consul agent unreachable").map((l) => l.error),
      [],
      "no 'consul agent unreachable' while only dc2 is down",
    );
    assert.match(world.lbFile("web.conf") ?? "", new RegExp(`127\\.0\\.0\\.1:${dc1Backends.get("dc1-c")?.hostPort ?? -1};`));
  });

  it("with dc2 unreachable and dc1 empty, serves dc2's last known instances (never an empty config)", async () => {
    const b = dc1Backends.get("dc1-c");
    assert.ok(b);
    const t0 = Date.now();
    await stopContainer(b.id);
    // dc2's containers still run; only its Consul server is down: the last known dc2 instances are served.
    const ms = await switchedTo(nginxGet, nginxPort, ["dc2-a", "dc2-b"], t0, "nginx serving dc2's last known instances");
    console.log(`failover to unreachable dc2's last known instances: nginx ${ms} ms`);
    await waitFor(async () => ((await servingDc()) === "dc2" ? true : undefined), { timeoutMs: 10_000, what: "status serving dc2 (stale)" });
    for (const id of [...dc1Backends.values()].map((x) => x.id)) await removeContainer(id).catch(() => undefined);
  });

  it("never rendered an empty upstream and logged every datacenter switch", () => {
    const logs = world.controller?.logs() ?? [];
    const renders = logs.filter((l) => l.message === "load balancer config updated");
    assert.ok(renders.length > 0);
    assert.deepEqual(
      renders.filter((l) => l.servers === 0),
      [],
      "no render with zero servers",
    );
    const switches = logs.filter((l) => l.message === "serving datacenter" && l.binding === "default/web");
    // At start dc1's instances are registered critical and pass at their first check, which Consul staggers
    // randomly within the 1 s interval: a render before it fails over to dc2 (dc1 has 0 passing), then back.
    const first = switches.findIndex((l) => l.datacenter === "dc1");
    for (const l of switches.slice(0, first)) assert.match(String(l.detail), /^dc2 \(failover: dc1 0 passing; dc2 2 passing\)$/);
    assert.ok(first <= 1, `at most one start-up failover before dc1 is served: ${JSON.stringify(switches.map((l) => l.detail))}`);
    assert.deepEqual(
      switches.slice(first).map((l) => l.datacenter),
      ["dc1", "dc2", "dc1", "dc2"],
    );
  });
});
