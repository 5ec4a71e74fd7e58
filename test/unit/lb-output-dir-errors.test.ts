import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { LbConfigWriter } from "../../src/actuators/lb/configWriter.js";
import { FakeDriver } from "../support/fakes.js";
import { fsErrorReason, LbError, OUTPUT_DIR_RETRY_CAP_MS } from "../../src/actuators/lb/errors.js";
import { retryCapOf } from "../../src/runtime/errors.js";
import { WorkQueue } from "../../src/runtime/workqueue.js";

const fsError = (code: string): NodeJS.ErrnoException => Object.assign(new Error(`${code}: test`), { code });

const driver = new FakeDriver("nginx");

describe("output directory failures: reasons", () => {
  it("maps ENOSPC/EDQUOT to OutputDirFull, EROFS/EACCES/EPERM to OutputDirReadOnly, anything else to WriteFailed", () => {
    assert.equal(fsErrorReason(fsError("ENOSPC")), "OutputDirFull");
    assert.equal(fsErrorReason(fsError("EDQUOT")), "OutputDirFull");
    assert.equal(fsErrorReason(fsError("EROFS")), "OutputDirReadOnly");
    assert.equal(fsErrorReason(fsError("EACCES")), "OutputDirReadOnly");
    assert.equal(fsErrorReason(fsError("EPERM")), "OutputDirReadOnly");
    assert.equal(fsErrorReason(fsError("EISDIR")), "WriteFailed");
    assert.equal(fsErrorReason(new Error("no code")), "WriteFailed");
    assert.equal(fsErrorReason("not an error"), "WriteFailed");
  });

  it("OutputDir* errors carry a retry cap, the others none", () => {
    assert.equal(retryCapOf(new LbError("OutputDirFull", "x")), OUTPUT_DIR_RETRY_CAP_MS);
    assert.equal(retryCapOf(new LbError("OutputDirReadOnly", "x")), OUTPUT_DIR_RETRY_CAP_MS);
    assert.equal(retryCapOf(new LbError("WriteFailed", "x")), undefined);
    assert.equal(retryCapOf(new LbError("ValidationFailed", "x")), undefined);
    assert.equal(retryCapOf(new Error("x")), undefined);
  });

  it("a capped retry never waits longer than the cap, whatever the failure count", () => {
    const q = new WorkQueue({ name: "t", backoff: { baseMs: 200, maxMs: 60_000 } });
    const delays = Array.from({ length: 12 }, () => q.addRateLimited("k", OUTPUT_DIR_RETRY_CAP_MS));
    assert.deepEqual(delays.slice(0, 4), [200, 400, 800, 1600]);
    assert.ok(
      delays.slice(4).every((d) => d === OUTPUT_DIR_RETRY_CAP_MS),
      delays.join(","),
    );
    assert.equal(q.addRateLimited("other"), 200);
    q.shutDown();
  });
});

describe("LbConfigWriter after a filesystem failure", () => {
  it("reports the failure with its reason, then removes temp siblings this process left in that directory", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-writer-fs-"));
    const path = join(dir, "web.conf");
    // A directory where the file should be: reading it fails (EISDIR), a WriteFailed.
    mkdirSync(path);
    const leftover = `.web.conf.${process.pid}.0123456789ab.tmp`;
    writeFileSync(join(dir, leftover), "partial");
    const writer = new LbConfigWriter(driver);
    await assert.rejects(writer.apply({ path, text: "one\n" }), (err: unknown) => err instanceof LbError && err.reason === "WriteFailed");
    assert.ok(existsSync(join(dir, leftover)), "nothing is swept before a failure was seen");
    rmdirSync(path);
    assert.deepEqual(await writer.apply({ path, text: "one\n" }), { changed: true, reloaded: true });
    assert.deepEqual(readdirSync(dir).sort(), ["web.conf"], "the temp sibling is gone, only the live file is left");
  });
});
