/**
 * Durable, atomic file replacement (write temp sibling -> fsync -> rename ->
 * fsync dir). Readers (nginx) only ever see the old or the new complete file.
 *
 * Temp files live in the target's directory (rename is only atomic within a
 * filesystem) and are named `.<basename>.<pid>.<random>.tmp`: the leading dot
 * and `.tmp` suffix keep them out of `include dir/*.conf` and `include dir/*`
 * globs (glob(3) `*` never matches a leading dot).
 *
 * Errors are raw Node fs errors; temp files are removed on every failure path.
 */
import { randomBytes } from "node:crypto";
import { chmod, chown, open, readdir, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

export const DEFAULT_FILE_MODE = 0o644;

/** Numeric owner of generated files (--lb-file-owner uid:gid). */
export interface FileOwner {
  readonly uid: number;
  readonly gid: number;
}

function hasCode(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && "code" in err && err.code === code;
}

function checkMode(mode: number): void {
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777 || (mode & 0o002) !== 0) {
    throw new RangeError(`refusing file mode ${mode.toString(8)}: must be 0..0777 and not world-writable`);
  }
}

/** Temp sibling path for `path` (same directory, dot-prefixed, `.tmp` suffix). */
function tempSiblingPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
}

/** fsync a directory so a rename/unlink inside it is durable. */
async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Remove a file, ignoring "does not exist". Never throws. */
export async function discardFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch {
    // best effort: ENOENT or a directory we cannot touch; nothing better to do
  }
}

/**
 * Write `bytes` to a fresh temp sibling of `path` with exactly `mode`, fsynced.
 * Returns the temp path; the caller must commitTemp() or discardFile() it.
 */
export async function writeTempSibling(path: string, bytes: string | Uint8Array, mode = DEFAULT_FILE_MODE, owner?: FileOwner): Promise<string> {
  checkMode(mode);
  const tmp = tempSiblingPath(path);
  try {
    const fh = await open(tmp, "wx", mode);
    try {
      await fh.writeFile(bytes);
      // Owner before mode (chown may clear mode bits); both before the rename, so the file is never
      // visible under its final name with the wrong owner or mode.
      if (owner !== undefined) await fh.chown(owner.uid, owner.gid);
      await fh.chmod(mode); // umask-independent
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err: unknown) {
    await discardFile(tmp);
    throw err;
  }
  return tmp;
}

/** Atomically move a temp sibling onto `path`, then fsync the directory. Removes `tmp` on failure. */
export async function commitTemp(tmp: string, path: string): Promise<void> {
  try {
    await rename(tmp, path);
  } catch (err: unknown) {
    await discardFile(tmp);
    throw err;
  }
  await fsyncDir(dirname(path));
}

/** Atomic, durable replace of `path` with `bytes`. Idempotent; blocks on fsync. */
export async function writeFileAtomic(path: string, bytes: string | Uint8Array, mode = DEFAULT_FILE_MODE, owner?: FileOwner): Promise<void> {
  const tmp = await writeTempSibling(path, bytes, mode, owner);
  await commitTemp(tmp, path);
}

/** File bytes, or undefined when it does not exist. Other errors propagate. */
export async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (err: unknown) {
    if (hasCode(err, "ENOENT")) return undefined;
    throw err;
  }
}

/** Durably remove `path`. Returns false when it did not exist. */
export async function removeIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
  } catch (err: unknown) {
    if (hasCode(err, "ENOENT")) return false;
    throw err;
  }
  await fsyncDir(dirname(path));
  return true;
}

const TEMP_SIBLING = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err: unknown) {
    return hasCode(err, "EPERM");
  }
}

/**
 * Removes temp siblings (tempSiblingPath names) in `dir` left by a writer
 * process that no longer runs, e.g. a controller killed with SIGKILL between
 * writeTempSibling and commitTemp. Files of live
 * processes other than this one are left alone (another writer may be mid-write).
 * Returns the removed names. Never throws.
 */
export async function removeStaleTemps(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const pid = Number(TEMP_SIBLING.exec(name)?.[1] ?? "0");
    if (pid <= 0 || (pid !== process.pid && pidAlive(pid))) continue;
    await discardFile(join(dir, name));
    removed.push(name);
  }
  return removed;
}

/**
 * Brings an existing file to `mode` (and `owner`) when they differ, e.g. after
 * --lb-file-mode changed while the content did not. Returns true when it
 * changed something. chown first (it may clear mode bits), then chmod.
 */
export async function fixModeAndOwner(path: string, mode: number, owner?: FileOwner): Promise<boolean> {
  checkMode(mode);
  const st = await stat(path);
  let changed = false;
  if (owner !== undefined && (st.uid !== owner.uid || st.gid !== owner.gid)) {
    await chown(path, owner.uid, owner.gid);
    changed = true;
  }
  if (changed || (st.mode & 0o7777) !== mode) {
    await chmod(path, mode);
    changed = true;
  }
  return changed;
}
