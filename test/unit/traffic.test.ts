/**
 * Weights and split groups, pure parts: the label and meta rules (domain/traffic.ts), the
 * registrations desired() makes, per-server weights (render/weights.ts), what nginx and haproxy
 * render, Consul's register body, validation (schema + semantic) and registrator-compat
 * SERVICE_WEIGHT. Hostile values never reach generated config.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { validateBinding, type ValidationResult } from "../../src/api/v1alpha1/validate.js";
import { decodeHealthEntries, encodeRegistration } from "../../src/clients/consul/decode.js";
import { desiredForBinding } from "../../src/domain/desired.js";
import { compatRegistrations } from "../../src/domain/registratorCompat.js";
import { parseWeight, SPLIT_META, splitGroupFromMeta, WEIGHT_LABEL } from "../../src/domain/traffic.js";
import type { HealthInstance, LoadBalancerSpec, SplitGroup } from "../../src/domain/types.js";
import { renderHaproxy } from "../../src/render/haproxy.js";
import { renderNginx } from "../../src/render/nginx.js";
import { trafficShares } from "../../src/render/trafficView.js";
import { serverWeights } from "../../src/render/weights.js";
import { makeBinding, makeContainer } from "../support/fakes.js";

const SPLIT: readonly SplitGroup[] = [
  { selector: { matchLabels: { track: "canary" } }, percent: 10 },
  { selector: { matchLabels: { track: "stable" } }, percent: 90 },
];
const LB: LoadBalancerSpec = { kind: "nginx", listen: { address: "127.0.0.1", port: 8080 }, onlyPassing: true, method: "round_robin", output: "web.conf" };

function inst(n: number, over: Partial<HealthInstance> = {}): HealthInstance {
  return { serviceId: `web-${n}`, node: "n1", address: `10.0.0.${n}`, port: 80, tags: [], status: "passing", ...over };
}

const grouped = (n: number, group: string, weight?: number): HealthInstance =>
  inst(n, { meta: { [SPLIT_META]: group }, ...(weight !== undefined ? { weight } : {}) });

describe("weight label and split meta (domain/traffic.ts)", () => {
  it("accepts plain decimal 1..100 only", () => {
    for (const ok of ["1", "7", "100"]) assert.equal(parseWeight(ok), Number(ok), ok);
    for (const bad of ["0", "101", "1e9", "1e1", "-1", "+5", "05", " 5", "5 ", "0x10", "1.5", "", "五", "999"]) assert.equal(parseWeight(bad), undefined, bad);
  });

  it("reads a group index back from meta only when it names a group of the split", () => {
    assert.equal(splitGroupFromMeta(SPLIT, { [SPLIT_META]: "1" }), 1);
    for (const bad of ["2", "01", "-1", "1 ", "x", "1e0", ""]) assert.equal(splitGroupFromMeta(SPLIT, { [SPLIT_META]: bad }), undefined, bad);
    assert.equal(splitGroupFromMeta(SPLIT, {}), undefined);
    assert.equal(splitGroupFromMeta(SPLIT, undefined), undefined);
  });
});

describe("desired registrations carry weight and split group", () => {
  const binding = makeBinding("web", { loadBalancer: { split: SPLIT } });
  const c = (id: string, labels: Record<string, string>) =>
    makeContainer(id.repeat(64).slice(0, 64), {
      labels: { app: "web", ...labels },
      ports: [{ privatePort: 80, protocol: "tcp", hostIP: "127.0.0.1", hostPort: 30000 }],
    });

  it("weight label -> Registration.weight; first matching group -> meta; no group -> no key", () => {
    const r = desiredForBinding(binding, [c("a", { track: "canary", [WEIGHT_LABEL]: "5" }), c("b", { track: "stable" }), c("c", {})], {
      node: "n1",
      hostIP: "127.0.0.1",
    });
    assert.deepEqual(
      r.registrations.map((x) => [x.weight, x.meta[SPLIT_META]]),
      [
        [5, "0"],
        [undefined, "1"],
        [undefined, undefined],
      ],
    );
  });

  it("a hostile weight label skips the container with the label named", () => {
    for (const bad of ["0", "101", "1e9"]) {
      const r = desiredForBinding(binding, [c("a", { [WEIGHT_LABEL]: bad })], { node: "n1", hostIP: "127.0.0.1" });
      assert.equal(r.registrations.length, 0);
      assert.match(r.skipped[0]?.reason ?? "", new RegExp(`^label dockbind\\.io/weight: "${bad.replace(".", "\\.")}" is not an integer in 1\\.\\.100$`));
    }
  });

  it("registrator-compat: SERVICE_WEIGHT is the weight, not meta; a bad one is dropped and reported", () => {
    const base = { node: "n1", hostIP: "127.0.0.1", internal: false, extraTags: [] };
    const ct = (labels: Record<string, string>) =>
      makeContainer("f".repeat(64), { labels, ports: [{ privatePort: 80, protocol: "tcp", hostIP: "0.0.0.0", hostPort: 30001 }] });
    const good = compatRegistrations(ct({ SERVICE_WEIGHT: "7" }), base);
    assert.equal(good.registrations[0]?.weight, 7);
    assert.equal(good.registrations[0].meta.weight, undefined);
    const bad = compatRegistrations(ct({ SERVICE_WEIGHT: "1e9" }), base);
    assert.equal(bad.registrations[0]?.weight, undefined);
    assert.deepEqual(
      bad.issues.map((i) => i.field),
      ["labels.SERVICE_WEIGHT"],
    );
  });
});

describe("server weights (render/weights.ts)", () => {
  it("without a split: the instance weights", () => {
    assert.deepEqual(serverWeights([{ weight: 1 }, { weight: 3 }], undefined), [1, 3]);
  });

  it("10/90 with 1 canary and 3 stable: canary 85, stable 256 each (9.96 %)", () => {
    assert.deepEqual(serverWeights([{ weight: 1, group: 0 }, ...[1, 1, 1].map((w) => ({ weight: w, group: 1 }))], SPLIT), [85, 256, 256, 256]);
  });

  it("equal shares reduce to weight 1 (not written); a group's share does not depend on its size", () => {
    const half: SplitGroup[] = [
      { selector: { matchLabels: { a: "1" } }, percent: 50 },
      { selector: { matchLabels: { a: "2" } }, percent: 50 },
    ];
    assert.deepEqual(
      serverWeights(
        [
          { weight: 1, group: 0 },
          { weight: 1, group: 1 },
        ],
        half,
      ),
      [1, 1],
    );
    const w = serverWeights([{ weight: 1, group: 0 }, ...Array.from({ length: 9 }, () => ({ weight: 1, group: 1 }))], half);
    const one = w[0] ?? 0;
    assert.ok(Math.abs(one - 9 * (w[1] ?? 0)) / one < 0.02, `one server gets as much as nine together (${w.join(",")})`);
  });

  it("a group with no server gives its share away; a 0 % group is left out unless it is all there is", () => {
    assert.deepEqual(
      serverWeights(
        [
          { weight: 1, group: 1 },
          { weight: 1, group: 1 },
        ],
        SPLIT,
      ),
      [1, 1],
    );
    const zero: SplitGroup[] = [
      { selector: { matchLabels: { a: "1" } }, percent: 0 },
      { selector: { matchLabels: { a: "2" } }, percent: 100 },
    ];
    assert.deepEqual(
      serverWeights(
        [
          { weight: 1, group: 0 },
          { weight: 1, group: 1 },
        ],
        zero,
      ),
      [0, 1],
    );
    assert.deepEqual(
      serverWeights(
        [
          { weight: 2, group: 0 },
          { weight: 1, group: 0 },
        ],
        zero,
      ),
      [2, 1],
    );
  });

  it("always integers within haproxy's 1..256 for rendered servers", () => {
    const skew: SplitGroup[] = [
      { selector: { matchLabels: { a: "1" } }, percent: 1 },
      { selector: { matchLabels: { a: "2" } }, percent: 99 },
    ];
    const w = serverWeights([...Array.from({ length: 50 }, () => ({ weight: 100, group: 0 })), { weight: 1, group: 1 }], skew);
    for (const x of w) assert.ok(Number.isInteger(x) && x >= 1 && x <= 256, String(x));
  });
});

describe("rendering weights (nginx and haproxy)", () => {
  const lb = { ...LB, split: SPLIT };
  const instances = [grouped(1, "0"), grouped(2, "1"), grouped(3, "1"), grouped(4, "1")];

  it("nginx: weight=N only where not 1; byte-stable whatever the instance order", () => {
    const a = renderNginx({ bindingKey: "default/web", serviceName: "web", lb, instances });
    const b = renderNginx({ bindingKey: "default/web", serviceName: "web", lb, instances: [...instances].reverse() });
    assert.equal(a.text, b.text);
    assert.match(a.text, /^ {4}server 10\.0\.0\.1:80 weight=85; # web-1$/m);
    assert.match(a.text, /^ {4}server 10\.0\.0\.2:80 weight=256; # web-2$/m);
    assert.deepEqual(
      trafficShares(SPLIT, a.servers).split?.map((g) => g.share),
      [10, 90],
    );
    const plain = renderNginx({ bindingKey: "default/web", serviceName: "web", lb: LB, instances: [inst(1), inst(2)] });
    assert.doesNotMatch(plain.text, /weight/);
  });

  it("haproxy: `weight N` on the server line", () => {
    const r = renderHaproxy({ bindingKey: "default/web", serviceName: "web", lb: { ...lb, kind: "haproxy", output: "web.cfg" }, instances });
    assert.match(r.text, /^ {4}server srv_10\.0\.0\.1_80 10\.0\.0\.1:80 weight 85 # web-1$/m);
  });

  it("weights and group meta read back from Consul are validated: hostile ones are rejected, never rendered", () => {
    const hostile = [inst(1, { weight: 0 }), inst(2, { weight: 101 }), inst(3, { weight: 1e9 }), inst(4, { weight: 1.5 }), inst(5, { weight: 4 })];
    const r = renderNginx({ bindingKey: "default/web", serviceName: "web", lb: LB, instances: hostile });
    assert.deepEqual(
      r.servers.map((s) => s.address),
      ["10.0.0.5"],
    );
    assert.deepEqual(
      r.rejected.map((x) => x.reason),
      Array.from({ length: 4 }, () => "weight is not an integer in 1..100"),
    );
    assert.doesNotMatch(r.text, /1000000000|weight=0|weight=101/);
    const meta = renderNginx({ bindingKey: "default/web", serviceName: "web", lb, instances: [grouped(1, "0;"), grouped(2, "7"), inst(3), grouped(4, "1")] });
    assert.deepEqual(
      meta.rejected.map((x) => x.serviceId),
      ["web-1", "web-2", "web-3"],
    );
    assert.deepEqual(
      meta.servers.map((x) => x.address),
      ["10.0.0.4"],
    );
  });
});

describe("Consul wire format", () => {
  it("register body carries Weights {Passing: N, Warning: 1}; none without a weight", () => {
    const reg = { id: "x", name: "web", address: "10.0.0.1", port: 80, tags: [], meta: {} };
    assert.deepEqual(encodeRegistration({ ...reg, weight: 5 }).Weights, { Passing: 5, Warning: 1 });
    assert.equal(encodeRegistration(reg).Weights, undefined);
  });

  it("health entries: Weights.Passing and Meta decoded as read (mistyped weight -> 0, which the renderer rejects)", () => {
    const [a, b] = decodeHealthEntries([
      {
        Node: { Node: "n" },
        Service: { ID: "a", Address: "10.0.0.1", Port: 80, Weights: { Passing: 3, Warning: 1 }, Meta: { [SPLIT_META]: "1" } },
        Checks: [],
      },
      { Node: { Node: "n" }, Service: { ID: "b", Address: "10.0.0.2", Port: 80, Weights: { Passing: "1e9" } }, Checks: [] },
    ]);
    assert.equal(a?.weight, 3);
    assert.deepEqual(a.meta, { [SPLIT_META]: "1" });
    assert.equal(b?.weight, 0);
  });
});

describe("validation of loadBalancer.split", () => {
  const docWith = (split: unknown): unknown => ({
    apiVersion: "dockbind.io/v1alpha1",
    kind: "ServiceBinding",
    metadata: { name: "web" },
    spec: {
      service: { name: "web" },
      backends: { selector: { matchLabels: { app: "web" } }, port: 80 },
      loadBalancer: { listen: { port: 8080 }, output: "web.conf", split },
    },
  });
  const fields = (r: ValidationResult): string[] => (r.ok ? [] : r.errors.map((e) => `${e.field}: ${e.message}`));
  const group = (percent: unknown, track = "a") => ({ selector: { matchLabels: { track } }, percent });

  it("accepts 10/90", () => {
    assert.ok(validateBinding(docWith([group(10, "canary"), group(90, "stable")])).ok);
  });

  it("rejects percents not adding up to 100, with the field path", () => {
    assert.deepEqual(fields(validateBinding(docWith([group(10), group(80, "b")]))), [
      "spec.loadBalancer.split: the percents of the split groups must add up to 100 (they add up to 90)",
    ]);
  });

  it('rejects hostile percents (101, -1, 1.5, "1e9") at their path', () => {
    for (const bad of [101, -1, 1.5, "1e9"]) {
      const r = fields(validateBinding(docWith([group(bad), group(0, "b")])));
      assert.ok(r.length > 0 && r.every((f) => f.startsWith("spec.loadBalancer.split[0].percent")), `${JSON.stringify(bad)}: ${r.join("; ")}`);
    }
  });

  it("rejects a group without selector or percent, and an empty split", () => {
    assert.ok(fields(validateBinding(docWith([{ percent: 100 }]))).some((f) => f.startsWith("spec.loadBalancer.split[0].selector")));
    assert.ok(fields(validateBinding(docWith([{ selector: { matchLabels: { a: "b" } } }]))).some((f) => f.startsWith("spec.loadBalancer.split[0].percent")));
    assert.ok(fields(validateBinding(docWith([]))).some((f) => f.startsWith("spec.loadBalancer.split")));
  });
});
