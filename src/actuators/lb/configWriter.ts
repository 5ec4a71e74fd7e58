/**
 * Writes generated LB config the consul-template way: compare bytes, validate
 * the candidate in isolation, swap atomically, validate the live config,
 * reload. Blocking (fs + LB binary), serialised per writer: one operation at a
 * time, because a reload applies every file at once.
 *
 * Contract of apply():
 * - bytes on disk equal `text` and no reload pending => {changed:false,
 *   reloaded:false}, nothing spawned (a restarted controller does zero reloads).
 * - otherwise candidate (dot temp sibling) -> validateCandidate -> rename ->
 *   validateLive (failure: previous bytes restored / new file removed) ->
 *   reload.
 * - On ANY failure the last good file stays in place and no temp file is left.
 *   Errors are LbError: ValidationFailed | ReloadFailed | ReloadRejected |
 *   OutputDirFull | OutputDirReadOnly | WriteFailed (errors.ts). A full or
 *   read-only output directory fails at the candidate write (nothing renamed,
 *   the live file byte-identical) or at the rename (the live file untouched).
 * - ReloadRejected (the LB kept its old config) restores the previous file.
 * - NotIncluded (the live config is valid but does not load this file: no
 *   `include` covers it) leaves the new file, marks it reload-pending and does
 *   not reload: once an include covers it, the next apply() reloads.
 * - ReloadFailed leaves the new file (it passed both validations, so it is the
 *   new "last good") and marks the path reload-pending: the next
 *   apply()/remove() of that path retries validateLive + reload even when the
 *   bytes are equal. Pending state is in memory only: it does not survive a
 *   restart, so a controller killed between rename and a successful reload
 *   leaves nginx on the old config until the next change.
 * Idempotent: repeating a successful apply is a no-op.
 */
import { realpath } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import {
  commitTemp,
  DEFAULT_FILE_MODE,
  type FileOwner,
  discardFile,
  fixModeAndOwner,
  readIfExists,
  removeIfExists,
  removeStaleTemps,
  writeFileAtomic,
  writeTempSibling,
} from "./atomicFile.js";
import type { LiveConfig, LoadBalancerDriver } from "./driver.js";
import { asLbError, errorMessage, fsErrorReason, LbError, type LbErrorReason } from "./errors.js";
import { afterDeferral, afterReload, INITIAL_PACER, reloadDelayMs, type PacerState, type ReloadPacing } from "./reloadPacer.js";

/** How long one live check answers the retries of files awaiting an include (bounds the LB's checks when many wait). */
const SHARED_LIVE_CHECK_MS = 2_000;

const FS_FAILURES: ReadonlySet<LbErrorReason> = new Set(["OutputDirFull", "OutputDirReadOnly", "WriteFailed"]);

export interface ApplyResult {
  /** The file on disk was replaced/removed by this call. */
  readonly changed: boolean;
  /** A reload was performed successfully by this call. */
  readonly reloaded: boolean;
  /**
   * Set when nothing was done because the previous reload is younger than
   * `minReloadIntervalMs`: call again after this many ms (with fresh text).
   */
  readonly deferredMs?: number;
}

export interface ApplyOptions {
  readonly path: string;
  readonly text: string;
  /** Default 0o644; world-writable modes are refused. */
  readonly mode?: number;
  /**
   * Reload pacing (see reloadPacer.ts): when the bytes differ
   * but the pacer's gap since this writer's last reload has not passed, write
   * nothing and return `deferredMs`. The gap is this many ms after the first
   * reload of a burst and maxReloadIntervalMs after each further one.
   */
  readonly minReloadIntervalMs?: number;
  /** Gap after the second and later reloads of a burst (default: minReloadIntervalMs, i.e. constant spacing). */
  readonly maxReloadIntervalMs?: number;
  /**
   * The new text drops a server the current file routes to: the wait is capped
   * at minReloadIntervalMs (reloadPacer.ts), so removals are not held back for
   * a burst's longer gap. Default false.
   */
  readonly removesServers?: boolean;
}

export class LbConfigWriter {
  private readonly pendingReload = new Set<string>();
  /** Files on disk the LB's live config was last found not to include (NotIncluded): checked again on every apply. */
  private readonly unincluded = new Set<string>();
  /** The last successful live check, shared by the retries of files awaiting an include (SHARED_LIVE_CHECK_MS). */
  private lastLive: { readonly at: number; readonly live: LiveConfig } | undefined;
  private readonly sharedLiveCheckMs: number;
  /** Directories where a filesystem failure may have left a temp file (see sweeping). */
  private readonly sweepDirs = new Set<string>();
  /** Reload pacing on the performance.now() clock; `pacing` is the latest apply()'s. */
  private pacer: PacerState = INITIAL_PACER;
  private pacing: ReloadPacing = { minMs: 0, maxMs: 0 };
  private tail: Promise<unknown> = Promise.resolve();

