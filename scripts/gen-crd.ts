/**
 * `make crds`: generates the ServiceBinding CustomResourceDefinition from
 * src/api/v1alpha1/servicebinding.schema.json (the single source of truth the
 * runtime validates with) and writes it to crds/ and charts/dockbind/crds/.
 * `--check` exits 1 when a committed copy differs (test/unit/crd-drift.test.ts
 * does the same check).
 *
 * JSON Schema -> structural OpenAPI v3 (what a CRD accepts):
 * - $ref/$defs are inlined; $id/$schema dropped;
 * - additionalProperties:false is dropped (not allowed beside `properties`;
 *   the API server prunes unknown fields, and rejects them under
 *   kubectl's default strict field validation);
 * - metadata keeps only the `name` restriction (all a CRD may constrain);
 * - apiVersion/kind become plain strings (the API server sets them);
 * - `format: ip` becomes a CEL rule with isIP() (IPv4 or IPv6, no zone);
 * - `uniqueItems: true` (lists of scalars) becomes `x-kubernetes-list-type: set` (the API server forbids the keyword);
 * - propertyNames becomes a CEL rule over the map's keys (negative lookaheads
 *   `(?!lit)` become !startsWith('lit'): RE2 has no lookaround);
 * - SEMANTIC_RULES adds the rules validate.ts checks in code (and replaces
 *   the schema's if/then, which a structural schema cannot hold).
 * The status schema and printer columns are defined here.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { stringify } from "yaml";

const REPO = join(import.meta.dirname, "..");
export const SCHEMA_FILE = join(REPO, "src/api/v1alpha1/servicebinding.schema.json");
export const CRD_FILES = [join(REPO, "crds/servicebindings.dockbind.io.yaml"), join(REPO, "charts/dockbind/crds/servicebindings.dockbind.io.yaml")] as const;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

interface CelRule {
  readonly rule: string;
  readonly message: string;
  readonly fieldPath?: string;
  readonly reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

/**
 * Rules validate.ts (semanticErrors) enforces in code, matched against the
 * schema path (dot-separated property names; [] = array items) of the object
 * they sit on. test/integration/k8s-crd.test.ts checks the API server rejects
 * the same documents validate.ts does.
 */
