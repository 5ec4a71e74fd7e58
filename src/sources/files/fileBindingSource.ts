/**
 * File binding source: every *.yaml|*.yml|*.json file in one directory,
 * hot-reloaded on change (fs.watch, plus a slow poll because watches can miss
 * events on some filesystems).
 *
 * Contract ("bad input affects only itself, loses nothing converged"):
 * - an invalid document keeps the last good version of the same binding key;
 *   a file that is not even valid YAML keeps every binding it had before;
 * - a file with any invalid document (or an empty, whitespace-only or
 *   unparsable file: what a truncating writer leaves for a moment) never
 *   deletes: a binding missing from it keeps its last good version;
 * - only a binding whose document is removed (or whose file is deleted) goes
 *   away, and only once it stayed absent for `deleteDelayMs` (a file moved
 *   out and back, or rewritten non-atomically, must not take traffic down).
 *   Meanwhile it is served unchanged and listed by deletions(); coming back
 *   cancels the deletion with no change reported (no Consul write, no
 *   reload). A scan that would delete more than half of all bindings is
 *   warned about once and reported to `onMassDeletion`;
 * - cross-binding conflicts (same key, same LB output file or listen socket,
 *   same container port claimed twice) reject the later binding (by file
 *   name, then document order);
 * - `onChange` receives the keys whose binding appeared, changed or vanished.
 *
 * Cost: a file is parsed and validated only when its text
 * differs from the last scan's; a scan that reads every file byte-identical
 * to the last complete scan stops after the reads (same input, same result:
 * the poll of 500 unchanged files costs reads, not 500 YAML parses and the
 * pairwise conflict check).
 */
import { watch, type FSWatcher } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { matchesSelector } from "../../domain/selector.js";
import { lbProtocol, type LabelSelector, type ServiceBinding } from "../../domain/types.js";
import { isAborted, sleep } from "../../runtime/backoff.js";
import { errorMessage, type Logger } from "../../runtime/logger.js";
import type { BindingProblem, BindingStore, PendingDeletion } from "../../ports/bindingStore.js";
import { formatProblem } from "./problems.js";
import { parseBindingFile, type ParsedFile } from "./parseBindingFile.js";

export interface FileBindingSourceOptions {
  readonly dir: string;
  readonly logger: Logger;
  readonly onChange: (keys: readonly string[]) => void;
  readonly pollIntervalMs?: number;
  readonly debounceMs?: number;
  /** Parses one file's text (default parseBindingFile); must be pure. A seam for tests that count parses. */
  readonly parseFile?: (text: string) => ParsedFile;
  /** How long a vanished binding is kept before it is deleted (default 0: at once). */
  readonly deleteDelayMs?: number;
  /** Called once per scan that starts holding a deletion of more than half of all bindings. */
  readonly onMassDeletion?: (deleting: number, total: number) => void;
  /** Clock (tests). */
  readonly now?: () => number;
}

export interface Entry {
  readonly binding: ServiceBinding;
  readonly file: string;
  /** 1-based document number in `file` (for precise conflict reports). */
  readonly document?: number;
}

const BINDING_FILE = /\.(ya?ml|json)$/;

