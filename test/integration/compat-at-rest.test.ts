/**
 * Converged means zero writes, for registrator-compat too, on real
 * dockerd/Consul/nginx: containers registered from registrator's SERVICE_*
 * env and labels (HTTP check every 2 s) stay untouched across several full
 * resyncs — no Consul write, no check reset to critical, no catalog index
 * move, no reload of the nginx binding that renders their service with
 * onlyPassing, even next to a second controller using the same node name.
 * And every binding's instances show Consul's health, whether or not the
 * binding renders a load balancer.
 * The containers run on a private engine of its own (test/support/extraDockerd.ts):
 * registrator-compat registers every published container of its engine.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { StatusDocument } from "../../src/observability/statusModel.js";
import { controllerCommand, startController } from "../support/controller.js";
import { controllerGet, controllerHttpAddr } from "../support/controllerHttp.js";
import { run } from "../support/exec.js";
import { startExtraDockerd, type ExtraDockerd } from "../support/extraDockerd.js";
import { httpGet } from "../support/http.js";
import { metricSum } from "../support/metrics.js";
import { ensureBedRoot } from "../support/procs.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const SERVICE = "compat-rest-web";
const RESYNC_MS = 2000;
let world: World;
let engine: ExtraDockerd;
let port: number;

interface CheckState {
  readonly id: string;
  readonly status: string;
  readonly modifyIndex: number;
}

/** Consul's health of SERVICE from the real agent: the index and every check's status and ModifyIndex. */
async function healthIndex(): Promise<{ index: string; checks: CheckState[] }> {
  const res = await httpGet(`${world.consul.url}/v1/health/service/${SERVICE}`);
  const entries = JSON.parse(res.body) as { Checks: { CheckID: string; ServiceID: string; Status: string; ModifyIndex: number }[] }[];
  const checks = entries.flatMap((e) =>
    e.Checks.filter((c) => c.ServiceID !== "").map((c) => ({ id: c.CheckID, status: c.Status, modifyIndex: c.ModifyIndex })),
  );
  return { index: String(res.headers["x-consul-index"]), checks: checks.sort((a, b) => a.id.localeCompare(b.id)) };
}

async function status(): Promise<StatusDocument> {
  const c = world.controller;
  assert.ok(c);
  return JSON.parse((await controllerGet(c, "/api/status")).body) as StatusDocument;
}

before(async () => {
  world = await startWorld("compatrest");
  engine = await startExtraDockerd({ name: "compat", bridgeCidr: "172.31.250.1/24" });
  port = await freePort();
  // Selects no container: renders whatever Consul holds for the service, i.e. the compat instances.
  world.writeFile("lb.yaml", bindingYaml({ name: "lb", service: SERVICE, app: "compat-rest-nothing", listenPort: port }));
  await world.startController(["--docker-host", engine.host, "--registrator-compat", "--log-level", "debug"]);
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
  await engine.stop();
});

describe("registrator-compat at rest", () => {
  it("makes zero Consul writes, resets no check and reloads nothing across several resyncs", async () => {
    const c = world.controller;
    assert.ok(c);
    // The containers: registrator env as `docker run -e`, one with labels instead.
    const env = { SERVICE_80_NAME: SERVICE, SERVICE_TAGS: "backend-1", SERVICE_CHECK_HTTP: "/health/", SERVICE_CHECK_INTERVAL: "2s" };
    await engine.runBackend({ name: "compatrest-w1", env: { ...env, NAME: "w1" } });
    await engine.runBackend({ name: "compatrest-w2", env: { ...env, NAME: "w2" } });
    await engine.runBackend({ name: "compatrest-w3", labels: env, env: { NAME: "w3" } });
    await waitFor(async () => ((await healthIndex()).checks.filter((k) => k.status === "passing").length === 3 ? true : undefined), {
      timeoutMs: 30_000,
      what: "3 compat checks passing",
    });
    await world.servedExactly(port, ["w1", "w2", "w3"]);
    // Settled: the last render after the checks passed has been applied.
    await waitFor(async () => ((await metricSum(c, "workqueue_depth")) === 0 ? true : undefined), { timeoutMs: 10_000, what: "queues empty" });

    const before = {
      proxyWrites: world.proxy.writes().length,
      consulWrites: await metricSum(c, "dockbind_consul_writes_total"),
      reloads: await metricSum(c, "dockbind_lb_reloads_total"),
      reconciles: await metricSum(c, "controller_runtime_reconcile_total", { controller: "registrar" }),
      health: await healthIndex(),
      file: world.lbFile("lb.conf"),
    };
    const t0 = Date.now();
    // At least three full resyncs: each reconciles the three container keys.
    await waitFor(
      async () =>
        Date.now() - t0 >= 3 * RESYNC_MS && (await metricSum(c, "controller_runtime_reconcile_total", { controller: "registrar" })) - before.reconciles >= 9
          ? true
          : undefined,
      { timeoutMs: 30_000, what: "three resyncs of the compat containers" },
    );
    const after = await healthIndex();
    const writes = world.proxy.writes().slice(before.proxyWrites);
    assert.deepEqual(
      writes.map((w) => `${w.method} ${w.path}`),
      [],
      "no Consul write went through the proxy",
    );
    assert.equal(await metricSum(c, "dockbind_consul_writes_total"), before.consulWrites, "dockbind_consul_writes_total steady");
    assert.deepEqual(after.checks, before.health.checks, "no check was reset (status and ModifyIndex unchanged)");
    assert.equal(after.index, before.health.index, "catalog index steady");
    assert.equal(await metricSum(c, "dockbind_lb_reloads_total"), before.reloads, "no nginx reload");
    assert.equal(world.lbFile("lb.conf"), before.file, "generated config unchanged");
  });
});

