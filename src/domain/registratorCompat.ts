/**
 * registrator compatibility (`--registrator-compat`): the Consul registrations
 * gliderlabs/registrator would make for one container, computed from the same
 * SERVICE_* labels and env, so an existing docker-compose file keeps working.
 * Pure: no I/O, no DNS, no clock.
 *
 * Reproduced from registrator (bridge/bridge.go newService, bridge/util.go
 * serviceMetaData, consul/consul.go Register/buildCheck):
 * - Metadata comes from Config.Env and labels whose key starts with `SERVICE_`
 *   (case-sensitive prefix). The rest of the key is lower-cased. Env is read
 *   first and labels second, so a label wins over env for the same key.
 *   `SERVICE_<port>_<KEY>` applies only to the service on that private port and
 *   always beats `SERVICE_<KEY>`. An empty value counts as unset (mapDefault).
 * - Ports: published mode (default) takes only ports with a host port; internal
 *   mode takes every exposed or published port.
 * - Name: SERVICE_NAME, else the image base name without registry, path or tag.
 *   When more than one port qualifies, `-<privatePort>` is appended unless the
 *   name came from `SERVICE_<port>_NAME`. registrator appends it even to an
 *   explicit SERVICE_NAME (CHANGELOG "#194").
 * - Skipping: any non-empty SERVICE_IGNORE / SERVICE_<port>_IGNORE, even "false".
 *   With `explicit` (registrator -explicit), ports without a name are skipped.
 * - ID: SERVICE_ID, else `<node>:<containerName>:<privatePort>`, plus `:udp` for
 *   UDP ports. UDP services also get the tag `udp`. The name stays the same.
 * - Tags: SERVICE_TAGS split on commas (`\,` escapes a comma), then `extraTags`
 *   (registrator -tags), then `udp`.
 * - Address: internal mode uses the container IP and the private port. Published
 *   mode uses the `hostIP` option (registrator -ip), else the binding's host IP
 *   when it is a specific address, and the published host port.
 * - Other keys become Consul service meta (registrator sets Meta = Attrs).
 * - SERVICE_WEIGHT (dockbind's addition; registrator has no weights) becomes
 *   Consul `Weights.Passing` (1..100) instead of meta; another value is dropped
 *   with an issue.
 *
 * Deliberate differences (all reported as CompatIssue unless noted):
 * - Names are made DNS-safe: lower-cased, runs of other characters become '-',
 *   and the result is cut to 63 characters, leaving room for the port suffix.
 *   registrator registers the raw string.
 * - Invalid tags, IDs, meta keys and meta values are dropped. An invalid
 *   SERVICE_ID falls back to the default ID. registrator passes them through.
 * - Tag whitespace is trimmed, duplicates are removed and declaration order is
 *   kept (not reported). registrator's comma parser reverses the order.
 * - `check_*` keys configure the check only and are left out of meta.
 *   registrator copies them into Meta too.
 * - A binding on 0.0.0.0 / :: with no `hostIP` option is skipped with an issue.
 *   registrator resolves its own hostname through DNS instead.
 * - Digests (`image@sha256:…`) are stripped from the default name.
 * - Script, cmd, docker and gRPC checks are not registered (see
 *   registratorCompatChecks.ts).
 * - When several ports produce the same ID (for example a generic SERVICE_ID on
 *   a multi-port container), the lowest port keeps it and the others are
 *   skipped. In registrator the last write wins.
 * - The container's network mode is not available here: `--net=host`
 *   containers and `container:` network modes are not special-cased.
 */
import { OWNER_META } from "./types.js";
import type { ContainerInfo, PortMapping, Protocol, Registration } from "./types.js";
import { MAX_WEIGHT, MIN_WEIGHT, parseWeight } from "./traffic.js";
import { buildCompatCheck, isCheckKey, quoteUntrusted, type CompatMetaValue, type CompatMetadata } from "./registratorCompatChecks.js";

export const COMPAT_BINDING_KEY = "registrator-compat";

