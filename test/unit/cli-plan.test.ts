/**
 * `controller plan`, pure parts: the change computation (register / update /
 * deregister, garbage collection, ownership, LB create / update / remove /
 * error) and the unified diff of each LB file.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { computePlan, type PlanEndpoint, type PlanInput } from "../../src/cli/planCompute.js";
import { formatPlanText } from "../../src/cli/planFormat.js";
import { stamped, type OwnerIdentity } from "../../src/domain/ownership.js";
import { desiredForBinding } from "../../src/domain/desired.js";
import { withHash } from "../../src/domain/plan.js";
import type { ContainerInfo, RegisteredService, Registration, ServiceBinding } from "../../src/domain/types.js";
import { makeBinding, makeContainer } from "../support/fakes.js";

const LB_PATH = "/lb/web.conf";

/**
 * The plan's diff of one LB file: `before` is its bytes on disk (undefined: no file), `after`
 * the text the binding renders (undefined: a generated file no binding renders any more).
 */
function lbDiff(before: string | undefined, after: string | undefined): string {
  const onDisk = new Map([[LB_PATH, before]]);
  const p = computePlan(
    after === undefined
      ? input({ onDisk, ownedFiles: new Map([["default/web", LB_PATH]]) })
      : input({ onDisk, rendered: [{ binding: "default/web", path: LB_PATH, text: after }] }),
  );
  const [change] = p.loadBalancer;
  assert.ok(change !== undefined, "one LB file change");
  return change.diff;
}

describe("computePlan: unified diff of LB files", () => {
  it("is empty for equal texts", () => {
    assert.equal(lbDiff("a\nb\n", "a\nb\n"), "");
  });

  it("shows one changed line with 3 lines of context, like diff -u", () => {
    const a = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
    const b = "1\n2\n3\n4\nfive\n6\n7\n8\n9\n";
    assert.equal(lbDiff(a, b), `--- ${LB_PATH} (on disk)\n+++ ${LB_PATH} (planned)\n@@ -2,7 +2,7 @@\n 2\n 3\n 4\n-5\n+five\n 6\n 7\n 8\n`);
  });

  it("splits distant changes into separate hunks and handles insertions", () => {
    const a = Array.from({ length: 20 }, (_, i) => `l${i}`).join("\n") + "\n";
    const b = a.replace("l1\n", "l1\nnew\n").replace("l18\n", "");
    const d = lbDiff(a, b);
    assert.equal(d.match(/^@@/gm)?.length, 2, d);
    assert.match(d, /^\+new$/m);
    assert.match(d, /^-l18$/m);
  });

  it("diffs against /dev/null for created and removed files", () => {
    assert.equal(lbDiff(undefined, "x\ny\n"), `--- /dev/null\n+++ ${LB_PATH} (planned)\n@@ -0,0 +1,2 @@\n+x\n+y\n`);
    assert.equal(lbDiff("x\n", undefined), `--- ${LB_PATH} (on disk)\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-x\n`);
  });

  it("marks a last line without a newline, like diff -u", () => {
    assert.equal(
      lbDiff("a\nb", "a\nc"),
      `--- ${LB_PATH} (on disk)\n+++ ${LB_PATH} (planned)\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n`,
    );
  });
});

const NODE = "n1";

function binding(name: string, port = 80): ServiceBinding {
  return makeBinding(name, { service: { tags: ["t"] }, backends: { port } });
}

function container(id: string, app: string, hostPort: number): ContainerInfo {
  return makeContainer(id.padEnd(64, "0"), {
    name: `${app}-${id}`,
    image: "img",
    hostname: id,
    labels: { app },
    networks: {},
    ports: [{ privatePort: 80, protocol: "tcp", hostIP: "0.0.0.0", hostPort }],
  });
}

/** `r` as its controller registered it: stamped with the owner identity of its node (see owner()), hashed. */
function registered(r: Registration): RegisteredService {
  const h = withHash(stamped(r, owner(r.meta.dockbind_node ?? NODE)));
  return { id: h.id, name: h.name, address: h.address, port: h.port, tags: h.tags, meta: h.meta };
}

/** The plan's owner identity for `node` (engine E-<node>, instance i-plan). */
function owner(node: string): OwnerIdentity {
  return { node, engine: `E-${node}`, instance: "i-plan", adopt: [] };
}

