import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { test } from "node:test";
import { validateBinding, maintenanceReasonProblem } from "../../src/api/v1alpha1/validate.js";
import { renderStatusPage } from "../../src/api/http/statusPage.js";
import { computePlan } from "../../src/cli/planCompute.js";
import { formatStatusText } from "../../src/cli/status.js";
import type { StatusDocument } from "../../src/observability/statusModel.js";
import { formatPlanText } from "../../src/cli/planFormat.js";
import { decodeAgentMaintenance, decodeHealthEntries } from "../../src/clients/consul/decode.js";
import { desiredForBinding } from "../../src/domain/desired.js";
import { MAINTENANCE_MARK, maintenanceActions, maintenanceEntries, maintenanceKvKey, wantedMaintenance } from "../../src/domain/maintenance.js";
import { OWNER_META, type Registration, type ServiceBinding } from "../../src/domain/types.js";
import type { ConsulMaintenance } from "../../src/ports/consul.js";
import { BindingStatusStore } from "../../src/reconcilers/bindingStatus.js";
import { MaintenanceSync } from "../../src/reconcilers/maintenanceSync.js";
import { RegistrarReconciler } from "../../src/reconcilers/registrar.js";
import { onlyAddsPassing, passingCount } from "../../src/domain/maintenance.js";
import { renderNginx } from "../../src/render/nginx.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { FakeBindings, FakeConsul, FakeContainers, makeBinding, makeContainer, makeInstance } from "../support/fakes.js";

const A = "a".repeat(64);
const B = "b".repeat(64);
const containers = [makeContainer(A, { name: "web-1" }), makeContainer(B, { name: "web-2", ports: [{ privatePort: 80, protocol: "tcp", hostPort: 32769 }] })];

function withMaintenance(b: ServiceBinding, maintenance: ServiceBinding["spec"]["maintenance"]): ServiceBinding {
  return { ...b, spec: { ...b.spec, ...(maintenance !== undefined ? { maintenance } : {}) } };
}

function registrations(b: ServiceBinding): readonly Registration[] {
  return desiredForBinding(b, containers, { node: "n1", hostIP: "127.0.0.1" }).registrations;
}

const ident = (r: Registration): { id: string; name: string } => {
  const id = r.meta.dockbind_container ?? "";
  return { id, name: containers.find((c) => c.id === id)?.name ?? "" };
};

test("spec.maintenance: every instance, or the named containers (name or ID prefix)", () => {
  const all = withMaintenance(makeBinding("web"), { reason: "deploy" });
  const regs = registrations(all);
  assert.equal(regs.length, 2);
  assert.deepEqual(
    regs.map((r) => wantedMaintenance(all, ident(r))),
    ["deploy", "deploy"],
  );
  const one = withMaintenance(makeBinding("web"), { reason: "x", containers: ["web-2"] });
  assert.deepEqual(
    regs.map((r) => wantedMaintenance(one, ident(r))),
    [undefined, "x"],
  );
  const byId = withMaintenance(makeBinding("web"), { reason: "x", containers: [A.slice(0, 12)] });
  assert.deepEqual(
    regs.map((r) => wantedMaintenance(byId, ident(r))),
    ["x", undefined],
  );
  // A short hex string is a name, never an ID prefix.
  const short = withMaintenance(makeBinding("web"), { reason: "x", containers: ["aaaa"] });
  assert.deepEqual(
    regs.map((r) => wantedMaintenance(short, ident(r))),
    [undefined, undefined],
  );
});

test("KV entries: per container name and _all, for this node only; malformed keys ignored", () => {
  const kv = [
    { key: maintenanceKvKey("n1", "default/web", "web-2"), value: "one" },
    { key: maintenanceKvKey("n2", "default/web", "_all"), value: "other node" },
    { key: "dockbind/maintenance/n1/default/web", value: "malformed" },
  ];
  const entries = maintenanceEntries("n1", kv);
  const b = makeBinding("web");
  const regs = registrations(b);
  assert.deepEqual(
    regs.map((r) => wantedMaintenance(b, ident(r), entries)),
    [undefined, "one"],
  );
  const all = maintenanceEntries("n1", [...kv, { key: maintenanceKvKey("n1", "default/web", "_all"), value: "all" }]);
  assert.deepEqual(
    regs.map((r) => wantedMaintenance(b, ident(r), all)),
    ["all", "all"],
  );
});

