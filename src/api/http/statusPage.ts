/**
 * The status page: one server-rendered HTML document built from the
 * /api/status document. Self-contained (inline CSS, no scripts, no external
 * assets), refreshes itself every `refreshSeconds` with <meta http-equiv>,
 * read-only (no forms). Every value goes through the escaping `html` tag.
 * Elements carry data-* attributes (binding key, backend health) so tests and
 * scripts can read the page without parsing prose.
 */
import type { BackendView, BindingView, SplitShare, StatusDocument } from "../../observability/statusModel.js";
import type { ProbeReport } from "../../observability/probes.js";
import { html, SafeHtml } from "./html.js";
import { describeCandidates } from "../../domain/failover.js";

export interface StatusPageInput {
  readonly status: StatusDocument;
  readonly ready?: ProbeReport;
  readonly live?: ProbeReport;
  readonly refreshSeconds?: number;
}

const CSS = `
:root{--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#fff}
header{background:#24292f;color:#fff;padding:12px 24px;display:flex;gap:24px;align-items:baseline;flex-wrap:wrap}
header h1{margin:0;font-size:20px}header span{color:#d0d7de}main{padding:16px 24px;max-width:1200px}
.summary{display:flex;gap:12px;flex-wrap:wrap;margin-bottom:16px}.tile{border:1px solid var(--line);border-radius:6px;padding:8px 14px;background:var(--bg);min-width:150px}
.tile b{display:block;font-size:18px}.tile small{color:var(--muted)}
section.binding{border:1px solid var(--line);border-radius:6px;margin-bottom:16px}
section.binding>h2{margin:0;padding:10px 14px;font-size:16px;background:var(--bg);border-bottom:1px solid var(--line);display:flex;gap:12px;align-items:center;flex-wrap:wrap}
.meta{padding:8px 14px;color:var(--muted)}table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:5px 14px;border-top:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase}code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.badge{display:inline-block;border-radius:10px;padding:1px 9px;font-size:12px;font-weight:600;color:#fff;background:var(--muted)}
.passing,.True,.ok{background:var(--ok)}.warning,.pending,.Unknown,.maintenance{background:var(--warn)}.critical,.False,.bad,.skipped{background:var(--bad)}
.err td{color:var(--bad)}.banner{border:2px solid var(--bad);border-radius:6px;padding:10px 14px;margin-bottom:16px;background:#ffebe9}.banner h2{margin:0 0 6px;font-size:16px;color:var(--bad)}h3{font-size:15px;margin:20px 0 8px}footer{padding:12px 24px;color:var(--muted);font-size:12px}
`;

/** The stylesheet is a constant of this file (no user data), inserted as is. */
const STYLE = new SafeHtml(CSS);

function ago(iso: string | undefined, now: string): string {
  if (iso === undefined) return "never";
  const s = Math.max(0, Math.round((Date.parse(now) - Date.parse(iso)) / 1000));
  if (!Number.isFinite(s)) return iso;
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
}

function badge(cls: string, text: string): SafeHtml {
  return html`<span class="badge ${cls}">${text}</span>`;
}

/** Who holds an instance in maintenance and why (the reason is untrusted: escaped like every value). */
function maintenanceNote(b: BackendView): SafeHtml | string {
  const m = b.maintenance;
  return m === undefined
    ? ""
    : html` <span data-maintenance="${m.scope}">${m.scope === "node" ? "node maintenance" : "service maintenance"}: ${m.reason}</span>`;
}

/** Weight, split group and share of requests of one backend ("" when it has none of them). */
function backendTraffic(b: BackendView, split: readonly SplitShare[] | undefined): SafeHtml | string {
  const parts = [
    ...(b.weight !== undefined ? [`weight ${b.weight}`] : []),
    ...(b.group !== undefined ? [`group ${split?.[b.group]?.selector ?? String(b.group)}`] : []),
    ...(b.share !== undefined ? [`${b.share}% of requests`] : []),
  ];
  return parts.length === 0 ? "" : html` <small data-share="${b.share ?? ""}">${parts.join(" · ")}</small>`;
}

function backendRow(b: BackendView, split?: readonly SplitShare[]): SafeHtml {
  const where = b.port > 0 ? `${b.address}:${b.port}` : "—";
  const who = b.local ? b.containerName || b.container : "(not a local container)";
  return html`<tr data-backend="${b.serviceId || b.container}" data-backend-health="${b.health}">
<td>${who}${b.container !== "" ? html` <code>${b.container}</code>` : ""}</td><td><code>${where}</code>${backendTraffic(b, split)}</td>
<td>${badge(b.health, b.health)}${b.reason !== undefined ? html` ${b.reason}` : ""}${maintenanceNote(b)}</td><td><code>${b.serviceId}</code></td></tr>`;
}

