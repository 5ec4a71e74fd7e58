/**
 * Issue #5 acceptance: `controller plan` against live Docker, Consul and
 * nginx files prints exactly the pending changes and changes nothing.
 * "Nothing" is measured: every request plan sends goes through the counting
 * Consul proxy (zero writes), Consul's catalog index and agent services are
 * identical before/after, the LB file bytes and nginx reload count too.
 * Then the real controller applies the plan and plan reports no changes.
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import type { PlanResult } from "../../src/cli/planCompute.js";
import { runBackend, type Backend } from "../support/docker.js";
import { run, type RunResult } from "../support/exec.js";
import { httpGet } from "../support/http.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";
import { controllerCommand } from "../support/controller.js";

const SERVICE = "plan-web";
const NODE = "plan";
const STALE_ID = `dockbind:${NODE}:default:web:deadbeef0000:80`;
let world: World;
let port: number;
let third: Backend;

function yaml(method?: string): string {
  return bindingYaml({
    name: "web",
    service: SERVICE,
    app: "plan-web",
    listenPort: port,
    ...(method !== undefined ? { extraSpec: `    method: ${method}\n` } : {}),
  });
}

function plan(...extra: string[]): Promise<RunResult> {
  return run(
    process.execPath,
    [
      ...controllerCommand(),
      "plan",
      "-f",
      world.bindingsDir,
      "--consul-addr",
      world.proxy.addr,
      "--node",
      NODE,
      "--lb-output-dir",
      world.nginx.confDir,
      ...extra,
    ],
    { timeoutMs: 60_000 },
  );
}

async function planJson(): Promise<PlanResult> {
  const r = await plan("--output", "json");
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as PlanResult;
}

function put(path: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${world.consul.url}${path}`, { method: "PUT", agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

/** Everything plan must not change. */
async function snapshot(): Promise<{ catalogIndex: string; agent: string; lb: string | undefined; reloads: number }> {
  const catalog = await httpGet(`${world.consul.url}/v1/catalog/services`);
  const agent = await httpGet(`${world.consul.url}/v1/agent/services`);
  return { catalogIndex: String(catalog.headers["x-consul-index"]), agent: agent.body, lb: world.lbFile("web.conf"), reloads: await world.nginx.reloadCount() };
}