  /** Mode and owner of every file this writer creates (--lb-file-mode, --lb-file-owner). */
  private readonly fileMode: number;
  private readonly fileOwner: FileOwner | undefined;

  /**
   * `checks.sharedLiveCheckMs`: how long one live check answers the retries of files awaiting an
   * include (default SHARED_LIVE_CHECK_MS; 0: every retry checks).
   */
  constructor(
    private readonly driver: LoadBalancerDriver,
    files: { readonly mode?: number; readonly owner?: FileOwner } = {},
    checks: { readonly sharedLiveCheckMs?: number } = {},
  ) {
    this.fileMode = files.mode ?? DEFAULT_FILE_MODE;
    this.fileOwner = files.owner;
    this.sharedLiveCheckMs = checks.sharedLiveCheckMs ?? SHARED_LIVE_CHECK_MS;
  }

  /** True when `path` changed on disk but the reload after it has not succeeded yet. */
  isReloadPending(path: string): boolean {
    return this.pendingReload.has(path);
  }

  apply(opts: ApplyOptions): Promise<ApplyResult> {
    return this.serialise(() => this.sweeping(opts.path, () => this.doApply(opts)));
  }

  /** Delete our generated file (binding deleted), validate live, reload. Missing file => no-op unless pending. */
  remove(path: string): Promise<ApplyResult> {
    return this.serialise(() => this.sweeping(path, () => this.doRemove(path)));
  }

  /**
   * Runs `op` on `path`. A temp file whose removal failed (the file system
   * turned read-only between its creation and its discard) cannot stay: after
   * a filesystem failure the directory is marked, and the next operation in it
   * first removes this process's (and dead writers') temp siblings there.
   * Safe because operations are serialised and each writer owns its directory.
   */
  private async sweeping(path: string, op: () => Promise<ApplyResult>): Promise<ApplyResult> {
    const dir = dirname(path);
    if (this.sweepDirs.delete(dir)) await removeStaleTemps(dir);
    try {
      return await op();
    } catch (err: unknown) {
      if (err instanceof LbError && FS_FAILURES.has(err.reason)) this.sweepDirs.add(dir);
      throw err;
    }
  }

  private serialise<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async doApply({
    path,
    text,
    mode = this.fileMode,
    minReloadIntervalMs = 0,
    maxReloadIntervalMs = minReloadIntervalMs,
    removesServers = false,
  }: ApplyOptions): Promise<ApplyResult> {
    this.pacing = { minMs: minReloadIntervalMs, maxMs: maxReloadIntervalMs };
    const bytes = Buffer.from(text, "utf8");
    const previous = await io(() => readIfExists(path), `read ${path}`);
    if (previous?.equals(bytes) === true) {
      // Same bytes: only the mode/owner may need fixing (no reload: nginx reads the content, not the mode).
      await io(() => fixModeAndOwner(path, mode, this.fileOwner), `set mode/owner of ${path}`);
      return this.retryPending(path);
    }
    const wait = minReloadIntervalMs > 0 ? reloadDelayMs(this.pacer, performance.now(), this.pacing, removesServers) : 0;
    if (wait > 0) {
      this.pacer = afterDeferral(this.pacer, removesServers);
      return { changed: false, reloaded: false, deferredMs: wait };
    }

    const candidate = await io(() => writeTempSibling(path, bytes, mode, this.fileOwner), `write candidate for ${path}`);
    try {
      await this.driver.validateCandidate(candidate);
    } catch (err: unknown) {
      await discardFile(candidate);
      throw asLbError(err, "ValidationFailed", `candidate for ${path}`);
    }
    return this.swapAndReload(path, previous, mode, `rename candidate onto ${path}`, () => commitTemp(candidate, path));
  }

  private async doRemove(path: string): Promise<ApplyResult> {
    const previous = await io(() => readIfExists(path), `read ${path}`);
    if (previous === undefined) return this.retryPending(path, false);
    return this.swapAndReload(
      path,
      previous,
      this.fileMode,
      `remove ${path}`,
      async () => {
        await removeIfExists(path);
      },
      false,
    );
  }

  /**
   * Equal bytes on disk: only a reload left pending by an earlier failure, or a file found not
   * included, is retried (after validateLive; another file's reload may have cleared the pending flag
   * meanwhile, but nginx loads a newly included file only on a reload).
   */
  private async retryPending(path: string, present = true): Promise<ApplyResult> {
    const pending = this.pendingReload.has(path);
    if (!pending && !this.unincluded.has(path)) return { changed: false, reloaded: false };
    // Only an include is awaited: many such files retrying at once share one recent check of the LB.
    const recent = this.lastLive !== undefined && performance.now() - this.lastLive.at < this.sharedLiveCheckMs ? this.lastLive.live : undefined;
    await this.mustBeIncluded(path, present, !pending && recent !== undefined ? recent : await this.validateLive(path));
    await this.reloadAll();
    return { changed: false, reloaded: true };
  }

