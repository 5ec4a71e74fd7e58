/**
 * consul-template's `wait { min, max }`: fire `minMs` after the last trigger,
 * but never later than `maxMs` after the first trigger of a burst. Per key.
 */
export class Debouncer {
  private readonly bursts = new Map<string, { first: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly fire: (key: string) => void,
  ) {}

  trigger(key: string): void {
    const now = Date.now();
    const burst = this.bursts.get(key);
    const first = burst?.first ?? now;
    if (burst !== undefined) clearTimeout(burst.timer);
    const delay = Math.max(0, Math.min(this.minMs, first + this.maxMs - now));
    const timer = setTimeout(() => {
      this.bursts.delete(key);
      this.fire(key);
    }, delay);
    timer.unref();
    this.bursts.set(key, { first, timer });
  }

  cancel(key: string): void {
    const burst = this.bursts.get(key);
    if (burst !== undefined) clearTimeout(burst.timer);
    this.bursts.delete(key);
  }

  stop(): void {
    for (const key of [...this.bursts.keys()]) this.cancel(key);
  }
}