before(async () => {
  world = await startWorld(NODE);
  port = await freePort();
  world.writeFile("web.yaml", yaml());
  await world.startController();
  await runBackend({ name: "plan-web-1", labels: { app: "plan-web" }, env: { NAME: "p1" } });
  await runBackend({ name: "plan-web-2", labels: { app: "plan-web" }, env: { NAME: "p2" } });
  await waitFor(async () => ((await world.health(SERVICE)).filter((e) => e.status === "passing").length === 2 ? true : undefined), {
    timeoutMs: 30_000,
    what: "2 passing",
  });
  await waitFor(() => ((world.lbFile("web.conf") ?? "").match(/server 127\.0\.0\.1:\d+;/g)?.length === 2 ? true : undefined), {
    timeoutMs: 20_000,
    what: "2 servers in web.conf",
  });
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("controller plan", () => {
  it("reports no changes when the controller has converged", async () => {
    const p = await planJson();
    assert.equal(p.changes, false, JSON.stringify(p, null, 2));
    assert.deepEqual(p.registrations, []);
    assert.deepEqual(
      p.loadBalancer.map((f) => f.action),
      ["unchanged"],
    );
    const text = await plan();
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /No changes: Consul and the load balancer files match the bindings\./);
  });

  it("prints exactly the pending changes while the controller is stopped, and changes nothing", async () => {
    await world.controller?.stop();
    third = await runBackend({ name: "plan-web-3", labels: { app: "plan-web" }, env: { NAME: "p3" } });
    // A registration this node owns for the binding, whose container is gone; critical so nginx would not render it.
    assert.equal(
      await put("/v1/agent/service/register", {
        ID: STALE_ID,
        Name: SERVICE,
        Address: "127.0.0.1",
        Port: 1,
        Meta: { dockbind_node: NODE, dockbind_binding: "default/web", dockbind_container: "deadbeef0000" },
        Check: { TTL: "1h", Status: "critical" },
      }),
      200,
    );
    // Someone else's registration of the same service: never touched.
    assert.equal(
      await put("/v1/agent/service/register", {
        ID: "foreign-1",
        Name: SERVICE,
        Address: "127.0.0.1",
        Port: 2,
        Meta: { dockbind_node: "other-node" },
        Check: { TTL: "1h", Status: "critical" },
      }),
      200,
    );
    world.writeFile("web.yaml", yaml("least_conn"));

    const before = await snapshot();
    const writesBefore = world.proxy.writes().length;
    const requestsBefore = world.proxy.requests.length;
    const p = await planJson();
    const text = await plan();
    assert.equal(text.code, 0, text.stderr);

    assert.deepEqual(p.summary, { register: 1, update: 0, deregister: 1, lbCreate: 0, lbUpdate: 1, lbRemove: 0, lbErrors: 0 });
    const reg = p.registrations.find((c) => c.action === "register");
    assert.equal(reg?.container, "plan-web-3");
    assert.equal(reg.endpoint, `127.0.0.1:${third.hostPort ?? 0}`);
    assert.equal(reg.serviceId, `dockbind:${NODE}:default:web:${third.id.slice(0, 12)}:80`);
    const dereg = p.registrations.find((c) => c.action === "deregister");
    assert.equal(dereg?.serviceId, STALE_ID);
    assert.ok(!p.registrations.some((c) => c.serviceId === "foreign-1"));
    const lb = p.loadBalancer[0];
    assert.equal(lb?.action, "update");
    assert.match(lb.diff, /^\+ {4}least_conn;$/m);
    assert.equal(lb.diff.split("\n").filter((l) => /^[+-][^+-]/.test(l)).length, 1, `only the method line changes:\n${lb.diff}`);

    assert.match(
      text.stdout,
      new RegExp(`^ {4}\\+ register {3}dockbind:${NODE}:default:web:${third.id.slice(0, 12)}:80 .*container plan-web-3 {2}\\(new backend\\)$`, "m"),
    );
    assert.match(text.stdout, new RegExp(`^ {4}- deregister ${STALE_ID} .*\\(container no longer running or matching\\)$`, "m"));
    assert.match(text.stdout, /^ {2}~ \S+\/web\.conf \(default\/web\): update$/m);
    assert.match(
      text.stdout,
      /Plan: 1 to register, 0 to update, 1 to deregister; LB files: 0 to create, 1 to update, 0 to remove \(nginx would be validated and reloaded\)\./,
    );

    assert.ok(world.proxy.requests.length > requestsBefore, "plan read Consul through the counting proxy");
    assert.deepEqual(world.proxy.writes().slice(writesBefore), [], "Consul writes made by plan");
    assert.deepEqual(await snapshot(), before, "Consul catalog index, agent services, LB file and reload count unchanged");
  });

  it("the controller then makes exactly the planned writes, after which plan shows no changes", async () => {
    const writesBefore = world.proxy.writes().length;
    await world.startController();
    await waitFor(async () => ((await world.health(SERVICE)).filter((e) => e.status === "passing").length === 3 ? true : undefined), {
      timeoutMs: 30_000,
      what: "3 passing",
    });
    await waitFor(async () => ((await planJson()).changes ? undefined : true), { timeoutMs: 30_000, what: "plan without changes" });
    const writes = world.proxy.writes().slice(writesBefore);
    assert.deepEqual(
      writes.map((w) => `${w.method} ${w.path.split("?")[0] ?? ""}`).sort(),
      ["PUT /v1/agent/service/deregister/" + encodeURIComponent(STALE_ID), "PUT /v1/agent/service/register"].sort(),
    );
    assert.ok(
      (await world.health(SERVICE)).some((e) => e.id === "foreign-1"),
      "foreign registration untouched",
    );
  });
});
