// HealthWatcher's connection budget: at most maxBlocking refs hold a blocking query
// (rendered refs first); the others are polled with non-blocking reads.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger } from "../../src/runtime/logger.js";
import { HealthWatcher } from "../../src/sources/consul/healthWatcher.js";
import { waitFor } from "../support/wait.js";
import type { ConsulApi, HealthQuery, HealthResult } from "../../src/ports/consul.js";

interface Call {
  readonly service: string;
  readonly blocking: boolean;
}

/** A Consul whose blocking reads block until aborted and whose non-blocking reads answer at once. */
function fakeConsul(calls: Call[]): ConsulApi {
  const healthService = async (q: HealthQuery): Promise<HealthResult> => {
    const blocking = q.index !== undefined;
    calls.push({ service: q.service, blocking });
    if (blocking) {
      await new Promise<void>((resolve) => {
        if (q.signal?.aborted === true) resolve();
        q.signal?.addEventListener("abort", () => {
          resolve();
        });
      });
      throw new Error("aborted");
    }
    return { index: "7", instances: [{ serviceId: `${q.service}-1`, node: "n", address: "10.0.0.1", port: 80, tags: [], status: "passing" }] };
  };
  return { healthService } as unknown as ConsulApi;
}

function watcher(calls: Call[], pollMs: number): HealthWatcher {
  return new HealthWatcher({
    consul: fakeConsul(calls),
    logger: createLogger({ level: "error", format: "json" }),
    waitMs: 60_000,
    backoff: { baseMs: 10, maxMs: 10 },
    debounce: { minMs: 1, maxMs: 5 },
    onChange: () => undefined,
    maxBlocking: 2,
    pollMs,
  });
}

const refs = ["a", "b", "c", "d"].map((service) => ({ service }));

describe("HealthWatcher connection budget", () => {
  it("holds at most maxBlocking blocking queries, rendered refs first, and polls the rest", async () => {
    const calls: Call[] = [];
    const w = watcher(calls, 40);
    w.setWanted(refs, (r) => r.service === "d");
    try {
      await waitFor(() => calls.filter((c) => !c.blocking && (c.service === "b" || c.service === "c")).length >= 6 || undefined, {
        timeoutMs: 5000,
        what: "polled refs read again",
      });
      const blocking = new Set(calls.filter((c) => c.blocking).map((c) => c.service));
      assert.deepEqual([...blocking].sort(), ["a", "d"], "the rendered ref d and the first other ref by key block; b and c are polled");
      for (const s of ["a", "b", "c", "d"]) assert.equal(w.get({ service: s })?.instances.length, 1, `${s} has a snapshot`);
    } finally {
      await w.stop();
    }
  });

  it("moves refs between blocking and polled when what is rendered changes, keeping their snapshots", async () => {
    const calls: Call[] = [];
    const w = watcher(calls, 60_000);
    w.setWanted(refs, (r) => r.service === "d");
    try {
      await waitFor(() => (refs.every((r) => w.get(r) !== undefined) ? true : undefined), { timeoutMs: 5000, what: "first reads" });
      await waitFor(() => (["a", "d"].every((s) => calls.some((c) => c.blocking && c.service === s)) ? true : undefined), {
        timeoutMs: 5000,
        what: "a and d blocking",
      });
      const switched = calls.length;
      w.setWanted(refs, (r) => r.service === "b" || r.service === "c");
      for (const s of ["a", "d"]) assert.ok(w.get({ service: s }) !== undefined, `${s}, now polled, keeps its snapshot`);
      await waitFor(() => (["b", "c"].every((s) => calls.slice(switched).some((c) => c.blocking && c.service === s)) ? true : undefined), {
        timeoutMs: 5000,
        what: "b and c blocking",
      });
      const after = calls.slice(switched).filter((c) => c.blocking);
      assert.deepEqual([...new Set(after.map((c) => c.service))].sort(), ["b", "c"], "a and d no longer block");
    } finally {
      await w.stop();
    }
  });
});

describe("HealthWatcher wake-ups that change nothing", () => {
  /** Every read answers at once with the same instance and a growing index, as an agent does when other services change. */
  function churningConsul(calls: Call[]): ConsulApi {
    let index = 10;
    const healthService = (q: HealthQuery): Promise<HealthResult> => {
      calls.push({ service: q.service, blocking: q.index !== undefined });
      index++;
      const answer: HealthResult = {
        index: String(index),
        instances: [{ serviceId: `${q.service}-1`, node: "n", address: "10.0.0.1", port: 80, tags: [], status: "passing" }],
      };
      // Answer on a later turn of the event loop, as an HTTP response does.
      return new Promise((resolve) => {
        setImmediate(() => {
          resolve(answer);
        });
      });
    };
    return { healthService } as unknown as ConsulApi;
  }

  it("a rendered ref blocks again at once; a ref only reported pauses quietMs after an unchanged answer", async () => {
    const calls: Call[] = [];
    const w = new HealthWatcher({
      consul: churningConsul(calls),
      logger: createLogger({ level: "error", format: "json" }),
      waitMs: 60_000,
      backoff: { baseMs: 10, maxMs: 10 },
      debounce: { minMs: 1, maxMs: 5 },
      onChange: () => undefined,
      quietMs: 300,
    });
    w.setWanted([{ service: "lb" }, { service: "status" }], (r) => r.service === "lb");
    try {
      await waitFor(() => calls.filter((c) => c.service === "lb").length >= 50 || undefined, { timeoutMs: 5000, what: "50 reads of the rendered ref" });
      const reported = calls.filter((c) => c.service === "status").length;
      assert.ok(reported >= 1 && reported <= 3, `the reported ref was read ${reported} times while the rendered one was read 50 times`);
      const before = calls.filter((c) => c.service === "status").length;
      await waitFor(() => calls.filter((c) => c.service === "status").length > before || undefined, {
        timeoutMs: 2000,
        what: "the reported ref read after its pause",
      });
    } finally {
      await w.stop();
    }
  });
});
