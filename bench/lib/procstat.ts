/**
 * CPU and memory of a process from /proc (Linux). CPU is utime + stime of the
 * process itself (children not included), in seconds; memory in MiB.
 */
import { readFileSync } from "node:fs";

const TICKS_PER_S = 100; // USER_HZ: 100 on every Linux this runs on (getconf CLK_TCK)

/** utime + stime of `pid`, seconds; NaN when the process is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after "comm)": state is field 3; utime and stime are fields 14 and 15.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / TICKS_PER_S;
  } catch {
    return Number.NaN;
  }
}

function statusField(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m?.[1] === undefined ? Number.NaN : Number(m[1]) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Peak resident set size (VmHWM) of `pid`, MiB. */
export function peakRssMiB(pid: number): number {
  return statusField(pid, "VmHWM");
}

/** Current resident set size (VmRSS) of `pid`, MiB. */
export function rssMiB(pid: number): number {
  return statusField(pid, "VmRSS");
}