/** One endpoint (node NODE) with `containers` and `compat`, unless `endpoints` is given. */
function input(
  over: Partial<Omit<PlanInput, "endpoints">> & {
    readonly containers?: PlanEndpoint["containers"];
    readonly compat?: PlanEndpoint["compat"];
    readonly endpoints?: PlanInput["endpoints"];
  },
): PlanInput {
  const { containers = [], compat, endpoints, ...rest } = over;
  const single: PlanEndpoint = { node: NODE, hostIP: "127.0.0.1", containers, owner: owner(NODE), ...(compat !== undefined ? { compat } : {}) };
  return { endpoints: endpoints ?? [single], bindings: [], agentServices: [], rendered: [], onDisk: new Map(), ownedFiles: new Map(), ...rest };
}

describe("computePlan: registrations", () => {
  const web = binding("web");
  const c1 = container("aaa", "web", 30001);
  const c2 = container("bbb", "web", 30002);
  const desired = desiredForBinding(web, [c1, c2], { node: NODE, hostIP: "127.0.0.1" }).registrations;

  it("converged (registrations carry the current hash) => no changes", () => {
    const p = computePlan(input({ bindings: [web], containers: [c1, c2], agentServices: desired.map(registered) }));
    assert.deepEqual(p.registrations, []);
    assert.equal(p.changes, false);
  });

  it("+ a new container, ~ a moved one, - a vanished one, - an orphaned binding; foreign services untouched", () => {
    const [r1] = desired;
    assert.ok(r1);
    const moved = { ...registered(r1), port: 29999 };
    const gone = registered({ ...r1, id: `dockbind:${NODE}:default:web:ccc000000000:80`, meta: { ...r1.meta, dockbind_container: "ccc" } });
    const orphan = registered({ ...r1, id: "dockbind:n1:default:old:ddd:80", meta: { ...r1.meta, dockbind_binding: "default/old" } });
    const foreign = registered({ ...r1, id: "foreign", meta: { ...r1.meta, dockbind_node: "other" } });
    const p = computePlan(input({ bindings: [web], containers: [c1, c2], agentServices: [moved, gone, orphan, foreign] }));
    const rows = p.registrations.map((c) => `${c.action} ${c.owner} ${c.serviceId} ${c.endpoint}`);
    assert.deepEqual(rows, [
      `update default/web ${r1.id} 127.0.0.1:30001`,
      `register default/web ${desired[1]?.id ?? ""} 127.0.0.1:30002`,
      `deregister default/web ${gone.id} 127.0.0.1:30001`,
      `deregister default/old ${orphan.id} 127.0.0.1:30001`,
    ]);
    assert.match(p.registrations[0]?.reason ?? "", /endpoint 127\.0\.0\.1:29999 -> 127\.0\.0\.1:30001/);
    assert.equal(p.registrations[1]?.container, "web-bbb");
    assert.equal(p.registrations[3]?.reason, "binding default/old no longer exists");
    assert.deepEqual(p.summary, { register: 1, update: 1, deregister: 2, lbCreate: 0, lbUpdate: 0, lbRemove: 0, lbErrors: 0 });
  });

  it("same node, another instance: never updated or deregistered, listed as a conflict; --adopt plans its takeover", () => {
    const [r1, r2] = desired;
    assert.ok(r1 !== undefined && r2 !== undefined);
    const peerIdentity = { ...owner(NODE), instance: "i-peer" };
    const peer = (r: Registration): RegisteredService => ({ ...registered(r), meta: withHash(stamped(r, peerIdentity)).meta });
    const peerOrphan = peer({ ...r1, id: "dockbind:n1:default:b:eee:80", meta: { ...r1.meta, dockbind_binding: "default/b" } });
    const services = [peer(r1), peerOrphan, registered(r2)];
    const p = computePlan(input({ bindings: [web], containers: [c1, c2], agentServices: services }));
    assert.deepEqual(p.registrations, [], "the peer's ID for c1 is not overwritten, its binding b is not an orphan of ours");
    assert.deepEqual(p.conflicts, [{ node: NODE, peer: { engine: `E-${NODE}`, instance: "i-peer" }, registrations: 2, adoptWith: "i-peer" }]);
    const text = formatPlanText(p, { node: NODE, bindingsDir: "/b", docker: "unix:///d", consul: "http://c", outputDir: "/lb" });
    assert.match(
      text,
      /WARNING: node identity conflict: another controller registers under node n1 \(Docker engine E-n1, instance i-peer, 2 registration\(s\)\)/,
    );
    const adopting = computePlan(
      input({
        bindings: [web],
        containers: [c1, c2],
        agentServices: services,
        endpoints: [{ node: NODE, hostIP: "127.0.0.1", containers: [c1, c2], owner: { ...owner(NODE), adopt: ["i-peer"] } }],
      }),
    );
    assert.deepEqual(
      adopting.registrations.map((c) => `${c.action} ${c.serviceId}`),
      [`update ${r1.id}`, `deregister ${peerOrphan.id}`],
    );
    assert.deepEqual(adopting.conflicts, []);
  });

  it("deregisters registrator-compat services when compat is off, registers them when on", () => {
    const compatOwned: RegisteredService = {
      id: "n1:web-aaa:80",
      name: "img",
      address: "127.0.0.1",
      port: 30001,
      tags: [],
      meta: { dockbind_node: NODE, dockbind_binding: "registrator-compat", dockbind_container: c1.id },
    };
    const off = computePlan(input({ containers: [c1], agentServices: [compatOwned] }));
    assert.deepEqual(
      off.registrations.map((c) => [c.action, c.owner, c.reason]),
      [["deregister", "registrator-compat", "registrator-compat is off"]],
    );
    const on = computePlan(input({ containers: [c1], compat: { node: NODE, hostIP: "127.0.0.1", internal: false, extraTags: [] } }));
    assert.ok(on.registrations.length >= 1);
    assert.ok(on.registrations.every((c) => c.action === "register" && c.owner === "registrator-compat"));
  });
});

