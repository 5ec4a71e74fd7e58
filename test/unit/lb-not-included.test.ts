/**
 * A generated file the load balancer's live configuration does not include
 * (src/actuators/lb/configWriter.ts, NotIncluded):
 * - `nginx -T`'s dump lists every file nginx loaded (`loadedFiles`);
 * - a file written where no include covers it stays in place, is not reloaded
 *   and fails with NotIncluded (a retry cap: the fix is outside the controller);
 * - once an include covers it (the same path, or the same file through a
 *   symlinked directory), the next apply of the same bytes reloads;
 * - removing a file, or a driver that does not list files (haproxy), never
 *   fails this way.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { LbConfigWriter } from "../../src/actuators/lb/configWriter.js";
import { LbError, NOT_INCLUDED_RETRY_CAP_MS } from "../../src/actuators/lb/errors.js";
import { loadedFiles } from "../../src/actuators/lb/nginxDriver.js";
import { retryCapOf } from "../../src/runtime/errors.js";
import { FakeDriver } from "../support/fakes.js";

const notIncluded = (err: unknown): boolean => err instanceof LbError && err.reason === "NotIncluded" && /does not include it/.test(err.message);

describe("nginx -T: the files nginx loaded", () => {
  it("reads every `# configuration file PATH:` header of the dump, and nothing else", () => {
    const dump = [
      "# configuration file /etc/nginx/nginx.conf:",
      "http {",
      "    include /etc/nginx/conf.d/*.conf;",
      "}",
      "",
      "# configuration file /etc/nginx/conf.d/web.conf:",
      "upstream web { server 10.0.0.1:80; }  # configuration file /not/a/header.conf:",
      "# configuration file /etc/nginx/mime.types:",
    ].join("\n");
    assert.deepEqual([...loadedFiles(dump)], ["/etc/nginx/nginx.conf", "/etc/nginx/conf.d/web.conf", "/etc/nginx/mime.types"]);
  });
});

describe("LbConfigWriter: a file no include covers", () => {
  it("stays in place unreloaded with NotIncluded, and is reloaded by the next apply once an include covers it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-notincl-"));
    const path = join(dir, "web.conf");
    const driver = new FakeDriver("nginx");
    driver.loaded = new Set(["/etc/nginx/nginx.conf"]);
    const writer = new LbConfigWriter(driver, {}, { sharedLiveCheckMs: 0 });
    await assert.rejects(writer.apply({ path, text: "upstream web {}\n" }), notIncluded);
    assert.equal(readFileSync(path, "utf8"), "upstream web {}\n", "the valid file stays");
    assert.equal(driver.reloads, 0, "not reloaded");
    await assert.rejects(writer.apply({ path, text: "upstream web {}\n" }), notIncluded, "still pending, checked again");
    driver.loaded = new Set(["/etc/nginx/nginx.conf", path]);
    assert.deepEqual(await writer.apply({ path, text: "upstream web {}\n" }), { changed: false, reloaded: true });
    assert.equal(driver.reloads, 1);
    assert.deepEqual(await writer.apply({ path, text: "upstream web {}\n" }), { changed: false, reloaded: false }, "then converged");
  });

  it("another file's reload meanwhile does not make it look converged: it is checked and reloaded once included", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-notincl-"));
    const path = join(dir, "web.conf");
    const other = join(dir, "api.conf");
    const driver = new FakeDriver("nginx");
    driver.loaded = new Set([other]);
    const writer = new LbConfigWriter(driver, {}, { sharedLiveCheckMs: 0 });
    await assert.rejects(writer.apply({ path, text: "web\n" }), notIncluded);
    assert.deepEqual(await writer.apply({ path: other, text: "api\n" }), { changed: true, reloaded: true }, "a reload that clears every pending flag");
    await assert.rejects(writer.apply({ path, text: "web\n" }), notIncluded, "still not included: still reported");
    driver.loaded = new Set([other, path]);
    assert.deepEqual(await writer.apply({ path, text: "web\n" }), { changed: false, reloaded: true }, "included now: reloaded");
    assert.deepEqual(await writer.apply({ path, text: "web\n" }), { changed: false, reloaded: false });
  });

  it("counts a file nginx reached through a symlinked directory as included", async () => {
    const root = mkdtempSync(join(tmpdir(), "dockbind-notincl-"));
    mkdirSync(join(root, "real"));
    symlinkSync(join(root, "real"), join(root, "alias"));
    const driver = new FakeDriver("nginx");
    driver.loaded = new Set([join(root, "alias", "web.conf")]);
    const writer = new LbConfigWriter(driver);
    assert.deepEqual(await writer.apply({ path: join(root, "real", "web.conf"), text: "x\n" }), { changed: true, reloaded: true });
  });

  it("never fails a removal, nor a driver that does not list its files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-notincl-"));
    const path = join(dir, "web.conf");
    const driver = new FakeDriver("haproxy");
    const writer = new LbConfigWriter(driver);
    assert.deepEqual(await writer.apply({ path, text: "backend web\n" }), { changed: true, reloaded: true });
    driver.loaded = new Set();
    assert.deepEqual(await writer.remove(path), { changed: true, reloaded: true });
    assert.equal(existsSync(path), false);
  });

  it("files awaiting an include share one recent check of the LB, a pending reload never does", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-notincl-"));
    const driver = new FakeDriver("nginx");
    let checks = 0;
    const inner = driver.validateLive.bind(driver);
    driver.validateLive = () => {
      checks++;
      return inner();
    };
    driver.loaded = new Set();
    const writer = new LbConfigWriter(driver, {}, { sharedLiveCheckMs: 60_000 });
    const paths = ["a", "b", "c"].map((n) => join(dir, `${n}.conf`));
    for (const p of paths) await assert.rejects(writer.apply({ path: p, text: "x\n" }), notIncluded);
    assert.equal(checks, 3, "each new file is checked");
    for (const p of paths) await assert.rejects(writer.apply({ path: p, text: "x\n" }), notIncluded);
    assert.equal(checks, 6, "still pending a reload: each retry checks");
    driver.loaded = new Set([join(dir, "other.conf")]);
    assert.deepEqual(
      await writer.apply({ path: join(dir, "other.conf"), text: "y\n" }),
      { changed: true, reloaded: true },
      "a reload clears the pending flags",
    );
    const after = checks;
    for (const p of paths) await assert.rejects(writer.apply({ path: p, text: "x\n" }), notIncluded);
    assert.equal(checks, after, "no reload pending, only the include awaited: the recent check answers");
  });

  it("carries a retry cap", () => {
    assert.equal(retryCapOf(new LbError("NotIncluded", "x")), NOT_INCLUDED_RETRY_CAP_MS);
  });
});
