/**
 * Validators applied to every value before it can reach generated nginx
 * config. All functions are pure, synchronous and total (never throw): they
 * accept `unknown` so data straight from Consul JSON can be checked as is.
 *
 * Allow-lists only, ASCII only. Regexes deliberately use neither the `i` nor
 * the `u` flag: with `iu`, /k/ matches U+212A KELVIN SIGN, which would let a
 * Unicode look-alike through. JS `$` without `m` anchors at the very end of the
 * input (unlike PCRE it does not match before a trailing "\n").
 */
import { isIP } from "node:net";

/** Max length kept by sanitizeComment. */
export const COMMENT_MAX_LENGTH = 128;

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const COMMENT_STRIP_RE = /[^A-Za-z0-9._:/=@+-]/g;

/**
 * True for a literal IPv4 or IPv6 address (node:net isIP). IPv6 zone ids
 * (`fe80::1%eth0`) are refused: isIP accepts them but nginx does not, and the
 * zone part is free text. Hostnames are refused (nginx would resolve them once
 * at load time, and a failed lookup makes the whole config invalid).
 */
export function isSafeAddress(s: unknown): s is string {
  return typeof s === "string" && !s.includes("%") && isIP(s) !== 0;
}

/** True for an integer TCP/UDP port 1..65535 (0 = "no port" in Consul). */
export function isSafePort(n: unknown): n is number {
  return typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 65535;
}

/** True for a DNS label (lower case, 1..63 chars): service and upstream names. */
export function isSafeName(s: unknown): s is string {
  return typeof s === "string" && NAME_RE.test(s);
}

/**
 * True for an nginx `server_name` we are willing to render: dot-separated
 * hostname labels ([A-Za-z0-9-], no leading/trailing hyphen), an optional
 * leading `*.` wildcard, at most 253 chars. No regex names (`~`), no `$`.
 */
export function isSafeServerName(s: unknown): s is string {
  if (typeof s !== "string" || s.length === 0 || s.length > 253) return false;
  const host = s.startsWith("*.") ? s.slice(2) : s;
  return host.split(".").every((label) => LABEL_RE.test(label));
}

/**
 * Reduce free text (service ids, binding keys) to a comment-safe token: every
 * char outside [A-Za-z0-9._:/=@+-] is removed (spaces, `;`, braces, `#`,
 * quotes, `$`, backslashes, newlines, all non-ASCII), then the result is
 * capped at COMMENT_MAX_LENGTH. May return "" (callers omit the comment then).
 * The result is safe even outside a comment: it is a single nginx token.
 */
export function sanitizeComment(s: unknown): string {
  if (typeof s !== "string") return "";
  return s.replace(COMMENT_STRIP_RE, "").slice(0, COMMENT_MAX_LENGTH);
}

/** Address as nginx wants it next to a port: IPv6 in brackets. Caller must validate first. */
export function formatHostForNginx(address: string): string {
  return isIP(address) === 6 ? `[${address}]` : address;
}

/** An absolute path both nginx and haproxy take unquoted: no space, quote, `;`, `#`, `$` or `{}`. */
export function isSafeFilePath(s: unknown): s is string {
  return typeof s === "string" && s.length <= 1024 && /^\/[A-Za-z0-9_./-]+$/.test(s) && !s.split("/").includes("..");
}
