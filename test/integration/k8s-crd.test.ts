/**
 * Issue #3: the generated CRD on a real kube-apiserver. `kubectl apply -f
 * crds/` then the samples; the API server rejects invalid bindings with a
 * clear, field-precise message (schema and CEL rules), and rejects exactly
 * what the runtime validator (validateBinding) rejects; `kubectl get sb`
 * prints the columns.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { validateBinding } from "../../src/api/v1alpha1/validate.js";
import { ensureK8sBinaries, startKube, type KubeHandle } from "../support/k8s.js";
import { cleanupAll } from "../support/teardown.js";

const REPO = join(import.meta.dirname, "..", "..");
const SAMPLES = join(REPO, "manifests", "samples");
let kube: KubeHandle;

before(async () => {
  await ensureK8sBinaries();
  kube = await startKube();
});

after(async () => {
  await kube.stop();
  await cleanupAll();
});

const base = {
  service: { name: "bad" },
  backends: { selector: { matchLabels: { app: "x" } }, port: 80 },
};

const splitLb = { listen: { port: 8080 }, output: "split.conf" };
const group = (percent: unknown, track: string): unknown => ({ selector: { matchLabels: { track } }, percent });

/** Invalid specs, the field the API server must name, and a phrase of its message. */
const INVALID: readonly { readonly what: string; readonly spec: unknown; readonly field: string; readonly says: RegExp }[] = [
  {
    what: "port out of range",
    spec: { ...base, backends: { ...base.backends, port: 70000 } },
    field: "spec.backends.port",
    says: /less than or equal to 65535/,
  },
  { what: "service name not a DNS label", spec: { ...base, service: { name: "Bad_Name" } }, field: "spec.service.name", says: /should match/ },
  { what: "reserved meta key", spec: { ...base, service: { name: "bad", meta: { "consul-x": "1" } } }, field: "spec.service.meta", says: /keys must match/ },
  { what: "hostIP not an IP", spec: { ...base, backends: { ...base.backends, hostIP: "10.0.0.x" } }, field: "spec.backends.hostIP", says: /IPv4 or IPv6/ },
  {
    what: "In without values",
    spec: { ...base, backends: { ...base.backends, selector: { matchExpressions: [{ key: "a", operator: "In" }] } } },
    field: "spec.backends.selector.matchExpressions[0].values",
    says: /needs at least one value/,
  },
  {
    what: "Exists with values",
    spec: { ...base, backends: { ...base.backends, selector: { matchExpressions: [{ key: "a", operator: "Exists", values: ["x"] }] } } },
    field: "spec.backends.selector.matchExpressions[0].values",
    says: /takes no values/,
  },
  {
    what: "network in published mode",
    spec: { ...base, backends: { ...base.backends, network: "n1" } },
    field: "spec.backends.network",
    says: /addressMode: internal/,
  },
  {
    what: "hostIP in internal mode",
    spec: { ...base, backends: { ...base.backends, addressMode: "internal", hostIP: "10.0.0.1" } },
    field: "spec.backends.hostIP",
    says: /addressMode: published/,
  },
  { what: "no selector at all", spec: { ...base, backends: { port: 80 } }, field: "spec.backends.selector", says: /required/ },
  { what: "bad duration", spec: { ...base, healthCheck: { interval: "10 seconds" } }, field: "spec.healthCheck.interval", says: /should match/ },
  {
    what: "probeBeforeRegister on a ttl check",
    spec: { ...base, healthCheck: { type: "ttl", probeBeforeRegister: true } },
    field: "spec.healthCheck.probeBeforeRegister",
    says: /only meaningful with type http or tcp/,
  },
  { what: "unknown field", spec: { ...base, bogus: true }, field: "spec.bogus", says: /unknown field/ },
  {
    what: "split percents not adding up to 100",
    spec: { ...base, loadBalancer: { ...splitLb, split: [group(10, "canary"), group(80, "stable")] } },
    field: "spec.loadBalancer.split",
    says: /must add up to 100/,
  },
  {
    what: "split percent above 100",
    spec: { ...base, loadBalancer: { ...splitLb, split: [group(101, "canary")] } },
    field: "spec.loadBalancer.split[0].percent",
    says: /less than or equal to 100/,
  },
  {
    what: 'split percent "1e9" (a string)',
    spec: { ...base, loadBalancer: { ...splitLb, split: [group("1e9", "canary")] } },
    field: "spec.loadBalancer.split[0].percent",
    says: /must be of type integer|should be integer/,
  },
  {
    what: "LB output not a .conf/.cfg file name",
    spec: { ...base, loadBalancer: { listen: { port: 8080 }, output: "../etc/passwd" } },
    field: "spec.loadBalancer.output",
    says: /should match/,
  },
];

