import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { matchesSelector } from "../../src/domain/selector.js";
import type { ContainerInfo, LabelSelector } from "../../src/domain/types.js";
import { ContainerIndex } from "../../src/sources/docker/containerIndex.js";
import { makeContainer } from "../support/fakes.js";

function c(id: string, labels: Record<string, string>): ContainerInfo {
  return makeContainer(id, { name: id, image: "img", hostname: id, labels, ports: [], networks: {} });
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
        const want = [...all.values()]
          .filter((x) => matchesSelector(s, x.labels))
          .map((x) => x.id)
          .sort();
        assert.deepEqual(
          idx
            .select(s)
            .map((x) => x.id)
            .sort(),
          want,
          JSON.stringify(s),
        );
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

  it("indexes only the label keys select() asked for, and keeps them current", () => {
    const idx = new ContainerIndex();
    idx.set("1", c("1", { app: "web", "com.docker.compose.container-number": "1" }));
    idx.set("2", c("2", { app: "api", "com.docker.compose.container-number": "2" }));
    assert.deepEqual(idx.indexedKeys(), []);
    assert.deepEqual(
      idx.select({ matchLabels: { app: "web" } }).map((x) => x.id),
      ["1"],
    );
    assert.deepEqual(idx.indexedKeys(), ["app"]);
    // Added after the key was indexed: found through the index.
    idx.set("3", c("3", { app: "web" }));
    idx.set("1", c("1", { app: "api" }));
    assert.deepEqual(
      idx.select({ matchLabels: { app: "web" } }).map((x) => x.id),
      ["3"],
    );
    assert.deepEqual(
      idx
        .select({ matchLabels: { app: "api" } })
        .map((x) => x.id)
        .sort(),
      ["1", "2"],
    );
    idx.delete("2");
    assert.deepEqual(
      idx.select({ matchLabels: { app: "api" } }).map((x) => x.id),
      ["1"],
    );
    assert.deepEqual(idx.indexedKeys(), ["app"]);
  });

  it("never takes inherited properties for labels", () => {
    const idx = new ContainerIndex();
    idx.set("1", c("1", { app: "web" }));
    assert.deepEqual(idx.select({ matchLabels: { constructor: "x" } }), []);
    assert.deepEqual(idx.select({ matchLabels: { toString: "x", app: "web" } }), []);
    idx.set("2", c("2", { constructor: "x" }));
    assert.deepEqual(
      idx.select({ matchLabels: { constructor: "x" } }).map((x) => x.id),
      ["2"],
    );
  });
});
