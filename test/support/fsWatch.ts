/**
 * Continuous observation of one generated file (the fault suites): every
 * distinct content the file takes is recorded, from fs.watch events on its
 * directory plus a fast poll (fs.watch may coalesce or miss a rename). Tests
 * then assert an invariant over EVERY observed version ("never lost a server").
 */
import { readFileSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";

export interface FileObservation {
  readonly at: number;
  /** undefined = the file did not exist. */
  readonly text: string | undefined;
}

export interface FileWatch {
  /** Every distinct version seen, in order (consecutive duplicates dropped). */
  readonly versions: readonly FileObservation[];
  /** Reads once more, stops watching and returns `versions`. */
  stop(): readonly FileObservation[];
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

export function watchFile(path: string, pollMs = 10): FileWatch {
  const versions: FileObservation[] = [];
  const sample = (): void => {
    const text = read(path);
    if (versions.length === 0 || versions.at(-1)?.text !== text) versions.push({ at: Date.now(), text });
  };
  sample();
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
      if (name === null || name === basename(path)) sample();
    });
  } catch {
    watcher = undefined; // polling alone still observes every version that lives >= pollMs
  }
  const timer = setInterval(sample, pollMs);
  return {
    versions,
    stop() {
      sample();
      clearInterval(timer);
      watcher?.close();
      return versions;
    },
  };
}

/** `server A:P;` lines of an nginx upstream, sorted. */
export function upstreamServers(text: string | undefined): string[] {
  return [...(text ?? "").matchAll(/^\s*server\s+(\S+?);/gm)]
    .map((m) => m[1] ?? "")
    .filter((s) => /:\d+$/.test(s))
    .sort();
}