export class FileBindingSource implements BindingStore {
  private entries = new Map<string, Entry>();
  /** `list()`'s answer for the current `entries` (computed on first use). */
  private listed: readonly ServiceBinding[] | undefined;
  private currentProblems: readonly BindingProblem[] = [];
  private loaded = false;
  private scanning: Promise<void> | undefined;
  private rescanRequested = false;
  /** File -> its text and parse at the last scan (parseBindingFile is pure). */
  private parsedFiles = new Map<string, { readonly text: string; readonly parsed: ParsedFile }>();
  /** True when the last scan read every file: its `parsedFiles` is then the whole input of that scan. */
  private lastScanComplete = false;
  /** Vanished bindings still served (their entries stay in `entries`) until their deleteAt. */
  private pending = new Map<string, PendingDeletion>();
  private massHeld = false;
  private deletionTimer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly opts: FileBindingSourceOptions) {}

  deletions(): readonly PendingDeletion[] {
    return [...this.pending.values()];
  }

  synced(): boolean {
    return this.loaded;
  }

  get(key: string): ServiceBinding | undefined {
    return this.entries.get(key)?.binding;
  }

  /** The same array until the next scan changes `entries` (callers must not mutate it). */
  list(): readonly ServiceBinding[] {
    this.listed ??= [...this.entries.values()].map((e) => e.binding);
    return this.listed;
  }

  problems(): readonly BindingProblem[] {
    return this.currentProblems;
  }

  /** Watches the directory until `signal` aborts. Performs the initial scan first. */
  async run(signal: AbortSignal): Promise<void> {
    await this.rescan();
    let watcher: FSWatcher | undefined;
    let timer: NodeJS.Timeout | undefined;
    const schedule = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => void this.rescan(), this.opts.debounceMs ?? 100);
    };
    try {
      watcher = watch(this.opts.dir, { persistent: false }, schedule);
      watcher.on("error", (err) => {
        this.opts.logger.warn("bindings directory watch failed; polling only", { dir: this.opts.dir, error: errorMessage(err) });
      });
    } catch (err) {
      this.opts.logger.warn("cannot watch bindings directory; polling only", { dir: this.opts.dir, error: errorMessage(err) });
    }
    try {
      while (!isAborted(signal)) {
        await sleep(this.opts.pollIntervalMs ?? 5000, signal);
        if (!isAborted(signal)) await this.rescan();
      }
    } finally {
      this.stopped = true;
      clearTimeout(timer);
      clearTimeout(this.deletionTimer);
      watcher?.close();
    }
  }

  /** Re-reads the directory; concurrent calls coalesce into one extra scan. Never rejects. */
  rescan(): Promise<void> {
    if (this.scanning !== undefined) {
      this.rescanRequested = true;
      return this.scanning;
    }
    this.scanning = (async () => {
      do {
        this.rescanRequested = false;
        try {
          await this.scanOnce();
        } catch (err) {
          this.opts.logger.error("cannot read bindings directory; keeping current bindings", { dir: this.opts.dir, error: errorMessage(err) });
        }
      } while (this.takeRescanRequest());
    })().finally(() => {
      this.scanning = undefined;
    });
    return this.scanning;
  }

  private takeRescanRequest(): boolean {
    return this.rescanRequested;
  }

  private async scanOnce(): Promise<void> {
    const names = (await readdir(this.opts.dir)).filter((n) => BINDING_FILE.test(n) && !n.startsWith(".")).sort();
    const texts = new Map<string, string | { readonly error: unknown }>();
    for (const name of names) {
      const file = join(this.opts.dir, name);
      try {
        texts.set(file, await readFile(file, "utf8"));
      } catch (err) {
        texts.set(file, { error: err });
      }
    }
    if (this.unchangedSinceLastScan(texts)) return;
    const next = new Map<string, Entry>();
    const problems: BindingProblem[] = [];
    const parsedFiles = new Map<string, { readonly text: string; readonly parsed: ParsedFile }>();
    const keepPrevious = (key: string, file: string): void => {
      const prev = this.entries.get(key);
      if (prev?.file === file && !next.has(key)) next.set(key, prev);
    };
    for (const [file, text] of texts) {
      if (typeof text !== "string") {
        problems.push({ source: file, document: 0, field: "(file)", message: errorMessage(text.error) });
        for (const [key, e] of this.entries) if (e.file === file) keepPrevious(key, file);
        continue;
      }
      const cached = this.parsedFiles.get(file);
      const parsed = cached?.text === text ? cached.parsed : (this.opts.parseFile ?? parseBindingFile)(text);
      parsedFiles.set(file, { text, parsed });
      if (!parsed.readable) for (const [key, e] of this.entries) if (e.file === file) keepPrevious(key, file);
      this.acceptDocuments(file, parsed, next, problems, keepPrevious);
      // Invalid input never deletes: a binding this file no longer yields keeps its last good version.
      if (parsed.documents.some((d) => d.errors.length > 0)) for (const [key, e] of this.entries) if (e.file === file) keepPrevious(key, file);
    }
    this.holdDeletions(next);
    problems.push(...dropConflicts(next, new Set(this.entries.keys())));
    this.parsedFiles = parsedFiles;
    this.lastScanComplete = parsedFiles.size === texts.size;
    this.commit(next, problems);
  }

  private acceptDocuments(
    file: string,
    parsed: ParsedFile,
    next: Map<string, Entry>,
    problems: BindingProblem[],
    keepPrevious: (key: string, file: string) => void,
  ): void {
    // One file's documents into `next`; a document that is invalid keeps its key's last good version.
    for (const doc of parsed.documents) {
      for (const e of doc.errors) problems.push({ source: file, document: doc.document, ...e, ...(doc.key !== undefined ? { key: doc.key } : {}) });
      if (doc.binding === undefined || doc.key === undefined) {
        if (doc.key !== undefined) keepPrevious(doc.key, file);
        continue;
      }
      const other = next.get(doc.key);
      if (other !== undefined) {
        problems.push({
          source: file,
          document: doc.document,
          field: "metadata.name",
          message: `binding ${doc.key} is already defined in ${other.file}`,
          key: doc.key,
        });
        continue;
      }
      next.set(doc.key, { binding: doc.binding, file, document: doc.document });
    }
  }

  /**
   * The deletion hold (see the file comment). Mutates `next`: a vanished
   * binding whose delay has not run out is put back unchanged. A binding
   * back in `next` cancels its pending deletion.
   */
  private holdDeletions(next: Map<string, Entry>): void {
    const now = (this.opts.now ?? Date.now)();
    const delay = this.opts.deleteDelayMs ?? 0;
    for (const [key, p] of this.pending) {
      if (!next.has(key)) continue;
      this.pending.delete(key);
      this.opts.logger.info("binding deletion cancelled: the binding is back", { binding: key, file: p.file });
    }
    const vanished = [...this.entries].filter(([key]) => !next.has(key));
    const mass = vanished.length * 2 > this.entries.size && vanished.length > 0;
    if (mass && !this.massHeld) {
      this.opts.logger.warn(
        delay > 0 ? "bindings scan would delete most bindings; holding the deletion for the delete delay" : "bindings scan deletes most bindings",
        {
          dir: this.opts.dir,
          deleting: vanished.length,
          total: this.entries.size,
          deleteIn: `${Math.ceil(delay / 1000)}s`,
        },
      );
      this.opts.onMassDeletion?.(vanished.length, this.entries.size);
    }
    this.massHeld = mass;
    for (const [key, entry] of vanished) {
      let p = this.pending.get(key);
      if (p === undefined) {
        p = { key, file: entry.file, since: now, deleteAt: now + delay, mass };
        if (delay > 0)
          this.opts.logger.info("binding removed; deleting it after the delete delay unless it comes back", {
            binding: key,
            file: entry.file,
            deleteIn: `${Math.ceil(delay / 1000)}s`,
          });
      }
      if (now < p.deleteAt) {
        this.pending.set(key, p);
        next.set(key, entry);
      } else this.pending.delete(key);
    }
    this.armDeletionTimer(now);
  }

  /** Rescans when the earliest pending deletion is due. */
  private armDeletionTimer(now: number): void {
    clearTimeout(this.deletionTimer);
    this.deletionTimer = undefined;
    if (this.stopped || this.pending.size === 0) return;
    const due = Math.min(...[...this.pending.values()].map((p) => p.deleteAt));
    this.deletionTimer = setTimeout(() => void this.rescan(), Math.max(0, due - now) + 5);
    this.deletionTimer.unref();
  }

  /**
   * True when `texts` is exactly the input of the last scan (same files, same
   * bytes, every one readable). A scan is a function of its input and of the
   * bindings the previous one kept, and re-running it on its own result
   * changes nothing (kept versions stay kept, accepted bindings never clash
   * among themselves), so such a scan may stop here.
   */
  private unchangedSinceLastScan(texts: ReadonlyMap<string, string | { readonly error: unknown }>): boolean {
    // A pending deletion makes the result depend on the clock: such a scan always runs.
    if (!this.loaded || !this.lastScanComplete || this.pending.size > 0 || texts.size !== this.parsedFiles.size) return false;
    for (const [file, text] of texts) if (typeof text !== "string" || this.parsedFiles.get(file)?.text !== text) return false;
    return true;
  }

  private commit(next: Map<string, Entry>, problems: BindingProblem[]): void {
    const changed: string[] = [];
    for (const key of new Set([...this.entries.keys(), ...next.keys()])) {
      const a = this.entries.get(key);
      const b = next.get(key);
      if (JSON.stringify(a?.binding) !== JSON.stringify(b?.binding)) changed.push(key);
    }
    const before = new Set(this.currentProblems.map(formatProblem));
    for (const p of problems) {
      if (!before.has(formatProblem(p)))
        this.opts.logger.error("invalid binding", { source: p.source, document: p.document, field: p.field, error: p.message, binding: p.key });
    }
    this.entries = next;
    this.listed = undefined;
    this.currentProblems = problems;
    const first = !this.loaded;
    this.loaded = true;
    if (changed.length > 0 || first) {
      this.opts.logger.info("bindings loaded", { count: next.size, changed: changed.length, problems: problems.length });
    }
    if (changed.length > 0) this.opts.onChange(changed);
  }
}

