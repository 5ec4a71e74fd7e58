/** Small statistics helpers for bench output. Pure. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? Number.NaN;
}

export function summary(name: string, ms: readonly number[]): string {
  const f = (n: number): string => n.toFixed(0).padStart(6);
  return `${name.padEnd(34)} n=${String(ms.length).padStart(3)}  p50=${f(percentile(ms, 50))} ms  p90=${f(percentile(ms, 90))} ms  p99=${f(percentile(ms, 99))} ms  max=${f(Math.max(...ms))} ms`;
}