describe("computePlan: several Docker endpoints", () => {
  it("plans each endpoint against its own node's registrations only", () => {
    const web = binding("web");
    const a1 = container("aaa", "web", 30001);
    const b1 = container("bbb", "web", 30002);
    const onA = desiredForBinding(web, [a1], { node: "host-a", hostIP: "192.0.2.1" }).registrations.map(registered);
    const onB = desiredForBinding(web, [b1], { node: "host-b", hostIP: "192.0.2.2" }).registrations;
    const endpoints = [
      { node: "host-a", hostIP: "192.0.2.1", containers: [a1], owner: owner("host-a") },
      { node: "host-b", hostIP: "192.0.2.2", containers: [b1], owner: owner("host-b") },
    ];
    const p = computePlan(input({ endpoints, bindings: [web], agentServices: onA }));
    assert.deepEqual(
      p.registrations.map((c) => `${c.action} ${c.serviceId} ${c.endpoint}`),
      [`register ${onB[0]?.id ?? ""} 192.0.2.2:30002`],
      "host-a is converged; host-b's container is new; host-a's registration is not host-b's to remove",
    );
    assert.ok(onB[0]?.id.startsWith("dockbind:host-b:"));
  });
});

describe("computePlan: load balancer files", () => {
  it("create, update (with diff), unchanged, error, and removal of generated files of gone bindings", () => {
    const p = computePlan(
      input({
        rendered: [
          { binding: "default/a", path: "/lb/a.conf", text: "new\n" },
          { binding: "default/b", path: "/lb/b.conf", text: "x\ny\n" },
          { binding: "default/c", path: "/lb/c.conf", text: "same\n" },
          { binding: "default/d", path: "/lb/d.conf", error: "template d.tmpl: ENOENT" },
        ],
        onDisk: new Map([
          ["/lb/a.conf", undefined],
          ["/lb/b.conf", "x\nz\n"],
          ["/lb/c.conf", "same\n"],
          ["/lb/old.conf", "# dockbind-generated binding=default/old\n"],
        ]),
        ownedFiles: new Map([
          ["default/b", "/lb/b.conf"],
          ["default/old", "/lb/old.conf"],
        ]),
      }),
    );
    assert.deepEqual(
      p.loadBalancer.map((f) => `${f.action} ${f.path}`),
      ["create /lb/a.conf", "update /lb/b.conf", "unchanged /lb/c.conf", "error /lb/d.conf", "remove /lb/old.conf"],
    );
    assert.match(p.loadBalancer[1]?.diff ?? "", /^-z\n\+y$/m);
    assert.match(p.loadBalancer[4]?.diff ?? "", /^-# dockbind-generated binding=default\/old$/m);
    assert.deepEqual(p.summary, { register: 0, update: 0, deregister: 0, lbCreate: 1, lbUpdate: 1, lbRemove: 1, lbErrors: 1 });
    const text = formatPlanText(p, { node: NODE, bindingsDir: "/b", docker: "unix:///d", consul: "http://c", outputDir: "/lb" });
    assert.match(text, /^ {2}! \/lb\/d\.conf \(default\/d\): cannot render, the controller would keep the current file: template d\.tmpl: ENOENT$/m);
    assert.match(text, /^ {4}\+y$/m);
    assert.match(
      text,
      /Plan: 0 to register, 0 to update, 0 to deregister; LB files: 1 to create, 1 to update, 1 to remove \(nginx would be validated and reloaded\)\./,
    );
  });
});
