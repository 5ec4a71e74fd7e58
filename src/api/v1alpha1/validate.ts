/**
 * Validation of ServiceBinding documents against the v1alpha1 JSON Schema
 * (the single source of truth, also embedded in the CRD) plus the semantic
 * rules a JSON Schema cannot express.
 *
 * Pure: no I/O. Defaults from the schema are applied to a deep copy.
 */
import { Ajv, type ErrorObject } from "ajv";
import { isIP } from "node:net";
import { lbProtocol, type LabelSelector, type ServiceBinding } from "../../domain/types.js";
// A JSON import (not fs/require) so that `tsc` copies the schema into dist/ next to this module.
import schemaDocument from "./servicebinding.schema.json" with { type: "json" };

/** The schema document, loaded once. */
const serviceBindingSchema: Record<string, unknown> = schemaDocument;

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: false });
// "ip": an IPv4 or IPv6 literal, checked by Node itself (no hostnames, no zones).
// isIP accepts zone ids ("fe80::1%eth0"), so those are refused explicitly.
ajv.addFormat("ip", { type: "string", validate: (s: string) => isIP(s) !== 0 && !s.includes("%") });
const validateSchema = ajv.compile(serviceBindingSchema);

const REASON_PATTERN = new RegExp((schemaDocument.$defs.maintenanceReason as { pattern: string }).pattern);

/** A maintenance reason as the schema allows it in `spec.maintenance.reason` (also `controller maint --reason`); undefined when valid. */
export function maintenanceReasonProblem(reason: string): string | undefined {
  return REASON_PATTERN.test(reason)
    ? undefined
    : "must be 1-256 characters: letters, digits, spaces and ._,:/()#@+=!?- (no newlines, ;, quotes or braces), not starting with a space";
}

/** One problem with one document, precise enough to fix without reading code. */
export interface FieldError {
  /** Dotted path, e.g. `spec.backends.port`; `(document)` for the whole document. */
  readonly field: string;
  readonly message: string;
}

export type ValidationResult = { readonly ok: true; readonly binding: ServiceBinding } | { readonly ok: false; readonly errors: readonly FieldError[] };

function fieldOf(e: ErrorObject): string {
  const parts = e.instancePath
    .split("/")
    .filter((p) => p !== "")
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (e.keyword === "required") parts.push((e.params as { missingProperty: string }).missingProperty);
  if (e.keyword === "additionalProperties") parts.push((e.params as { additionalProperty: string }).additionalProperty);
  if (e.keyword === "propertyNames") parts.push((e.params as { propertyName: string }).propertyName);
  return parts.length === 0
    ? "(document)"
    : parts
        .map((p) => (/^\d+$/.test(p) ? `[${p}]` : p))
        .join(".")
        .replace(/\.\[/g, "[");
}

function messageOf(e: ErrorObject): string {
  switch (e.keyword) {
    case "additionalProperties":
      return "unknown field";
    case "required":
      return "required field is missing";
    case "enum":
      return `must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(", ")}`;
    case "propertyNames":
      return "key not allowed: use [A-Za-z0-9_-], at most 128 characters, not starting with consul- or dockbind_";
    case "pattern":
      return `${e.message ?? "does not match"} (value rejected)`;
    default:
      return e.message ?? "is invalid";
  }
}

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A schema-valid duration (`$defs.duration`) in milliseconds. */
function durationMs(d: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d);
  return m === null ? 0 : Number(m[1]) * (UNIT_MS[m[2] ?? ""] ?? 0);
}

/**
 * Advice on a valid binding (printed by `controller validate`, never an error): what the
 * controller will do that may surprise.
 */
export function bindingWarnings(b: ServiceBinding): FieldError[] {
  const warnings: FieldError[] = [];
  if (b.spec.healthCheck.type === "docker") {
    warnings.push({
      field: "spec.healthCheck.type",
      message: "docker: a selected container without a Docker HEALTHCHECK is not registered (NoDockerHealthcheck); `controller plan` lists them",
    });
    if (b.spec.loadBalancer?.onlyPassing === false) {
      warnings.push({
        field: "spec.loadBalancer.onlyPassing",
        message: "false: unhealthy and starting containers are rendered too (Docker's health does not gate traffic)",
      });
    }
  }
  return warnings;
}

