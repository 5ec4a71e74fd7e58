import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "../../src/config/config.js";

const BASE = ["--docker-only", "--bindings", "/srv/bindings", "--log-format", "json"];

describe("--min-reload-interval / --max-reload-interval", () => {
  it("default to 1 s and 4 s: reloads at 0, 1, 5, 9 s of a burst (removals are capped at 1 s by the pacer)", () => {
    const c = loadConfig(BASE, {});
    assert.equal(c.minReloadIntervalMs, 1000);
    assert.equal(c.maxReloadIntervalMs, 4000);
  });

  it("read DOCKBIND_MAX_RELOAD_INTERVAL, and the flag beats it", () => {
    assert.equal(loadConfig(BASE, { DOCKBIND_MAX_RELOAD_INTERVAL: "10s" }).maxReloadIntervalMs, 10_000);
    assert.equal(loadConfig([...BASE, "--max-reload-interval", "2500ms"], { DOCKBIND_MAX_RELOAD_INTERVAL: "10s" }).maxReloadIntervalMs, 2500);
  });

  it("refuse a malformed duration", () => {
    assert.throws(() => loadConfig([...BASE, "--max-reload-interval", "soon"], {}), ConfigError);
  });
});