export interface CompatOptions {
  /** Controller node identity: owner meta and the `<hostname>` part of default IDs. */
  readonly node: string;
  /** registrator -ip: address advertised in published mode. */
  readonly hostIP?: string;
  /** registrator -internal: advertise container IP + private port. */
  readonly internal: boolean;
  /** Internal mode: network whose container IP is advertised (default: first by name). */
  readonly network?: string;
  /** registrator -tags: tags appended to every service. */
  readonly extraTags: readonly string[];
  /** registrator -explicit: only register ports with SERVICE_NAME / SERVICE_<port>_NAME. */
  readonly explicit?: boolean;
}

export interface CompatIssue {
  readonly containerId: string;
  /** Offending input: `labels.SERVICE_TAGS`, `env.SERVICE_80_NAME`, `image`, `ports.80/tcp`, `extraTags`. */
  readonly field: string;
  readonly message: string;
}

export interface CompatResult {
  readonly registrations: readonly Registration[];
  readonly issues: readonly CompatIssue[];
}

const TAG_RE = /^[A-Za-z0-9._:/=@+-]{1,255}$/;
const SERVICE_ID_RE = /^[A-Za-z0-9._:@-]{1,255}$/;
const META_KEY_RE = /^[A-Za-z0-9_-]{1,128}$/;
const RESERVED_META_PREFIXES: readonly string[] = ["consul-", "dockbind_"];
export const MAX_META_KEYS = 50;
const MAX_META_VALUE_LENGTH = 512;
const MAX_TAGS = 64;
/**
 * Meta values may hold any text except control characters, Unicode line
 * separators and characters that break out of config or template syntax.
 */
const META_VALUE_FORBIDDEN_CHARS = ";{}`\"'$\\\u2028\u2029";

function hasForbiddenMetaChar(value: string): boolean {
  for (const c of value) {
    const code = c.charCodeAt(0);
    if (code < 0x20 || (code >= 0x7f && code <= 0x9f) || META_VALUE_FORBIDDEN_CHARS.includes(c)) return true;
  }
  return false;
}

/** Keys consumed by registrator itself, never copied into meta. */
const SPECIAL_KEYS: ReadonlySet<string> = new Set(["name", "id", "tags", "ignore", "weight"]);
const SERVICE_PREFIX = "SERVICE_";

interface RawEntry {
  /** Lower-cased key without `SERVICE_`. */
  readonly key: string;
  readonly value: string;
  readonly field: string;
}

interface PortCandidate {
  readonly privatePort: number;
  readonly protocol: Protocol;
  readonly binding?: PortMapping;
}

function displayKey(key: string): string {
  return /^[A-Za-z0-9_.-]{1,128}$/.test(key) ? key : quoteUntrusted(key);
}

/** SERVICE_* entries in registrator's order: env, then labels (labels win). */
function collectEntries(container: ContainerInfo): RawEntry[] {
  const out: RawEntry[] = [];
  const add = (source: string, record: Readonly<Record<string, string>>): void => {
    for (const rawKey of Object.keys(record).sort()) {
      const value = record[rawKey];
      if (value === undefined || !rawKey.startsWith(SERVICE_PREFIX)) continue;
      out.push({
        key: rawKey.slice(SERVICE_PREFIX.length).toLowerCase(),
        value,
        field: `${source}.${displayKey(rawKey)}`,
      });
    }
  };
  add("env", container.env);
  add("labels", container.labels);
  return out;
}

/** Go strconv.Atoi acceptance: optional sign and decimal digits. */
function isGoInt(s: string): boolean {
  return /^[+-]?\d{1,18}$/.test(s);
}

function splitPortKey(key: string): { port: string; rest: string } | undefined {
  const i = key.indexOf("_");
  if (i === -1) return undefined;
  const port = key.slice(0, i);
  return isGoInt(port) ? { port, rest: key.slice(i + 1) } : undefined;
}

