/**
 * servedDatacenter() (src/domain/failover.ts): the one rule the renderer, `controller plan` and
 * status use to pick the datacenter a `spec.service.datacenters` binding serves.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { datacenterLookup, describeServed, servedDatacenter, type DatacenterSnapshot } from "../../src/domain/failover.js";
import { serviceRef, serviceRefs, type HealthInstance, type ServiceBinding, type ServiceRef } from "../../src/domain/types.js";
import { makeInstance } from "../support/fakes.js";

function binding(service: Partial<ServiceBinding["spec"]["service"]>): Pick<ServiceBinding, "spec"> {
  return {
    spec: {
      service: { name: "web", tags: [], meta: {}, ...service },
      backends: { selector: { matchLabels: { app: "web" } }, port: 80, protocol: "tcp", addressMode: "published" },
      healthCheck: { type: "http", path: "/", interval: "1s", timeout: "1s", ttl: "15s", initialStatus: "critical" },
    },
  };
}

const LIST = binding({ datacenters: ["dc1", "dc2", "dc3"] });
const up = (id: string): HealthInstance => makeInstance(id, "passing");
const down = (id: string): HealthInstance => makeInstance(id, "critical");

function lookup(byDc: Readonly<Record<string, DatacenterSnapshot | undefined>>): (ref: ServiceRef) => DatacenterSnapshot | undefined {
  return (ref) => byDc[ref.dc ?? "local"];
}

function served(byDc: Readonly<Record<string, DatacenterSnapshot | undefined>>): string | undefined {
  return servedDatacenter(LIST, lookup(byDc))?.dc;
}

describe("servedDatacenter", () => {
  it("serves the first listed datacenter with a passing instance", () => {
    assert.equal(served({ dc1: { instances: [up("a")] }, dc2: { instances: [up("b")] } }), "dc1");
    assert.equal(served({ dc1: { instances: [down("a")] }, dc2: { instances: [up("b")] } }), "dc2");
    assert.equal(served({ dc1: { instances: [] }, dc2: { instances: [] }, dc3: { instances: [up("c")] } }), "dc3");
    const s = servedDatacenter(LIST, lookup({ dc1: { instances: [down("a")] }, dc2: { instances: [up("b"), down("c")] } }));
    assert.ok(s);
    assert.equal(s.dc, "dc2", "dc3 has not answered, but it comes after the chosen one");
    assert.deepEqual(
      s.instances.map((i) => i.serviceId),
      ["b", "c"],
      "the served datacenter's instances as they are (the renderer filters health)",
    );
    assert.equal(s.failover, true);
    assert.deepEqual(s.candidates, [
      { dc: "dc1", state: "fresh", passing: 0 },
      { dc: "dc2", state: "fresh", passing: 1 },
      { dc: "dc3", state: "unknown", passing: 0 },
    ]);
    assert.equal(describeServed(s), "dc2 (failover: dc1 0 passing; dc2 1 passing; dc3 not answered)");
  });

  it("returns to the first datacenter as soon as it has a passing instance again", () => {
    assert.equal(served({ dc1: { instances: [up("a"), down("x")] }, dc2: { instances: [up("b")] } }), "dc1");
  });

  it("with no passing instance anywhere, serves the first listed datacenter", () => {
    assert.equal(served({ dc1: { instances: [] }, dc2: { instances: [down("b")] }, dc3: { instances: [] } }), "dc1");
    assert.equal(served({ dc1: { instances: [], stale: true }, dc2: { instances: [down("b")] }, dc3: { instances: [] } }), "dc1");
  });

  it("waits for a datacenter listed before the chosen one that has neither answered nor failed", () => {
    assert.equal(served({}), undefined);
    assert.equal(served({ dc2: { instances: [up("b")] } }), undefined, "no fallback only because dc1 answers later");
    assert.equal(served({ dc1: { instances: [] }, dc2: { instances: [down("b")] } }), undefined, "no empty render while dc3 may still have some");
    assert.equal(served({ dc1: { instances: [up("a")] } }), "dc1", "the preferred one passing: the others do not matter");
  });

  it("a datacenter unreachable from the start counts as nothing known, not as pending", () => {
    const store = {
      get: (ref: ServiceRef): DatacenterSnapshot | undefined =>
        ref.dc === "dc3" ? { instances: [up("c")] } : ref.dc === "dc1" ? { instances: [] } : undefined,
      failing: (ref: ServiceRef): boolean => ref.dc === "dc2",
    };
    const s = servedDatacenter(LIST, datacenterLookup(store));
    assert.ok(s);
    assert.equal(s.dc, "dc3");
    assert.deepEqual(s.candidates[1], { dc: "dc2", state: "stale", passing: 0 });
    assert.equal(datacenterLookup({ get: () => undefined })({ service: "web" }), undefined, "a store without failing(): pending");
  });

  it("treats an unreachable datacenter as no fresh data, not as no instances", () => {
    // dc2 unreachable while serving: its last known instances stay served.
    assert.equal(served({ dc1: { instances: [] }, dc2: { instances: [up("b")], stale: true }, dc3: { instances: [up("c")] } }), "dc2");
    // dc1 unreachable with passing instances last known: no failover away from it.
    assert.equal(served({ dc1: { instances: [up("a")], stale: true }, dc2: { instances: [up("b")] } }), "dc1");
    // Unreachable with none passing last known: skipped.
    assert.equal(served({ dc1: { instances: [down("a")], stale: true }, dc2: { instances: [up("b")] } }), "dc2");
    const s = servedDatacenter(LIST, lookup({ dc1: { instances: [] }, dc2: { instances: [up("b")], stale: true } }));
    assert.ok(s);
    assert.equal(s.dc, "dc2");
    assert.equal(describeServed(s), "dc2 (failover: dc1 0 passing; dc2 1 passing (unreachable, last known); dc3 not answered)");
  });

  it("without datacenters: the binding's one ref, no candidates, never a failover", () => {
    const one = binding({ datacenter: "dc2" });
    assert.deepEqual(serviceRefs(one), [{ service: "web", dc: "dc2" }]);
    const s = servedDatacenter(one, (ref) => (ref.dc === "dc2" ? { instances: [down("a")] } : undefined));
    assert.ok(s);
    assert.deepEqual(s, { dc: "dc2", instances: [down("a")], failover: false, candidates: [] });
    assert.equal(describeServed(s), "");
    assert.equal(servedDatacenter(binding({}), () => ({ instances: [] }))?.dc, undefined);
  });

  it("watches every listed datacenter; registrations and local backends use the first", () => {
    assert.deepEqual(
      serviceRefs(LIST).map((r) => r.dc),
      ["dc1", "dc2", "dc3"],
    );
    assert.deepEqual(serviceRef(LIST), { service: "web", dc: "dc1" });
  });
});
