/**
 * Bounds how many tasks run at once: `run` starts its task when fewer than
 * `max` run, else waits its turn (first come, first served). A waiting caller
 * whose signal aborts leaves the queue and rejects with the signal's reason
 * without ever running its task. Never throws by itself.
 */
export class Limiter {
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly max: number) {}

  async run<T>(signal: AbortSignal, task: () => Promise<T>): Promise<T> {
    await this.acquire(signal);
    try {
      return await task();
    } finally {
      this.release();
    }
  }

  private acquire(signal: AbortSignal): Promise<void> {
    if (this.running < this.max) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.waiting.indexOf(granted);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason as Error);
      };
      // The slot is handed over by release(): `running` already counts it.
      const granted = (): void => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      if (signal.aborted) {
        reject(signal.reason as Error);
        return;
      }
      this.waiting.push(granted);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next !== undefined) next();
    else this.running--;
  }
}
