/**
 * manifests/grafana/dockbind-dashboard.json is built on the metrics the
 * controller exports: every metric name in every panel query exists in the
 * registry (the PromQL itself is checked against a real Prometheus in
 * test/integration/metrics-prometheus.test.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Telemetry } from "../../src/observability/telemetry.js";
import { dashboardQueries, loadDashboard } from "../support/dashboard.js";

describe("Grafana dashboard", () => {
  it("is valid JSON with unique panel ids and a Prometheus datasource variable", () => {
    const d = loadDashboard();
    assert.equal(d.uid, "dockbind-controller");
    const ids = d.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length);
    assert.ok(d.templating.list.some((v) => v.name === "datasource" && v.type === "datasource"));
  });

  it("queries only metrics the controller exports, and shows every exported controller metric", async () => {
    const t = new Telemetry();
    const exported = new Set((await t.metrics.registry.getMetricsAsJSON()).map((m) => m.name));
    const referenced = new Set<string>();
    for (const q of dashboardQueries()) {
      for (const m of q.expr.matchAll(/\b([a-z_:][a-z0-9_:]*)\s*(?:\{|\[)/g)) {
        const name = (m[1] ?? "").replace(/_(bucket|count|sum)$/, "");
        if (["by", "without", "ignoring", "on"].includes(name)) continue;
        referenced.add(name);
        assert.ok(exported.has(name), `${q.title}: ${name} is not exported`);
      }
    }
    for (const name of [...exported].filter(
      (n) => /^(controller_runtime|workqueue|leader_election|dockbind)_/.test(n) && n !== "controller_runtime_max_concurrent_reconciles",
    )) {
      assert.ok(referenced.has(name), `dashboard does not show ${name}`);
    }
  });
});
