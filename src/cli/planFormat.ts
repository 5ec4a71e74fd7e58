/** Text rendering of a plan (`controller plan --output text`). Pure. */
import { conflictMessage } from "../domain/ownership.js";
import type { TrafficView } from "../render/trafficView.js";
import type { LbFileChange, PlanResult, RegistrationChange } from "./planCompute.js";

const SIGN: Readonly<Record<RegistrationChange["action"], string>> = { register: "+", update: "~", deregister: "-" };
const LB_SIGN: Readonly<Record<LbFileChange["action"], string>> = { create: "+", update: "~", remove: "-", unchanged: "=", error: "!" };

export interface PlanHeader {
  readonly node: string;
  readonly bindingsDir: string;
  readonly docker: string;
  readonly consul: string;
  readonly outputDir: string;
}

function indent(text: string, prefix: string): string {
  return text
    .split("\n")
    .filter((l, i, all) => !(l === "" && i === all.length - 1))
    .map((l) => `${prefix}${l}`)
    .join("\n");
}

function maintenanceSummary(plan: PlanResult): string {
  const enable = plan.maintenance.filter((m) => m.action === "enable").length;
  return plan.maintenance.length > 0 ? `; maintenance: ${enable} to enable, ${plan.maintenance.length - enable} to disable` : "";
}

/** The planned file's traffic: one line per split group, then one per server (weight, share of requests). */
function trafficLines(t: TrafficView): string[] {
  const groups = (t.split ?? []).map((g) => `    split group ${g.group} (${g.selector}): ${g.percent}% declared, ${g.share}% now over ${g.servers} server(s)`);
  const servers = t.servers.map((s) => {
    const host = s.address.includes(":") ? `[${s.address}]` : s.address;
    return `    server ${host}:${s.port} weight ${s.weight}: ${s.share}% of requests${s.group !== undefined ? ` (split group ${s.group})` : ""}`;
  });
  return [...groups, ...servers];
}

export function formatPlanText(plan: PlanResult, h: PlanHeader): string {
  const out: string[] = [
    `Plan for node ${h.node}: bindings ${h.bindingsDir}, Docker ${h.docker}, Consul ${h.consul}, LB files in ${h.outputDir}`,
    "(read-only: nothing was registered, written or reloaded)",
    "",
    "Consul registrations:",
  ];
  if (plan.registrations.length === 0) out.push("  no changes");
  let owner: string | undefined;
  for (const c of plan.registrations) {
    if (c.owner !== owner) {
      owner = c.owner;
      out.push(`  ${owner}:`);
    }
    const who = c.container !== undefined ? ` container ${c.container}` : "";
    const traffic = c.traffic !== undefined ? ` [${c.traffic}]` : "";
    out.push(`    ${SIGN[c.action]} ${c.action.padEnd(10)} ${c.serviceId}  ${c.service} ${c.endpoint}${who}${traffic}  (${c.reason})`);
  }
  if (plan.maintenance.length > 0) {
    out.push("", "Consul maintenance:");
    for (const m of plan.maintenance) {
      const who = m.container !== undefined ? ` container ${m.container}` : "";
      out.push(`    ${m.action === "enable" ? "+" : "-"} ${m.action.padEnd(10)} ${m.serviceId}${who}  (${m.binding}: ${m.reason})`);
    }
  }
  out.push("", "Load balancer files:");
  if (plan.loadBalancer.length === 0) out.push("  no load-balanced bindings");
  for (const f of plan.loadBalancer) {
    const what = f.action === "error" ? `cannot render, the controller would keep the current file: ${f.error ?? ""}` : f.action;
    out.push(`  ${LB_SIGN[f.action]} ${f.path} (${f.binding}): ${what}${f.datacenter !== undefined ? `, serving datacenter ${f.datacenter}` : ""}`);
    if (f.traffic !== undefined) out.push(...trafficLines(f.traffic));
    if (f.diff !== "") out.push(indent(f.diff, "    "));
  }
  const s = plan.summary;
  const reload = s.lbCreate + s.lbUpdate + s.lbRemove > 0 ? " (nginx would be validated and reloaded)" : "";
  out.push(
    "",
    plan.changes
      ? `Plan: ${s.register} to register, ${s.update} to update, ${s.deregister} to deregister; LB files: ${s.lbCreate} to create, ${s.lbUpdate} to update, ${s.lbRemove} to remove${reload}${maintenanceSummary(plan)}.`
      : "No changes: Consul and the load balancer files match the bindings.",
  );
  if (s.lbErrors > 0) out.push(`${s.lbErrors} binding(s) cannot be rendered (see "!" above).`);
  for (const c of plan.conflicts) out.push(`WARNING: node identity conflict: ${conflictMessage(c)}`);
  for (const w of plan.warnings) out.push(`WARNING: ${w.binding}: not registered (${w.reason}): ${w.message}`);
  return `${out.join("\n")}\n`;
}