/** registrator serviceMetaData for one private port. */
function metadataForPort(entries: readonly RawEntry[], port: string): CompatMetadata {
  const md = new Map<string, CompatMetaValue>();
  const fromPort = new Set<string>();
  for (const e of entries) {
    if (fromPort.has(e.key)) continue;
    const pk = splitPortKey(e.key);
    if (pk !== undefined) {
      if (pk.port !== port) continue;
      md.set(pk.rest, { value: e.value, field: e.field, fromPort: true });
      fromPort.add(pk.rest);
    } else {
      md.set(e.key, { value: e.value, field: e.field, fromPort: false });
    }
  }
  return md;
}

function setValue(md: CompatMetadata, key: string): CompatMetaValue | undefined {
  const v = md.get(key);
  return v !== undefined && v.value !== "" ? v : undefined;
}

function isSpecificIP(ip: string | undefined): ip is string {
  return ip !== undefined && ip !== "" && ip !== "0.0.0.0" && ip !== "::";
}

function isPublished(m: PortMapping): boolean {
  return m.hostPort !== undefined && m.hostPort > 0;
}

/** One candidate per private port/protocol; the binding registrator would use. */
function portCandidates(ports: readonly PortMapping[]): PortCandidate[] {
  const groups = new Map<string, PortMapping[]>();
  for (const m of ports) {
    const k = `${m.privatePort}/${m.protocol}`;
    const g = groups.get(k);
    if (g === undefined) groups.set(k, [m]);
    else g.push(m);
  }
  const out: PortCandidate[] = [];
  for (const group of groups.values()) {
    const first = group[0];
    if (first === undefined) continue;
    const published = group.filter(isPublished);
    const binding = published.find((m) => !(m.hostIP ?? "").includes(":")) ?? published[0] ?? first;
    out.push({ privatePort: first.privatePort, protocol: first.protocol, binding });
  }
  return out.sort((a, b) => a.privatePort - b.privatePort || a.protocol.localeCompare(b.protocol));
}

/** Image base name like registrator: `reg:5000/org/foo:1.2@sha256:…` -> `foo`. */
export function defaultServiceName(image: string): string {
  const noDigest = image.split("@")[0] ?? "";
  const base = noDigest.slice(noDigest.lastIndexOf("/") + 1);
  return base.split(":")[0] ?? "";
}

/** Lower-case, runs of characters outside [a-z0-9-] become '-', trim '-', cut to `max`. */
export function sanitizeServiceName(raw: string, max = 63): string {
  const s = raw
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+/, "");
  return s.slice(0, max).replace(/-+$/, "");
}

