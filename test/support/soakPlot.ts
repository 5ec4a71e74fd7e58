/**
 * The soak's plot: Vega-Lite spec -> SVG (vega's headless renderer) -> PNG
 * (resvg), all from npm packages, no browser. Three panels over time: RSS and
 * heap used (MB), open file descriptors and active handles, event-loop lag
 * p99 (ms, with the 50 ms limit); fault windows are shaded and the warm-up
 * end is a dashed rule.
 */
import { writeFileSync } from "node:fs";
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import { compile, type TopLevelSpec } from "vega-lite";

export interface SoakSample {
  /** Seconds since the controller started. */
  readonly t: number;
  readonly rssMb: number;
  readonly heapUsedMb: number;
  readonly openFds: number;
  readonly activeHandles: number;
  readonly lagP99Ms: number;
}

export interface FaultWindow {
  readonly kind: string;
  /** Seconds, same origin as the samples. */
  readonly from: number;
  readonly to: number;
}

interface Long {
  readonly t: number;
  readonly series: string;
  readonly value: number;
}

function panel(title: string, unit: string, rows: readonly Long[], windows: readonly FaultWindow[], warmupS: number, limit?: number): object {
  const layers: object[] = [
    {
      data: { values: windows },
      mark: { type: "rect", opacity: 0.18 },
      encoding: { x: { field: "from", type: "quantitative" }, x2: { field: "to" }, color: { field: "kind", type: "nominal", title: "fault window" } },
    },
    {
      data: { values: [{ t: warmupS }] },
      mark: { type: "rule", strokeDash: [4, 4], color: "#888" },
      encoding: { x: { field: "t", type: "quantitative" } },
    },
    {
      data: { values: rows },
      mark: { type: "line", point: { size: 12 } },
      encoding: {
        x: { field: "t", type: "quantitative", title: "seconds since controller start" },
        y: { field: "value", type: "quantitative", title: unit },
        strokeDash: { field: "series", type: "nominal", title: title },
      },
    },
  ];
  if (limit !== undefined) {
    layers.push({ data: { values: [{ y: limit }] }, mark: { type: "rule", color: "#c00" }, encoding: { y: { field: "y", type: "quantitative" } } });
  }
  return { title, width: 900, height: 180, layer: layers, resolve: { scale: { color: "independent", strokeDash: "independent" } } };
}

export async function soakPlotSvg(samples: readonly SoakSample[], windows: readonly FaultWindow[], warmupS: number, title: string): Promise<string> {
  const mem = samples.flatMap((s) => [
    { t: s.t, series: "RSS", value: s.rssMb },
    { t: s.t, series: "heap used", value: s.heapUsedMb },
  ]);
  const fds = samples.flatMap((s) => [
    { t: s.t, series: "open fds", value: s.openFds },
    { t: s.t, series: "active handles", value: s.activeHandles },
  ]);
  const lag = samples.map((s) => ({ t: s.t, series: "event-loop lag p99", value: s.lagP99Ms }));
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title,
    background: "white",
    vconcat: [
      panel("memory", "MB", mem, windows, warmupS),
      panel("descriptors and handles", "count", fds, windows, warmupS),
      panel("event-loop lag p99 (10 s windows)", "ms", lag, windows, warmupS, 50),
    ],
  } as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Writes `png` (and the SVG beside it, same name with .svg). */
export async function writeSoakPlot(
  png: string,
  samples: readonly SoakSample[],
  windows: readonly FaultWindow[],
  warmupS: number,
  title: string,
): Promise<void> {
  const svg = await soakPlotSvg(samples, windows, warmupS, title);
  writeFileSync(png.replace(/\.png$/, ".svg"), svg);
  writeFileSync(png, new Resvg(svg, { background: "white", fitTo: { mode: "width", value: 1400 }, font: { loadSystemFonts: true } }).render().asPng());
}
