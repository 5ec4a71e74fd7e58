/**
 * Writes the README's "Flags and environment" table from the option table
 * (src/config/options.ts), between the flags:begin/flags:end markers.
 * `--check`: changes nothing, exits 1 when README.md differs.
 * Usage: node --import tsx scripts/gen-flags.ts [--check]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withFlagTable } from "../src/config/options.js";

const readmePath = join(import.meta.dirname, "..", "README.md");
const current = readFileSync(readmePath, "utf8");
const wanted = withFlagTable(current);
if (process.argv.includes("--check")) {
  if (wanted !== current) {
    process.stderr.write("README.md flag table differs from src/config/options.ts: run node --import tsx scripts/gen-flags.ts\n");
    process.exitCode = 1;
  }
} else if (wanted !== current) {
  writeFileSync(readmePath, wanted);
  process.stdout.write("README.md: flag table updated\n");
}
