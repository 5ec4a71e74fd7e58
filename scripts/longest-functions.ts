/**
 * Prints the longest functions under a directory (default src/), longest first, as
 * `lines  file:line  name`. The lengths are ESLint's own max-lines-per-function counts with
 * the options eslint.config.js uses for src/ (every line from the function's first to its
 * last line, comments and blank lines included), so this list and `make lint` agree.
 * Read-only; exits 0 whatever the lengths (`make lint` enforces the limit).
 *
 * Usage: node --import tsx scripts/longest-functions.ts [dir] [count]
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { Linter } from "eslint";
import tseslint from "typescript-eslint";

type FunctionLength = { readonly where: string; readonly name: string; readonly lines: number };

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(path);
    return e.isFile() && e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [path] : [];
  });
}

// max 0 makes the rule report every function, with its line count in the message. Only this
// rule runs: the eslint-disable directives for other rules are not checked here.
const config: Linter.Config = {
  files: ["**/*.ts"],
  languageOptions: { parser: tseslint.parser },
  linterOptions: { reportUnusedDisableDirectives: "off" },
  rules: { "max-lines-per-function": ["error", { max: 0 }] },
};
const MESSAGE = /^(.*) has too many lines \((\d+)\)/;

function measure(linter: Linter, file: string, root: string): FunctionLength[] {
  const name = relative(root, file);
  return linter.verify(readFileSync(file, "utf8"), config, name).flatMap((m) => {
    if (m.fatal === true) throw new Error(`${name}:${m.line}: ${m.message}`);
    const match = MESSAGE.exec(m.message);
    return match?.[1] === undefined || match[2] === undefined ? [] : [{ where: `${name}:${m.line}`, name: match[1], lines: Number(match[2]) }];
  });
}

const dir = process.argv[2] ?? "src";
const count = Number(process.argv[3] ?? "10");
const linter = new Linter({ configType: "flat" });
const all = tsFiles(dir).flatMap((f) => measure(linter, f, process.cwd()));
all.sort((a, b) => b.lines - a.lines || a.where.localeCompare(b.where));
for (const f of all.slice(0, count)) console.log(`${String(f.lines).padStart(4)}  ${f.where}  ${f.name}`);