test("actions: enable what is declared, disable only dockbind's own, keep anyone else's", () => {
  const b = withMaintenance(makeBinding("web"), { reason: "deploy", containers: ["web-1"] });
  const regs = registrations(b);
  const [r1, r2] = regs.map((r) => r.id) as [string, string];
  const wanted = (r: Registration): string | undefined => wantedMaintenance(b, ident(r));
  assert.deepEqual(maintenanceActions(regs, wanted, new Map()), { enable: [{ id: r1, reason: `${MAINTENANCE_MARK}deploy` }], disable: [] });
  // Converged: nothing to do.
  assert.deepEqual(maintenanceActions(regs, wanted, new Map([[r1, `${MAINTENANCE_MARK}deploy`]])), { enable: [], disable: [] });
  // Someone else's maintenance already keeps r1 out (not rewritten); r2's by-hand maintenance is kept.
  assert.deepEqual(
    maintenanceActions(
      regs,
      wanted,
      new Map([
        [r1, "by hand"],
        [r2, "Maintenance mode is enabled for this service, but no reason was provided. This is a default message."],
      ]),
    ),
    { enable: [], disable: [] },
  );
  // Ours, no longer declared: taken out; unless the declaration could not be read.
  assert.deepEqual(
    maintenanceActions(regs, () => undefined, new Map([[r2, `${MAINTENANCE_MARK}old`]])),
    { enable: [], disable: [r2] },
  );
  assert.deepEqual(
    maintenanceActions(regs, () => undefined, new Map([[r2, `${MAINTENANCE_MARK}old`]]), false),
    { enable: [], disable: [] },
  );
  // A changed reason of ours is refreshed.
  assert.deepEqual(maintenanceActions(regs, wanted, new Map([[r1, `${MAINTENANCE_MARK}old`]])).enable, [{ id: r1, reason: `${MAINTENANCE_MARK}deploy` }]);
});

test("decode: _service_maintenance:<id> and _node_maintenance become HealthInstance.maintenance", () => {
  const entry = (id: string, checks: object[]): object => ({ Node: { Node: "n", Address: "10.0.0.1" }, Service: { ID: id, Port: 80 }, Checks: checks });
  const [svc, node, plain, other] = decodeHealthEntries([
    entry("s1", [
      { CheckID: "service:s1", Status: "passing" },
      { CheckID: "_service_maintenance:s1", Status: "critical", Notes: "deploy\nnow" },
    ]),
    entry("s2", [{ CheckID: "_node_maintenance", Status: "critical", Notes: "kernel" }]),
    entry("s3", [{ CheckID: "service:s3", Status: "passing" }]),
    // Another service's maintenance check on the same entry does not count.
    entry("s4", [{ CheckID: "_service_maintenance:s1", Status: "critical" }]),
  ]);
  assert.ok(svc !== undefined);
  assert.deepEqual(svc.maintenance, { scope: "service", reason: "deploy\nnow" });
  assert.equal(svc.status, "critical");
  assert.deepEqual(node?.maintenance, { scope: "node", reason: "kernel" });
  assert.equal(plain?.maintenance, undefined);
  assert.equal(other?.maintenance, undefined);
  assert.deepEqual(
    decodeAgentMaintenance({ "_service_maintenance:s1": { Notes: "x" }, "service:s1": { Notes: "" }, "_service_maintenance:": {} }),
    new Map([["s1", "x"]]),
  );
});

test("an instance in maintenance is never rendered (even with onlyPassing: false) nor counted passing", () => {
  const lb = { kind: "nginx", listen: { address: "127.0.0.1", port: 8080 }, onlyPassing: false, method: "round_robin", output: "web.conf" } as const;
  const m = { scope: "service", reason: "x" } as const;
  // A maintenance instance whose status reads passing (as a decoder bug or a future Consul could give) still stays out.
  const instances = [
    makeInstance("a", "passing"),
    makeInstance("b", "passing", { port: 81, maintenance: m }),
    makeInstance("c", "warning", { port: 82, maintenance: m }),
  ];
  const r = renderNginx({ bindingKey: "default/web", serviceName: "web", lb, instances });
  assert.deepEqual(
    r.servers.map((s) => s.port),
    [80],
  );
  assert.equal(passingCount(instances), 1);
});