const SEMANTIC_RULES: readonly { readonly path: RegExp; readonly rules: readonly CelRule[] }[] = [
  {
    // every label selector (containers, Swarm services)
    path: /^spec\.backends(\.swarm)?\.selector\.matchExpressions\[\]$/,
    rules: [
      {
        rule: "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
        message: "operator In/NotIn needs at least one value",
        fieldPath: ".values",
        reason: "FieldValueRequired",
      },
      {
        rule: "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
        message: "operator Exists/DoesNotExist takes no values",
        fieldPath: ".values",
        reason: "FieldValueForbidden",
      },
    ],
  },
  {
    path: /^spec\.backends$/,
    rules: [
      {
        rule: "has(self.selector) || has(self.swarm)",
        message: "one of selector (containers) or swarm (Swarm services) is required",
        fieldPath: ".selector",
        reason: "FieldValueRequired",
      },
      {
        rule: "!(has(self.selector) && has(self.swarm))",
        message: "selector (containers) and swarm (Swarm services) are mutually exclusive",
        fieldPath: ".swarm",
        reason: "FieldValueForbidden",
      },
      {
        rule: "!has(self.network) || (has(self.addressMode) && self.addressMode == 'internal')",
        message: "network is only meaningful with addressMode: internal",
        fieldPath: ".network",
        reason: "FieldValueForbidden",
      },
      {
        rule: "!has(self.hostIP) || !has(self.addressMode) || self.addressMode == 'published'",
        message: "hostIP is only meaningful with addressMode: published",
        fieldPath: ".hostIP",
        reason: "FieldValueForbidden",
      },
    ],
  },
  {
    // the schema's if/then (haproxy => protocol http|tcp) is dropped by convert(): CRDs have no if/then
    path: /^spec\.loadBalancer$/,
    rules: [
      {
        rule: "!has(self.kind) || self.kind != 'haproxy' || !has(self.protocol) || self.protocol != 'udp'",
        message: "haproxy has no UDP proxying: protocol udp needs kind nginx",
        fieldPath: ".protocol",
        reason: "FieldValueForbidden",
      },
      {
        rule: "!has(self.serverName) || !has(self.protocol) || self.protocol == 'http'",
        message: "serverName is only meaningful with protocol http",
        fieldPath: ".serverName",
        reason: "FieldValueForbidden",
      },
    ],
  },
  {
    path: /^spec$/,
    rules: [
      {
        rule: "!has(self.loadBalancer) || !has(self.loadBalancer.protocol) || self.loadBalancer.protocol != 'udp' || (has(self.backends.protocol) && self.backends.protocol == 'udp')",
        message: "must be udp with loadBalancer.protocol udp",
        fieldPath: ".backends.protocol",
        reason: "FieldValueInvalid",
      },
      {
        rule: "!has(self.loadBalancer) || !has(self.backends.protocol) || self.backends.protocol != 'udp' || (has(self.loadBalancer.protocol) && self.loadBalancer.protocol == 'udp')",
        message: "must be udp for udp backends",
        fieldPath: ".loadBalancer.protocol",
        reason: "FieldValueInvalid",
      },
      {
        rule:
          "!has(self.loadBalancer) || !has(self.loadBalancer.protocol) || self.loadBalancer.protocol != 'udp' || " +
          "!has(self.healthCheck) || !has(self.healthCheck.type) || self.healthCheck.type != 'http'",
        message: "http cannot check a udp service: use tcp, ttl, docker or none",
        fieldPath: ".healthCheck.type",
        reason: "FieldValueForbidden",
      },
    ],
  },
  {
    path: /^spec\.loadBalancer\.split$/,
    rules: [
      {
        rule: "self.map(g, g.percent).sum() == 100",
        message: "the percents of the split groups must add up to 100",
        reason: "FieldValueInvalid",
      },
    ],
  },
  {
    path: /^spec\.healthCheck$/,
    rules: [
      {
        rule: "!has(self.probeBeforeRegister) || !self.probeBeforeRegister || !has(self.type) || self.type in ['http', 'tcp']",
        message: "probeBeforeRegister is only meaningful with type http or tcp",
        fieldPath: ".probeBeforeRegister",
        reason: "FieldValueForbidden",
      },
    ],
  },
];

const CONDITION_SCHEMA: JsonObject = {
  type: "object",
  required: ["type", "status", "lastTransitionTime", "reason", "message"],
  properties: {
    type: { type: "string", maxLength: 316, description: "Ready, Registered, LoadBalancerConfigured or Degraded." },
    status: { type: "string", enum: ["True", "False", "Unknown"] },
    reason: { type: "string", maxLength: 1024, description: "CamelCase reason." },
    message: { type: "string", maxLength: 32768 },
    lastTransitionTime: { type: "string", format: "date-time", description: "Changes only when status changes." },
    observedGeneration: { type: "integer", format: "int64", minimum: 0 },
  },
};

const STATUS_SCHEMA: JsonObject = {
  type: "object",
  description: "Written by the controller through the status subresource.",
  properties: {
    observedGeneration: { type: "integer", format: "int64", description: "The .metadata.generation the conditions describe." },
    conditions: {
      type: "array",
      maxItems: 8,
      items: CONDITION_SCHEMA,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["type"],
    },
    backends: {
      type: "object",
      description: "Backend counts: matching containers, registered instances, passing instances.",
      properties: {
        desired: { type: "integer", minimum: 0 },
        registered: { type: "integer", minimum: 0 },
        passing: { type: "integer", minimum: 0 },
      },
    },
  },
};