/** `spec.service.datacenters`: the datacenter the load balancer serves, and every listed one. */
function datacentersLine(b: BindingView): SafeHtml | string {
  const d = b.datacenters;
  if (d === undefined) return "";
  return html`<br>serving datacenter <b data-serving-dc="${d.serving ?? ""}">${d.serving ?? "none yet"}</b>${d.failover ? html` ${badge("warning", "failover")}` : ""} <small>(${describeCandidates(d.candidates)})</small>`;
}

function bindingSection(b: BindingView, now: string): SafeHtml {
  const c = b.counts;
  const render = b.lastRender;
  const split = b.loadBalancer?.split;
  return html`<section class="binding" data-binding="${b.key}" data-ready="${b.ready.status}">
<h2><span>${b.key}</span> ${badge(b.ready.status, b.ready.status === "True" ? "Ready" : `Not ready: ${b.ready.reason}`)}${b.deleting !== undefined ? html` ${badge("critical", `Deleting in ${b.deleting.remainingSeconds}s`)}` : ""}
<small>service <code>${b.service}</code>${b.datacenter !== undefined ? html` dc <code>${b.datacenter}</code>` : ""}</small></h2>
<div class="meta">backends: <b data-count="desired">${c.desired}</b> desired · <b data-count="registered">${c.registered}</b> registered · <b data-count="passing">${c.passing}</b> passing${(c.maintenance ?? 0) > 0 ? html` · <b data-count="maintenance">${c.maintenance ?? 0}</b> in maintenance` : ""}
${b.loadBalancer !== undefined ? html` · nginx <code>${b.loadBalancer.listen}</code>${b.loadBalancer.protocol !== "http" ? html` <code data-protocol="${b.loadBalancer.protocol}">${b.loadBalancer.protocol}</code>` : ""} → <code>${b.loadBalancer.output}</code>` : " · no load balancer"}
${render !== undefined ? html` · last render: <b>${render.result}</b> (${render.servers} server(s)) ${ago(render.at, now)}` : ""}
${split !== undefined ? html`<br>split: ${split.map((g, i) => html`${i > 0 ? " · " : ""}<span data-split-group="${g.group}"><code>${g.selector}</code> ${g.percent}% (now ${g.share}% over ${g.servers} server(s))</span>`)}` : ""}
${datacentersLine(b)}
${b.ready.status !== "True" ? html`<br>${b.ready.message}` : ""}
${b.deleting !== undefined ? html`<br>gone from the bindings directory since ${b.deleting.since}: deleted at ${b.deleting.deleteAt} unless it comes back${b.deleting.mass ? " (most bindings vanished at once)" : ""}` : ""}</div>
<table><thead><tr><th>Container</th><th>Address</th><th>Health</th><th>Consul service ID</th></tr></thead><tbody>
${b.backends.length === 0 ? html`<tr><td colspan="4">no backends: no running container matches the selector</td></tr>` : b.backends.map((x) => backendRow(x, split))}
</tbody></table>
<div class="meta">${b.conditions.map((cond) => html`${cond.type}=${cond.status} <small>(${cond.reason})</small> `)}${conditionNotes(b)}</div>
</section>`;
}

/** Why a binding is Degraded, and the TLS certificate its load balancer serves (from LoadBalancerConfigured). */
function conditionNotes(b: BindingView): SafeHtml[] {
  const notes: SafeHtml[] = [];
  for (const c of b.conditions) {
    if (c.type === "Degraded" && c.status === "True") notes.push(html`<br>Degraded: ${c.message}`);
    const tls = c.type === "LoadBalancerConfigured" && c.status === "True" ? /; (TLS certificate .*)$/.exec(c.message)?.[1] : undefined;
    if (tls !== undefined) notes.push(html`<br>${tls}`);
  }
  return notes;
}

function probeTile(name: string, r: ProbeReport | undefined): SafeHtml {
  if (r === undefined) return html``;
  const failing = r.checks
    .filter((c) => !c.ok)
    .map((c) => c.message)
    .join("; ");
  return html`<div class="tile" data-probe="${name}">${badge(r.ok ? "ok" : "bad", r.ok ? "ok" : "failing")}<b>${name}</b><small>${failing || "all checks pass"}</small></div>`;
}

