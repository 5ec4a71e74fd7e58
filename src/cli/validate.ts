/**
 * `controller validate -f FILE|DIR`: schema + semantic checks of binding
 * files, one line per problem (`file (document N): field: message`).
 * Exit 0 when every document is valid, 1 when any is not, 2 on usage errors.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseBindingFile } from "../sources/files/parseBindingFile.js";
import { errorMessage } from "../runtime/logger.js";

async function filesOf(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  return (await readdir(path))
    .filter((n) => /\.(ya?ml|json)$/.test(n) && !n.startsWith("."))
    .sort()
    .map((n) => join(path, n));
}

export async function runValidate(argv: readonly string[]): Promise<number> {
  let paths: string[];
  try {
    const { values } = parseArgs({ args: [...argv], options: { file: { type: "string", short: "f", multiple: true } }, strict: true });
    paths = values.file ?? [];
  } catch (err) {
    process.stderr.write(`controller validate: ${errorMessage(err)}\nusage: controller validate -f FILE|DIR [-f ...]\n`);
    return 2;
  }
  if (paths.length === 0) {
    process.stderr.write("usage: controller validate -f FILE|DIR [-f ...]\n");
    return 2;
  }
  let problems = 0;
  let valid = 0;
  for (const p of paths) {
    let files: string[];
    try {
      files = await filesOf(p);
    } catch (err) {
      process.stdout.write(`${p}: ${errorMessage(err)}\n`);
      problems++;
      continue;
    }
    for (const file of files) {
      const parsed = parseBindingFile(await readFile(file, "utf8"));
      for (const doc of parsed.documents) {
        if (doc.errors.length === 0) valid++;
        for (const e of doc.errors) {
          problems++;
          process.stdout.write(`${file} (document ${doc.document}): ${e.field}: ${e.message}\n`);
        }
      }
    }
  }
  process.stdout.write(`${valid} valid binding(s), ${problems} problem(s)\n`);
  return problems === 0 ? 0 : 1;
}