const PRINTER_COLUMNS: readonly JsonObject[] = [
  { name: "Service", type: "string", jsonPath: ".spec.service.name" },
  { name: "Desired", type: "integer", jsonPath: ".status.backends.desired", description: "containers matching the selector" },
  { name: "Registered", type: "integer", jsonPath: ".status.backends.registered" },
  { name: "Passing", type: "integer", jsonPath: ".status.backends.passing" },
  { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
  { name: "Reason", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function celString(s: string): string {
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** A JSON Schema `pattern` as a CEL boolean over `v`; leading negative lookaheads of literals become startsWith checks. */
export function patternToCel(pattern: string, v: string): string {
  const m = /^\^((?:\(\?![A-Za-z0-9_-]+\))+)(.*)$/.exec(pattern);
  const lookaheads = m?.[1] ?? "";
  const rest = m === null ? pattern : `^${m[2] ?? ""}`;
  if (/\(\?[!=<]/.test(rest)) throw new Error(`pattern ${pattern}: lookaround cannot be expressed in RE2/CEL`);
  const forbidden = [...lookaheads.matchAll(/\(\?!([A-Za-z0-9_-]+)\)/g)].map((x) => x[1] ?? "");
  return [`${v}.matches(${celString(rest)})`, ...forbidden.map((f) => `!${v}.startsWith(${celString(f)})`)].join(" && ");
}

/** "keys must match ^[...]$ and not start with a-, b_" for a propertyNames pattern. */
function keysMessage(pattern: string): string {
  const forbidden = [...pattern.matchAll(/\(\?!([A-Za-z0-9_-]+)\)/g)].map((x) => x[1] ?? "");
  const rest = pattern.replace(/\(\?![A-Za-z0-9_-]+\)/g, "");
  return `keys must match ${rest}${forbidden.length > 0 ? ` and not start with ${forbidden.join(" or ")}` : ""}`;
}

/** Resolves a local JSON pointer ("#/a/b") in `root`. */
function resolveRef(root: JsonObject, ref: string, path: string): JsonObject {
  if (!ref.startsWith("#/")) throw new Error(`${path}: only local $ref is supported (${ref})`);
  let cur: Json | undefined = root;
  for (const raw of ref.slice(2).split("/")) {
    const part = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
    cur = isObject(cur) ? cur[part] : undefined;
  }
  if (!isObject(cur)) throw new Error(`${path}: unresolvable $ref ${ref}`);
  return cur;
}

/** Converts one JSON Schema node (at `path`) into a structural OpenAPI v3 node; $refs are inlined. */
function convert(node: Json, path: string, root: JsonObject, depth = 0): JsonObject {
  if (!isObject(node)) throw new Error(`${path}: schema node is not an object`);
  if (depth > 32) throw new Error(`${path}: schema too deep (recursive $ref?)`);
  let src: JsonObject = node;
  while (typeof src.$ref === "string") {
    const { $ref: ref, ...siblings } = src;
    src = { ...resolveRef(root, ref, path), ...siblings };
  }
  const out: JsonObject = {};
  const rules: Json[] = [];
  for (const [k, v] of Object.entries(src)) {
    switch (k) {
      case "$id":
      case "$schema":
      case "$defs":
      case "title":
        break;
      case "if":
      case "then":
        // No if/then in structural schemas: each use has its CEL rule in SEMANTIC_RULES.
        if (!SEMANTIC_RULES.some((g) => g.path.test(path))) throw new Error(`${path}: if/then needs a CEL rule in SEMANTIC_RULES`);
        break;
      case "additionalProperties":
        if (isObject(v)) out.additionalProperties = convert(v, `${path}.*`, root, depth + 1);
        // false: dropped (structural schemas prune unknown fields instead)
        break;
      case "properties": {
        if (!isObject(v)) throw new Error(`${path}: properties is not an object`);
        const props: JsonObject = {};
        for (const [name, child] of Object.entries(v)) props[name] = convert(child, path === "" ? name : `${path}.${name}`, root, depth + 1);
        out.properties = props;
        break;
      }
      case "items":
        out.items = convert(v, `${path}[]`, root, depth + 1);
        break;
      case "propertyNames": {
        if (!isObject(v) || typeof v.pattern !== "string" || Object.keys(v).length !== 1) throw new Error(`${path}: only propertyNames.pattern is supported`);
        rules.push({ rule: `self.all(k, ${patternToCel(v.pattern, "k")})`, message: keysMessage(v.pattern), reason: "FieldValueInvalid" });
        break;
      }
      case "uniqueItems":
        // The API server forbids uniqueItems (quadratic); a list of unique scalars is its `set` list type.
        if (v === true) out["x-kubernetes-list-type"] = "set";
        break;
      case "format":
        if (v === "ip") rules.push({ rule: "isIP(self)", message: "must be an IPv4 or IPv6 address", reason: "FieldValueInvalid" });
        else out.format = v;
        break;
      default:
        out[k] = v;
    }
  }
  for (const group of SEMANTIC_RULES) if (group.path.test(path)) for (const r of group.rules) rules.push({ ...r });
  if (rules.length > 0) out["x-kubernetes-validations"] = rules;
  return out;
}

/** The openAPIV3Schema of the CRD version. */
export function crdSchema(schema: JsonObject): JsonObject {
  const props = isObject(schema.properties) ? schema.properties : {};
  const metadata = isObject(props.metadata) ? props.metadata : {};
  const metaProps = isObject(metadata.properties) ? metadata.properties : {};
  const name = isObject(metaProps.name) ? metaProps.name : {};
  const spec = props.spec;
  if (spec === undefined) throw new Error("schema has no spec");
  return {
    type: "object",
    description: typeof schema.description === "string" ? schema.description : "ServiceBinding",
    required: ["spec"],
    properties: {
      apiVersion: { type: "string", description: "dockbind.io/v1alpha1" },
      kind: { type: "string", description: "ServiceBinding" },
      metadata: {
        type: "object",
        properties: { name: { type: "string", ...(typeof name.pattern === "string" ? { pattern: name.pattern } : {}), maxLength: 63 } },
      },
      spec: convert(spec, "spec", schema),
      status: STATUS_SCHEMA,
    },
  };
}

export function generateCrd(schema: JsonObject): JsonObject {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: {
      name: "servicebindings.dockbind.io",
      labels: { "app.kubernetes.io/name": "dockbind", "app.kubernetes.io/component": "crd" },
    },
    spec: {
      group: "dockbind.io",
      scope: "Namespaced",
      names: {
        plural: "servicebindings",
        singular: "servicebinding",
        kind: "ServiceBinding",
        listKind: "ServiceBindingList",
        shortNames: ["sb"],
        categories: ["dockbind"],
      },
      versions: [
        {
          name: "v1alpha1",
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [...PRINTER_COLUMNS],
          schema: { openAPIV3Schema: crdSchema(schema) },
        },
      ],
    },
  };
}

const HEADER = "# GENERATED by `make crds` (scripts/gen-crd.ts) from src/api/v1alpha1/servicebinding.schema.json. Do not edit.\n";

/** The CRD file text, as committed. */
export function renderCrd(schemaText: string = readFileSync(SCHEMA_FILE, "utf8")): string {
  const schema = JSON.parse(schemaText) as Json;
  if (!isObject(schema)) throw new Error("schema is not an object");
  return HEADER + stringify(generateCrd(schema), { lineWidth: 0, aliasDuplicateObjects: false });
}

function main(argv: readonly string[]): number {
  const text = renderCrd();
  if (argv.includes("--check")) {
    const stale = CRD_FILES.filter((f) => {
      try {
        return readFileSync(f, "utf8") !== text;
      } catch {
        return true;
      }
    });
    for (const f of stale) process.stderr.write(`gen-crd: ${f} is out of date; run 'make crds'\n`);
    return stale.length === 0 ? 0 : 1;
  }
  for (const f of CRD_FILES) {
    writeFileSync(f, text);
    process.stdout.write(`gen-crd: wrote ${f}\n`);
  }
  return 0;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) process.exitCode = main(process.argv.slice(2));
