/**
 * consul-template's `wait { min, max }` with a leading edge, per key: a
 * trigger after a quiet period fires at once; triggers within `minMs` of a
 * fire are collected and fire together `minMs` after the last of them, but
 * never later than `maxMs` after the first. A key is quiet again once `minMs`
 * passed after a fire with no trigger. So one change renders without delay and
 * a burst renders at most twice per window (its first change, then the rest).
 */
export class Debouncer {
  /** Keys inside a window: `first` is the first collected trigger (undefined: nothing collected yet). */
  private readonly windows = new Map<string, { first: number | undefined; timer: NodeJS.Timeout }>();

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly fire: (key: string) => void,
  ) {}

  trigger(key: string): void {
    const window = this.windows.get(key);
    if (window === undefined) {
      this.windows.set(key, { first: undefined, timer: this.close(key, this.minMs) });
      this.fire(key);
      return;
    }
    const now = Date.now();
    const first = window.first ?? now;
    clearTimeout(window.timer);
    window.first = first;
    window.timer = this.close(key, Math.max(0, Math.min(this.minMs, first + this.maxMs - now)));
  }

  cancel(key: string): void {
    const window = this.windows.get(key);
    if (window !== undefined) clearTimeout(window.timer);
    this.windows.delete(key);
  }

  stop(): void {
    for (const key of [...this.windows.keys()]) this.cancel(key);
  }

  /** After `delayMs`: fire what was collected and open a new window, or end a window that collected nothing. */
  private close(key: string, delayMs: number): NodeJS.Timeout {
    const timer = setTimeout(() => {
      const window = this.windows.get(key);
      if (window === undefined) return;
      if (window.first === undefined) {
        this.windows.delete(key);
        return;
      }
      window.first = undefined;
      window.timer = this.close(key, this.minMs);
      this.fire(key);
    }, delayMs);
    timer.unref();
    return timer;
  }
}