function doc(name: string, spec: unknown): Record<string, unknown> {
  return { apiVersion: "dockbind.io/v1alpha1", kind: "ServiceBinding", metadata: { name, namespace: "default" }, spec };
}

describe("ServiceBinding CRD", () => {
  it("kubectl apply -f crds/ then the samples", async () => {
    await kube.kubectl(["apply", "-f", join(REPO, "crds")]);
    await kube.kubectl(["wait", "--for", "condition=Established", "crd/servicebindings.dockbind.io", "--timeout=30s"]);
    const out = await kube.kubectl(["apply", "-f", SAMPLES]);
    const names = readdirSync(SAMPLES).filter((f) => f.endsWith(".yaml"));
    assert.equal(out.stdout.trim().split("\n").length, names.length, out.stdout);
    // The samples are valid for the runtime validator too.
    for (const f of names) {
      for (const d of parseAllDocuments(readFileSync(join(SAMPLES, f), "utf8"))) {
        const r = validateBinding(d.toJS());
        assert.ok(r.ok, `${f}: ${JSON.stringify(r.ok ? [] : r.errors)}`);
      }
    }
  });

  it("kubectl get sb shows the printer columns; the short name and category work", async () => {
    const table = (await kube.kubectl(["get", "sb", "-n", "default"])).stdout;
    assert.match(table, /^NAME\s+SERVICE\s+DESIRED\s+REGISTERED\s+PASSING\s+READY\s+AGE\s*$/m);
    assert.match(table, /^web\s+web\s+/m);
    const wide = (await kube.kubectl(["get", "servicebindings.dockbind.io", "-o", "wide", "-n", "default"])).stdout;
    assert.match(wide, /\bREASON\b/);
    const cat = (await kube.kubectl(["get", "dockbind", "-n", "default", "-o", "name"])).stdout;
    assert.match(cat, /servicebinding\.dockbind\.io\/web/);
    // Server-side defaults from the schema are visible.
    const web = JSON.parse((await kube.kubectl(["get", "sb", "web", "-n", "default", "-o", "json"])).stdout) as {
      spec: { backends: { protocol: string }; healthCheck: { initialStatus: string } };
    };
    assert.equal(web.spec.backends.protocol, "tcp");
    assert.equal(web.spec.healthCheck.initialStatus, "critical");
  });

  for (const [i, c] of INVALID.entries()) {
    it(`rejects ${c.what} with a message naming ${c.field}`, async () => {
      const d = doc(`bad-${i}`, c.spec);
      const r = await kube.kubectl(["apply", "-f", "-"], { input: JSON.stringify(d), check: false });
      assert.notEqual(r.code, 0, `API server accepted: ${r.stdout}`);
      const msg = r.stderr;
      assert.ok(msg.includes(c.field), `message names ${c.field}: ${msg}`);
      assert.match(msg, c.says);
      // Same verdict from the runtime validator (one source of truth).
      const v = validateBinding(d);
      assert.equal(v.ok, false, `validateBinding accepted ${c.what}`);
      assert.ok(
        v.errors.some((e) => e.field === c.field || e.field.startsWith(`${c.field}.`) || c.field.startsWith(e.field)),
        `validateBinding names ${c.field}: ${JSON.stringify(v.errors)}`,
      );
    });
  }
});
