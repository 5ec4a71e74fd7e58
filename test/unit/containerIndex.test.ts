import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { matchesSelector } from "../../src/domain/selector.js";
import type { ContainerInfo, LabelSelector } from "../../src/domain/types.js";
import { ContainerIndex } from "../../src/sources/docker/containerIndex.js";

function c(id: string, labels: Record<string, string>): ContainerInfo {
  return { id, name: id, image: "img", hostname: id, labels, env: {}, running: true, health: "none", ports: [], networks: {} };
}

const SELECTORS: LabelSelector[] = [
  { matchLabels: { app: "web" } },
  { matchLabels: { app: "web", tier: "front" } },
  { matchLabels: { app: "nope" } },
  { matchExpressions: [{ key: "tier", operator: "Exists" }] },
  { matchLabels: { app: "web" }, matchExpressions: [{ key: "tier", operator: "NotIn", values: ["back"] }] },
  { matchExpressions: [{ key: "app", operator: "In", values: ["api", "web"] }] },
];

describe("ContainerIndex", () => {
  it("select() equals a full scan with matchesSelector, through sets, relabels and deletes", () => {
    const idx = new ContainerIndex();
    const all = new Map<string, ContainerInfo>();
    const put = (x: ContainerInfo): void => {
      idx.set(x.id, x);
      all.set(x.id, x);
    };
    put(c("1", { app: "web", tier: "front" }));
    put(c("2", { app: "web", tier: "back" }));
    put(c("3", { app: "api" }));
    put(c("4", { app: "web" }));
    const check = (): void => {
      for (const s of SELECTORS) {
        const want = [...all.values()].filter((x) => matchesSelector(s, x.labels)).map((x) => x.id).sort();
        assert.deepEqual(idx.select(s).map((x) => x.id).sort(), want, JSON.stringify(s));
      }
    };
    check();
    put(c("4", { app: "api", tier: "front" })); // labels changed: old index entries must go
    check();
    idx.delete("1");
    all.delete("1");
    check();
    idx.delete("missing");
    check();
    assert.deepEqual([...idx.keys()].sort(), ["2", "3", "4"]);
  });
});
