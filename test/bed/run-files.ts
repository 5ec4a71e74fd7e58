/**
 * Runs test files IN THE ORDER GIVEN, `--concurrency` at a time, with the spec reporter on stdout.
 *
 *   node --import tsx test/bed/run-files.ts [--concurrency N] [--timeout MS] FILE...
 *
 * `node --test FILE...` sorts the files it is given, so a list ordered longest first (or "this one
 * first") does nothing there; node:test's run() keeps the order. Each file runs in its own child
 * process with this process's node flags (`--import tsx`), as under `node --test`.
 *
 * Exit status: 1 when any test failed, was cancelled (timeout) or a file did not load; else 0.
 * SIGINT/SIGTERM abort the run: node:test stops the files' child processes.
 */
import { run } from "node:test";
import { spec } from "node:test/reporters";
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { concurrency: { type: "string", default: "1" }, timeout: { type: "string", default: "300000" } },
});
const concurrency = Number(values.concurrency);
const timeout = Number(values.timeout);
if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`--concurrency: not a positive integer: ${values.concurrency}`);
if (!Number.isInteger(timeout) || timeout < 1) throw new Error(`--timeout: not a positive number of milliseconds: ${values.timeout}`);
if (positionals.length === 0) throw new Error("no test files given");

const abort = new AbortController();
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  process.once(sig, () => {
    abort.abort();
    process.exitCode = 130;
  });
}
const files = [...new Set(positionals)];
const stream = run({ files, concurrency, timeout, signal: abort.signal });
stream.on("test:fail", () => {
  process.exitCode ??= 1;
});
stream.pipe(new spec()).pipe(process.stdout);
