import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { LbConfigWriter } from "../../src/actuators/lb/configWriter.js";
import { FakeDriver } from "../support/fakes.js";

describe("LbConfigWriter minReloadIntervalMs", () => {
  it("defers a change that would reload again too soon, writing nothing", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-writer-"));
    const path = join(dir, "web.conf");
    const driver = new FakeDriver("nginx");
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
    const driver = new FakeDriver("nginx");
    const writer = new LbConfigWriter(driver);
    assert.deepEqual(await writer.apply({ path: join(dir, "a.conf"), text: "a\n", minReloadIntervalMs: 60_000 }), { changed: true, reloaded: true });
  });

  it("a change that removes servers waits at most minReloadIntervalMs, an addition the burst's longer gap", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-writer-"));
    const path = join(dir, "web.conf");
    const driver = new FakeDriver("nginx");
    const writer = new LbConfigWriter(driver);
    // A change within min of the first reload waits; the reload that ends that wait makes the gap max.
    const pacing = { minReloadIntervalMs: 200, maxReloadIntervalMs: 60_000 };
    await writer.apply({ path, text: "a\n", ...pacing });
    const early = await writer.apply({ path, text: "a b\n", ...pacing });
    assert.ok(early.deferredMs !== undefined && early.deferredMs <= 200, String(early.deferredMs));
    await new Promise((r) => setTimeout(r, 250)); // past min: the deferred change goes through...
    assert.deepEqual(await writer.apply({ path, text: "a b\n", ...pacing }), { changed: true, reloaded: true });
    // ...and the gap is 60 s now: an addition is deferred,
    const added = await writer.apply({ path, text: "a b c\n", ...pacing });
    assert.ok(added.deferredMs !== undefined && added.deferredMs > 59_000, String(added.deferredMs));
    // a removal is not (once min has passed).
    await new Promise((r) => setTimeout(r, 250));
    assert.deepEqual(await writer.apply({ path, text: "b\n", ...pacing, removesServers: true }), { changed: true, reloaded: true });
    assert.equal(readFileSync(path, "utf8"), "b\n");
    assert.equal(driver.reloads, 3);
  });
});