/** Every Docker endpoint's node, container count and sync state. */
function dockerEndpoints(s: StatusDocument): SafeHtml | string {
  const eps = s.sources.docker.endpoints;
  if (eps.length <= 1) return "";
  return html`<br>${eps.map((e, i) => html`${i > 0 ? " · " : ""}<span data-endpoint="${e.node}">${e.node}: ${e.containers}${e.synced ? "" : " NOT synced"}</span>`)}`;
}

/** A red banner per node identity conflict: which node, which other engine/instance, what to do. */
function conflictBanner(s: StatusDocument): SafeHtml | string {
  if (s.nodeIdentityConflicts.length === 0) return "";
  return html`<div class="banner" data-section="node-identity-conflicts">
<h2>Node identity conflict: another controller uses node name ${s.nodeIdentityConflicts.map((c, i) => html`${i > 0 ? ", " : ""}<code>${c.node}</code>`)}</h2>
${s.nodeIdentityConflicts.map(
  (
    c,
  ) => html`<p data-conflict-node="${c.node}" data-conflict-engine="${c.engine}" data-conflict-instance="${c.instance}">Node <code>${c.node}</code>: Docker engine <code>${c.engine}</code>, instance <code>${c.instance}</code>, ${c.registrations} registration(s) — never rewritten or deregistered by this controller.
Fix: give one of the two controllers its own <code>--node</code>. If that controller no longer exists (this one moved to a new Docker engine or instance ID), restart this one with <code>--adopt ${c.adoptWith}</code> once.</p>`,
)}
</div>`;
}

export function renderStatusPage(input: StatusPageInput): string {
  const s = input.status;
  const now = s.generatedAt;
  const ready = s.bindings.filter((b) => b.ready.status === "True").length;
  const passing = s.bindings.reduce((n, b) => n + b.counts.passing, 0);
  const reload = s.loadBalancer.lastReload;
  const refresh = input.refreshSeconds ?? 5;
  const page = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="${refresh}">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>dockbind status — ${s.node}</title><style>${STYLE}</style></head>
<body><header><h1>dockbind</h1><span>node <b>${s.node}</b></span><span>instance <code>${s.instance}</code></span><span>mode ${s.mode || "not running"}</span><span>started ${ago(s.startedAt, now)}</span></header>
<main>
${conflictBanner(s)}
<div class="summary">
<div class="tile"><b>${ready} / ${s.bindings.length}</b><small>bindings ready</small></div>
<div class="tile"><b>${passing}</b><small>backends passing</small></div>
<div class="tile" data-last-reload="${reload === undefined ? "none" : reload.ok ? "ok" : "failed"}"><b>${reload === undefined ? "none yet" : reload.ok ? "ok" : "FAILED"}</b><small>last nginx reload ${ago(reload?.at, now)}${reload?.message !== undefined ? html`: ${reload.message}` : ""}</small></div>
<div class="tile"><b>${s.sources.docker.containers}</b><small>running containers · docker ${s.sources.docker.synced ? "synced" : "NOT synced"}${dockerEndpoints(s)}</small></div>
${probeTile("live", input.live)}${probeTile("ready", input.ready)}
</div>
${s.bindings.length === 0 ? html`<p>No bindings loaded.</p>` : s.bindings.map((b) => bindingSection(b, now))}
${
  s.problems.length > 0
    ? html`<h3>Binding problems (${s.problems.length})</h3><table data-section="problems"><thead><tr><th>File</th><th>Field</th><th>Problem</th></tr></thead><tbody>
${s.problems.map((p) => html`<tr class="err"><td><code>${p.source}</code> #${p.document}</td><td><code>${p.field}</code></td><td>${p.message}</td></tr>`)}</tbody></table>`
    : ""
}
<h3>Recent warnings and errors (${s.recentErrors.length})</h3>
${
  s.recentErrors.length === 0
    ? html`<p>None.</p>`
    : html`<table data-section="errors"><thead><tr><th>When</th><th>Level</th><th>Message</th><th>Context</th></tr></thead><tbody>
${s.recentErrors.map(
  (e) =>
    html`<tr><td>${ago(e.at, now)}</td><td>${badge(e.level === "error" ? "bad" : "warning", e.level)}</td><td>${e.message}</td><td><code>${Object.entries(
      e.fields,
    )
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")}</code></td></tr>`,
)}</tbody></table>`
}
</main>
<footer>Generated ${now} · refreshes every ${refresh}s · read-only · <a href="/api/status">/api/status</a> · <a href="/metrics">/metrics</a> · <a href="/healthz">/healthz</a> · <a href="/readyz">/readyz</a></footer>
</body></html>
`;
  return page.value;
}
