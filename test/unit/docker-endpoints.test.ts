/** Issue #3 item 6: registrar keys qualified by endpoint node, the "every endpoint finished" completion hook, merged container view, Swarm duty. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { swarmDuty, type SwarmEndpoint } from "../../src/app/dockerEndpoint.js";
import { decodeNodeRequest, decodeRendererRequest, encodeNodeRequest, encodeRendererRequest, type RegistrarRequest } from "../../src/runtime/requests.js";
import { mergedContainers } from "../../src/app/mergedContainers.js";
import { allNodesReporter, type ReconciledEvent } from "../../src/app/reconciledReport.js";
import type { ContainerInfo } from "../../src/domain/types.js";
import type { ContainerStore } from "../../src/ports/containerStore.js";
import type { SwarmView } from "../../src/domain/swarm.js";

describe("registrar requests and their work-queue keys", () => {
  it("round-trip binding and container requests with their node; the key is what the logs show", () => {
    const requests: RegistrarRequest[] = [
      { kind: "binding", binding: "default/web" },
      { kind: "binding", binding: "ns-1/a.b.c" },
      { kind: "container", container: "f".repeat(64) },
    ];
    for (const request of requests)
      assert.deepEqual(decodeNodeRequest(encodeNodeRequest({ node: "host-b.example", request })), { node: "host-b.example", request });
    assert.equal(encodeNodeRequest({ node: "n1", request: { kind: "binding", binding: "default/web" } }), "binding/default/web@n1");
  });
  it("a key without a node, or of no known kind, is no request", () => {
    for (const key of ["binding/default/web", "@host-a", "bogus/x@n1", "binding/@n1", "container/@n1"]) assert.equal(decodeNodeRequest(key), undefined, key);
  });
  it("renderer requests are binding keys", () => {
    assert.deepEqual(decodeRendererRequest(encodeRendererRequest({ kind: "render", binding: "default/web" })), { kind: "render", binding: "default/web" });
  });
});

describe("allNodesReporter", () => {
  const ev = (over: Partial<ReconciledEvent>): ReconciledEvent => ({
    controller: "registrar",
    key: "default/web",
    generation: 2,
    present: true,
    outcome: "success",
    ...over,
  });

  it("reports success only once every node finished the same generation", () => {
    const seen: ReconciledEvent[] = [];
    const report = allNodesReporter(["a", "b"], (e) => seen.push(e));
    report("a", ev({}));
    assert.equal(seen.length, 0, "node b has not finished yet");
    report("b", ev({ generation: 1 }));
    assert.equal(seen.length, 0, "node b finished an older generation");
    report("b", ev({}));
    assert.deepEqual(seen, [ev({})]);
  });

  it("reports an error of any node at once, and success again only after that node succeeds", () => {
    const seen: string[] = [];
    const report = allNodesReporter(["a", "b"], (e) => seen.push(e.outcome));
    report("a", ev({}));
    report("b", ev({ outcome: "error" }));
    assert.deepEqual(seen, ["error"]);
    report("a", ev({}));
    assert.deepEqual(seen, ["error"], "b's last pass failed");
    report("b", ev({}));
    assert.deepEqual(seen, ["error", "success"]);
  });

  it("an absent binding counts as cleaned up only when every node made an absent pass (finalizers)", () => {
    const seen: ReconciledEvent[] = [];
    const report = allNodesReporter(["a", "b"], (e) => seen.push(e));
    report("a", ev({}));
    report("b", ev({}));
    report("a", ev({ present: false, generation: undefined }));
    assert.equal(seen.length, 1);
    report("b", ev({ present: false, generation: undefined }));
    assert.equal(seen.length, 2);
    assert.equal(seen[1]?.present, false);
  });

  it("with one node it reports every pass, like a plain reconciler", () => {
    const seen: ReconciledEvent[] = [];
    const report = allNodesReporter(["only"], (e) => seen.push(e));
    report("only", ev({}));
    report("only", ev({ generation: 3 }));
    assert.equal(seen.length, 2);
  });
});

describe("mergedContainers", () => {
  const c = (id: string, app: string): ContainerInfo => ({
    id,
    name: id,
    image: "i",
    hostname: id,
    labels: { app },
    env: {},
    running: true,
    health: "none",
    ports: [],
    networks: {},
  });
  const store = (items: ContainerInfo[], synced: boolean): ContainerStore => ({
    synced: () => synced,
    list: () => items,
    get: (id) => items.find((x) => x.id === id),
    select: (sel) => items.filter((x) => x.labels.app === sel.matchLabels?.app),
  });

  it("is the one store itself for a single endpoint", () => {
    const s = store([], true);
    assert.equal(mergedContainers([s]), s);
  });

  it("unions lists and selections; synced only when every endpoint is", () => {
    const m = mergedContainers([store([c("a1", "web")], true), store([c("b1", "web"), c("b2", "db")], false)]);
    assert.deepEqual(
      m.list().map((x) => x.id),
      ["a1", "b1", "b2"],
    );
    assert.deepEqual(
      m.select({ matchLabels: { app: "web" } }).map((x) => x.id),
      ["a1", "b1"],
    );
    assert.equal(m.get("b2")?.labels.app, "db");
    assert.equal(m.get("zz"), undefined);
    assert.equal(m.synced(), false);
  });
});

describe("swarmDuty: one endpoint per swarm serves it", () => {
  const ready: SwarmView = { kind: "ready", snapshot: { services: [], tasks: [], nodes: [] } };
  const notSynced: SwarmView = { kind: "unavailable", reason: "SwarmNotSynced", message: "not yet" };
  const unreachable: SwarmView = { kind: "unavailable", reason: "SwarmUnreachable", message: "down" };
  const ep = (node: string, view: SwarmView, cluster: string | undefined): SwarmEndpoint & { set(v: SwarmView, c: string | undefined): void } => {
    let v = view;
    let c = cluster;
    return {
      node,
      swarm: { view: () => v, clusterId: () => c },
      set: (nv, nc) => {
        v = nv;
        c = nc;
      },
    };
  };

  it("the first endpoint managing a cluster serves it; a later manager of the same cluster is told who does", () => {
    const a = ep("a", ready, "cluster-1");
    const b = ep("b", ready, "cluster-1");
    const c = ep("c", ready, "cluster-2");
    const all = (): SwarmEndpoint[] => [a, b, c];
    assert.equal(swarmDuty(a, all).view().kind, "ready");
    const vb = swarmDuty(b, all).view();
    assert.deepEqual(vb.kind === "unavailable" ? [vb.reason, vb.message] : [], [
      "SwarmServedByOtherEndpoint",
      "swarm cluster-1 is served through Docker endpoint a",
    ]);
    assert.equal(swarmDuty(c, all).view().kind, "ready", "another swarm is c's own");
  });

  it("duty is sticky while the first endpoint is unreachable, and moves when it stops managing that swarm", () => {
    const a = ep("a", ready, "cluster-1");
    const b = ep("b", ready, "cluster-1");
    const all = (): SwarmEndpoint[] => [a, b];
    a.set(unreachable, "cluster-1");
    assert.equal(swarmDuty(a, all).view(), unreachable, "a keeps its own (unreachable) view");
    const vb = swarmDuty(b, all).view();
    assert.equal(vb.kind === "unavailable" ? vb.reason : "", "SwarmServedByOtherEndpoint");
    a.set({ kind: "unavailable", reason: "SwarmNotManager", message: "demoted" }, undefined);
    assert.equal(swarmDuty(b, all).view().kind, "ready");
  });

  it("a later endpoint waits while an earlier one has not reported its swarm yet", () => {
    const a = ep("a", notSynced, undefined);
    const b = ep("b", ready, "cluster-1");
    const all = (): SwarmEndpoint[] => [a, b];
    const vb = swarmDuty(b, all).view();
    assert.deepEqual(vb.kind === "unavailable" ? [vb.reason, vb.message] : [], ["SwarmNotSynced", "waiting for Docker endpoint a to report its swarm"]);
    a.set({ kind: "unavailable", reason: "SwarmNotActive", message: "no swarm" }, undefined);
    assert.equal(swarmDuty(b, all).view().kind, "ready");
  });
});