test("hostile reasons are rejected with the field path", () => {
  const doc = (maintenance: unknown): unknown => ({
    apiVersion: "dockbind.io/v1alpha1",
    kind: "ServiceBinding",
    metadata: { name: "web" },
    spec: { service: { name: "web" }, backends: { selector: { matchLabels: { app: "web" } }, port: 80 }, maintenance },
  });
  for (const reason of ["a\nb", "a; b", "x}", 'say "hi"', " leading", "", "$var", "a".repeat(257)]) {
    const v = validateBinding(doc({ reason }));
    assert.equal(v.ok, false, JSON.stringify(reason));
    assert.deepEqual(
      v.errors.map((e) => e.field),
      ["spec.maintenance.reason"],
    );
    assert.notEqual(maintenanceReasonProblem(reason), undefined);
  }
  const bad = validateBinding(doc({ reason: "ok", containers: ["web;rm"] }));
  assert.equal(bad.ok, false);
  assert.equal(bad.errors[0]?.field, "spec.maintenance.containers[0]");
  const missing = validateBinding(doc({}));
  assert.equal(missing.ok, false);
  assert.equal(missing.errors[0]?.field, "spec.maintenance.reason");
  const good = validateBinding(doc({ reason: "release v2.1 (ticket #42): drain, then swap", containers: ["web-1"] }));
  assert.equal(good.ok, true);
});

/** ConsulMaintenance in memory, counting writes. */
class FakeMaintenance implements ConsulMaintenance {
  readonly checks = new Map<string, string>();
  readonly kv = new Map<string, string>();
  kvFails = false;
  writes: string[] = [];
  reads = 0;
  agentMaintenance(): Promise<ReadonlyMap<string, string>> {
    this.reads++;
    return Promise.resolve(new Map(this.checks));
  }
  setMaintenance(id: string, enable: boolean, reason?: string): Promise<void> {
    this.writes.push(`${enable ? "enable" : "disable"} ${id}`);
    if (enable) this.checks.set(id, reason ?? "");
    else this.checks.delete(id);
    return Promise.resolve();
  }
  kvList(prefix: string): Promise<readonly { key: string; value: string }[]> {
    if (this.kvFails) return Promise.reject(new Error("403 Permission denied"));
    return Promise.resolve([...this.kv].filter(([k]) => k.startsWith(prefix)).map(([key, value]) => ({ key, value })));
  }
  /** KV index: bumped by every KV write; a blocking kvListWatch waits for it to move. */
  kvIndex = 1;
  watchCalls = 0;
  private readonly kvChanged = new EventEmitter();
  async kvListWatch(
    prefix: string,
    opts: { readonly index?: string; readonly waitMs?: number; readonly signal?: AbortSignal },
  ): Promise<{ readonly entries: readonly { key: string; value: string }[]; readonly index: string }> {
    this.watchCalls++;
    if (opts.index !== undefined && Number(opts.index) === this.kvIndex) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          this.kvChanged.off("change", done);
          opts.signal?.removeEventListener("abort", done);
          resolve();
        };
        this.kvChanged.on("change", done);
        opts.signal?.addEventListener("abort", done, { once: true });
      });
    }
    if (opts.signal?.aborted === true) throw new Error("aborted");
    return { entries: await this.kvList(prefix), index: String(this.kvIndex) };
  }
  kvPut(key: string, value: string): Promise<void> {
    this.kv.set(key, value);
    this.kvIndex++;
    this.kvChanged.emit("change");
    return Promise.resolve();
  }
  kvDelete(key: string): Promise<void> {
    this.kv.delete(key);
    this.kvIndex++;
    this.kvChanged.emit("change");
    return Promise.resolve();
  }
}

