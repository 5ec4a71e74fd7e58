/**
 * The output-directory watch (src/sources/lb/outputWatch.ts) on a real
 * directory: a file written, edited or removed is reported (absolute path,
 * one report per burst); dot-prefixed temp files are not; a missing directory
 * is watched once it exists; a directory that cannot be watched for another
 * reason is logged and the others are still watched; it resolves when its
 * signal aborts.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { silentLogger } from "../../src/runtime/logger.js";
import { watchOutputDirs } from "../../src/sources/lb/outputWatch.js";
import { waitFor } from "../support/wait.js";

describe("watchOutputDirs", () => {
  it("reports written, edited and removed files of every directory it can watch, not dot-prefixed temps", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-outwatch-"));
    const reports: string[][] = [];
    const logger = silentLogger();
    const warn = t.mock.method(logger, "warn");
    const abort = new AbortController();
    writeFileSync(join(dir, "a-file"), "");
    const dirs = [dir, join(dir, "missing"), join(dir, "a-file", "sub")];
    const done = watchOutputDirs({ dirs, logger, onChange: (p) => reports.push([...p]), debounceMs: 20, missingRetryMs: 50 }, abort.signal);
    // Only the directory that cannot be watched (ENOTDIR) is warned about; the missing one is not.
    assert.equal(warn.mock.callCount(), 1);
    assert.ok(JSON.stringify(warn.mock.calls[0]?.arguments).includes(join(dir, "a-file", "sub")));
    writeFileSync(join(dir, ".web.conf.123.tmp"), "temp");
    writeFileSync(join(dir, "web.conf"), "one");
    await waitFor(() => (reports.flat().includes(join(dir, "web.conf")) ? true : undefined), { timeoutMs: 5_000, what: "web.conf reported" });
    assert.ok(!reports.flat().some((p) => p.includes(".web.conf")), "temp files are not reported");
    const n = reports.length;
    rmSync(join(dir, "web.conf"));
    await waitFor(() => (reports.length > n ? true : undefined), { timeoutMs: 5_000, what: "the removal reported" });
    assert.deepEqual(reports.at(-1), [join(dir, "web.conf")]);
    // The missing directory appears: it is watched from then on.
    mkdirSync(join(dir, "missing"));
    await waitFor(
      () => {
        writeFileSync(join(dir, "missing", "stream.conf"), String(Date.now()));
        return reports.flat().includes(join(dir, "missing", "stream.conf")) ? true : undefined;
      },
      { timeoutMs: 5_000, intervalMs: 100, what: "a file of the directory created later reported" },
    );
    assert.equal(warn.mock.callCount(), 1);
    abort.abort();
    await done;
  });
});
