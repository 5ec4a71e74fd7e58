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
 * - a directory that cannot be watched (missing, no inotify watches left) is
 *   logged once and left to the full resync; the others are still watched;
 * - resolves when `signal` aborts, with every watch closed. Never rejects.
 */
import { watch } from "node:fs";
import { join, resolve } from "node:path";
import { errorMessage, type Logger } from "../../runtime/logger.js";
import { aborted } from "../../runtime/manager.js";

export interface OutputWatchOptions {
  readonly dirs: readonly string[];
  readonly logger: Logger;
  readonly onChange: (paths: readonly string[]) => void;
  /** Quiet time before a burst of events is reported (default 100 ms). */
  readonly debounceMs?: number;
}

export async function watchOutputDirs(o: OutputWatchOptions, signal: AbortSignal): Promise<void> {
  const changed = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    const paths = [...changed];
    changed.clear();
    if (paths.length > 0) o.onChange(paths);
  };
  for (const dir of new Set(o.dirs.map((d) => resolve(d)))) {
    try {
      const w = watch(dir, { signal, persistent: false }, (_event, name) => {
        if (name === null || name.startsWith(".")) return;
        changed.add(join(dir, name));
        timer ??= setTimeout(flush, o.debounceMs ?? 100);
      });
      w.on("error", (err) => {
        if (!signal.aborted) o.logger.warn("cannot watch the output directory; hand edits wait for the full resync", { dir, error: errorMessage(err) });
      });
    } catch (err) {
      o.logger.warn("cannot watch the output directory; hand edits wait for the full resync", { dir, error: errorMessage(err) });
    }
  }
  await aborted(signal);
  if (timer !== undefined) clearTimeout(timer);
}