test("MaintenanceSync.watch: a registration nothing declares waits for no read; a KV declaration seen by the watch is decided on a read", async () => {
  const api = new FakeMaintenance();
  let declared = 0;
  // A long max age: only the watch's answers make the cached read go stale.
  const sync = new MaintenanceSync(api, "n1", new FakeContainers(containers), silentLogger(), 600_000, () => declared++);
  const b = makeBinding("web");
  const regs = registrations(b);
  const r2 = regs[1]?.id;
  // Without a watch a decision reads (once, then cached).
  await sync.entering(b, regs);
  await sync.entering(b, regs);
  assert.equal(api.reads, 1);
  const stop = new AbortController();
  const watching = sync.watch(stop.signal);
  const settled = async (calls: number): Promise<void> => {
    while (api.watchCalls < calls) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  };
  await settled(2); // the first answer arrived; the second call blocks
  assert.deepEqual([...(await sync.entering(b, regs))], []);
  assert.equal(api.reads, 1, "nothing declared: no read");
  assert.equal(declared, 0, "the first answer is no change");
  await api.kvPut(maintenanceKvKey("n1", "default/web", "web-2"), "swap");
  await settled(3);
  assert.equal(declared, 1);
  assert.deepEqual([...(await sync.entering(b, regs))], [r2], "decided on a fresh read, not the cached one");
  assert.equal(api.reads, 2, "declared: decided on a read");
  await api.kvDelete(maintenanceKvKey("n1", "default/web", "web-2"));
  await settled(4);
  assert.equal(declared, 2);
  assert.deepEqual([...(await sync.entering(b, regs))], []);
  assert.equal(api.reads, 2);
  stop.abort();
  await watching;
  // The watch has stopped: decisions use the (cached) read again.
  await sync.entering(b, regs);
  assert.equal(api.reads, 3);
});

test("MaintenanceSync: converged costs no write and shares reads; KV entries apply; unreadable KV takes nothing out", async () => {
  const api = new FakeMaintenance();
  const sync = new MaintenanceSync(api, "n1", new FakeContainers(containers), silentLogger(), 60_000);
  const b = makeBinding("web");
  const regs = registrations(b);
  const [r1, r2] = regs.map((r) => r.id) as [string, string];
  await sync.converge(b, regs);
  assert.deepEqual(api.writes, []);
  await api.kvPut(maintenanceKvKey("n1", "default/web", "web-2"), "swap");
  api.checks.set(r1, "by hand");
  sync.invalidate();
  await sync.converge(b, regs);
  assert.deepEqual(api.writes, [`enable ${r2}`]);
  assert.equal(api.checks.get(r2), `${MAINTENANCE_MARK}swap`);
  const reads = api.reads;
  await sync.converge(b, regs);
  await sync.converge(b, regs);
  assert.equal(api.reads, reads, "converged: the cached view answers");
  assert.equal(api.writes.length, 1);
  // KV unreadable: our maintenance stays, and so does the hand-set one.
  api.kv.clear();
  api.kvFails = true;
  sync.invalidate();
  await sync.converge(b, regs);
  assert.equal(api.writes.length, 1);
  // KV readable again without the entry: ours goes, the hand-set one stays.
  api.kvFails = false;
  sync.invalidate();
  await sync.converge(b, regs);
  assert.deepEqual(api.writes.slice(1), [`disable ${r2}`]);
  assert.equal(api.checks.get(r1), "by hand");
});

test("controller plan: lists the maintenance calls the registrar would make", () => {
  const b = withMaintenance(makeBinding("web"), { reason: "deploy", containers: ["web-1"] });
  const regs = registrations(b);
  const [r1, r2] = regs.map((r) => r.id) as [string, string];
  const owner = { node: "n1", engine: "e1", instance: "i1", adopt: [] };
  const endpoint = { node: "n1", owner, hostIP: "127.0.0.1", containers };
  const base = { endpoints: [endpoint], bindings: [b], agentServices: [], rendered: [], onDisk: new Map(), ownedFiles: new Map() };
  const p = computePlan({ ...base, maintenance: { current: new Map([[r2, `${MAINTENANCE_MARK}old`]]), kv: [] } });
  assert.deepEqual(
    p.maintenance.map((m) => [m.action, m.serviceId, m.container]),
    [
      ["enable", r1, "web-1"],
      ["disable", r2, "web-2"],
    ],
  );
  assert.equal(p.changes, true);
  assert.match(formatPlanText(p, { node: "n1", bindingsDir: "/b", docker: "d", consul: "c", outputDir: "/o" }), /maintenance: 1 to enable, 1 to disable/);
  // KV unreadable: nothing is taken out; without the maintenance read, nothing is planned.
  assert.deepEqual(
    computePlan({ ...base, maintenance: { current: new Map([[r2, `${MAINTENANCE_MARK}old`]]) } }).maintenance.map((m) => m.action),
    ["enable"],
  );
  assert.deepEqual(computePlan(base).maintenance, []);
});