/** Rules the schema cannot say. Returns [] when the binding is consistent. */
function semanticErrors(b: ServiceBinding): FieldError[] {
  const errors: FieldError[] = [];
  const { selector, swarm } = b.spec.backends;
  const split = b.spec.loadBalancer?.split;
  const selectors: [string, LabelSelector | undefined][] = [
    ["spec.backends.selector", selector],
    ["spec.backends.swarm.selector", swarm?.selector],
    ...(split ?? []).map((g, i): [string, LabelSelector] => [`spec.loadBalancer.split[${i}].selector`, g.selector]),
  ];
  for (const [path, sel] of selectors) {
    (sel?.matchExpressions ?? []).forEach((x, i) => {
      const field = `${path}.matchExpressions[${i}].values`;
      const n = x.values?.length ?? 0;
      if ((x.operator === "In" || x.operator === "NotIn") && n === 0) {
        errors.push({ field, message: `operator ${x.operator} needs at least one value` });
      }
      if ((x.operator === "Exists" || x.operator === "DoesNotExist") && n > 0) {
        errors.push({ field, message: `operator ${x.operator} takes no values` });
      }
    });
  }
  if (selector === undefined && swarm === undefined) {
    errors.push({ field: "spec.backends.selector", message: "required field is missing (or select Swarm services with spec.backends.swarm)" });
  }
  if (selector !== undefined && swarm !== undefined) {
    errors.push({ field: "spec.backends.swarm", message: "selector (containers) and swarm (Swarm services) are mutually exclusive" });
  }
  if (b.spec.service.datacenter !== undefined && b.spec.service.datacenters !== undefined) {
    errors.push({ field: "spec.service.datacenters", message: "datacenter (one) and datacenters (ordered failover list) are mutually exclusive" });
  }
  if (b.spec.backends.addressMode === "published" && b.spec.backends.network !== undefined) {
    errors.push({ field: "spec.backends.network", message: "only meaningful with addressMode: internal" });
  }
  if (b.spec.backends.addressMode === "internal" && b.spec.backends.hostIP !== undefined) {
    errors.push({ field: "spec.backends.hostIP", message: "only meaningful with addressMode: published" });
  }
  const total = (split ?? []).reduce((sum, g) => sum + g.percent, 0);
  if (split !== undefined && total !== 100) {
    errors.push({ field: "spec.loadBalancer.split", message: `the percents of the split groups must add up to 100 (they add up to ${total})` });
  }
  const hc = b.spec.healthCheck;
  if (hc.probeBeforeRegister === true && hc.type !== "http" && hc.type !== "tcp") {
    errors.push({ field: "spec.healthCheck.probeBeforeRegister", message: `only meaningful with type http or tcp (got ${hc.type})` });
  }
  if (hc.type === "docker" && durationMs(hc.ttl) < 1000) {
    errors.push({
      field: "spec.healthCheck.ttl",
      message: `must be at least 1s with type docker (the controller refreshes it every third of it; got ${hc.ttl})`,
    });
  }
  const tls = b.spec.loadBalancer?.tls;
  if (tls?.redirectHttp !== undefined && tls.redirectHttp.port === b.spec.loadBalancer?.listen.port) {
    errors.push({ field: "spec.loadBalancer.tls.redirectHttp.port", message: "must differ from listen.port (the https listener)" });
  }
  errors.push(...protocolErrors(b));
  return errors;
}

/** loadBalancer.protocol against the backends, the health check and serverName. */
function protocolErrors(b: ServiceBinding): FieldError[] {
  const lb = b.spec.loadBalancer;
  if (lb === undefined) return [];
  const errors: FieldError[] = [];
  const protocol = lbProtocol(lb);
  const backends = b.spec.backends.protocol;
  if (protocol === "udp" && backends !== "udp") {
    errors.push({ field: "spec.backends.protocol", message: `must be udp with loadBalancer.protocol udp (got ${backends})` });
  }
  if (protocol !== "udp" && backends === "udp") {
    errors.push({ field: "spec.loadBalancer.protocol", message: `must be udp for udp backends (got ${protocol})` });
  }
  if (protocol !== "http" && lb.serverName !== undefined) {
    errors.push({ field: "spec.loadBalancer.serverName", message: `only meaningful with protocol http (a ${protocol} listener has no host names)` });
  }
  if (protocol === "udp" && b.spec.healthCheck.type === "http") {
    errors.push({ field: "spec.healthCheck.type", message: "http cannot check a udp service: use tcp (the same port over TCP), ttl, docker or none" });
  }
  return errors;
}

/**
 * Validates one parsed document. Never throws; on success returns a deep copy
 * with schema defaults applied.
 */
export function validateBinding(doc: unknown): ValidationResult {
  const copy: unknown = doc === undefined ? undefined : structuredClone(doc);
  if (!validateSchema(copy)) {
    // Errors raised inside propertyNames repeat the propertyNames one; an `if` error repeats its `then` one.
    const raw = (validateSchema.errors ?? []).filter((e) => e.propertyName === undefined && e.keyword !== "if");
    const errors = raw.map((e) => ({ field: fieldOf(e), message: messageOf(e) }));
    return { ok: false, errors: dedupe(errors) };
  }
  const binding = copy as ServiceBinding;
  const semantic = semanticErrors(binding);
  return semantic.length > 0 ? { ok: false, errors: semantic } : { ok: true, binding };
}

function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const k = `${e.field}\u0000${e.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
