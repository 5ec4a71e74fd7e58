/**
 * /healthz and /readyz logic (LoopMonitor, Probes) and the recent-errors ring
 * fed by the real winston logger (redaction included).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoopMonitor } from "../../src/observability/liveness.js";
import { Probes } from "../../src/observability/probes.js";
import { RecentErrors } from "../../src/observability/recentErrors.js";
import { Telemetry } from "../../src/observability/telemetry.js";
import { BindingStatusStore } from "../../src/reconcilers/bindingStatus.js";
import { createLogger, registerSecret } from "../../src/runtime/logger.js";
import { FakeHealth } from "../support/fakes.js";

describe("LoopMonitor", () => {
  it("is healthy while idle, however long", () => {
    let now = 0;
    const m = new LoopMonitor(() => now);
    m.depth("registrar", 0);
    now = 10 * 3600_000;
    assert.deepEqual(m.check(60_000), { ok: true, problems: [] });
  });

  it("flags a reconcile that runs longer than the wedge limit, and clears it when it finishes", () => {
    let now = 0;
    const m = new LoopMonitor(() => now);
    m.reconcileStarted("renderer", "default/web");
    now = 59_000;
    assert.equal(m.check(60_000).ok, true);
    now = 61_000;
    const r = m.check(60_000);
    assert.equal(r.ok, false);
    assert.match(r.problems[0] ?? "", /controller renderer: reconcile of default\/web running for 61s/);
    m.reconcileFinished("renderer", "default/web");
    assert.equal(m.check(60_000).ok, true);
  });

  it("flags a queue with waiting keys that no worker takes; a take counts as progress", () => {
    let now = 0;
    const m = new LoopMonitor(() => now);
    m.depth("registrar", 3);
    now = 50_000;
    m.taken("registrar");
    m.depth("registrar", 2);
    now = 100_000;
    assert.equal(m.check(60_000).ok, true, "progress 50 s ago");
    now = 111_000;
    assert.match(m.check(60_000).problems.join(), /queue registrar: 2 key\(s\) waiting, none taken for 61s/);
    m.depth("registrar", 0);
    assert.equal(m.check(60_000).ok, true);
  });
});

function telemetryWith(leader: () => Promise<string>, synced = true): Telemetry {
  const t = new Telemetry();
  const containers = { synced: () => synced, list: () => [], get: () => undefined, select: () => [] };
  t.attach({
    mode: "docker-only",
    node: "n",
    instance: "i-test",
    endpoints: [{ node: "n", hostIP: "127.0.0.1", containers, identity: () => undefined, conflicts: () => [] }],
    bindings: { synced: () => synced, get: () => undefined, list: () => [], problems: () => [] },
    status: new BindingStatusStore(),
    containers,
    health: new FakeHealth(),
    consul: { leader },
    controllers: [],
  });
  return t;
}

describe("Probes", () => {
  it("is not ready before the manager attached its stores", async () => {
    const r = await new Probes(new Telemetry(), { wedgeAfterMs: 1000 }).ready();
    assert.equal(r.ok, false);
    assert.equal(r.checks[0]?.name, "manager");
  });

  it("is ready when sources are synced and Consul names a leader", async () => {
    const r = await new Probes(
      telemetryWith(() => Promise.resolve("127.0.0.1:8300")),
      { wedgeAfterMs: 1000 },
    ).ready();
    assert.deepEqual(
      r.checks.map((c) => [c.name, c.ok]),
      [
        ["bindings", true],
        ["docker", true],
        ["consul", true],
      ],
    );
    assert.equal(r.ok, true);
  });

  it("reports each failing dependency: no leader, Consul down, Consul hanging, sources not synced", async () => {
    const noLeader = await new Probes(
      telemetryWith(() => Promise.resolve("")),
      { wedgeAfterMs: 1000 },
    ).ready();
    assert.match(noLeader.checks.find((c) => c.name === "consul")?.message ?? "", /no leader/);
    const down = await new Probes(
      telemetryWith(() => Promise.reject(new Error("connect ECONNREFUSED"))),
      { wedgeAfterMs: 1000 },
    ).ready();
    assert.match(down.checks.find((c) => c.name === "consul")?.message ?? "", /Consul unreachable: connect ECONNREFUSED/);
    const hanging = await new Probes(
      telemetryWith(() => new Promise<string>(() => undefined)),
      { wedgeAfterMs: 1000, consulTimeoutMs: 50 },
    ).ready();
    assert.match(hanging.checks.find((c) => c.name === "consul")?.message ?? "", /no answer within 50 ms/);
    const unsynced = await new Probes(
      telemetryWith(() => Promise.resolve("x"), false),
      { wedgeAfterMs: 1000 },
    ).ready();
    assert.deepEqual(
      unsynced.checks.filter((c) => !c.ok).map((c) => c.name),
      ["bindings", "docker"],
    );
  });

  it("caches the Consul answer briefly so probes cannot flood the agent", async () => {
    let calls = 0;
    const probes = new Probes(
      telemetryWith(() => {
        calls++;
        return Promise.resolve("x");
      }),
      { wedgeAfterMs: 1000, cacheMs: 60_000 },
    );
    await probes.ready();
    await probes.ready();
    assert.equal(calls, 1);
  });
});

describe("RecentErrors", () => {
  it("keeps the newest warnings/errors of the real logger, redacted, allowlisted fields only", async () => {
    registerSecret("s3cr3t-token-value");
    const logger = createLogger({ level: "info", format: "json" });
    logger.transports.forEach((tr) => (tr.silent = true)); // keep the test output clean; the capture transport is added after
    const ring = new RecentErrors(3);
    ring.captureLogs(logger);
    ring.captureLogs(logger); // idempotent
    logger.info("not captured");
    logger.warn("consul write failed with s3cr3t-token-value", { binding: "default/web", reason: "ConsulRejected", token: "abc", env: { X: "y" } });
    for (let i = 0; i < 3; i++) logger.error(`boom ${i}`, { controller: "registrar", key: `k${i}` });
    await new Promise((r) => setImmediate(r));
    const list = ring.list();
    assert.deepEqual(
      list.map((e) => e.message),
      ["boom 2", "boom 1", "boom 0"],
      "newest first, capacity 3",
    );
    ring.push({ at: "t", level: "warn", message: "x", fields: {} });
    const all = new RecentErrors(10);
    all.captureLogs(logger);
    logger.warn("token s3cr3t-token-value leaked?", { binding: "default/web", token: "abc", env: { X: "y" } });
    await new Promise((r) => setImmediate(r));
    const e = all.list()[0];
    assert.equal(e?.message, "token [REDACTED] leaked?");
    assert.deepEqual(e.fields, { binding: "default/web" }, "token and env are not kept");
    assert.equal(e.level, "warn");
  });
});
