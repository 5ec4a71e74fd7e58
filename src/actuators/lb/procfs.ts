/**
 * Linux /proc reads for the nginx driver's reload confirmation. Synchronous,
 * cheap (one readdir + one small read per process), never throw: a process
 * that exits while it is being read is simply not listed.
 */
import { readdirSync, readFileSync } from "node:fs";

/**
 * Live PIDs whose parent is `ppid`: /proc/PID/task/PID/children where the
 * kernel has it (one read; right for single-threaded parents such as the
 * nginx master), else a scan of every /proc/PID/stat (field 4).
 */
export function childPids(ppid: number): number[] {
  try {
    const text = readFileSync(`/proc/${ppid}/task/${ppid}/children`, "utf8").trim();
    return text === ""
      ? []
      : text
          .split(/\s+/)
          .map(Number)
          .filter((pid) => processAlive(pid));
  } catch {
    return scanChildren(ppid);
  }
}

function scanChildren(ppid: number): number[] {
  const out: number[] = [];
  let names: string[];
  try {
    names = readdirSync("/proc");
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] !== "Z" && Number(fields[1]) === ppid) out.push(Number(name));
    } catch {
      // exited between readdir and read
    }
  }
  return out;
}

/** True while `pid` exists and is not a zombie. */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0] !== "Z";
  } catch {
    return false;
  }
}
