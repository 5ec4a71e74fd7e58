import assert from "node:assert/strict";
import { describe as group, it } from "node:test";
import { converged, describe, tally, upstreamServers, type ConsulEntry, type LiveBackend } from "../../bench/lib/failMeasure.js";

const entry = (id: string, address: string, port = 80, status = "passing"): ConsulEntry => ({ id, address, port, status });
const live: LiveBackend[] = [
  { name: "b0", keys: ["10.0.0.2:80", "127.0.0.1:30001"] },
  { name: "b1", keys: ["10.0.0.3:80"] },
];

group("failure table accounting", () => {
  it("reads the server lines of an upstream, dockbind's and consul-template's alike", () => {
    const conf = `upstream web {
    server 10.0.0.2:80; # host:b0:80
    server 10.0.0.3:80 weight=2;
}
server {
    listen 127.0.0.1:8080;
}`;
    assert.deepEqual(upstreamServers(conf), ["10.0.0.2:80", "10.0.0.3:80"]);
  });

  it("an entry is matched by any pair of its backend (container IP or published port)", () => {
    const t = tally([entry("a", "127.0.0.1", 30001), entry("b", "10.0.0.3")], live, ["127.0.0.1:30001", "10.0.0.3:80"]);
    assert.equal(t.registered, 2);
    assert.equal(t.stale, 0);
    assert.ok(converged(t, 2));
  });

  it("counts duplicates, stale (by status) and missing backends, and stale upstream lines", () => {
    const t = tally([entry("a", "10.0.0.2"), entry("a2", "10.0.0.2", 80, "critical"), entry("gone", "10.0.0.9", 80, "critical")], live, [
      "10.0.0.2:80",
      "10.0.0.9:80",
    ]);
    assert.equal(t.registered, 1);
    assert.equal(t.passing, 1);
    assert.equal(t.duplicates, 1);
    assert.equal(t.stale, 1);
    assert.equal(t.stalePassing, 0);
    assert.deepEqual(t.missing, ["b1"]);
    assert.equal(t.renderedLive, 1);
    assert.equal(t.renderedStale, 1);
    assert.ok(!converged(t, 2));
    assert.equal(describe(t, 2), "1 of 2 registered, 1 duplicate, 1 stale (critical), upstream 1 of 2 + 1 stale");
  });

  it("a registered but critical backend is not converged", () => {
    const t = tally([entry("a", "10.0.0.2", 80, "critical"), entry("b", "10.0.0.3")], live, ["10.0.0.3:80"]);
    assert.equal(t.passing, 1);
    assert.ok(!converged(t, 2));
    assert.equal(describe(t, 2), "2 of 2 registered (1 passing), upstream 1 of 2");
  });
});
