/**
 * The nodejs_eventloop_lag_{min,max,mean,stddev,p50,p90,p99}_seconds gauges, measured by a
 * perf_hooks delay histogram sampling every `periodMs`, and reported as the delay BEYOND the
 * period (what a block cost), so an idle loop reads about 0 whatever the period.
 *
 * Why not prom-client's own: its histogram values include the period itself (an idle loop
 * reads ~10 ms at its default 10 ms period), and that 10 ms timer alone costs an idle controller
 * about half a percent of a core. A block shorter than the period is seen only when it overlaps
 * a sample: these gauges are a health signal, not a profiler. Reset after each scrape (a p99 per
 * scrape interval), like prom-client's.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Gauge, type Registry } from "prom-client";

const STATS = ["min", "max", "mean", "stddev", "p50", "p90", "p99"] as const;
type Stat = (typeof STATS)[number];

/** Replaces prom-client's histogram-based lag gauges in `registry` (call after collectDefaultMetrics). Never throws on a scrape. */
export function registerEventLoopLag(registry: Registry, periodMs: number): void {
  const h = monitorEventLoopDelay({ resolution: periodMs });
  h.enable();
  const periodNs = periodMs * 1e6;
  const beyond = (ns: number): number => (Number.isFinite(ns) ? Math.max(0, ns - periodNs) / 1e9 : 0);
  const value: Record<Stat, () => number> = {
    min: () => beyond(h.min),
    max: () => beyond(h.max),
    mean: () => beyond(h.mean),
    stddev: () => (Number.isFinite(h.stddev) ? h.stddev / 1e9 : 0),
    p50: () => beyond(h.percentile(50)),
    p90: () => beyond(h.percentile(90)),
    p99: () => beyond(h.percentile(99)),
  };
  for (const stat of STATS) {
    const name = `nodejs_eventloop_lag_${stat}_seconds`;
    registry.removeSingleMetric(name);
    new Gauge({
      name,
      help: `The ${stat} of event loop delays beyond the ${periodMs} ms sampling period since the last scrape, in seconds.`,
      registers: [registry],
      collect() {
        this.set(value[stat]());
        // The last gauge of a scrape starts the next interval.
        if (stat === "p99") h.reset();
      },
    });
  }
}
