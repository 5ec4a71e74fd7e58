/** The panel queries of manifests/grafana/dockbind-dashboard.json, for the dashboard tests. */
import { readFileSync } from "node:fs";
import { join } from "node:path";

export const DASHBOARD = join(import.meta.dirname, "..", "..", "manifests/grafana/dockbind-dashboard.json");

export interface DashboardPanel {
  readonly type: string;
  readonly title: string;
  readonly id: number;
  readonly targets?: readonly { readonly expr: string }[];
}

export interface Dashboard {
  readonly uid: string;
  readonly panels: readonly DashboardPanel[];
  readonly templating: { readonly list: readonly { readonly name: string; readonly type: string }[] };
}

export function loadDashboard(): Dashboard {
  return JSON.parse(readFileSync(DASHBOARD, "utf8")) as Dashboard;
}

export function dashboardQueries(): { title: string; expr: string }[] {
  return loadDashboard().panels.flatMap((p) => (p.targets ?? []).map((t) => ({ title: p.title, expr: t.expr })));
}

/** A query with Grafana's variables replaced, ready for Prometheus' /api/v1/query. */
export function instantiate(expr: string, rateInterval = "1m"): string {
  return expr.replace(/\$__rate_interval/g, rateInterval).replace(/\$(job|instance|binding)\b/g, ".*");
}
