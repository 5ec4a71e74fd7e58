/**
 * `controller status [--addr HOST:PORT] [--output text|json]`: asks a running
 * controller for /api/status and prints bindings with backend counts, backend
 * health and conditions. Read-only.
 * Exit codes: 0 printed, 1 controller unreachable or not a dockbind status
 * answer, 2 usage error.
 */
import { request } from "node:http";
import { parseArgs } from "node:util";
import { metricsAddrFrom } from "../config/config.js";
import type { ProbeReport } from "../observability/probes.js";
import { STATUS_API_VERSION, type StatusDocument } from "../observability/statusModel.js";
import { errorMessage } from "../runtime/logger.js";
import { describeCandidates } from "../domain/failover.js";

const USAGE = `Usage: controller status [--addr HOST:PORT] [--output text|json] [--timeout SECONDS]

Prints the bindings, backends and conditions of a running controller, read
from its /api/status endpoint. Changes nothing.

  --addr HOST:PORT     the controller's --metrics-addr [DOCKBIND_METRICS_ADDR] (default 127.0.0.1:9464)
  --output text|json   text table (default) or the raw status document
  --timeout SECONDS    give up after this long (default 5)

Exit codes: 0 printed, 1 controller unreachable or answer not understood, 2 usage error.
`;

export type StatusAnswer = StatusDocument & { readonly probes?: { readonly live: ProbeReport; readonly ready: ProbeReport } };

function ago(iso: string | undefined, now: string): string {
  if (iso === undefined) return "never";
  const s = Math.max(0, Math.round((Date.parse(now) - Date.parse(iso)) / 1000));
  return Number.isFinite(s) ? `${s}s ago` : iso;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/** Human-readable rendering of a status document. */
export function formatStatusText(doc: StatusAnswer): string {
  const now = doc.generatedAt;
  const out: string[] = [];
  const ready = doc.probes?.ready;
  const failing = ready?.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.message}`) ?? [];
  out.push(
    `dockbind on node ${doc.node || "?"}${doc.instance !== "" ? ` instance ${doc.instance}` : ""} (${doc.mode || "not running"}), started ${ago(doc.startedAt, now)}`,
  );
  for (const c of doc.nodeIdentityConflicts) out.push(`NODE IDENTITY CONFLICT: ${c.message}`);
  if (ready !== undefined) out.push(`ready: ${ready.ok ? "yes" : `NO (${failing.join("; ")})`}`);
  const reload = doc.loadBalancer.lastReload;
  out.push(`last nginx reload: ${reload === undefined ? "none yet" : `${reload.ok ? "ok" : `FAILED: ${reload.message ?? ""}`} ${ago(reload.at, now)}`}`);
  out.push("");
  const rows: string[][] = [["BINDING", "SERVICE", "READY", "DESIRED", "REGISTERED", "PASSING", "LAST RENDER"]];
  for (const b of doc.bindings) {
    const r = b.lastRender;
    const readyCell =
      b.deleting !== undefined ? `Deleting (in ${b.deleting.remainingSeconds}s)` : b.ready.status === "True" ? "True" : `${b.ready.status} (${b.ready.reason})`;
    rows.push([
      b.key,
      b.service,
      readyCell,
      String(b.counts.desired),
      String(b.counts.registered),
      String(b.counts.passing),
      r === undefined ? "-" : `${r.result} ${ago(r.at, now)}`,
    ]);
  }
  out.push(doc.bindings.length === 0 ? "no bindings" : table(rows));
  for (const b of doc.bindings) {
    out.push("", `${b.key}:`);
    for (const be of b.backends) {
      const who = be.local ? be.containerName || be.container : "(other)";
      const where = be.port > 0 ? `${be.address}:${be.port}` : "-";
      const why = be.reason ?? (be.maintenance !== undefined ? `${be.maintenance.scope} maintenance: ${be.maintenance.reason}` : undefined);
      out.push(`  ${who.padEnd(24)} ${where.padEnd(22)} ${be.health}${why !== undefined ? ` (${why})` : ""}`);
    }
    if (b.backends.length === 0) out.push("  no backends");
    const dcs = b.datacenters;
    if (dcs !== undefined)
      out.push(`  serving datacenter: ${dcs.serving ?? "none yet"}${dcs.failover ? " (FAILOVER)" : ""} [${describeCandidates(dcs.candidates)}]`);
    out.push(`  conditions: ${b.conditions.map((c) => `${c.type}=${c.status}(${c.reason})`).join(" ")}`);
    if (b.ready.status !== "True") out.push(`  not ready: ${b.ready.message}`);
    if (b.deleting !== undefined) {
      out.push(
        `  deleting: gone from the bindings directory since ${b.deleting.since}; deleted in ${b.deleting.remainingSeconds}s unless it comes back${b.deleting.mass ? " (held: most bindings vanished at once)" : ""}`,
      );
    }
  }
  if (doc.problems.length > 0) {
    out.push("", "binding problems:");
    for (const p of doc.problems) out.push(`  ${p.source} (document ${p.document}): ${p.field}: ${p.message}`);
  }
  if (doc.recentErrors.length > 0) {
    out.push("", `recent warnings/errors (${doc.recentErrors.length}, newest first):`);
    for (const e of doc.recentErrors.slice(0, 10))
      out.push(
        `  ${e.at} ${e.level} ${e.message}${Object.entries(e.fields)
          .map(([k, v]) => ` ${k}=${v}`)
          .join("")}`,
      );
  }
  return `${out.join("\n")}\n`;
}

/** GET `url` with node:http (fetch refuses some ports), body as text; rejects on non-200 or timeout. */
function getText(url: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: "GET", agent: false, headers: { accept: "application/json" } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => {
        if (res.statusCode === 200) resolve(Buffer.concat(chunks).toString("utf8"));
        else reject(new Error(`HTTP ${res.statusCode ?? 0}`));
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

export async function runStatus(argv: readonly string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { addr: { type: "string" }, output: { type: "string", short: "o" }, timeout: { type: "string" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`controller status: ${errorMessage(err)}\n\n${USAGE}`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return 0;
  }
  const output = values.output ?? "text";
  const timeoutS = Number(values.timeout ?? "5");
  let addr;
  try {
    addr = metricsAddrFrom(values.addr);
    if (output !== "text" && output !== "json") throw new Error(`--output must be text or json (got ${JSON.stringify(output)})`);
    if (!(timeoutS > 0)) throw new Error("--timeout must be a positive number of seconds");
    if (addr === undefined) throw new Error("the metrics address is off; pass --addr HOST:PORT");
  } catch (err) {
    process.stderr.write(`controller status: ${errorMessage(err)}\n\n${USAGE}`);
    return 2;
  }
  const host = addr.host === "0.0.0.0" ? "127.0.0.1" : addr.host === "::" ? "::1" : addr.host;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${addr.port}/api/status`;
  let doc: StatusAnswer;
  try {
    doc = JSON.parse(await getText(url, timeoutS * 1000)) as StatusAnswer;
    if ((doc as { apiVersion?: unknown }).apiVersion !== STATUS_API_VERSION) throw new Error("the answer is not a dockbind status document");
  } catch (err) {
    process.stderr.write(`controller status: cannot read ${url}: ${errorMessage(err)}\n`);
    return 1;
  }
  process.stdout.write(output === "json" ? `${JSON.stringify(doc, null, 2)}\n` : formatStatusText(doc));
  return 0;
}
