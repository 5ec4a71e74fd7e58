/**
 * `controller validate -f FILE|DIR`: schema + semantic checks of binding
 * files, one line per problem (`file (document N): field: message`).
 * Exit 0 when every document is valid, 1 when any is not, 2 on usage errors.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatProblem } from "../sources/files/problems.js";
import { dropConflicts, type Entry } from "../sources/files/fileBindingSource.js";
import { parseBindingFile } from "../sources/files/parseBindingFile.js";
import { errorMessage } from "../runtime/logger.js";
import { bindingWarnings } from "../api/v1alpha1/validate.js";
import { lbProtocol } from "../domain/types.js";
import { STREAM_MODULE_HINT, streamSupport } from "../actuators/lb/nginxStream.js";

async function filesOf(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  return (await readdir(path))
    .filter((n) => /\.(ya?ml|json)$/.test(n) && !n.startsWith("."))
    .sort()
    .map((n) => join(path, n));
}

const HELP = `Usage: controller validate -f FILE|DIR [-f ...] [--nginx-bin PATH]

Checks ServiceBinding files (every *.yaml, *.yml, *.json of a DIR) against the
v1alpha1 schema, the semantic rules and the cross-binding rules the controller
applies, and prints one line per problem: FILE (document N): FIELD: MESSAGE.
Advice on valid bindings is printed as FILE (document N): warning: FIELD: MESSAGE
and does not change the exit code. Reads files only, except that a binding with
kind nginx and protocol tcp or udp makes it run \`nginx -V\` (--nginx-bin, default
nginx): an nginx without the stream module is a problem (exit 1), an nginx that
cannot run a warning.

Exit codes: 0 every document is valid, 1 any problem, 2 usage error.
`;

export async function runValidate(argv: readonly string[]): Promise<number> {
  let paths: string[];
  let nginxBin: string;
  try {
    const { values } = parseArgs({
      args: [...argv],
      options: { file: { type: "string", short: "f", multiple: true }, help: { type: "boolean", short: "h" }, "nginx-bin": { type: "string" } },
      strict: true,
    });
    if (values.help === true) {
      process.stdout.write(HELP);
      return 0;
    }
    paths = values.file ?? [];
    nginxBin = values["nginx-bin"] ?? "nginx";
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
  // Cross-binding rules (duplicate keys, shared output/listen, one container port claimed twice) over
  // every file given, in the same order the running controller applies them.
  const all = new Map<string, Entry>();
  const later: string[] = [];
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
        if (doc.binding !== undefined && doc.key !== undefined) {
          const other = all.get(doc.key);
          if (other === undefined) all.set(doc.key, { binding: doc.binding, file, document: doc.document });
          else later.push(`${file} (document ${doc.document}): metadata.name: binding ${doc.key} is already defined in ${other.file}`);
        }
        if (doc.errors.length === 0) valid++;
        for (const w of doc.binding !== undefined ? bindingWarnings(doc.binding) : []) {
          process.stdout.write(`${file} (document ${doc.document}): warning: ${w.field}: ${w.message}\n`);
        }
        for (const e of doc.errors) {
          problems++;
          process.stdout.write(`${file} (document ${doc.document}): ${e.field}: ${e.message}\n`);
        }
      }
    }
  }
  for (const p of [...later, ...dropConflicts(all, new Set()).map(formatProblem)]) {
    problems++;
    valid--;
    process.stdout.write(`${p}\n`);
  }
  const streamProblems = await streamModuleProblems([...all.values()], nginxBin);
  problems += streamProblems;
  valid -= streamProblems;
  process.stdout.write(`${valid} valid binding(s), ${problems} problem(s)\n`);
  return problems === 0 ? 0 : 1;
}

/**
 * nginx tcp/udp bindings need nginx's stream module: checked once with `nginx -V`. Prints one
 * line per such binding when it is missing (returns their count), a warning when nginx cannot run.
 */
async function streamModuleProblems(entries: readonly Entry[], nginxBin: string): Promise<number> {
  const streams = entries.filter((e) => {
    const lb = e.binding.spec.loadBalancer;
    return lb !== undefined && lb.kind === "nginx" && lbProtocol(lb) !== "http";
  });
  if (streams.length === 0) return 0;
  const support = await streamSupport(nginxBin, 10_000);
  if (support.kind !== "missing") return 0;
  if (!support.ran) {
    process.stdout.write(`warning: cannot check nginx's stream module (${support.detail}); protocol tcp/udp bindings need it\n`);
    return 0;
  }
  for (const e of streams) {
    process.stdout.write(
      `${e.file} (document ${e.document ?? 0}): spec.loadBalancer.protocol: nginx has no stream module (${support.detail}): ${STREAM_MODULE_HINT}\n`,
    );
  }
  return streams.length;
}
