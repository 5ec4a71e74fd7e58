/** The event-loop lag gauges report the delay beyond the sampling period: ~0 when idle, a block's length when blocked. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Registry } from "prom-client";
import { registerEventLoopLag } from "../../src/observability/eventLoopLag.js";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function gauge(reg: Registry, stat: string): Promise<number> {
  const m = await reg.getSingleMetric(`nodejs_eventloop_lag_${stat}_seconds`)?.get();
  return m?.values[0]?.value ?? Number.NaN;
}

describe("event-loop lag gauges", () => {
  it("read the delay beyond the period: a 150 ms block shows as ~150 ms, an idle loop as far less than the period", async () => {
    const reg = new Registry();
    registerEventLoopLag(reg, 20);
    await sleep(300);
    const until = Date.now() + 150;
    while (Date.now() < until) {
      // block the loop
    }
    await sleep(100);
    const max = await gauge(reg, "max");
    assert.ok(max >= 0.1 && max < 1, `max after a 150 ms block: ${max}`);
    await reg.metrics(); // a scrape resets the interval (after p99)
    await sleep(300);
    const p50 = await gauge(reg, "p50");
    assert.ok(p50 >= 0 && p50 < 0.015, `idle p50 beyond the 20 ms period: ${p50}`);
  });
});