test("status page and controller status show maintenance with its reason escaped", () => {
  const at = "2026-01-01T00:00:00.000Z";
  const evil = `<script>x</script>`;
  const doc: StatusDocument = {
    apiVersion: "dockbind.io/status/v1",
    generatedAt: at,
    startedAt: at,
    running: true,
    mode: "docker-only",
    node: "n1",
    sources: { bindings: { synced: true, count: 1 }, docker: { synced: true, containers: 1, endpoints: [] } },
    instance: "i-1",
    nodeIdentityConflicts: [],
    loadBalancer: {},
    bindings: [
      {
        key: "default/web",
        service: "web",
        ready: { status: "True", reason: "Ready", message: "" },
        conditions: [],
        counts: { desired: 1, registered: 1, passing: 0, maintenance: 1 },
        backends: [
          {
            serviceId: "s1",
            container: "aaaaaaaaaaaa",
            containerName: "web-1",
            address: "127.0.0.1",
            port: 80,
            health: "maintenance",
            local: true,
            maintenance: { scope: "service", reason: evil },
          },
        ],
      },
    ],
    problems: [],
    recentErrors: [],
  };
  const page = renderStatusPage({ status: doc });
  assert.match(page, /data-backend-health="maintenance"/);
  assert.match(page, /data-count="maintenance">1</);
  assert.match(page, /service maintenance: &lt;script&gt;x&lt;\/script&gt;/);
  assert.doesNotMatch(page, /<script>x/);
  assert.match(formatStatusText(doc), /web-1 +127\.0\.0\.1:80 +maintenance \(service maintenance: <script>x<\/script>\)/);
});

test("a new instance entering declared maintenance is registered critical and not probed, whatever initialStatus and probeBeforeRegister say", async () => {
  const api = new FakeMaintenance();
  const consul = new FakeConsul();
  const sent = consul.sent;
  const probed: string[] = [];
  const base = makeBinding("web");
  const hc = { ...base.spec.healthCheck, initialStatus: "passing" as const, probeBeforeRegister: true };
  const b = withMaintenance({ ...base, spec: { ...base.spec, healthCheck: hc } }, { reason: "deploy", containers: ["web-2"] });
  const registrar = new RegistrarReconciler({
    bindings: new FakeBindings([b]),
    containers: new FakeContainers(containers),
    consul,
    status: new BindingStatusStore(),
    logger: silentLogger(),
    node: "n1",
    identity: () => ({ node: "n1", engine: "ENGINE", instance: "i-1", adopt: [] }),
    hostIP: "127.0.0.1",
    agentServicesMaxAgeMs: 0,
    maintenance: api,
    probe: (check) => {
      probed.push(check.http ?? check.tcp ?? "");
      return Promise.resolve(true);
    },
  });
  await registrar.reconcile({ kind: "binding", binding: "default/web" });
  const statusOf = (container: string): string | undefined => sent.find((r) => r.meta[OWNER_META.container] === container)?.check?.status;
  assert.equal(statusOf(A), "passing", "web-1: probed, passing");
  assert.equal(statusOf(B), "critical", "web-2: held critical until its maintenance check exists");
  assert.equal(probed.length, 1, "only web-1 is probed");
  const held = sent.find((r) => r.meta[OWNER_META.container] === B);
  assert.deepEqual(api.writes, [`enable ${held?.id ?? "?"}`]);
  // Converged: the hash is that of the configured check, so nothing is written again.
  const writes = sent.length;
  await registrar.reconcile({ kind: "binding", binding: "default/web" });
  assert.equal(sent.length, writes);
  assert.equal(api.writes.length, 1);
});

test("onlyAddsPassing: more passing instances and every passing one unchanged", () => {
  const a = makeInstance("a", "passing", { address: "192.0.2.1" });
  const b = makeInstance("b", "passing", { address: "192.0.2.2" });
  assert.equal(onlyAddsPassing([a], [a, b]), true, "one more passing");
  assert.equal(onlyAddsPassing([a, { ...b, status: "critical" }], [a, b]), true, "critical -> passing");
  assert.equal(onlyAddsPassing([a], [a, { ...b, status: "critical" }]), false, "a new instance that does not pass");
  assert.equal(onlyAddsPassing([a], [b]), false, "one in, one out");
  assert.equal(onlyAddsPassing([a], [{ ...a, port: 1 }, b]), false, "a passing instance changed its port");
  assert.equal(onlyAddsPassing([a], [a, { ...b, maintenance: { scope: "service", reason: "deploy" } }]), false, "in maintenance does not count");
  assert.equal(onlyAddsPassing([a, b], [a]), false);
});
