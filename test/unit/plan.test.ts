import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { planRegistrations, registrationHash, withHash } from "../../src/domain/plan.js";
import { OWNER_META, type RegisteredService, type Registration } from "../../src/domain/types.js";

function reg(id: string, over: Partial<Registration> = {}): Registration {
  return {
    id,
    name: "web",
    address: "10.0.0.1",
    port: 8080,
    tags: ["a", "b"],
    meta: { team: "blue", [OWNER_META.node]: "n1", [OWNER_META.binding]: "default/web", [OWNER_META.container]: id },
    check: { tcp: "10.0.0.1:8080", interval: "10s", timeout: "2s", status: "critical" },
    ...over,
  };
}

/** What the Consul agent reports back after `r` was registered (the check is not read back; no weight sent reads back as 1). */
function registered(r: Registration): RegisteredService {
  const h = withHash(r);
  return { id: h.id, name: h.name, address: h.address, port: h.port, tags: [...h.tags], meta: { ...h.meta }, weight: h.weight ?? 1 };
}

describe("registrationHash / withHash", () => {
  it("is a 16 hex digit string", () => {
    assert.match(registrationHash(reg("x")), /^[0-9a-f]{16}$/);
  });

  it("is pinned: the same registration hashes the same across versions (a changed hash would rewrite every registration once after an upgrade)", () => {
    assert.equal(registrationHash(reg("x")), "582b288b61e889c1");
  });

  it("is stable for equal content", () => {
    assert.equal(registrationHash(reg("x")), registrationHash(reg("x")));
  });

  it("ignores tag order", () => {
    assert.equal(registrationHash(reg("x", { tags: ["a", "b"] })), registrationHash(reg("x", { tags: ["b", "a"] })));
  });

  it("ignores key order in meta and check", () => {
    const a = reg("x", { meta: { p: "1", q: "2" }, check: { tcp: "t", interval: "1s" } });
    const b = reg("x", { meta: { q: "2", p: "1" }, check: { interval: "1s", tcp: "t" } });
    assert.equal(registrationHash(a), registrationHash(b));
  });

  it("ignores an existing hash in meta and undefined fields", () => {
    const base = reg("x");
    assert.equal(registrationHash({ ...base, meta: { ...base.meta, [OWNER_META.hash]: "stale" } }), registrationHash(base));
    const withoutCheckKey: Registration = { id: base.id, name: base.name, address: base.address, port: base.port, tags: base.tags, meta: base.meta };
    assert.equal(registrationHash(reg("x", { check: undefined })), registrationHash(withoutCheckKey));
  });

  for (const [field, over] of [
    ["name", { name: "api" }],
    ["address", { address: "10.0.0.2" }],
    ["port", { port: 8081 }],
    ["tags", { tags: ["a", "c"] }],
    ["meta", { meta: { team: "red" } }],
    ["check", { check: { http: "http://10.0.0.1:8080/", interval: "10s" } }],
    ["no check", { check: undefined }],
  ] as [string, Partial<Registration>][]) {
    it(`changes when ${field} changes`, () => {
      assert.notEqual(registrationHash(reg("x", over)), registrationHash(reg("x")));
    });
  }

  it("withHash records the hash in meta without mutating the input", () => {
    const r = reg("x");
    const h = withHash(r);
    assert.equal(h.meta[OWNER_META.hash], registrationHash(r));
    assert.equal(r.meta[OWNER_META.hash], undefined);
    assert.equal(registrationHash(h), registrationHash(r), "the recorded hash does not feed back");
  });
});