describe("registrator-compat next to another controller with the same node name", () => {
  // What the rewrites at every resync really were: a second controller under the same --node without
  // --registrator-compat garbage-collected the compat registrations as its own orphans, and the first
  // one registered them again (checks reset to critical each time).
  it("keeps the compat registrations untouched across several resyncs of both, and reports the conflict", async () => {
    const c = world.controller;
    assert.ok(c);
    const before = { proxyWrites: world.proxy.writes().length, health: await healthIndex() };
    const other = await startController({
      bindingsDir: mkdtempSync(join(ensureBedRoot(), "bindings-compatrest-other-")),
      consulAddr: world.proxy.addr,
      outputDir: mkdtempSync(join(ensureBedRoot(), "out-compatrest-other-")),
      nginxArgs: world.nginx.nginxArgs,
      node: world.node,
      extraArgs: ["--docker-host", engine.host, "--resync", `${RESYNC_MS}ms`],
      logName: `controller-compatrest-other-${process.pid}.log`,
    });
    try {
      const t0 = Date.now();
      // Its garbage collection has read the agent (it reports the peer) and ran for three resync periods.
      await waitFor(async () => (Date.now() - t0 >= 3 * RESYNC_MS && (await metricSum(other, "dockbind_node_identity_conflicts")) >= 1 ? true : undefined), {
        timeoutMs: 30_000,
        what: "three resync periods of the second controller, the conflict reported",
      });
      assert.deepEqual(world.proxy.writes().slice(before.proxyWrites), [], "neither controller wrote to Consul: nothing rewritten or removed");
      assert.deepEqual((await healthIndex()).checks, before.health.checks, "no check was reset");
    } finally {
      await other.stop();
    }
  });
});

describe("backend health of bindings without a load balancer", () => {
  it("shows Consul's health in /api/status, dockbind_backends and `controller status`", async () => {
    const c = world.controller;
    assert.ok(c);
    world.writeFile("plain.yaml", bindingYaml({ name: "plain", service: "compat-rest-plain", app: "compat-rest-plain" }));
    await engine.runBackend({ name: "compatrest-plain-ok", labels: { app: "compat-rest-plain" }, env: { NAME: "ok" } });
    await engine.runBackend({ name: "compatrest-plain-bad", labels: { app: "compat-rest-plain" }, env: { NAME: "bad", FAIL_HEALTH: "1" } });
    const view = await waitFor(
      async () => {
        const b = (await status()).bindings.find((x) => x.key === "default/plain");
        const health = (b?.backends ?? []).map((x) => `${x.containerName}=${x.health}`).sort();
        return health.join(",") === "compatrest-plain-bad=critical,compatrest-plain-ok=passing" && b?.counts.passing === 1 ? b : undefined;
      },
      { timeoutMs: 30_000, what: "plain binding: one backend passing, one critical" },
    );
    assert.equal(view.loadBalancer, undefined);
    assert.equal(await metricSum(c, "dockbind_backends", { binding: "default/plain", state: "passing" }), 1);
    assert.equal(await metricSum(c, "dockbind_backends", { binding: "default/plain", state: "registered" }), 2);
    const cli = await run(process.execPath, [...controllerCommand(), "status", "--addr", await controllerHttpAddr(c)], {
      timeoutMs: 60_000,
    });
    assert.equal(cli.code, 0, cli.stderr);
    const row = cli.stdout.split("\n").find((l) => l.startsWith("default/plain "));
    assert.ok(row, cli.stdout);
    // KEY SERVICE READY DESIRED REGISTERED PASSING LAST-RENDER
    assert.deepEqual(row.trim().split(/\s+/).slice(3, 6), ["2", "2", "1"], row);
    assert.match(cli.stdout, /compatrest-plain-bad\s.*critical/);
  });
});
