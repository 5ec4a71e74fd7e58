/**
 * `run`: execFile wrapper for the test bed. Never uses a shell, never throws on
 * a non-zero exit unless `check` is set (then the Error carries the command,
 * exit code and stderr).
 */
import { execFile } from "node:child_process";

export interface RunOptions {
  /** Throw when the exit code is not 0 (or the program cannot start). */
  readonly check?: boolean;
  readonly cwd?: string;
  /** Extra environment, merged over process.env. */
  readonly env?: Readonly<Record<string, string>>;
  /** Written to stdin, then stdin is closed. */
  readonly input?: string;
  /** Kill (SIGKILL) after this long; default 120 s. */
  readonly timeoutMs?: number;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  /** Exit code; 127 when the program is missing, 128+n when killed by signal n / timeout. */
  readonly code: number;
}

export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      {
        cwd: opts.cwd,
        env: opts.env ? { ...process.env, ...opts.env } : process.env,
        timeout: opts.timeoutMs ?? 120_000,
        killSignal: "SIGKILL",
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
      },
      (err, stdout, stderr) => {
        const code = exitCode(err);
        const res: RunResult = {
          stdout,
          stderr: err && code === 127 && stderr === "" ? err.message : stderr,
          code,
        };
        if (opts.check === true && code !== 0) {
          reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${res.stderr.trim().slice(-2000) || res.stdout.trim().slice(-2000)}`));
          return;
        }
        resolve(res);
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    else child.stdin?.end();
  });
}

function exitCode(err: (Error & { code?: unknown; signal?: unknown }) | null): number {
  if (err === null) return 0;
  if (typeof err.code === "number") return err.code;
  if (err.code === "ENOENT") return 127;
  if (typeof err.signal === "string") return 137;
  return 1;
}

/** The docker CLI against the engine at `host` (a `-H` address; "" is the shared engine). */
export function docker(host: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run("docker", [...(host === "" ? [] : ["-H", host]), ...args], opts);
}