/**
 * Rejects one of two bindings that would write the same LB file, listen on
 * the same socket, or claim the same container port (see portClaimClash):
 * bindings that already existed win over new ones (so adding a clashing file
 * never takes down a converged binding), then key order. Exported for
 * `controller validate`, which applies the same cross-binding rules.
 */
export function dropConflicts(next: Map<string, Entry>, existing: ReadonlySet<string>): BindingProblem[] {
  const problems: BindingProblem[] = [];
  const outputs = new Map<string, string>();
  const sockets = new Map<string, string>();
  const accepted: ServiceBinding[] = [];
  const keys = [...next.keys()].sort();
  for (const key of [...keys.filter((k) => existing.has(k)), ...keys.filter((k) => !existing.has(k))]) {
    const entry = next.get(key);
    if (entry === undefined) continue;
    const lb = entry.binding.spec.loadBalancer;
    // A UDP listener shares no socket with a TCP one (http or tcp) on the same address and port.
    const socket = lb === undefined ? "" : `${lb.listen.address}:${lb.listen.port}${lbProtocol(lb) === "udp" ? "/udp" : ""}`;
    const claimedBy = accepted.find((a) => portClaimClash(a, entry.binding));
    const clash =
      lb !== undefined && outputs.has(lb.output)
        ? { field: "spec.loadBalancer.output", message: `output ${lb.output} is already used by binding ${outputs.get(lb.output) ?? ""}` }
        : lb !== undefined && sockets.has(socket) && lb.serverName === undefined
          ? {
              field: "spec.loadBalancer.listen",
              message: `listen ${socket} is already used by binding ${sockets.get(socket) ?? ""}; set serverName to share it`,
            }
          : claimedBy !== undefined
            ? {
                field: "spec.backends",
                message:
                  `port ${entry.binding.spec.backends.port}/${entry.binding.spec.backends.protocol} of containers matching this selector is already claimed by binding ` +
                  `${claimedBy.metadata.namespace}/${claimedBy.metadata.name}; use disjoint selectors or another port`,
              }
            : undefined;
    if (clash !== undefined) {
      problems.push({ source: entry.file, document: entry.document ?? 0, ...clash, key });
      next.delete(key);
      continue;
    }
    accepted.push(entry.binding);
    if (lb !== undefined) {
      outputs.set(lb.output, key);
      sockets.set(socket, key);
    }
  }
  return problems;
}

