/**
 * Ring buffer of the most recent warnings and errors, shown on the status page
 * and in /api/status. Filled from the process logger (captureLogs), AFTER its
 * redaction format ran, so secrets scrubbed from logs are scrubbed here too.
 * Only an allowlist of fields is kept, each truncated: no free-form payloads.
 */
import { Writable } from "node:stream";
import winston from "winston";
import type { Logger } from "../runtime/logger.js";

export interface RecentError {
  /** ISO time. */
  readonly at: string;
  readonly level: "warn" | "error";
  readonly message: string;
  /** Selected context fields (binding, controller, key, reason, error, ...). */
  readonly fields: Readonly<Record<string, string>>;
}

const FIELDS = ["binding", "controller", "key", "reason", "error", "source", "document", "field", "container", "serviceId", "service", "file", "dir"] as const;
const MAX_VALUE = 400;

function clip(s: string): string {
  return s.length > MAX_VALUE ? `${s.slice(0, MAX_VALUE)}…` : s;
}

export class RecentErrors {
  private readonly items: RecentError[] = [];
  private readonly captured = new WeakSet<Logger>();

  constructor(private readonly capacity = 50) {}

  push(e: RecentError): void {
    this.items.push(e);
    if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
  }

  /** Newest first. */
  list(): readonly RecentError[] {
    return [...this.items].reverse();
  }

  /** Records a winston info object (already formatted/redacted by the logger). Ignores levels below warn. */
  record(info: Readonly<Record<string, unknown>>): void {
    const level = info.level;
    if (level !== "warn" && level !== "error") return;
    const fields: Record<string, string> = {};
    for (const f of FIELDS) {
      const v = info[f];
      if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") fields[f] = clip(String(v));
    }
    const at = typeof info.timestamp === "string" ? info.timestamp : new Date().toISOString();
    this.push({ at, level, message: clip(typeof info.message === "string" ? info.message : ""), fields });
  }

  /** Adds a transport to `logger` that feeds this buffer (once per logger). */
  captureLogs(logger: Logger): void {
    if (this.captured.has(logger)) return;
    this.captured.add(logger);
    const sink = new Writable({
      objectMode: true,
      write: (info: Record<string, unknown>, _enc, done) => {
        this.record(info);
        done();
      },
    });
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- winston's Stream transport is a TransportStream; its d.ts declares the class twice (see runtime/logger.ts)
    logger.add(new winston.transports.Stream({ stream: sink, level: "warn" }));
  }
}
