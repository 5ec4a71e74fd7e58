/**
 * Process logger (winston). JSON lines by default, a human format on a TTY.
 * Fields are consistent across the code base: binding, node, action,
 * durationMs, reason. Values under keys that look secret are redacted, and
 * known secret strings (e.g. the Consul token) are scrubbed from every line.
 */
import winston from "winston";

export type Logger = winston.Logger;
export type LogLevel = "error" | "warn" | "info" | "debug";

const SECRET_KEY = /token|secret|password|authorization|private[_-]?key/i;

/** Secrets registered at start-up (e.g. CONSUL_HTTP_TOKEN) that must never be printed. */
const knownSecrets = new Set<string>();

export function registerSecret(value: string | undefined): void {
  if (value !== undefined && value.length >= 4) knownSecrets.add(value);
}

function scrub(text: string): string {
  let out = text;
  for (const s of knownSecrets) out = out.split(s).join("[REDACTED]");
  return out;
}

const redact = winston.format((info) => {
  for (const key of Object.keys(info)) {
    const value: unknown = info[key];
    if (SECRET_KEY.test(key)) info[key] = "[REDACTED]";
    else if (typeof value === "string") info[key] = scrub(value);
  }
  if (typeof info.message === "string") info.message = scrub(info.message);
  return info;
});

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly format: "json" | "text";
  /** Fields on every line, e.g. { node } so lines of several controllers can be told apart. */
  readonly defaultMeta?: Readonly<Record<string, string>>;
}

export function createLogger(opts: LoggerOptions): Logger {
  const format =
    opts.format === "json"
      ? winston.format.combine(redact(), winston.format.timestamp(), winston.format.errors({ stack: false }), winston.format.json())
      : winston.format.combine(redact(), winston.format.timestamp(), winston.format.simple());
  const logger = winston.createLogger({
    level: opts.level,
    format,
    ...(opts.defaultMeta !== undefined ? { defaultMeta: { ...opts.defaultMeta } } : {}),
    // stderr for everything: stdout is reserved for command output (plan, validate).
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- winston's Console transport is a TransportStream; its d.ts declares the class twice
    transports: [new winston.transports.Console({ stderrLevels: ["error", "warn", "info", "debug"] })],
  });
  dropBelowLevel(logger);
  return logger;
}

/**
 * Makes the level methods below the logger's level (fixed for the process) return at once.
 * winston runs a line through the whole format chain (redaction, timestamp, JSON) and only then
 * lets the transport drop it by level, so a `debug` call on a hot path (one per reconcile) cost
 * a formatted line nobody reads. Children (`child()`) inherit the methods.
 */
function dropBelowLevel(logger: Logger): void {
  const methods = logger as unknown as Record<string, unknown>;
  for (const level of Object.keys(logger.levels)) {
    if (logger.isLevelEnabled(level)) continue;
    methods[level] = function dropped(this: Logger): Logger {
      return this;
    };
  }
}

/** A logger that drops everything (unit tests, CLI subcommands with --quiet). */
export function silentLogger(): Logger {
  // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment -- see createLogger
  return winston.createLogger({ silent: true, transports: [new winston.transports.Console({ silent: true })] });
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
