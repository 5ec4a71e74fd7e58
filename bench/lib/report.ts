/** Collects bench figures and renders the closing side-by-side table with targets and ratios. */
import { percentile } from "../stats.js";
import type { BurstCounters, Counters } from "./contender.js";
import type { FleetResult } from "./fleet.js";
import type { P5Result } from "./p5.js";

interface Row {
  readonly figure: string;
  /** Value per contender name. */
  readonly values: Readonly<Record<string, string>>;
  readonly ratio: string;
  readonly target: string;
  readonly verdict: string;
}

const ms = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(0)} ms` : "n/a");
/** Milliseconds with one decimal below 20 ms, where a whole millisecond is a large share of the figure. */
const fineMs = (v: number): string => (Number.isFinite(v) && v < 20 ? `${v.toFixed(1)} ms` : ms(v));

/** P1's bound at percentile `p` (p50 ≤ 5 ms, p90 ≤ 10 ms) and, with registrator's figure `reg`, never behind it. */
function p1Target(p: number, ours: number, reg: number | undefined): { target: string; verdict: string } {
  const bound = p === 50 ? 5 : p === 90 ? 10 : undefined;
  const target = [bound === undefined ? "" : `≤ ${bound} ms`, "≤ registrator"].filter((t) => t !== "").join(", ");
  const within = bound === undefined || ours <= bound;
  if (reg === undefined) return { target, verdict: within ? "PASS (no registrator to compare)" : "MISS" };
  return { target, verdict: within && ours <= reg ? "PASS" : "MISS" };
}

/** P2's bound: p50 ≤ 100 ms and at least 5x faster than the anchor. */
function p2Target(p: number, ours: number, anchor: number | undefined): { target: string; verdict: string } {
  if (p !== 50) return { target: "", verdict: "" };
  const target = "≤ 100 ms, ≥ 5x anchor";
  if (anchor === undefined) return { target, verdict: "n/a" };
  return { target, verdict: ours <= 100 && ours * 5 <= anchor ? "PASS" : "MISS" };
}
const ratio = (anchor: number | undefined, ours: number | undefined): string =>
  anchor === undefined || ours === undefined || !Number.isFinite(anchor) || !Number.isFinite(ours)
    ? ""
    : ours === 0
      ? anchor === 0
        ? "1.0x"
        : "∞"
      : `${(anchor / ours).toFixed(1)}x`;

export class Report {
  private readonly rows: Row[] = [];
  private readonly notes: string[] = [];
  private readonly dockbind = "dockbind";

  note(s: string): void {
    if (s !== "") this.notes.push(s);
  }

  private anchorName(values: Readonly<Record<string, unknown>>): string | undefined {
    return Object.keys(values).find((k) => k !== this.dockbind);
  }

  /**
   * P1 and P2 at p50/p90/p99, each contender's own samples. Targets (issue figures): P1 p50 ≤ 5 ms,
   * p90 ≤ 10 ms and no percentile behind registrator; P2 p50 ≤ 100 ms and ≥ 5x faster than the anchor.
   */
  p1p2(lat: ReadonlyMap<string, { registered: number[]; served: number[] }>, runs: number): void {
    const d = lat.get(this.dockbind);
    const anchorKey = [...lat.keys()].find((k) => k !== this.dockbind);
    const a = anchorKey === undefined ? undefined : lat.get(anchorKey);
    const regIsRegistrator = anchorKey?.startsWith("registrator") === true;
    for (const [label, pick] of [
      ["P1 docker run → registered", "registered"],
      ["P2 docker run → served via nginx", "served"],
    ] as const) {
      for (const p of [50, 90, 99]) {
        const dv = d === undefined ? Number.NaN : percentile(d[pick], p);
        const av = a === undefined ? Number.NaN : percentile(a[pick], p);
        const values: Record<string, string> = { [this.dockbind]: fineMs(dv) };
        if (anchorKey !== undefined) values[anchorKey] = pick === "registered" && !regIsRegistrator ? "(dockbind)" : fineMs(av);
        const { target, verdict } =
          pick === "registered" ? p1Target(p, dv, regIsRegistrator ? av : undefined) : p2Target(p, dv, a === undefined ? undefined : av);
        this.rows.push({
          figure: `${label} p${p} (n=${d?.[pick].length ?? 0}/${runs})`,
          values,
          ratio: pick === "registered" && !regIsRegistrator ? "" : ratio(av, dv),
          target,
          verdict,
        });
      }
    }
  }

  /** `label` names the variant ("P3" on the real dockerd, "P3-sim" through the simulated Docker API). */
  p3(r: { startWindowMs: number; perContender: ReadonlyMap<string, BurstCounters> }, n: number, label = "P3"): void {
    const d = r.perContender.get(this.dockbind);
    const anchor = this.anchorName(Object.fromEntries(r.perContender));
    const a = anchor === undefined ? undefined : r.perContender.get(anchor);
    const row = (figure: string, f: (c: BurstCounters) => number, fmt: (v: number) => string, target = "", verdict = ""): void => {
      const values: Record<string, string> = { [this.dockbind]: d === undefined ? "n/a" : fmt(f(d)) };
      if (anchor !== undefined) values[anchor] = a === undefined ? "n/a" : fmt(f(a));
      this.rows.push({ figure, values, ratio: ratio(a === undefined ? undefined : f(a), d === undefined ? undefined : f(d)), target, verdict });
    };
    const title = `${label} ${n} started in ${(r.startWindowMs / 1000).toFixed(1)} s`;
    row(`${title}: nginx reloads`, (c) => c.reloads, String, "≤ 3", d === undefined ? "" : d.reloads <= 3 ? "PASS" : "MISS");
    row(`${title}: Consul writes`, (c) => c.writes, String);
    row(
      `${title}: converged after`,
      (c) => c.convergeMs,
      (v) => (Number.isNaN(v) ? "never" : ms(v)),
    );
    if (d?.registered !== undefined)
      row(
        `${title}: registered and passing`,
        (c) => c.registered ?? Number.NaN,
        (v) => `${v} of ${n}`,
        `${n}`,
      );
    if (d?.stale !== undefined) row(`${title}: left registered 60 s after all were removed`, (c) => c.stale ?? Number.NaN, String, "0");
    row(
      `${title}: CPU`,
      (c) => c.cpuS,
      (v) => `${v.toFixed(2)} s`,
    );
  }

  /** `label` names the variant ("P4" with bindings, "P4-compat" with registrator-compat registrations). */
  p4(m: ReadonlyMap<string, Counters>, n: number, idleS: number, label = "P4"): void {
    const d = m.get(this.dockbind);
    const anchor = this.anchorName(Object.fromEntries(m));
    const a = anchor === undefined ? undefined : m.get(anchor);
    const title = `${label} idle ${idleS} s, ${n} containers`;
    const row = (figure: string, f: (c: Counters) => number, fmt: (v: number) => string, target = "", verdict = ""): void => {
      const values: Record<string, string> = { [this.dockbind]: d === undefined ? "n/a" : fmt(f(d)) };
      if (anchor !== undefined) values[anchor] = a === undefined ? "n/a" : fmt(f(a));
      this.rows.push({ figure, values, ratio: ratio(a === undefined ? undefined : f(a), d === undefined ? undefined : f(d)), target, verdict });
    };
    row(`${title}: Consul writes`, (c) => c.writes, String, "0", d?.writes === 0 ? "PASS" : "MISS");
    row(`${title}: nginx reloads`, (c) => c.reloads, String, "0", d?.reloads === 0 ? "PASS" : "MISS");
    row(`${title}: Consul reads`, (c) => c.reads, String);
    row(
      `${title}: CPU`,
      (c) => c.cpuS,
      (v) => `${v.toFixed(2)} s`,
    );
  }

  p5(r: P5Result): void {
    const one = (figure: string, v: string, target = "", verdict = ""): void => {
      this.rows.push({ figure, values: { [this.dockbind]: v }, ratio: "", target, verdict });
    };
    const t = `P5 sim ${r.containers} containers, ${r.bindings} bindings (${r.registrations} reg.)`;
    const range = r.initialRuns > 1 ? `, median of ${r.initialRuns}: ${r.initialCpuMinS.toFixed(2)}-${r.initialCpuMaxS.toFixed(2)} s` : "";
    one(
      `${t}: initial full sync CPU`,
      `${r.initialCpuS.toFixed(2)} s (${r.initialWallS.toFixed(1)} s wall${range})`,
      "≤ 2 s",
      r.initialCpuS <= 2 ? "PASS" : "MISS",
    );
    one(`${t}: converged resync CPU`, `${r.resyncCpuS.toFixed(2)} s`, "≤ 2 s", r.resyncCpuS <= 2 ? "PASS" : "MISS");
    one(
      `${t}: peak RSS`,
      `${r.peakRssMiB.toFixed(0)} MiB (at start ${r.baselineRssMiB.toFixed(0)})`,
      "≤ 200 MB",
      r.peakRssMiB * 1.048576 <= 200 ? "PASS" : "MISS",
    );
    for (const e of r.events) one(`P5 events, ${e.bindings} bindings: CPU / 1000 events`, `${e.cpuMsPer1000.toFixed(0)} ms (${e.eventsPerS.toFixed(0)} ev/s)`);
  }

  fleet(r: FleetResult): void {
    const one = (figure: string, v: string, target = "", verdict = ""): void => {
      this.rows.push({ figure, values: { [this.dockbind]: v }, ratio: "", target, verdict });
    };
    const t = `Fleet ${r.engines} engines x ${r.containers / r.engines} containers, ${r.bindings} bindings (${r.registrations} reg.)`;
    const p = (q: number): number => percentile(r.latencyMs, q);
    one(`${t}: initial sync CPU`, `${r.initialCpuS.toFixed(2)} s (${r.initialWallS.toFixed(1)} s wall)`);
    one(`${t}: converged resync CPU`, `${r.resyncCpuS.toFixed(2)} s`, "≤ 2 s", r.resyncCpuS <= 2 ? "PASS" : "MISS");
    one(`${t}: peak RSS`, `${r.peakRssMiB.toFixed(0)} MiB`, "≤ 300 MB", r.peakRssMiB * 1.048576 <= 300 ? "PASS" : "MISS");
    one(
      `Fleet start -> registered, other engines churning ${r.churnAchievedPerS.toFixed(0)} ev/s (${r.churnSelectedOnly ? "selected containers only" : "random containers"}): p50/p90/p99 (n=${r.latencyMs.length})`,
      `${p(50).toFixed(1)} / ${p(90).toFixed(1)} / ${p(99).toFixed(1)} ms`,
      "p99 ≤ 200 ms",
      p(99) <= 200 ? "PASS" : "MISS",
    );
  }

  render(contenders: readonly string[]): string {
    const names = contenders.length > 0 ? contenders : [this.dockbind];
    const header = ["figure", ...names, "anchor/dockbind", "target", "verdict"];
    const lines = this.rows.map((r) => [r.figure, ...names.map((n) => r.values[n] ?? ""), r.ratio, r.target, r.verdict]);
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? "").length)));
    const fmt = (cells: readonly string[]): string => `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(" | ")} |`;
    return ["== dockbind vs anchors ==", fmt(header), fmt(widths.map((w) => "-".repeat(w))), ...lines.map(fmt), ...this.notes.map((n) => `note: ${n}`)].join(
      "\n",
    );
  }
}
