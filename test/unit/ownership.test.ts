/**
 * The ownership rule (src/domain/ownership.ts): which registrations a
 * controller may rewrite or deregister, and what it reports about the others.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  allServices,
  conflictMessage,
  isOwned,
  nodeConflicts,
  ownedView,
  ownership,
  safeIdentityValue,
  stamped,
  type OwnerIdentity,
} from "../../src/domain/ownership.js";
import { planRegistrations, withHash } from "../../src/domain/plan.js";
import { OWNER_META, type RegisteredService, type Registration } from "../../src/domain/types.js";

const SELF: OwnerIdentity = { node: "same-host", engine: "ENGINE-A", instance: "i-aaaa", adopt: [] };

function meta(node: string | undefined, engine?: string, instance?: string, binding = "default/web"): Record<string, string> {
  return {
    [OWNER_META.binding]: binding,
    ...(node !== undefined ? { [OWNER_META.node]: node } : {}),
    ...(engine !== undefined ? { [OWNER_META.engine]: engine } : {}),
    ...(instance !== undefined ? { [OWNER_META.instance]: instance } : {}),
  };
}

function svc(id: string, m: Record<string, string>): RegisteredService {
  return { id, name: "web", address: "10.0.0.1", port: 80, tags: [], meta: m };
}

function reg(id: string, binding = "default/web"): Registration {
  return {
    id,
    name: "web",
    address: "10.0.0.1",
    port: 80,
    tags: [],
    meta: { [OWNER_META.node]: SELF.node, [OWNER_META.binding]: binding, [OWNER_META.container]: "c".repeat(64) },
  };
}

describe("ownership()", () => {
  it("classifies by node, engine and instance", () => {
    assert.deepEqual(ownership(meta("other-host", "ENGINE-A", "i-aaaa"), SELF), { kind: "other-node" });
    assert.deepEqual(ownership(meta(undefined), SELF), { kind: "other-node" }, "no node meta: not dockbind's");
    assert.deepEqual(ownership(meta("same-host", "ENGINE-A", "i-aaaa"), SELF), { kind: "own" });
    assert.deepEqual(ownership(meta("same-host"), SELF), { kind: "legacy" }, "written before engine/instance meta existed");
    assert.deepEqual(
      ownership(meta("same-host", "ENGINE-A", "i-bbbb"), SELF),
      { kind: "peer", peer: { engine: "ENGINE-A", instance: "i-bbbb" } },
      "same engine, other instance",
    );
    assert.deepEqual(
      ownership(meta("same-host", "ENGINE-B", "i-aaaa"), SELF),
      { kind: "peer", peer: { engine: "ENGINE-B", instance: "i-aaaa" } },
      "other engine, same instance (cloned host)",
    );
    assert.deepEqual(
      ownership(meta("same-host", "ENGINE-A"), SELF),
      { kind: "peer", peer: { engine: "ENGINE-A", instance: "(none)" } },
      "half the identity is not ours",
    );
  });

  it("--adopt takes over an engine or an instance under our node, never another node's", () => {
    const adopting: OwnerIdentity = { ...SELF, adopt: ["ENGINE-OLD", "i-old"] };
    assert.equal(ownership(meta("same-host", "ENGINE-OLD", "i-aaaa"), adopting).kind, "adopted");
    assert.equal(ownership(meta("same-host", "ENGINE-A", "i-old"), adopting).kind, "adopted");
    assert.equal(ownership(meta("same-host", "ENGINE-X", "i-x"), adopting).kind, "peer");
    assert.equal(ownership(meta("other-host", "ENGINE-OLD", "i-old"), adopting).kind, "other-node");
  });

  it("isOwned: own, legacy and adopted only", () => {
    assert.equal(isOwned(meta("same-host", "ENGINE-A", "i-aaaa"), SELF), true);
    assert.equal(isOwned(meta("same-host"), SELF), true);
    assert.equal(isOwned(meta("same-host", "ENGINE-A", "i-bbbb"), SELF), false);
    assert.equal(isOwned(meta("other-host"), SELF), false);
  });

  it("values from another controller's meta are shown only when they are plain identifiers", () => {
    assert.equal(safeIdentityValue("4f2c1a9e-6b7d-4c1e-9a0b-1234567890ab"), "4f2c1a9e-6b7d-4c1e-9a0b-1234567890ab");
    assert.equal(safeIdentityValue("ABCD:EFGH:IJKL:MNOP"), "ABCD:EFGH:IJKL:MNOP");
    assert.equal(safeIdentityValue("<script>alert(1)</script>"), "(invalid)");
    assert.equal(safeIdentityValue("a\nlevel=error"), "(invalid)");
    assert.equal(safeIdentityValue("x".repeat(200)), "(invalid)");
    assert.equal(safeIdentityValue(undefined), "(none)");
    const p = ownership(meta("same-host", "<img src=x>", "i b"), SELF);
    assert.deepEqual(p, { kind: "peer", peer: { engine: "(invalid)", instance: "(invalid)" } });
  });
});

describe("ownedView(): what a plan may touch", () => {
  const agent = [
    svc("ours", meta("same-host", "ENGINE-A", "i-aaaa")),
    svc("legacy", meta("same-host")),
    svc("peer", meta("same-host", "ENGINE-A", "i-bbbb")),
    svc("peer-other-binding", meta("same-host", "ENGINE-A", "i-bbbb", "default/b")),
    svc("other-node", meta("other-host", "ENGINE-Z", "i-z")),
  ];

  it("owned = ours and legacy among the filter; a peer's registration is never planned for deregistration", () => {
    const v = ownedView(allServices(agent), SELF, (m) => m[OWNER_META.binding] === "default/web", []);
    assert.deepEqual(
      v.owned.map((s) => s.id),
      ["ours", "legacy"],
    );
    assert.deepEqual(planRegistrations(v.owned, v.desired).deregister, ["legacy", "ours"]);
    const gc = ownedView(allServices(agent), SELF, (m) => m[OWNER_META.binding] === "default/b", []);
    assert.deepEqual(planRegistrations(gc.owned, gc.desired).deregister, [], "binding b is not ours: the peer's registration is not an orphan of ours");
  });

  it("a desired ID a peer holds is blocked (never overwritten); the rest is stamped with our engine and instance", () => {
    const v = ownedView(allServices(agent), SELF, () => true, [reg("peer"), reg("new")]);
    assert.deepEqual(v.blocked, [{ id: "peer", peer: { engine: "ENGINE-A", instance: "i-bbbb" } }]);
    assert.deepEqual(
      v.desired.map((r) => r.id),
      ["new"],
    );
    const [written] = v.desired;
    assert.ok(written !== undefined);
    assert.equal(written.meta[OWNER_META.engine], "ENGINE-A");
    assert.equal(written.meta[OWNER_META.instance], "i-aaaa");
  });

  it("converged: a registration we made is not rewritten (the hash covers the identity)", () => {
    const r = reg("ours-2");
    const written = withHash(stamped(r, SELF));
    const v = ownedView(allServices([{ ...svc("ours-2", written.meta) }]), SELF, () => true, [r]);
    assert.deepEqual(planRegistrations(v.owned, v.desired), { register: [], deregister: [] });
  });

  it("legacy (pre-identity) registration: adopted with exactly one rewrite, then converged", () => {
    const r = reg("old");
    const before = withHash(r); // what an older dockbind wrote: no engine/instance meta
    const v1 = ownedView(allServices([svc("old", before.meta)]), SELF, () => true, [r]);
    const p1 = planRegistrations(v1.owned, v1.desired);
    assert.deepEqual(
      p1.register.map((x) => x.id),
      ["old"],
    );
    assert.deepEqual(p1.deregister, []);
    const after = p1.register[0];
    assert.ok(after !== undefined);
    const v2 = ownedView(allServices([svc("old", after.meta)]), SELF, () => true, [r]);
    assert.deepEqual(planRegistrations(v2.owned, v2.desired), { register: [], deregister: [] });
  });

  it("a restart with another instance ID sees its old registrations as a peer's until --adopt", () => {
    const r = reg("x");
    const old = withHash(stamped(r, { ...SELF, instance: "i-old" }));
    const moved: OwnerIdentity = { ...SELF, instance: "i-new" };
    const v = ownedView(allServices([svc("x", old.meta)]), moved, () => true, [r]);
    assert.deepEqual(
      v.blocked.map((b) => b.id),
      ["x"],
    );
    const adopting = ownedView(allServices([svc("x", old.meta)]), { ...moved, adopt: ["i-old"] }, () => true, [r]);
    assert.deepEqual(
      planRegistrations(adopting.owned, adopting.desired).register.map((x) => x.meta[OWNER_META.instance]),
      ["i-new"],
    );
  });
});

describe("nodeConflicts()", () => {
  it("one entry per other engine/instance under our node, counted, sorted, bounded; other nodes are no conflict", () => {
    const agent = [
      svc("1", meta("same-host", "ENGINE-A", "i-bbbb")),
      svc("2", meta("same-host", "ENGINE-A", "i-bbbb", "default/b")),
      svc("3", meta("same-host", "ENGINE-C", "i-aaaa")),
      svc("4", meta("other-host", "ENGINE-Z", "i-z")),
      svc("5", meta("same-host", "ENGINE-A", "i-aaaa")),
      svc("6", meta("same-host")),
    ];
    const c = nodeConflicts(agent, SELF);
    assert.deepEqual(c, [
      { node: "same-host", peer: { engine: "ENGINE-A", instance: "i-bbbb" }, registrations: 2, adoptWith: "i-bbbb" },
      { node: "same-host", peer: { engine: "ENGINE-C", instance: "i-aaaa" }, registrations: 1, adoptWith: "ENGINE-C" },
    ]);
    const many = Array.from({ length: 40 }, (_, i) => svc(`m${i}`, meta("same-host", `E${i}`, `i-${i}`)));
    assert.equal(nodeConflicts(many, SELF).length, 16);
    assert.deepEqual(nodeConflicts(agent, { ...SELF, node: "nobody" }), []);
  });

  it("the message names the node, the other engine and instance, and both ways out", () => {
    const [c] = nodeConflicts([svc("1", meta("same-host", "ENGINE-B", "i-bbbb"))], SELF);
    assert.ok(c !== undefined);
    const m = conflictMessage(c);
    for (const part of ["same-host", "ENGINE-B", "i-bbbb", "--node", "--adopt i-bbbb", "never rewritten or deregistered"])
      assert.ok(m.includes(part), `${part} in ${m}`);
  });
});
