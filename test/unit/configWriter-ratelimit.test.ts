import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { LbConfigWriter } from "../../src/actuators/lb/configWriter.js";
import type { LoadBalancerDriver } from "../../src/actuators/lb/driver.js";

function fakeDriver(): LoadBalancerDriver & { reloads: number } {
  return {
    kind: "nginx",
    reloads: 0,
    validateCandidate: () => Promise.resolve(),
    validateLive: () => Promise.resolve(),
    reload() {
      this.reloads++;
      return Promise.resolve();
    },
  };
}

describe("LbConfigWriter minReloadIntervalMs", () => {
  it("defers a change that would reload again too soon, writing nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-writer-"));
    const path = join(dir, "web.conf");
    const driver = fakeDriver();
    const writer = new LbConfigWriter(driver);
    const first = await writer.apply({ path, text: "one\n", minReloadIntervalMs: 60_000 });
    assert.deepEqual(first, { changed: true, reloaded: true });
    const second = await writer.apply({ path, text: "two\n", minReloadIntervalMs: 60_000 });
    assert.equal(second.changed, false);
    assert.equal(second.reloaded, false);
    assert.ok(second.deferredMs !== undefined && second.deferredMs > 59_000 && second.deferredMs <= 60_000, String(second.deferredMs));
    assert.equal(readFileSync(path, "utf8"), "one\n", "deferred text is not written");
    assert.equal(driver.reloads, 1);
    // Equal bytes are never deferred: nothing to do.
    assert.deepEqual(await writer.apply({ path, text: "one\n", minReloadIntervalMs: 60_000 }), { changed: false, reloaded: false });
    // Without a limit the change goes through.
    assert.deepEqual(await writer.apply({ path, text: "two\n" }), { changed: true, reloaded: true });
    assert.equal(driver.reloads, 2);
  });

  it("never defers the first reload", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-writer-"));
    const driver = fakeDriver();
    const writer = new LbConfigWriter(driver);
    assert.deepEqual(await writer.apply({ path: join(dir, "a.conf"), text: "a\n", minReloadIntervalMs: 60_000 }), { changed: true, reloaded: true });
  });
});
