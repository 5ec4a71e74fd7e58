/**
 * Incremental splitter for a JSON array arriving in chunks:
 * yields the text of each top-level element as soon as its last byte has
 * arrived, so a caller can parse and convert one element at a time instead
 * of holding the whole response body, its string and the parsed array at
 * once (10,000 list entries are ~13 MB of text and ~50 MB of parsed objects).
 *
 * Contract:
 * - input is UTF-8 bytes of exactly one JSON array (whitespace around it
 *   allowed); element boundaries are found by tracking strings (with `\`
 *   escapes) and `{}`/`[]` nesting on bytes: multi-byte UTF-8 sequences never
 *   contain ASCII bytes, so they cannot be mistaken for structure;
 * - `push()` returns the complete elements of the bytes seen so far, in
 *   order, as strings; bytes of an unfinished element are kept until it ends;
 * - it splits, it does not validate: each element is meant for JSON.parse
 *   (which rejects a malformed one), separators between elements are not
 *   checked (`[1,,2]` yields "1" and "2");
 * - `end()` throws when the input was not one complete array; bytes after
 *   the closing `]` (other than whitespace) throw in `push()`.
 * Scalars as elements (`[1,"a"]`) are supported; the Docker list only has objects.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/** Consecutive backslashes right before offset `end`, not looking before `from`. */
function backslashesBefore(chunk: Buffer, end: number, from: number): number {
  let n = 0;
  for (let j = end - 1; j >= from && chunk[j] === BACKSLASH; j--) n++;
  return n;
}

/**
 * Offset of the quote closing a string whose unescaped content starts at
 * `from` (memchr-speed search: string bytes are most of a list), or -1 when
 * the string does not end in this chunk. A quote closes the string when an
 * even number of backslashes precedes it.
 */
function closingQuote(chunk: Buffer, from: number): number {
  for (let q = chunk.indexOf(QUOTE, from); q >= 0; q = chunk.indexOf(QUOTE, q + 1)) {
    if (backslashesBefore(chunk, q, from) % 2 === 0) return q;
  }
  return -1;
}

export class JsonArraySplitter {
  /** Before `[`, inside the array, after `]`. */
  private phase: "before" | "inside" | "after" = "before";
  /** Nesting depth inside the current element (0 = between elements). */
  private depth = 0;
  private inString = false;
  private escaped = false;
  /** True while a scalar element (number, literal) is being read at depth 0. */
  private inScalar = false;
  /** True from the first byte of an element until it was emitted. */
  private inElement = false;
  /** Bytes of the current element from earlier chunks. */
  private pending: Buffer[] = [];
  /** Offset of the current element's first byte in the chunk being scanned, or -1. */
  private start = -1;

  push(chunk: Buffer): string[] {
    const out: string[] = [];
    this.start = this.inElement ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] ?? 0;
      if (this.inString) {
        if (this.escaped) {
          this.escaped = false; // byte i is the escaped character
          continue;
        }
        const close = closingQuote(chunk, i);
        if (close < 0) {
          // The string goes on in the next chunk; an odd run of trailing backslashes escapes its first byte.
          this.escaped = backslashesBefore(chunk, chunk.length, i) % 2 === 1;
          break;
        }
        i = close;
        this.inString = false;
        if (this.depth === 0) this.emit(chunk, i + 1, out);
        continue;
      }
      if (this.phase === "before") {
        if (b === OPEN_BRACKET) this.phase = "inside";
        else if (!isSpace(b)) throw new Error(`JSON array expected, got byte 0x${b.toString(16)}`);
        continue;
      }
      if (this.phase === "after") {
        if (!isSpace(b)) throw new Error("bytes after the end of the JSON array");
        continue;
      }
      if (this.inScalar) {
        if (b !== COMMA && b !== CLOSE_BRACKET && !isSpace(b)) continue;
        this.emit(chunk, i, out);
      }
      if (this.depth === 0) {
        if (b === CLOSE_BRACKET) {
          this.phase = "after";
          continue;
        }
        if (b === COMMA || isSpace(b)) continue;
        this.start = i;
        this.inElement = true;
        if (b === OPEN_BRACE || b === OPEN_BRACKET) this.depth = 1;
        else if (b === QUOTE) this.inString = true;
        else this.inScalar = true;
        continue;
      }
      if (b === QUOTE) this.inString = true;
      else if (b === OPEN_BRACE || b === OPEN_BRACKET) this.depth++;
      else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        this.depth--;
        if (this.depth === 0) this.emit(chunk, i + 1, out);
      }
    }
    if (this.start >= 0) this.pending.push(chunk.subarray(this.start));
    this.start = -1;
    return out;
  }

  /** Throws unless exactly one complete array was pushed. */
  end(): void {
    if (this.phase !== "after") throw new Error(this.phase === "before" ? "empty input: JSON array expected" : "truncated JSON array");
  }

  /** The current element ends before offset `endExclusive` of `chunk`. */
  private emit(chunk: Buffer, endExclusive: number, out: string[]): void {
    const tail = chunk.subarray(this.start, endExclusive);
    out.push(this.pending.length === 0 ? tail.toString("utf8") : Buffer.concat([...this.pending, tail]).toString("utf8"));
    this.pending = [];
    this.start = -1;
    this.inScalar = false;
    this.inElement = false;
  }
}
