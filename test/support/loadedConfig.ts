/**
 * Whether a load balancer's worker runs the files on disk: its process started
 * after the newest generated file was written. Used by the nginx and haproxy
 * handles' settled(), which would otherwise take a file renamed into place,
 * whose reload is still coming (the writer validates it first), as live.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export function startedAfterNewestFile(pid: number, dirs: readonly string[]): boolean {
  return startedAtMs(pid) + TICK_SLACK_MS >= newestMtimeMs(dirs);
}

/** /proc/PID/stat's start time and /proc/uptime have 10 ms resolution (USER_HZ 100 on Linux). */
const TICK_MS = 10;
/**
 * Two truncated 10 ms clocks: a worker may read as started up to this much before it did. A reload starts
 * well after the file it loads was renamed into place (the writer runs `nginx -t` in between).
 */
const TICK_SLACK_MS = 2 * TICK_MS;

/** Wall-clock ms at which `pid` started (0 when it cannot be read). */
function startedAtMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime, clock ticks since boot); fields after the ")" of comm start at field 3.
    const ticks = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]);
    const uptimeMs = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000;
    return Date.now() - uptimeMs + ticks * TICK_MS;
  } catch {
    return 0;
  }
}

/** The newest modification time among `dirs` themselves (a file removed or renamed in) and the files in them. */
function newestMtimeMs(dirs: readonly string[]): number {
  let newest = 0;
  for (const dir of dirs)
    for (const name of [".", ...readdirSync(dir)]) {
      try {
        newest = Math.max(newest, statSync(join(dir, name)).mtimeMs);
      } catch {
        // Removed between readdir and stat: a file that is gone is not loaded.
      }
    }
  return newest;
}