/**
 * Two bindings claiming the same container port would register one
 * backend twice (two services, two checks, two owners of one port). Detected
 * statically: same port and protocol, and the smallest container one selector
 * describes (its matchLabels, the first value of each `In`, any value for
 * `Exists`) is also matched by the other selector. Selectors that only
 * overlap on containers carrying labels of both are not detected here.
 */
function portClaimClash(a: ServiceBinding, b: ServiceBinding): boolean {
  const pa = a.spec.backends;
  const pb = b.spec.backends;
  if (pa.port !== pb.port || pa.protocol !== pb.protocol) return false;
  // Swarm bindings select services, not containers: their tasks are claimed per service.
  if (pa.selector === undefined || pb.selector === undefined) return false;
  return (
    (matchesSelector(pa.selector, witness(pb.selector)) && matchesSelector(pb.selector, witness(pb.selector))) ||
    (matchesSelector(pb.selector, witness(pa.selector)) && matchesSelector(pa.selector, witness(pa.selector)))
  );
}

/** The smallest label set a selector plausibly selects. */
function witness(sel: LabelSelector): Record<string, string> {
  const labels: Record<string, string> = { ...(sel.matchLabels ?? {}) };
  for (const x of sel.matchExpressions ?? []) {
    if (Object.hasOwn(labels, x.key)) continue;
    if (x.operator === "In" && x.values?.[0] !== undefined) labels[x.key] = x.values[0];
    if (x.operator === "Exists") labels[x.key] = "";
  }
  return labels;
}
