/**
 * consul-template's `wait { min, max }`, per key, with an optional leading
 * edge: a trigger fires `minMs` after the last trigger of its burst, never
 * later than `maxMs` after the first; an `urgent` trigger that arrives when the
 * key is quiet (no fire and no trigger within the last `minMs`) fires at once.
 * Whatever the triggers, two fires of a key are at least `minMs` apart.
 */
export class Debouncer {
  /** Keys inside a window: `first` is the first collected trigger (undefined: nothing collected yet). */
  private readonly windows = new Map<string, { first: number | undefined; timer: NodeJS.Timeout }>();

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly fire: (key: string) => void,
  ) {}

  trigger(key: string, urgent = false): void {
    const window = this.windows.get(key);
    if (window === undefined && urgent) {
      this.windows.set(key, { first: undefined, timer: this.close(key, this.minMs) });
      this.fire(key);
      return;
    }
    const now = Date.now();
    const first = window?.first ?? now;
    if (window !== undefined) clearTimeout(window.timer);
    this.windows.set(key, { first, timer: this.close(key, Math.max(0, Math.min(this.minMs, first + this.maxMs - now))) });
  }

  cancel(key: string): void {
    const window = this.windows.get(key);
    if (window !== undefined) clearTimeout(window.timer);
    this.windows.delete(key);
  }

  stop(): void {
    for (const key of [...this.windows.keys()]) this.cancel(key);
  }

  /** After `delayMs`: fire what was collected and open a quiet window, or end a window that collected nothing. */
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
