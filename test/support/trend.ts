/**
 * Trend of a resource series over a soak (pure functions, no I/O).
 *
 * fitTrend(): ordinary least squares of value against time, with a 95 %
 * confidence interval on the slope. Soak samples are autocorrelated (a GC
 * sawtooth, a heap that grows for a minute then is collected), which makes the
 * plain OLS interval too narrow; the standard error is therefore inflated by
 * the lag-1 autocorrelation r of the residuals, sqrt((1+r)/(1-r)), with
 * n_eff = n(1-r)/(1+r) samples for the t quantile (the usual AR(1) correction).
 *
 * judgeTrend(): "an upward trend beyond noise" means the WHOLE 95 % interval
 * lies above the allowance: the lower bound of the slope, times the length of
 * the fitted window, is a growth larger than `allowance` (in the series'
 * units). Flat or noisy series pass (their interval includes small slopes);
 * a one-time step smaller than the allowance passes; steady growth larger than
 * the allowance over the window fails as soon as enough samples make its
 * interval narrow. The smallest growth a run can detect is therefore the
 * allowance plus the half-width of the interval times the window, which
 * both shrink relative to a leak as the run gets longer.
 */

export interface Point {
  /** Seconds. */
  readonly t: number;
  readonly v: number;
}

export interface TrendFit {
  readonly n: number;
  /** Length of the fitted window, seconds. */
  readonly spanS: number;
  /** Per hour, in the series' units. */
  readonly slopePerHour: number;
  readonly ciLowPerHour: number;
  readonly ciHighPerHour: number;
  /** Lag-1 autocorrelation of the residuals (clamped to [0, 0.95]). */
  readonly r1: number;
  /** Standard deviation of the residuals. */
  readonly residualSd: number;
  readonly mean: number;
}

export interface TrendVerdict {
  readonly fit: TrendFit;
  /** Growth over the window that counts as beyond noise (series' units). */
  readonly allowance: number;
  /** Lower bound of the growth over the window (ciLow × span). */
  readonly growthLow: number;
  readonly growing: boolean;
}

/** Two-sided 97.5 % quantile of Student's t for 1..30 degrees of freedom. */
const T975 = [
  12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069,
  2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042,
];

/** t quantile for a 95 % two-sided interval; fractional dof are rounded down (conservative). */
export function t975(dof: number): number {
  const d = Math.max(1, Math.floor(dof));
  if (d <= T975.length) return T975[d - 1] ?? 12.706;
  const z = 1.959964;
  // Cornish-Fisher expansion: accurate to 1e-3 beyond 30 dof.
  return z + (z ** 3 + z) / (4 * d) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * d * d);
}

export function fitTrend(points: readonly Point[]): TrendFit {
  const n = points.length;
  if (n < 3) throw new Error(`fitTrend: ${n} points, need at least 3`);
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const mv = points.reduce((s, p) => s + p.v, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.t - mt) ** 2;
    sxy += (p.t - mt) * (p.v - mv);
  }
  if (sxx === 0) throw new Error("fitTrend: all points at one time");
  const slope = sxy / sxx;
  const resid = points.map((p) => p.v - (mv + slope * (p.t - mt)));
  const sse = resid.reduce((s, e) => s + e * e, 0);
  let num = 0;
  for (let i = 1; i < n; i++) num += (resid[i] ?? 0) * (resid[i - 1] ?? 0);
  const r1 = sse === 0 ? 0 : Math.min(0.95, Math.max(0, num / sse));
  const inflate = Math.sqrt((1 + r1) / (1 - r1));
  const nEff = (n * (1 - r1)) / (1 + r1);
  const se = Math.sqrt(sse / (n - 2) / sxx) * inflate;
  const half = t975(Math.max(1, nEff - 2)) * se;
  const spanS = (points[n - 1]?.t ?? 0) - (points[0]?.t ?? 0);
  return {
    n,
    spanS,
    slopePerHour: slope * 3600,
    ciLowPerHour: (slope - half) * 3600,
    ciHighPerHour: (slope + half) * 3600,
    r1,
    residualSd: Math.sqrt(sse / (n - 2)),
    mean: mv,
  };
}

export function judgeTrend(points: readonly Point[], allowance: number): TrendVerdict {
  const fit = fitTrend(points);
  const growthLow = (fit.ciLowPerHour * fit.spanS) / 3600;
  return { fit, allowance, growthLow, growing: growthLow > allowance };
}
