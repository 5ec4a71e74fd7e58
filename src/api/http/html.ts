/**
 * HTML building with escaping by default: every value interpolated into the
 * `html` tag is escaped unless it is itself a SafeHtml produced by `html`
 * (nested fragments). Arrays are joined after escaping each element; null,
 * undefined and false render as nothing. There is no way to inject raw text
 * except through `html` literals written in this code base.
 */

const ESCAPES: Readonly<Record<string, string>> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;", "`": "&#96;" };

/** Escapes text for an HTML text node or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"'`]/g, (c) => ESCAPES[c] ?? c);
}

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

function piece(v: unknown): string {
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(piece).join("");
  if (v === undefined || v === null || v === false) return "";
  if (typeof v === "string") return escapeHtml(v);
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return escapeHtml(String(v));
  return escapeHtml(JSON.stringify(v));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? "";
  values.forEach((v, i) => {
    out += piece(v) + (strings[i + 1] ?? "");
  });
  return new SafeHtml(out);
}
