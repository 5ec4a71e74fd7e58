/** Parses Go/Consul-style durations ("500ms", "10s", "1m", "1h", "1m30s") to milliseconds. Pure. */
export function parseDurationMs(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    const n = Number(m[1]);
    const unit = m[2];
    total += n * (unit === "ms" ? 1 : unit === "s" ? 1000 : unit === "m" ? 60_000 : 3_600_000);
    matched = re.lastIndex;
  }
  if (text.length === 0 || matched !== text.length) throw new Error(`invalid duration ${JSON.stringify(text)} (use e.g. 500ms, 10s, 1m)`);
  return total;
}
