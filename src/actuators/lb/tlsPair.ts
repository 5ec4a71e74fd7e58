/**
 * TLS pairs of `loadBalancer.tls`: read from --tls-dir, validated with Node's
 * crypto, installed as controller-managed copies that the generated config names.
 *
 * Contract:
 * - readTlsPair never returns a pair nginx or haproxy would reject for its
 *   content: the key is a private key matching the first certificate, which is
 *   valid now. Failures are ReconcileError (retried), reason TlsPathInvalid |
 *   TlsFileUnreadable | TlsCertificateInvalid | TlsKeyInvalid | TlsKeyMismatch |
 *   TlsCertificateExpired | TlsCertificateNotYetValid. Messages name the files
 *   and the certificate (serial, dates), never key material.
 * - installTlsPair writes `<store>/<ns>_<name>.<hash>.pem` (chain then key,
 *   mode 0600, the writer's owner) atomically; an existing file with the same
 *   name has the same content (content-addressed), so a live config's file is
 *   never rewritten, and a broken pair on disk never reaches the load balancer.
 * - pruneTlsPairs removes a binding's managed files other than the one its live
 *   config names.
 */
import { createHash, createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { chown, mkdir, readdir, readFile } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import type { TlsSpec } from "../../domain/types.js";
import { tlsPemPrefix } from "../../render/renderFor.js";
import { ReconcileError } from "../../runtime/errors.js";
import { errorMessage } from "../../runtime/logger.js";
import { fixModeAndOwner, readIfExists, removeIfExists, writeFileAtomic, type FileOwner } from "./atomicFile.js";

/** Managed pair files hold a private key: owner read/write only, whatever --lb-file-mode says. */
export const TLS_FILE_MODE = 0o600;

export interface TlsPair {
  /** Certificate chain (as given), then the key (PKCS#8 PEM): what nginx and haproxy load. Secret. */
  readonly pem: Buffer;
  /** First 16 hex digits of sha256(pem): names the managed file, so it is render input. */
  readonly hash: string;
  /** Leaf certificate facts, safe to log and show. */
  readonly serial: string;
  readonly subject: string;
  readonly notAfter: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----/g;

/** `name` inside `dir`, or TlsPathInvalid when it would leave it (absolute, `..`). */
export function tlsFilePath(dir: string, name: string, field: string): string {
  const path = resolve(dir, name);
  const rel = relative(resolve(dir), path);
  if (rel === "" || rel.startsWith("..") || isAbsolute(rel)) {
    throw new ReconcileError("TlsPathInvalid", `loadBalancer.tls.${field} ${JSON.stringify(name).slice(0, 80)} is not a file inside --tls-dir ${dir}`, true);
  }
  return path;
}

async function readTlsFile(dir: string, name: string, field: string): Promise<string> {
  const path = tlsFilePath(dir, name, field);
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    throw new ReconcileError("TlsFileUnreadable", `loadBalancer.tls.${field} ${path}: ${errorMessage(err)}`, false, { cause: err });
  }
}

function parseCertificate(text: string, path: string): { readonly chain: string[]; readonly leaf: X509Certificate } {
  const chain = text.match(PEM_CERT) ?? [];
  const first = chain[0];
  if (first === undefined) throw new ReconcileError("TlsCertificateInvalid", `${path}: no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  try {
    return { chain, leaf: new X509Certificate(first) };
  } catch (err) {
    throw new ReconcileError("TlsCertificateInvalid", `${path}: first certificate does not parse: ${errorMessage(err)}`, false, { cause: err });
  }
}

function parseKey(text: string, path: string): KeyObject {
  try {
    return createPrivateKey({ key: text, format: "pem" });
  } catch {
    // The parser's message is not shown: it may quote the input.
    throw new ReconcileError("TlsKeyInvalid", `${path}: not an unencrypted PEM private key`);
  }
}

function checkValidity(leaf: X509Certificate, path: string, nowMs: number): void {
  const from = Date.parse(leaf.validFrom);
  const to = Date.parse(leaf.validTo);
  const what = `${path}: certificate serial ${leaf.serialNumber}`;
  if (Number.isNaN(from) || Number.isNaN(to)) throw new ReconcileError("TlsCertificateInvalid", `${what} has unreadable validity dates`);
  if (nowMs >= to) throw new ReconcileError("TlsCertificateExpired", `${what} expired at ${new Date(to).toISOString()}`);
  if (nowMs < from) throw new ReconcileError("TlsCertificateNotYetValid", `${what} is not valid before ${new Date(from).toISOString()}`);
}

/** Reads and validates `spec`'s pair from `dir` at time `nowMs` (see the module contract). */
export async function readTlsPair(dir: string, spec: TlsSpec, nowMs: number): Promise<TlsPair> {
  const [certText, keyText] = await Promise.all([readTlsFile(dir, spec.certificate, "certificate"), readTlsFile(dir, spec.key, "key")]);
  const certPath = tlsFilePath(dir, spec.certificate, "certificate");
  const { chain, leaf } = parseCertificate(certText, certPath);
  const key = parseKey(keyText, tlsFilePath(dir, spec.key, "key"));
  if (!leaf.checkPrivateKey(key)) {
    throw new ReconcileError("TlsKeyMismatch", `${tlsFilePath(dir, spec.key, "key")} is not the private key of ${certPath} (serial ${leaf.serialNumber})`);
  }
  checkValidity(leaf, certPath, nowMs);
  const keyPem = key.export({ type: "pkcs8", format: "pem" }).toString();
  const pem = Buffer.from(`${chain.join("\n")}\n${keyPem.endsWith("\n") ? keyPem : `${keyPem}\n`}`, "utf8");
  return {
    pem,
    hash: createHash("sha256").update(pem).digest("hex").slice(0, 16),
    serial: leaf.serialNumber,
    subject: leaf.subject.replace(/\n/g, ", "),
    notAfter: new Date(Date.parse(leaf.validTo)).toISOString(),
  };
}

/** Writes `pair` to `path` (mode 0600, `owner`) unless it is there already; creates its directory (0700). */
export async function installTlsPair(path: string, pair: TlsPair, owner?: FileOwner): Promise<void> {
  const dir = resolve(path, "..");
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (owner !== undefined) await chown(dir, owner.uid, owner.gid);
  const existing = await readIfExists(path);
  if (existing?.equals(pair.pem) === true) await fixModeAndOwner(path, TLS_FILE_MODE, owner);
  else await writeFileAtomic(path, pair.pem, TLS_FILE_MODE, owner);
}

/** Removes `key`'s managed pair files in `storeDir` except `keep`; returns how many went. */
export async function pruneTlsPairs(storeDir: string, key: string, keep?: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(storeDir);
  } catch {
    return 0;
  }
  const prefix = tlsPemPrefix(key);
  let removed = 0;
  for (const name of names) {
    const path = join(storeDir, name);
    if (!name.startsWith(prefix) || !name.endsWith(".pem") || (keep !== undefined && resolve(path) === resolve(keep))) continue;
    if (await removeIfExists(path)) removed++;
  }
  return removed;
}
