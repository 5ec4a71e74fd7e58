/**
 * The Consul agent liveness monitor (src/sources/consul/agentMonitor.ts), with
 * mocked timers and a leader() the test answers:
 * - while the agent answers it is probed every intervalMs, nothing else
 *   happens;
 * - unreachable() (another call got no answer) marks it down and probes at
 *   once; the first answer after that calls onRecovered, once;
 * - while down it is probed every downIntervalMs, and unreachable() (the
 *   probe's own failure reaches it too) does not wake it again.
 */
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { silentLogger } from "../../src/runtime/logger.js";
import { AgentMonitor } from "../../src/sources/consul/agentMonitor.js";

const UP_MS = 5_000;
const DOWN_MS = 1_000;

function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function setup(t: TestContext): { monitor: AgentMonitor; probes: () => number; recovered: () => number; answer: { leader: string | Error } } {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const answer: { leader: string | Error } = { leader: "127.0.0.1:8300" };
  let probes = 0;
  let recovered = 0;
  const monitor = new AgentMonitor({
    consul: {
      leader: () => {
        probes++;
        const a = answer.leader;
        return a instanceof Error ? Promise.reject(a) : Promise.resolve(a);
      },
    },
    logger: silentLogger(),
    intervalMs: UP_MS,
    downIntervalMs: DOWN_MS,
    onRecovered: () => recovered++,
  });
  const stop = new AbortController();
  const done = monitor.run(stop.signal);
  t.after(async () => {
    stop.abort();
    await done;
  });
  return { monitor, probes: () => probes, recovered: () => recovered, answer };
}

describe("consul agent monitor", () => {
  it("probes every intervalMs while the agent answers; an unreachable call wakes it, and the next answer re-asserts once", async (t) => {
    const s = setup(t);
    await flush();
    assert.equal(s.probes(), 1, "first probe at start");
    t.mock.timers.tick(UP_MS - 1);
    await flush();
    assert.equal(s.probes(), 1, "nothing before the period");
    t.mock.timers.tick(1);
    await flush();
    assert.equal(s.probes(), 2);
    s.monitor.unreachable("connect ECONNREFUSED");
    await flush();
    assert.equal(s.probes(), 3, "woken at once, not after the period");
    assert.equal(s.recovered(), 1, "the agent answered after a call found it unreachable: re-assert");
    t.mock.timers.tick(UP_MS);
    await flush();
    assert.equal(s.probes(), 4);
    assert.equal(s.recovered(), 1, "answering again and again re-asserts nothing");
  });

  it("while down probes every downIntervalMs, is not woken by more unreachable calls, and re-asserts when a leader answers", async (t) => {
    const s = setup(t);
    await flush();
    s.answer.leader = new Error("connect ECONNREFUSED");
    s.monitor.unreachable("connect ECONNREFUSED");
    await flush();
    assert.equal(s.probes(), 2);
    s.monitor.unreachable("connect ECONNREFUSED");
    await flush();
    assert.equal(s.probes(), 2, "already down: no busy loop");
    t.mock.timers.tick(DOWN_MS);
    await flush();
    assert.equal(s.probes(), 3, "down: the short period");
    s.answer.leader = "";
    t.mock.timers.tick(DOWN_MS);
    await flush();
    assert.equal(s.recovered(), 0, "an agent without a leader is still down");
    s.answer.leader = "127.0.0.1:8300";
    t.mock.timers.tick(DOWN_MS);
    await flush();
    assert.equal(s.probes(), 5);
    assert.equal(s.recovered(), 1);
  });
});
