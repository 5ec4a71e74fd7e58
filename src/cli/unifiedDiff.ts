/**
 * Line-based unified diff (like `diff -u`), pure. Used by `controller plan`
 * to show how a generated load balancer file would change. LCS on lines;
 * inputs beyond MAX_CELLS fall back to "remove everything, add everything"
 * (still a correct diff, just not a minimal one).
 */

const MAX_CELLS = 4_000_000;

type Op = { readonly kind: " " | "-" | "+"; readonly line: string };

function splitLines(text: string): string[] {
  if (text === "") return [];
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

function lineOps(a: readonly string[], b: readonly string[]): Op[] {
  const n = a.length;
  const m = b.length;
  if (n * m > MAX_CELLS) return [...a.map((line) => ({ kind: "-" as const, line })), ...b.map((line) => ({ kind: "+" as const, line }))];
  // lcs[i][j] = LCS length of a[i..] and b[j..], flattened.
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * w + j] = a[i] === b[j] ? (lcs[(i + 1) * w + j + 1] ?? 0) + 1 : Math.max(lcs[(i + 1) * w + j] ?? 0, lcs[i * w + j + 1] ?? 0);
    }
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    const ai = a[i];
    const bj = b[j];
    if (i < n && j < m && ai === bj && ai !== undefined) {
      ops.push({ kind: " ", line: ai });
      i++;
      j++;
    } else if (i < n && ai !== undefined && (j >= m || (lcs[(i + 1) * w + j] ?? 0) >= (lcs[i * w + j + 1] ?? 0))) {
      // Deletions before insertions on ties, as diff -u prints them.
      ops.push({ kind: "-", line: ai });
      i++;
    } else if (bj !== undefined) {
      ops.push({ kind: "+", line: bj });
      j++;
    }
  }
  return ops;
}

/**
 * Unified diff of `before` -> `after` with `context` lines around changes;
 * "" when equal. `before` undefined means the file does not exist (/dev/null).
 */
export function unifiedDiff(before: string | undefined, after: string | undefined, fromLabel: string, toLabel: string, context = 3): string {
  if (before === after) return "";
  const a = splitLines(before ?? "");
  const b = splitLines(after ?? "");
  const ops = lineOps(a, b);
  const out = [`--- ${before === undefined ? "/dev/null" : fromLabel}`, `+++ ${after === undefined ? "/dev/null" : toLabel}`];
  // Positions (in ops) of changed lines, grouped into hunks with `context` lines around them.
  const changed = ops.flatMap((op, k) => (op.kind === " " ? [] : [k]));
  let k = 0;
  while (k < changed.length) {
    const first = changed[k] ?? 0;
    let last = first;
    while (k + 1 < changed.length && (changed[k + 1] ?? 0) - last <= 2 * context + 1) last = changed[++k] ?? last;
    k++;
    const start = Math.max(0, first - context);
    const end = Math.min(ops.length, last + context + 1);
    let aLine = 1;
    let bLine = 1;
    for (const op of ops.slice(0, start)) {
      if (op.kind !== "+") aLine++;
      if (op.kind !== "-") bLine++;
    }
    const hunk = ops.slice(start, end);
    const aCount = hunk.filter((op) => op.kind !== "+").length;
    const bCount = hunk.filter((op) => op.kind !== "-").length;
    out.push(`@@ -${aCount === 0 ? aLine - 1 : aLine},${aCount} +${bCount === 0 ? bLine - 1 : bLine},${bCount} @@`);
    for (const op of hunk) out.push(`${op.kind}${op.line}`);
  }
  return `${out.join("\n")}\n`;
}
