/**
 * Parses one bindings file (multi-document YAML or JSON) into validated
 * ServiceBindings and precise per-document errors. Pure.
 */
import { parseAllDocuments } from "yaml";
import { validateBinding, type FieldError } from "../../api/v1alpha1/validate.js";
import type { ServiceBinding } from "../../domain/types.js";

export interface ParsedDocument {
  /** 1-based document number inside the file. */
  readonly document: number;
  readonly binding?: ServiceBinding;
  /** `<namespace>/<name>` when the metadata could be read, even if the document is invalid. */
  readonly key?: string;
  readonly errors: readonly FieldError[];
}

export interface ParsedFile {
  /** False when the YAML itself could not be parsed: nothing in the file is trustworthy. */
  readonly readable: boolean;
  readonly documents: readonly ParsedDocument[];
}

/** Best-effort identity of an invalid document, so its last good version can be kept. */
function keyOf(doc: unknown): string | undefined {
  const meta = (doc as { metadata?: { name?: unknown; namespace?: unknown } } | null)?.metadata;
  if (typeof meta?.name !== "string") return undefined;
  return `${typeof meta.namespace === "string" ? meta.namespace : "default"}/${meta.name}`;
}

export const MAX_FILE_BYTES = 1 << 20;
/** Max nesting of YAML/JSON flow collections (`[`, `{`) accepted before parsing. */
const MAX_FLOW_DEPTH = 64;

/** Deepest `[`/`{` nesting outside quoted scalars and comments (cheap, linear pre-check). */
function flowDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let quote: string | undefined;
  let comment = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (comment) {
      if (ch === "\n") comment = false;
    } else if (quote !== undefined) {
      if (ch === "\\" && quote === '"') i++;
      else if (ch === quote) quote = undefined;
    } else if (ch === '"' || ch === "'") quote = ch;
    else if (ch === "#") comment = true;
    else if (ch === "[" || ch === "{") max = Math.max(max, ++depth);
    else if ((ch === "]" || ch === "}") && depth > 0) depth--;
  }
  return max;
}

/**
 * A zero-length or whitespace-only file is invalid input, not "no bindings":
 * it is what a truncating writer (`cat > file`, non-atomic copies) leaves for
 * a moment. A file meant to hold no bindings says so with a comment or `---`.
 */
export function parseBindingFile(text: string): ParsedFile {
  if (text.trim() === "") {
    return {
      readable: false,
      documents: [
        {
          document: 1,
          errors: [{ field: "(file)", message: "file is empty (zero length or whitespace only); a file meant to hold no bindings needs at least a comment" }],
        },
      ],
    };
  }
  if (Buffer.byteLength(text, "utf8") > MAX_FILE_BYTES) {
    return { readable: false, documents: [{ document: 1, errors: [{ field: "(file)", message: `file is larger than ${MAX_FILE_BYTES} bytes` }] }] };
  }
  const depth = flowDepth(text);
  if (depth > MAX_FLOW_DEPTH) {
    // The YAML parser recurses per level: deep nesting blocks the event loop on every rescan, then
    // overflows the stack. Refused before parsing; bindings nest a handful of levels.
    return { readable: false, documents: [{ document: 1, errors: [{ field: "(yaml)", message: `nesting deeper than ${MAX_FLOW_DEPTH} levels` }] }] };
  }
  const docs = parseAllDocuments(text, { prettyErrors: true, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const documents: ParsedDocument[] = [];
  let readable = true;
  list.forEach((d, i) => {
    const document = i + 1;
    if (d.errors.length > 0) {
      readable = false;
      documents.push({ document, errors: d.errors.map((e) => ({ field: "(yaml)", message: e.message.split("\n")[0] ?? e.message })) });
      return;
    }
    let value: unknown;
    try {
      value = d.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // e.g. an alias bomb ("Excessive alias count"): as untrustworthy as a syntax error.
      readable = false;
      documents.push({ document, errors: [{ field: "(yaml)", message: err instanceof Error ? err.message : String(err) }] });
      return;
    }
    if (value === null || value === undefined) return; // empty document (e.g. trailing ---)
    const key = keyOf(value);
    const result = validateBinding(value);
    if (result.ok)
      documents.push({ document, binding: result.binding, key: `${result.binding.metadata.namespace}/${result.binding.metadata.name}`, errors: [] });
    else documents.push({ document, ...(key !== undefined ? { key } : {}), errors: result.errors });
  });
  return { readable, documents };
}
