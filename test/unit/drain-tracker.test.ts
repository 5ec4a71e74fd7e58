import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { desiredForBinding } from "../../src/domain/desired.js";
import type { ContainerInfo, ServiceBinding } from "../../src/domain/types.js";
import { DrainTracker, isStopEvent } from "../../src/sources/docker/drain.js";

describe("isStopEvent", () => {
  it("kill with a terminating signal and stop are stop events", () => {
    assert.equal(isStopEvent("kill", { signal: "15" }), true);
    assert.equal(isStopEvent("kill", { signal: "9" }), true);
    assert.equal(isStopEvent("kill", { signal: "SIGQUIT" }), true);
    assert.equal(isStopEvent("kill", undefined), true);
    assert.equal(isStopEvent("stop", {}), true);
  });
  it("reload signals and other actions are not", () => {
    assert.equal(isStopEvent("kill", { signal: "1" }), false);
    assert.equal(isStopEvent("kill", { signal: "SIGHUP" }), false);
    assert.equal(isStopEvent("die", {}), false);
    assert.equal(isStopEvent("start", {}), false);
  });
});

describe("DrainTracker", () => {
  it("marks once, expires after the delay, forgets cleared containers", () => {
    const t = new DrainTracker(1000);
    assert.equal(t.mark("a", 0), true);
    assert.equal(t.mark("a", 10), false, "already draining");
    assert.equal(t.isDraining("a", 999), true);
    assert.equal(t.isDraining("a", 1000), false, "expired");
    assert.equal(t.mark("a", 1001), true, "can drain again after expiry");
    t.clear("a");
    assert.equal(t.isDraining("a", 1002), false);
  });
  it("a zero delay switches draining off", () => {
    const t = new DrainTracker(0);
    assert.equal(t.enabled(), false);
    assert.equal(t.mark("a", 0), false);
    assert.equal(t.isDraining("a", 0), false);
  });
});

describe("desired excludes draining containers", () => {
  const binding: ServiceBinding = {
    apiVersion: "dockbind.io/v1alpha1",
    kind: "ServiceBinding",
    metadata: { name: "web", namespace: "default" },
    spec: {
      service: { name: "web", tags: [], meta: {} },
      backends: { selector: { matchLabels: { app: "web" } }, port: 80, protocol: "tcp", addressMode: "published" },
      healthCheck: { type: "none", path: "/", interval: "1s", timeout: "1s", ttl: "10s", initialStatus: "passing" },
    },
  };
  const container = (id: string, draining?: boolean): ContainerInfo => ({
    id,
    name: id,
    image: "img",
    hostname: id,
    labels: { app: "web" },
    env: {},
    running: true,
    health: "none",
    ports: [{ privatePort: 80, protocol: "tcp", hostIP: "127.0.0.1", hostPort: 8000 + id.length }],
    networks: {},
    ...(draining !== undefined ? { draining } : {}),
  });
  it("a draining container is not a backend; a non-draining one is", () => {
    const r = desiredForBinding(binding, [container("aaaa"), container("bbbbbb", true), container("cc", false)], { node: "n", hostIP: "127.0.0.1" });
    assert.deepEqual(r.registrations.map((x) => x.meta.dockbind_container).sort(), ["aaaa", "cc"]);
    assert.deepEqual(r.skipped, []);
  });
});
