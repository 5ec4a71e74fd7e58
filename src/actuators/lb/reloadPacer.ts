/**
 * Reload pacing of one load balancer. Pure: the clock is an
 * argument.
 *
 * Contract:
 * - the first reload, and any reload at least `gap` after the previous one,
 *   may happen at once: a change after a quiet moment is never delayed;
 * - a burst is additions that arrive faster than the gap allows: a reload that
 *   carries an addition which had to wait (was deferred) sets the next gap to
 *   `maxMs`; any other reload sets it back to `minMs` (a removal that waited
 *   for `minMs` does not start a burst: the next start must not wait for the
 *   long gap because a stop came just before it).
 *   So within a burst the second reload comes at least `minMs` after the
 *   first, every later one at least `maxMs` after the previous one (a `maxMs`
 *   below `minMs` counts as `minMs`: constant spacing), and one change after
 *   a moment's quiet ends the burst: changes a few seconds apart (a stop, then
 *   a start) never wait for the long gap;
 * - `minMs` 0 means no pacing at all;
 * - a reload that takes a server out of rotation (a backend stopped or turned
 *   critical) waits at most `minMs` after the previous reload, never the
 *   burst's longer gap: only additions are held back for the long gap, so a
 *   dead or freed address leaves nginx within `minMs`, as with constant
 *   spacing (a freed IP may already belong to the next container).
 * With 1 s / 4 s, a burst of additions lasting T seconds costs reloads at
 * 0, 1, 5, 9, 13, … s: 3 reloads for T < 5 s (a burst of 100 container starts
 * within 2 s plus registration and the first health checks), then one per
 * 4 s, where a constant 1 s spacing costs one per second.
 */

export interface ReloadPacing {
  /** Gap after the first reload of a burst (--min-reload-interval). */
  readonly minMs: number;
  /** Cap of the growing gap (--max-reload-interval). */
  readonly maxMs: number;
}

export interface PacerState {
  /** Clock value of the last reload; undefined before the first. */
  readonly lastReloadAt: number | undefined;
  /** Required distance from the last reload to the next one. */
  readonly gapMs: number;
  /** An addition (a change removing no server) was deferred since the last reload: the next one ends a burst's wait. */
  readonly additionWaiting: boolean;
}

export const INITIAL_PACER: PacerState = { lastReloadAt: undefined, gapMs: 0, additionWaiting: false };

/**
 * How long a reload wanted at `now` must wait (0: reload now). `removesServers`:
 * the change takes a server out of rotation, so the gap is capped at `pacing.minMs`.
 */
export function reloadDelayMs(state: PacerState, now: number, pacing: ReloadPacing, removesServers = false): number {
  if (state.lastReloadAt === undefined) return 0;
  const gap = removesServers ? Math.min(state.gapMs, Math.max(0, pacing.minMs)) : state.gapMs;
  return Math.max(0, Math.ceil(gap - (now - state.lastReloadAt)));
}

/**
 * The state after a change was deferred (reloadDelayMs > 0). Only a waiting
 * addition makes a burst: a removal waits for `minMs` at most, and one that
 * waited must not hold the next start back for the long gap.
 */
export function afterDeferral(state: PacerState, removesServers: boolean): PacerState {
  return removesServers || state.additionWaiting ? state : { ...state, additionWaiting: true };
}

/** The state after a reload that happened at `now`: gap `maxMs` if it ended an addition's wait, else `minMs`. */
export function afterReload(state: PacerState, now: number, pacing: ReloadPacing): PacerState {
  const min = Math.max(0, pacing.minMs);
  return { lastReloadAt: now, gapMs: state.additionWaiting ? Math.max(min, pacing.maxMs) : min, additionWaiting: false };
}
