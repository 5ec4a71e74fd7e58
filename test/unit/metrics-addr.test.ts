/** --metrics-addr / DOCKBIND_METRICS_ADDR parsing (src/config/config.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, loadConfig, metricsAddrFrom, parseListenAddr } from "../../src/config/config.js";

describe("metrics address", () => {
  it("defaults to loopback 9464; flag beats environment; 'off' disables", () => {
    assert.deepEqual(metricsAddrFrom(undefined, {}), { host: "127.0.0.1", port: 9464 });
    assert.deepEqual(metricsAddrFrom(undefined, { DOCKBIND_METRICS_ADDR: "127.0.0.1:9500" }), { host: "127.0.0.1", port: 9500 });
    assert.deepEqual(metricsAddrFrom("127.0.0.2:0", { DOCKBIND_METRICS_ADDR: "127.0.0.1:9500" }), { host: "127.0.0.2", port: 0 });
    assert.equal(metricsAddrFrom("off", {}), undefined);
    assert.equal(metricsAddrFrom(undefined, { DOCKBIND_METRICS_ADDR: "off" }), undefined);
  });

  it("accepts host:port, [v6]:port and :port (all interfaces)", () => {
    assert.deepEqual(parseListenAddr("x", "[::1]:9464"), { host: "::1", port: 9464 });
    assert.deepEqual(parseListenAddr("x", ":9464"), { host: "0.0.0.0", port: 9464 });
    assert.deepEqual(parseListenAddr("x", "localhost:1"), { host: "localhost", port: 1 });
  });

  it("rejects malformed addresses with a ConfigError naming the flag", () => {
    for (const bad of ["9464", "127.0.0.1", "127.0.0.1:70000", "127.0.0.1:port", "::1:9464", ""]) {
      assert.throws(
        () => parseListenAddr("--metrics-addr", bad),
        (e: unknown) => e instanceof ConfigError && e.message.startsWith("--metrics-addr must be HOST:PORT"),
        bad,
      );
    }
  });

  it("is part of the controller config", () => {
    const c = loadConfig(["--docker-only", "--bindings", "/srv/b", "--metrics-addr", "127.0.0.1:9999"], {});
    assert.deepEqual(c.metricsAddr, { host: "127.0.0.1", port: 9999 });
    assert.equal(loadConfig(["--docker-only", "--bindings", "/srv/b", "--metrics-addr", "off"], {}).metricsAddr, undefined);
  });
});
