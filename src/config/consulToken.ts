/**
 * The Consul ACL token of a running controller: one holder per process, read
 * by the Consul client for every request (clients/consul/transport.ts), so a token
 * rotated in --consul-token-file is used without a restart.
 *
 * Contract of ConsulTokenFile:
 * - `current()` is the last non-empty token read from the file (the load
 *   step's value at start); an unreadable or empty file keeps it (a rotation
 *   tool that truncates before writing must not leave the controller without
 *   a token), reported once per state;
 * - the file is re-read when its directory changes (fs.watch on the
 *   directory, which also sees rename-over-file and Kubernetes secret volume
 *   symlink swaps), every `pollIntervalMs` as a fallback for missed events,
 *   and on `forbidden()` (Consul answered 403: the token may have been
 *   revoked and the file may already hold its successor), coalesced;
 * - a new value is registered with the logger's redactor BEFORE it becomes
 *   current, so no log line can carry it; the token itself is never logged,
 *   only that it changed;
 * - listeners added with `onChange` run after each change (the controller
 *   wakes loops waiting in error backoff). They must not throw.
 */
import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { isAborted, sleep } from "../runtime/backoff.js";
import { errorMessage, registerSecret, type Logger } from "../runtime/logger.js";
import type { ConsulTokenSource } from "../ports/consul.js";

/** The token in a token file: its text without surrounding whitespace; throws when unreadable or empty. */
export function tokenFromText(file: string, text: string): string {
  const t = text.trim();
  if (t === "") throw new Error(`consul token file ${file} is empty`);
  return t;
}

export interface ConsulTokenFileOptions {
  readonly path: string;
  /** The token read by the load step (config.ts). */
  readonly initial: string;
  readonly logger: Logger;
  /** Fallback re-read period (default 5 s). */
  readonly pollIntervalMs?: number;
  /** Coalescing delay of watch events and 403 notices (default 50 ms). */
  readonly debounceMs?: number;
}

export class ConsulTokenFile implements ConsulTokenSource {
  private token: string;
  private readonly listeners: (() => void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private again = false;
  /** Last problem reported (unreadable/empty), so a persisting one is logged once. */
  private problem = "";

  constructor(private readonly opts: ConsulTokenFileOptions) {
    this.token = opts.initial;
    registerSecret(opts.initial);
  }

  current(): string {
    return this.token;
  }

  forbidden(): void {
    this.schedule();
  }

  /** Adds a change listener; returns its removal. */
  onChange(listener: () => void): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** Watches and polls the file until `signal` aborts. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    let watcher: FSWatcher | undefined;
    const name = basename(this.opts.path);
    try {
      watcher = watch(dirname(this.opts.path), { persistent: false }, (_event, file) => {
        // Secret volumes swap a `..data` symlink; editors write a sibling then rename: any entry may matter.
        if (file === null || file === name || file.startsWith("..") || file.startsWith(`.${name}`)) this.schedule();
      });
      watcher.on("error", (err) => {
        this.opts.logger.warn("consul token file watch failed; polling only", { file: this.opts.path, error: errorMessage(err) });
      });
    } catch (err) {
      this.opts.logger.warn("cannot watch the consul token file; polling only", { file: this.opts.path, error: errorMessage(err) });
    }
    try {
      while (!isAborted(signal)) {
        await sleep(this.opts.pollIntervalMs ?? 5_000, signal);
        if (!isAborted(signal)) await this.reread();
      }
    } finally {
      clearTimeout(this.timer);
      watcher?.close();
    }
  }

  /** Re-reads the file now; concurrent calls coalesce into one extra read. Never rejects. */
  reread(): Promise<void> {
    if (this.reading !== undefined) {
      this.again = true;
      return this.reading;
    }
    this.reading = (async () => {
      do {
        this.again = false;
        await this.readOnce();
      } while (this.askedAgain());
    })().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  /** `again` read through a call: it changes while readOnce() is suspended. */
  private askedAgain(): boolean {
    return this.again;
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.reread();
    }, this.opts.debounceMs ?? 50);
    this.timer.unref();
  }

  private async readOnce(): Promise<void> {
    let next: string;
    try {
      next = tokenFromText(this.opts.path, await readFile(this.opts.path, "utf8"));
    } catch (err) {
      const problem = errorMessage(err);
      if (problem !== this.problem) this.opts.logger.warn("consul token file unusable; keeping the current token", { file: this.opts.path, error: problem });
      this.problem = problem;
      return;
    }
    this.problem = "";
    if (next === this.token) return;
    registerSecret(next);
    this.token = next;
    this.opts.logger.info("consul token file changed; the next requests use the new token", { file: this.opts.path });
    for (const l of [...this.listeners]) l();
  }
}