describe("planRegistrations", () => {
  it("a converged system produces an empty plan", () => {
    const desired = [reg("a"), reg("b")];
    const plan = planRegistrations(desired.map(registered), desired);
    assert.deepEqual(plan, { register: [], deregister: [] });
  });

  it("registers what is missing, with the hash in meta", () => {
    const plan = planRegistrations([], [reg("a")]);
    const [only, ...rest] = plan.register;
    assert.deepEqual(rest, []);
    assert.equal(only?.id, "a");
    assert.equal(only.meta[OWNER_META.hash], registrationHash(reg("a")));
    assert.deepEqual(plan.deregister, []);
  });

  it("re-registers when tags changed", () => {
    const plan = planRegistrations([registered(reg("a"))], [reg("a", { tags: ["a", "b", "c"] })]);
    assert.deepEqual(
      plan.register.map((r) => r.id),
      ["a"],
    );
    assert.deepEqual(plan.register[0]?.tags, ["a", "b", "c"]);
    assert.deepEqual(plan.deregister, []);
  });

  it("re-registers when the address changed", () => {
    const plan = planRegistrations([registered(reg("a"))], [reg("a", { address: "10.0.0.9" })]);
    assert.equal(plan.register[0]?.address, "10.0.0.9");
  });

  it("re-registers when only the check changed (the check is not read back, the hash catches it)", () => {
    const plan = planRegistrations([registered(reg("a"))], [reg("a", { check: { ttl: "30s", status: "passing" } })]);
    assert.equal(plan.register.length, 1);
    assert.deepEqual(plan.register[0]?.check, { ttl: "30s", status: "passing" });
  });

  it("does not re-register when only the tag order differs", () => {
    const current = registered(reg("a", { tags: ["b", "a"] }));
    assert.deepEqual(planRegistrations([current], [reg("a", { tags: ["a", "b"] })]).register, []);
  });

  it("re-registers a registration without our hash (e.g. from an older version)", () => {
    const current = { ...registered(reg("a")), meta: { team: "blue" } };
    assert.equal(planRegistrations([current], [reg("a")]).register.length, 1);
  });

  it("a weight reads back as written, and no weight as Consul's default 1: converged", () => {
    const desired = [reg("a", { weight: 5 }), reg("b")];
    assert.deepEqual(planRegistrations(desired.map(registered), desired), { register: [], deregister: [] });
    const noWeightRead = { ...registered(reg("b")), weight: undefined };
    assert.deepEqual(planRegistrations([noWeightRead], [reg("b")]).register, [], "an answer without Weights is the default");
  });

  for (const [field, edit] of [
    ["address", { address: "10.9.9.9" }],
    ["port", { port: 1 }],
    ["name", { name: "hijacked" }],
    ["tags", { tags: ["a", "b", "evil"] }],
    ["meta: a value", { meta: { ...registered(reg("a")).meta, team: "red" } }],
    ["meta: a key added", { meta: { ...registered(reg("a")).meta, extra: "1" } }],
    ["weight", { weight: 100 }],
  ] as [string, Partial<RegisteredService>][]) {
    it(`re-registers a registration edited behind our back (same hash, different ${field})`, () => {
      const current: RegisteredService = { ...registered(reg("a")), ...edit };
      const plan = planRegistrations([current], [reg("a")]);
      assert.deepEqual(
        plan.register.map((r) => r.id),
        ["a"],
      );
      assert.equal(plan.register[0]?.address, "10.0.0.1");
      assert.deepEqual(plan.deregister, []);
    });
  }

  it("deregisters only current services that are not desired, sorted", () => {
    const current = [registered(reg("z-stale")), registered(reg("a")), registered(reg("m-stale"))];
    const plan = planRegistrations(current, [reg("a"), reg("new")]);
    assert.deepEqual(plan.deregister, ["m-stale", "z-stale"]);
    assert.deepEqual(
      plan.register.map((r) => r.id),
      ["new"],
    );
  });

  it("never deregisters something that is not in current", () => {
    const plan = planRegistrations([], []);
    assert.deepEqual(plan, { register: [], deregister: [] });
  });

  it("deregisters everything when nothing is desired", () => {
    const plan = planRegistrations([registered(reg("b")), registered(reg("a"))], []);
    assert.deepEqual(plan.deregister, ["a", "b"]);
    assert.deepEqual(plan.register, []);
  });

  it("is idempotent: applying the plan converges", () => {
    const desired = [reg("a"), reg("b", { port: 9000 })];
    const first = planRegistrations([registered(reg("a", { address: "10.0.0.7" })), registered(reg("c"))], desired);
    const afterApply: RegisteredService[] = [registered(reg("a", { address: "10.0.0.7" })), registered(reg("c"))]
      .filter((s) => !first.deregister.includes(s.id))
      .filter((s) => !first.register.some((r) => r.id === s.id))
      .concat(first.register.map(registered));
    assert.deepEqual(planRegistrations(afterApply, desired), { register: [], deregister: [] });
  });
});
