/**
 * Watches the load balancer output directories (inotify through fs.watch) and
 * reports the generated files that changed on disk, so a file edited or
 * deleted by hand is rendered again (and restored by the writer's byte
 * comparison) at once rather than at the next full resync.
 *
 * Contract:
 * - `onChange(paths)` gets absolute paths of non-hidden files that were
 *   created, written, renamed or removed, at most once per `debounceMs` burst;
 *   the writer's own temp files (dot-prefixed) are ignored, its rename onto a
 *   file is reported like any change (re-rendering it finds equal bytes: a no-op);
 * - a missing directory (the default stream or haproxy directory of a setup
 *   that renders none there) is logged at debug and watched once it exists
 *   (checked every `missingRetryMs`); a directory that cannot be watched for
 *   another reason (no inotify watches left) is logged once at warn and left
 *   to the full resync; the others are still watched;
 * - resolves when `signal` aborts, with every watch closed. Never rejects.
 */
import { watch } from "node:fs";
import { join, resolve } from "node:path";
import { errorMessage, type Logger } from "../../runtime/logger.js";
import { sleep } from "../../runtime/backoff.js";
import { aborted } from "../../runtime/manager.js";

export interface OutputWatchOptions {
  readonly dirs: readonly string[];
  readonly logger: Logger;
  readonly onChange: (paths: readonly string[]) => void;
  /** Quiet time before a burst of events is reported (default 100 ms). */
  readonly debounceMs?: number;
  /** How often a missing directory is looked for again (default 30 s). */
  readonly missingRetryMs?: number;
}

const MISSING_RETRY_MS = 30_000;

export async function watchOutputDirs(o: OutputWatchOptions, signal: AbortSignal): Promise<void> {
  const changed = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    const paths = [...changed];
    changed.clear();
    if (paths.length > 0) o.onChange(paths);
  };
  const report = (dir: string, name: string | null): void => {
    if (name === null || name.startsWith(".")) return;
    changed.add(join(dir, name));
    timer ??= setTimeout(flush, o.debounceMs ?? 100);
  };
  let missing = [...new Set(o.dirs.map((d) => resolve(d)))];
  for (let first = true; missing.length > 0 && !signal.aborted; first = false) {
    missing = missing.filter((dir) => !watchDir(dir, o.logger, first, report, signal));
    if (missing.length > 0) await sleep(o.missingRetryMs ?? MISSING_RETRY_MS, signal);
  }
  await aborted(signal);
  if (timer !== undefined) clearTimeout(timer);
}

/** Starts watching `dir`; false when it does not exist (yet). Other failures are logged and count as done. */
function watchDir(dir: string, logger: Logger, first: boolean, report: (dir: string, name: string | null) => void, signal: AbortSignal): boolean {
  const cannot = (err: unknown): void => {
    if (!signal.aborted) logger.warn("cannot watch the output directory; hand edits wait for the full resync", { dir, error: errorMessage(err) });
  };
  try {
    watch(dir, { signal, persistent: false }, (_event, name) => {
      report(dir, name);
    }).on("error", cannot);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      cannot(err);
      return true;
    }
    if (first) logger.debug("output directory missing; watched once it exists", { dir });
    return false;
  }
}