/** registrator's comma split with `\,` escapes; whitespace trimmed, empties dropped. */
export function splitTags(value: string): string[] {
  const out: string[] = [];
  let cur = "";
  for (let i = 0; i < value.length; i++) {
    const c = value.charAt(i);
    if (c === "\\" && value.charAt(i + 1) === ",") {
      cur += ",";
      i++;
    } else if (c === ",") {
      out.push(cur);
      cur = "";
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out.map((t) => t.trim()).filter((t) => t !== "");
}

function metaValueProblem(value: string): string | undefined {
  if (value.length > MAX_META_VALUE_LENGTH) {
    return `value longer than ${MAX_META_VALUE_LENGTH} characters`;
  }
  if (hasForbiddenMetaChar(value)) {
    return "value contains control characters or one of ; { } ` \" ' $ \\";
  }
  return undefined;
}

function metaKeyProblem(key: string): string | undefined {
  if (!META_KEY_RE.test(key)) return "key must match [A-Za-z0-9_-]{1,128}";
  const reserved = RESERVED_META_PREFIXES.find((p) => key.startsWith(p));
  return reserved !== undefined ? `key prefix "${reserved}" is reserved` : undefined;
}

type Report = (field: string, message: string) => void;

interface PortContext {
  readonly container: ContainerInfo;
  readonly opts: CompatOptions;
  readonly isGroup: boolean;
  readonly report: Report;
}

function resolveAddress(ctx: PortContext, cand: PortCandidate, portField: string): { address: string; port: number } | undefined {
  const { container, opts, report } = ctx;
  if (opts.internal) {
    const network = opts.network ?? Object.keys(container.networks).sort()[0];
    const ip = network !== undefined ? container.networks[network] : undefined;
    if (ip === undefined || ip === "") {
      report(
        portField,
        opts.network !== undefined
          ? `container has no IP on network ${quoteUntrusted(opts.network)}; port skipped`
          : "container has no IP on any network; port skipped",
      );
      return undefined;
    }
    return { address: ip, port: cand.privatePort };
  }
  const hostPort = cand.binding?.hostPort;
  if (hostPort === undefined) return undefined; // filtered out earlier
  const address = opts.hostIP ?? cand.binding?.hostIP;
  if (!isSpecificIP(address)) {
    report(portField, "published on all interfaces and no host IP option (registrator -ip) is set; port skipped");
    return undefined;
  }
  return { address, port: hostPort };
}

function serviceName(ctx: PortContext, md: CompatMetadata, cand: PortCandidate): string | undefined {
  const { container, report } = ctx;
  const named = setValue(md, "name");
  const raw = named?.value ?? defaultServiceName(container.image);
  const field = named?.field ?? "image";
  // registrator: suffix unless the name came from SERVICE_<port>_NAME (an empty one counts).
  const suffix = ctx.isGroup && md.get("name")?.fromPort !== true ? `-${cand.privatePort}` : "";
  const base = sanitizeServiceName(raw, 63 - suffix.length);
  if (base === "") {
    report(field, `service name ${quoteUntrusted(raw)} has no DNS-safe characters; port ${cand.privatePort} skipped`);
    return undefined;
  }
  if (base !== raw) {
    report(field, `service name ${quoteUntrusted(raw)} is not DNS-safe; registered as "${base}"`);
  }
  return base + suffix;
}

function serviceTags(ctx: PortContext, md: CompatMetadata, cand: PortCandidate): string[] {
  const { opts, report } = ctx;
  const tags: string[] = [];
  const add = (tag: string, field: string): void => {
    if (!TAG_RE.test(tag)) {
      report(field, `tag ${quoteUntrusted(tag)} dropped: must match [A-Za-z0-9._:/=@+-]{1,255}`);
    } else if (!tags.includes(tag)) {
      if (tags.length >= MAX_TAGS) report(field, `tag ${quoteUntrusted(tag)} dropped: more than ${MAX_TAGS} tags`);
      else tags.push(tag);
    }
  };
  const declared = setValue(md, "tags");
  if (declared !== undefined) for (const t of splitTags(declared.value)) add(t, declared.field);
  for (const t of opts.extraTags) add(t, "extraTags");
  if (cand.protocol === "udp") add("udp", `ports.${cand.privatePort}/udp`);
  return tags;
}

function serviceMeta(ctx: PortContext, md: CompatMetadata): Record<string, string> {
  const { container, opts, report } = ctx;
  const meta: Record<string, string> = {};
  let count = 0;
  const keys = [...md.keys()].filter((k) => !SPECIAL_KEYS.has(k) && !isCheckKey(k)).sort();
  for (const key of keys) {
    const v = md.get(key);
    if (v === undefined) continue;
    const problem = metaKeyProblem(key) ?? metaValueProblem(v.value);
    if (problem !== undefined) {
      report(v.field, `service meta ${quoteUntrusted(key)} dropped: ${problem}`);
    } else if (count >= MAX_META_KEYS) {
      report(v.field, `service meta ${quoteUntrusted(key)} dropped: more than ${MAX_META_KEYS} meta keys`);
    } else {
      meta[key] = v.value;
      count++;
    }
  }
  meta[OWNER_META.node] = opts.node;
  meta[OWNER_META.binding] = COMPAT_BINDING_KEY;
  meta[OWNER_META.container] = container.id;
  return meta;
}

function serviceId(ctx: PortContext, md: CompatMetadata, cand: PortCandidate, portField: string): string | undefined {
  const { container, opts, report } = ctx;
  const udp = cand.protocol === "udp" ? ":udp" : "";
  const fallback = `${opts.node}:${container.name}:${cand.privatePort}${udp}`;
  const override = setValue(md, "id");
  if (override !== undefined) {
    if (SERVICE_ID_RE.test(override.value)) return override.value;
    report(override.field, `service ID ${quoteUntrusted(override.value)} dropped: must match [A-Za-z0-9._:@-]{1,255}; using the default ID`);
  }
  if (SERVICE_ID_RE.test(fallback)) return fallback;
  report(portField, `default service ID ${quoteUntrusted(fallback)} is invalid (node or container name); port skipped`);
  return undefined;
}

/** SERVICE_WEIGHT / SERVICE_<port>_WEIGHT: Consul Weights.Passing (1..100); anything else is dropped and reported. */
function serviceWeight(ctx: PortContext, md: CompatMetadata): number | undefined {
  const w = setValue(md, "weight");
  if (w === undefined) return undefined;
  const weight = parseWeight(w.value);
  if (weight === undefined) ctx.report(w.field, `weight ${quoteUntrusted(w.value)} dropped: must be an integer in ${MIN_WEIGHT}..${MAX_WEIGHT}`);
  return weight;
}

function registrationFor(ctx: PortContext, entries: readonly RawEntry[], cand: PortCandidate): Registration | undefined {
  const portField = `ports.${cand.privatePort}/${cand.protocol}`;
  const md = metadataForPort(entries, String(cand.privatePort));

  const ignore = setValue(md, "ignore");
  if (ignore !== undefined) {
    if (/^(false|0|no|off)$/i.test(ignore.value)) {
      ctx.report(ignore.field, `value ${quoteUntrusted(ignore.value)} still ignores the service (registrator semantics: any non-empty value)`);
    }
    return undefined;
  }
  if (ctx.opts.explicit === true && setValue(md, "name") === undefined) return undefined;

  const name = serviceName(ctx, md, cand);
  if (name === undefined) return undefined;
  const target = resolveAddress(ctx, cand, portField);
  if (target === undefined) return undefined;
  const id = serviceId(ctx, md, cand, portField);
  if (id === undefined) return undefined;
  const tags = serviceTags(ctx, md, cand);
  const meta = serviceMeta(ctx, md);
  const { check, issues } = buildCompatCheck(md, target.address, target.port);
  for (const i of issues) ctx.report(i.field, i.message);

  const weight = serviceWeight(ctx, md);
  const reg: Registration = { id, name, address: target.address, port: target.port, tags, meta, ...(weight !== undefined ? { weight } : {}) };
  return check !== undefined ? { ...reg, check } : reg;
}

/**
 * The registrations registrator would make for `container`, sorted by ID, plus
 * every dropped, sanitized or unsupported input. Containers that are not running
 * yield nothing.
 */
export function compatRegistrations(container: ContainerInfo, opts: CompatOptions): CompatResult {
  if (!container.running || container.draining === true) return { registrations: [], issues: [] };

  const issues: CompatIssue[] = [];
  const seen = new Set<string>();
  const report: Report = (field, message) => {
    const k = `${field}\u0000${message}`;
    if (seen.has(k)) return;
    seen.add(k);
    issues.push({ containerId: container.id, field, message });
  };

  const entries = collectEntries(container);
  const referencedPorts = new Set(entries.map((e) => splitPortKey(e.key)?.port).filter((p): p is string => p !== undefined));
  const candidates = portCandidates(container.ports).filter((c) => {
    if (opts.internal || (c.binding !== undefined && isPublished(c.binding))) return true;
    if (referencedPorts.has(String(c.privatePort))) {
      report(
        `ports.${c.privatePort}/${c.protocol}`,
        "port is not published on the host; SERVICE_<port>_* settings for it are unused (publish it or use internal mode)",
      );
    }
    return false;
  });

  const ctx: PortContext = { container, opts, isGroup: candidates.length > 1, report };
  const byId = new Map<string, Registration>();
  for (const cand of candidates) {
    const reg = registrationFor(ctx, entries, cand);
    if (reg === undefined) continue;
    if (byId.has(reg.id)) {
      report(
        `ports.${cand.privatePort}/${cand.protocol}`,
        `service ID ${quoteUntrusted(reg.id)} is already used by a lower port of this container; port skipped`,
      );
      continue;
    }
    byId.set(reg.id, reg);
  }
  const registrations = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { registrations, issues };
}