  /**
   * `change` puts the new state on disk (atomic rename / unlink); then the live
   * config is validated (failure: `previous` restored, error thrown) and nginx
   * reloaded. The path is marked pending before `change`, because from then on
   * the disk may differ from what nginx runs; only a successful reload (or a
   * successful restore) clears that.
   */
  private async swapAndReload(
    path: string,
    previous: Buffer | undefined,
    mode: number,
    what: string,
    change: () => Promise<void>,
    present = true,
  ): Promise<ApplyResult> {
    const wasPending = this.pendingReload.has(path);
    this.pendingReload.add(path);
    await io(change, what);
    let live: LiveConfig;
    try {
      live = await this.validateLive(path);
    } catch (err: unknown) {
      await restore(path, previous, mode, err, this.fileOwner);
      if (!wasPending) this.pendingReload.delete(path);
      throw err;
    }
    await this.mustBeIncluded(path, present, live);
    try {
      await this.reloadAll();
    } catch (err: unknown) {
      // The LB kept its previous config: put the previous file back so disk matches what runs and this
      // binding's change cannot block other bindings' reloads; the caller retries with backoff.
      if (err instanceof LbError && err.reason === "ReloadRejected") {
        await restore(path, previous, mode, err, this.fileOwner);
        if (!wasPending) this.pendingReload.delete(path);
      }
      throw err;
    }
    return { changed: true, reloaded: true };
  }

  private async validateLive(path: string): Promise<LiveConfig> {
    try {
      const live = await this.driver.validateLive();
      this.lastLive = { at: performance.now(), live };
      return live;
    } catch (err: unknown) {
      this.lastLive = undefined;
      throw asLbError(err, "ValidationFailed", `live config with ${path}`);
    }
  }

  /** Throws NotIncluded when `path` is on disk (`present`) and the LB listed the files it loaded without it. */
  private async mustBeIncluded(path: string, present: boolean, live: LiveConfig): Promise<void> {
    if (!present || live.files === undefined || (await listed(live.files, path))) {
      this.unincluded.delete(path);
      return;
    }
    this.unincluded.add(path);
    throw new LbError(
      "NotIncluded",
      `${path} is valid and in place, but ${this.driver.kind}'s configuration does not include it, so nothing in it is served: add an include of its directory (nginx: \`include ${dirname(path)}/*.conf;\` in http {}, or in stream {} for the stream directory); it is reloaded once included`,
    );
  }

  /** A successful reload applies every file on disk, so it clears every pending flag. */
  private async reloadAll(): Promise<void> {
    try {
      await this.driver.reload();
    } catch (err: unknown) {
      throw asLbError(err, "ReloadFailed", "reload");
    }
    this.pacer = afterReload(this.pacer, performance.now(), this.pacing);
    this.pendingReload.clear();
  }
}

/** Whether `files` (as the LB lists them) hold `path`: the same absolute path, or the same file reached through a symlink. */
async function listed(files: ReadonlySet<string>, path: string): Promise<boolean> {
  const abs = resolve(path);
  if (files.has(abs)) return true;
  const real = await realpath(abs).catch(() => abs);
  for (const f of files) {
    if (basename(f) === basename(abs) && (await realpath(f).catch(() => f)) === real) return true;
  }
  return false;
}

/**
 * Put `previous` back (or remove the file when there was none). Throws a
 * combined LbError if that fails, with the restore's reason when the output
 * directory is full or read-only (what the operator must fix), else `failure`'s.
 */
async function restore(path: string, previous: Buffer | undefined, mode: number, failure: unknown, owner?: FileOwner): Promise<void> {
  try {
    if (previous === undefined) await removeIfExists(path);
    else await writeFileAtomic(path, previous, mode, owner);
  } catch (restoreErr: unknown) {
    const restoreReason = fsErrorReason(restoreErr);
    throw new LbError(
      restoreReason !== "WriteFailed" ? restoreReason : failure instanceof LbError ? failure.reason : "ValidationFailed",
      `${errorMessage(failure)}; restoring the previous ${path} ALSO failed: ${errorMessage(restoreErr)}`,
      { cause: failure },
    );
  }
}

/** Runs a filesystem step; its failure becomes an LbError whose reason names the cause (fsErrorReason). */
async function io<T>(fn: () => Promise<T>, what: string): Promise<T> {
  try {
    return await fn();
  } catch (err: unknown) {
    throw asLbError(err, fsErrorReason(err), what);
  }
}
