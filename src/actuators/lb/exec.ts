/**
 * Run a binary without a shell (execFile: no word splitting, no globbing, no
 * injection) and turn failure into a one-line description with trimmed stderr.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** Max stderr characters carried into error messages (the tail is kept). */
const STDERR_MAX = 2000;

export interface ExecOutcome {
  readonly ok: boolean;
  /** Trimmed, capped stderr (plus a cause note on failure). */
  readonly detail: string;
}

function field(err: unknown, key: string): unknown {
  return typeof err === "object" && err !== null && key in err ? (err as Record<string, unknown>)[key] : undefined;
}

function trimStderr(s: string): string {
  const t = s.trim();
  return t.length > STDERR_MAX ? `...${t.slice(-STDERR_MAX)}` : t;
}

function failureDetail(err: unknown, timeoutMs: number): string {
  const stderr = field(err, "stderr");
  const text = typeof stderr === "string" ? trimStderr(stderr) : "";
  const code = field(err, "code");
  let why: string;
  if (field(err, "killed") === true) why = `timed out after ${timeoutMs}ms`;
  else if (typeof code === "number") why = `exit code ${code}`;
  else why = err instanceof Error ? err.message : String(err);
  return text === "" ? why : `${why}: ${text}`;
}

/** Never rejects: resolves {ok:false} on non-zero exit, spawn error or timeout. */
export async function runFile(bin: string, args: readonly string[], timeoutMs: number): Promise<ExecOutcome> {
  try {
    const { stderr } = await execFileAsync(bin, [...args], {
      timeout: timeoutMs,
      killSignal: "SIGKILL",
      maxBuffer: 1024 * 1024,
      encoding: "utf8",
      windowsHide: true,
    });
    return { ok: true, detail: trimStderr(stderr) };
  } catch (err: unknown) {
    return { ok: false, detail: failureDetail(err, timeoutMs) };
  }
}

/** Like runFile, but resolves the full stdout and stderr (e.g. `nginx -V`, which prints to stderr). Never rejects. */
export async function runFileOutput(
  bin: string,
  args: readonly string[],
  timeoutMs: number,
  maxBuffer = 1024 * 1024,
): Promise<ExecOutcome & { readonly stdout: string; readonly stderr: string }> {
  try {
    const { stdout, stderr } = await execFileAsync(bin, [...args], {
      timeout: timeoutMs,
      killSignal: "SIGKILL",
      maxBuffer,
      encoding: "utf8",
      windowsHide: true,
    });
    return { ok: true, detail: trimStderr(stderr), stdout, stderr };
  } catch (err: unknown) {
    const text = (k: string): string => {
      const v = field(err, k);
      return typeof v === "string" ? v : "";
    };
    return { ok: false, detail: failureDetail(err, timeoutMs), stdout: text("stdout"), stderr: text("stderr") };
  }
}
