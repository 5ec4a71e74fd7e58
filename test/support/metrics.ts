/**
 * Reads one sample of a running controller's `/metrics` (Prometheus text
 * format), for assertions on counters and gauges without a Prometheus server.
 */
import type { ControllerHandle } from "./controller.js";
import { controllerGet } from "./controllerHttp.js";

/** Every sample of the exposition text as `name{labels}` -> value (labels as printed, in prom-client's order). */
export function parseSamples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    out.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return out;
}

/**
 * Sum of the samples of `name` whose labels include every `labels` pair
 * (0 when none: an unlabelled counter not incremented yet is not printed).
 */
export async function metricSum(c: ControllerHandle, name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
  const res = await controllerGet(c, "/metrics");
  if (res.status !== 200) throw new Error(`/metrics: HTTP ${res.status}`);
  let sum = 0;
  for (const [key, value] of parseSamples(res.body)) {
    const brace = key.indexOf("{");
    if ((brace === -1 ? key : key.slice(0, brace)) !== name) continue;
    if (Object.entries(labels).every(([k, v]) => key.includes(`${k}="${v}"`))) sum += value;
  }
  return sum;
}
