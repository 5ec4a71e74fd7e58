/**
 * Issue #5 acceptance: a real Prometheus (Debian package) scrapes the
 * controller's /metrics every second while a real scenario runs (Consul,
 * nginx, controller child process, 3 backends of which 1 fails its HTTP
 * check); the assertions are PromQL queries through Prometheus' HTTP API.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ControllerHandle } from "../support/controller.js";
import { controllerGet, controllerHttpAddr } from "../support/controllerHttp.js";
import { dashboardQueries, instantiate } from "../support/dashboard.js";
import { runBackend } from "../support/docker.js";
import { startPrometheus, type PrometheusHandle, type PromSample } from "../support/prometheus.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const SERVICE = "metrics-web";
const BINDING = "default/web";
let world: World;
let controller: ControllerHandle;
let prom: PrometheusHandle;

const one = (samples: PromSample[]): number | undefined => (samples.length === 1 ? samples[0]?.value : undefined);

before(async () => {
  world = await startWorld("metrics");
  const port = await freePort();
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: SERVICE, app: "metrics-web", listenPort: port }));
  controller = await world.startController();
  prom = await startPrometheus([await controllerHttpAddr(controller)]);
  await runBackend({ name: "metrics-web-1", labels: { app: "metrics-web" }, env: { NAME: "one" } });
  await runBackend({ name: "metrics-web-2", labels: { app: "metrics-web" }, env: { NAME: "two" } });
  await runBackend({ name: "metrics-web-bad", labels: { app: "metrics-web" }, env: { NAME: "bad", FAIL_HEALTH: "1" } });
  // The scenario is settled once Consul itself says 2 passing + 1 critical.
  await waitFor(
    async () => {
      const h = await world.health(SERVICE);
      return h.length === 3 && h.filter((e) => e.status === "passing").length === 2 ? true : undefined;
    },
    { timeoutMs: 30_000, what: "3 instances in Consul, 2 passing" },
  );
});

after(async () => {
  await prom.stop();
  await controller.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("metrics scraped by a real Prometheus", () => {
  it("Prometheus scrapes the controller (up == 1)", async () => {
    await prom.waitForQuery('up{job="dockbind"}', (s) => one(s) === 1, "target up");
  });

  it("reports 3 backends registered and 2 passing for the binding", async () => {
    await prom.waitForQuery(`dockbind_backends{binding="${BINDING}",state="registered"}`, (s) => one(s) === 3, "3 registered");
    await prom.waitForQuery(`dockbind_backends{binding="${BINDING}",state="passing"}`, (s) => one(s) === 2, "2 passing");
    await prom.waitForQuery(`dockbind_backends{binding="${BINDING}",state="desired"}`, (s) => one(s) === 3, "3 desired");
  });

  it("exports the controller-runtime reconcile and workqueue metrics with values from the run", async () => {
    for (const controllerName of ["registrar", "renderer"]) {
      await prom.waitForQuery(
        `sum(controller_runtime_reconcile_total{controller="${controllerName}"})`,
        (s) => (one(s) ?? 0) > 0,
        `${controllerName} reconciles`,
      );
      await prom.waitForQuery(
        `controller_runtime_reconcile_time_seconds_count{controller="${controllerName}"}`,
        (s) => (one(s) ?? 0) > 0,
        `${controllerName} reconcile time`,
      );
      await prom.waitForQuery(`workqueue_adds_total{name="${controllerName}"}`, (s) => (one(s) ?? 0) > 0, `${controllerName} queue adds`);
      await prom.waitForQuery(`workqueue_depth{name="${controllerName}"}`, (s) => one(s) !== undefined, `${controllerName} queue depth`);
      await prom.waitForQuery(`workqueue_queue_duration_seconds_count{name="${controllerName}"}`, (s) => (one(s) ?? 0) > 0, `${controllerName} queue latency`);
      await prom.waitForQuery(`workqueue_work_duration_seconds_count{name="${controllerName}"}`, (s) => (one(s) ?? 0) > 0, `${controllerName} work duration`);
      await prom.waitForQuery(`workqueue_retries_total{name="${controllerName}"}`, (s) => one(s) !== undefined, `${controllerName} retries`);
      await prom.waitForQuery(
        `controller_runtime_reconcile_errors_total{controller="${controllerName}"}`,
        (s) => one(s) !== undefined,
        `${controllerName} errors`,
      );
    }
    await prom.waitForQuery('leader_election_master_status{name="dockbind"}', (s) => one(s) === 1, "docker-only mode leads");
  });

  it("counts Consul writes, renders, validations, reloads and Docker events", async () => {
    await prom.waitForQuery('dockbind_consul_writes_total{kind="register",result="success"}', (s) => (one(s) ?? 0) >= 3, "3+ registrations");
    await prom.waitForQuery('dockbind_lb_renders_total{result="changed"}', (s) => (one(s) ?? 0) >= 1, "renders that changed the file");
    await prom.waitForQuery('dockbind_lb_validations_total{result="success"}', (s) => (one(s) ?? 0) >= 2, "nginx -t runs");
    await prom.waitForQuery('dockbind_lb_reloads_total{result="success"}', (s) => (one(s) ?? 0) >= 1, "reloads");
    await prom.waitForQuery('dockbind_docker_events_total{action="start"}', (s) => (one(s) ?? 0) >= 3, "3 start events");
    await prom.waitForQuery(
      `time() - dockbind_lb_last_success_timestamp_seconds{binding="${BINDING}"}`,
      (s) => (one(s) ?? Infinity) < 60,
      "a recent successful render",
    );
    await prom.waitForQuery("dockbind_docker_event_stream_reconnects_total", (s) => one(s) === 0, "no reconnects");
  });

  it("tracks binding validation errors as a gauge", async () => {
    await prom.waitForQuery("dockbind_binding_validation_errors", (s) => one(s) === 0, "no validation errors");
    world.writeFile(
      "broken.yaml",
      "apiVersion: dockbind.io/v1alpha1\nkind: ServiceBinding\nmetadata: {name: broken}\nspec:\n  service: {name: x}\n  backends: {selector: {matchLabels: {a: b}}, port: 99999}\n",
    );
    await prom.waitForQuery("dockbind_binding_validation_errors", (s) => one(s) === 1, "one validation error");
    world.removeFile("broken.yaml");
    await prom.waitForQuery("dockbind_binding_validation_errors", (s) => one(s) === 0, "validation errors back to 0");
  });

  it("every Grafana dashboard query is valid PromQL and returns data from this controller", async () => {
    const queries = dashboardQueries();
    assert.ok(queries.length >= 20);
    for (const q of queries) {
      const expr = instantiate(q.expr);
      await prom.waitForQuery(expr, (s) => s.length > 0, `dashboard panel "${q.title}"`, 20_000);
    }
  });

  it("answers /healthz and /readyz with 200 while everything is up", async () => {
    const live = await controllerGet(controller, "/healthz");
    assert.equal(live.status, 200, live.body);
    const ready = await controllerGet(controller, "/readyz");
    assert.equal(ready.status, 200, ready.body);
    assert.match(ready.body, /\[\+\]consul ok/);
  });

  it("turns /readyz to 503 naming Consul when the agent is unreachable, while /healthz stays 200", async () => {
    await world.proxy.close(); // the controller talks to Consul only through this proxy
    const ready = await waitFor(
      async () => {
        const r = await controllerGet(controller, "/readyz");
        return r.status === 503 ? r : undefined;
      },
      { timeoutMs: 20_000, what: "/readyz 503" },
    );
    assert.match(ready.body, /\[-\]consul failed: Consul unreachable/);
    assert.match(ready.body, /\[\+\]docker ok/);
    assert.equal((await controllerGet(controller, "/healthz")).status, 200, "a dependency outage is not a wedged loop");
  });
});
