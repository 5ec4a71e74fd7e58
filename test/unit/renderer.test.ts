/**
 * The renderer reconciler's contract (src/reconcilers/renderer.ts), with the
 * real LbConfigWriter over a temp directory and a fake load balancer driver:
 * a health change re-renders and reloads, identical output writes and reloads
 * nothing, a deleted binding (or one that lost its loadBalancer) has its
 * generated file removed (only a file it owns), no health snapshot writes
 * nothing and retries later, a failure keeps the last good file and becomes
 * the binding's condition reason, and files found at start-up are adopted.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LbConfigWriter } from "../../src/actuators/lb/configWriter.js";
import { LbError } from "../../src/actuators/lb/errors.js";
import { serviceRef, type HealthInstance, type ServiceBinding } from "../../src/domain/types.js";
import { BindingStatusStore } from "../../src/reconcilers/bindingStatus.js";
import { RendererReconciler, type RenderResultKind } from "../../src/reconcilers/renderer.js";
import { OWNERSHIP_MARKER } from "../../src/render/renderFor.js";
import { ReconcileError } from "../../src/runtime/errors.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { FakeBindings, FakeDriver, FakeHealth, makeBinding, makeInstance } from "../support/fakes.js";

const KEY = "default/web";
const REQ = { kind: "render", binding: KEY } as const;

interface Setup {
  readonly dir: string;
  readonly haproxyDir: string;
  readonly bindings: FakeBindings;
  readonly health: FakeHealth;
  readonly driver: FakeDriver;
  readonly haproxyDriver: FakeDriver;
  readonly status: BindingStatusStore;
  readonly renders: [string, RenderResultKind, string | undefined][];
  readonly renderer: RendererReconciler;
}

const tempDirs: string[] = [];
after(() => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

function setup(bindings: readonly ServiceBinding[] = [makeBinding("web", { loadBalancer: {} })], over: { minReloadIntervalMs?: number } = {}): Setup {
  const dir = mkdtempSync(join(tmpdir(), "dockbind-renderer-"));
  const haproxyDir = mkdtempSync(join(tmpdir(), "dockbind-renderer-hx-"));
  tempDirs.push(dir, haproxyDir);
  const store = new FakeBindings(bindings);
  const health = new FakeHealth();
  const driver = new FakeDriver("nginx");
  const haproxyDriver = new FakeDriver("haproxy");
  const status = new BindingStatusStore();
  const renders: [string, RenderResultKind, string | undefined][] = [];
  const renderer = new RendererReconciler({
    bindings: store,
    health,
    writer: new LbConfigWriter(driver),
    status,
    logger: silentLogger(),
    outputDir: dir,
    templateDir: dir,
    notSyncedRetryMs: 123,
    ...over,
    haproxy: { writer: new LbConfigWriter(haproxyDriver), outputDir: haproxyDir },
    observer: { onRender: (key, result, reason) => renders.push([key, result, reason]) },
  });
  return { dir, haproxyDir, bindings: store, health, driver, haproxyDriver, status, renders, renderer };
}

function setHealth(s: Setup, instances: readonly HealthInstance[], b: ServiceBinding = makeBinding("web")): void {
  s.health.set(serviceRef(b), instances);
}

function condition(s: Setup, type: string): { status: string; reason: string } | undefined {
  const c = s.status.get(KEY).conditions.find((x) => x.type === type);
  return c === undefined ? undefined : { status: c.status, reason: c.reason };
}

describe("renderer reconciler", () => {
  it("renders the passing instances, reloads, and re-renders when Consul's health changes", async () => {
    const s = setup();
    const file = join(s.dir, "web.conf");
    setHealth(s, [makeInstance("a", "passing", { address: "192.0.2.1" }), makeInstance("b", "critical", { address: "192.0.2.2" })]);
    assert.deepEqual(await s.renderer.reconcile(REQ), {});
    const first = readFileSync(file, "utf8");
    assert.ok(first.startsWith(`${OWNERSHIP_MARKER}${KEY}\n`), first);
    assert.match(first, /server 192\.0\.2\.1:80;/);
    assert.doesNotMatch(first, /192\.0\.2\.2/, "onlyPassing leaves the critical instance out");
    assert.equal(s.driver.reloads, 1);
    assert.equal(s.status.get(KEY).backends.passing, 1);
    const last = s.status.get(KEY).lastRender;
    assert.deepEqual([last?.result, last?.servers], ["Reloaded", 1]);
    assert.deepEqual(condition(s, "LoadBalancerConfigured"), { status: "True", reason: "Rendered" });
    assert.deepEqual(condition(s, "Degraded"), { status: "False", reason: "AsExpected" });

    setHealth(s, [makeInstance("a", "passing", { address: "192.0.2.1" }), makeInstance("b", "passing", { address: "192.0.2.2" })]);
    await s.renderer.reconcile(REQ);
    assert.match(readFileSync(file, "utf8"), /server 192\.0\.2\.2:80;/);
    assert.equal(s.driver.reloads, 2);
    assert.equal(s.status.get(KEY).backends.passing, 2);
    assert.deepEqual(s.renders, [
      [KEY, "changed", undefined],
      [KEY, "changed", undefined],
    ]);
  });

  it("writes and reloads nothing when the rendered output is identical", async () => {
    const s = setup();
    setHealth(s, [makeInstance("a")]);
    await s.renderer.reconcile(REQ);
    const before = readFileSync(join(s.dir, "web.conf"), "utf8");
    // A health change that does not change the output (a critical instance with onlyPassing).
    setHealth(s, [makeInstance("a"), makeInstance("z", "critical", { address: "192.0.2.9" })]);
    assert.deepEqual(await s.renderer.reconcile(REQ), {});
    assert.equal(readFileSync(join(s.dir, "web.conf"), "utf8"), before);
    assert.equal(s.driver.reloads, 1, "no second reload");
    assert.deepEqual(
      s.renders.map((r) => r[1]),
      ["changed", "unchanged"],
    );
  });

  it("removes the generated file when the binding is deleted, and when it loses its loadBalancer", async () => {
    const s = setup([makeBinding("web", { loadBalancer: {} }), makeBinding("api", { loadBalancer: {} })]);
    setHealth(s, [makeInstance("a")]);
    setHealth(s, [makeInstance("b")], makeBinding("api"));
    await s.renderer.reconcile(REQ);
    await s.renderer.reconcile({ kind: "render", binding: "default/api" });
    assert.ok(existsSync(join(s.dir, "web.conf")) && existsSync(join(s.dir, "api.conf")));

    s.bindings.delete(KEY);
    assert.deepEqual(await s.renderer.reconcile(REQ), {});
    assert.equal(existsSync(join(s.dir, "web.conf")), false, "file of the deleted binding removed");
    assert.equal(s.driver.reloads, 3, "the removal reloads");

    s.bindings.put(makeBinding("api"));
    await s.renderer.reconcile({ kind: "render", binding: "default/api" });
    assert.equal(existsSync(join(s.dir, "api.conf")), false, "file of the binding without loadBalancer removed");
  });

  it("does not remove a file at its output path that it does not own", async () => {
    const s = setup();
    setHealth(s, [makeInstance("a")]);
    await s.renderer.reconcile(REQ);
    const file = join(s.dir, "web.conf");
    writeFileSync(file, "# hand-written\n");
    s.bindings.delete(KEY);
    await s.renderer.reconcile(REQ);
    assert.equal(readFileSync(file, "utf8"), "# hand-written\n");
  });

  it("moves the file when the binding's output changes", async () => {
    const s = setup();
    setHealth(s, [makeInstance("a")]);
    await s.renderer.reconcile(REQ);
    s.bindings.put(makeBinding("web", { loadBalancer: { output: "renamed.conf" } }));
    await s.renderer.reconcile(REQ);
    assert.equal(existsSync(join(s.dir, "web.conf")), false, "old file removed");
    assert.ok(readFileSync(join(s.dir, "renamed.conf"), "utf8").startsWith(`${OWNERSHIP_MARKER}${KEY}\n`));
  });

  it("records the passing count of a binding without a loadBalancer and writes nothing", async () => {
    const s = setup([makeBinding("web")]);
    setHealth(s, [makeInstance("a"), makeInstance("b", "warning"), makeInstance("c")]);
    assert.deepEqual(await s.renderer.reconcile(REQ), {});
    assert.equal(s.status.get(KEY).backends.passing, 2);
    assert.equal(s.driver.validations + s.driver.reloads, 0);
    assert.deepEqual(s.renders, [], "not a render");
  });

  it("writes nothing and asks to be retried while Consul has not answered for the service, or bindings are not synced", async () => {
    const s = setup();
    const file = join(s.dir, "web.conf");
    writeFileSync(file, `${OWNERSHIP_MARKER}${KEY}\nold\n`);
    assert.deepEqual(await s.renderer.reconcile(REQ), { requeueAfterMs: 123 });
    assert.equal(readFileSync(file, "utf8"), `${OWNERSHIP_MARKER}${KEY}\nold\n`, "existing file untouched");
    s.bindings.isSynced = false;
    setHealth(s, [makeInstance("a")]);
    assert.deepEqual(await s.renderer.reconcile(REQ), { requeueAfterMs: 123 });
    assert.equal(s.driver.validations, 0);
  });

  it("keeps the last good file on a validation failure and reports its reason as the binding's condition", async () => {
    const s = setup();
    const file = join(s.dir, "web.conf");
    setHealth(s, [makeInstance("a")]);
    await s.renderer.reconcile(REQ);
    const good = readFileSync(file, "utf8");
    s.driver.failValidation = new LbError("ValidationFailed", "nginx -t: emerg");
    setHealth(s, [makeInstance("a"), makeInstance("b", "passing", { address: "192.0.2.2" })]);
    await assert.rejects(s.renderer.reconcile(REQ), (err: unknown) => err instanceof LbError && err.reason === "ValidationFailed");
    assert.equal(readFileSync(file, "utf8"), good, "last good config kept");
    assert.deepEqual(condition(s, "Degraded"), { status: "True", reason: "ValidationFailed" });
    assert.deepEqual(condition(s, "LoadBalancerConfigured"), { status: "False", reason: "ValidationFailed" });
    assert.equal(s.status.get(KEY).lastRender?.result, "ValidationFailed");
    assert.deepEqual(s.renders.at(-1), [KEY, "error", "ValidationFailed"]);

    s.driver.failValidation = undefined;
    await s.renderer.reconcile(REQ);
    assert.deepEqual(condition(s, "Degraded"), { status: "False", reason: "AsExpected" }, "recovers on the next good render");
  });

  it("reports a missing custom template as TemplateNotFound", async () => {
    const s = setup([makeBinding("web", { loadBalancer: { template: "missing.tmpl" } })]);
    setHealth(s, [makeInstance("a")]);
    await assert.rejects(s.renderer.reconcile(REQ), (err: unknown) => err instanceof ReconcileError && err.reason === "TemplateNotFound");
    assert.deepEqual(condition(s, "LoadBalancerConfigured"), { status: "False", reason: "TemplateNotFound" });
    assert.equal(existsSync(join(s.dir, "web.conf")), false);
  });

  it("writes haproxy bindings with the haproxy writer into the haproxy output dir", async () => {
    const s = setup([makeBinding("web", { loadBalancer: { kind: "haproxy" } })]);
    setHealth(s, [makeInstance("a")]);
    await s.renderer.reconcile(REQ);
    assert.ok(existsSync(join(s.haproxyDir, "web.cfg")));
    assert.equal(existsSync(join(s.dir, "web.cfg")), false);
    assert.deepEqual([s.haproxyDriver.reloads, s.driver.reloads], [1, 0]);
    s.bindings.delete(KEY);
    await s.renderer.reconcile(REQ);
    assert.equal(existsSync(join(s.haproxyDir, "web.cfg")), false);
    assert.deepEqual([s.haproxyDriver.reloads, s.driver.reloads], [2, 0], "removed through the haproxy writer");
  });

  it("defers a paced change and asks to be re-run instead of recording it", async () => {
    const s = setup(undefined, { minReloadIntervalMs: 60_000 });
    setHealth(s, [makeInstance("a")]);
    await s.renderer.reconcile(REQ);
    setHealth(s, [makeInstance("a"), makeInstance("b", "passing", { address: "192.0.2.2" })]);
    const paced = await s.renderer.reconcile(REQ);
    assert.ok(paced.requeueAfterMs !== undefined && paced.requeueAfterMs > 0 && paced.requeueAfterMs <= 60_000, JSON.stringify(paced));
    assert.doesNotMatch(readFileSync(join(s.dir, "web.conf"), "utf8"), /192\.0\.2\.2/);
    assert.equal(s.status.get(KEY).backends.passing, 1, "status still shows the applied render");
    assert.equal(s.renders.length, 1);
  });

  it("adopts generated files found at start-up, so a file of a binding deleted meanwhile is removed", async () => {
    const s = setup([]);
    writeFileSync(join(s.dir, "gone.conf"), `${OWNERSHIP_MARKER}default/gone\nupstream x {}\n`);
    writeFileSync(join(s.haproxyDir, "gonehx.cfg"), `${OWNERSHIP_MARKER}default/gonehx\n`);
    writeFileSync(join(s.dir, "foreign.conf"), "# not ours\n");
    assert.deepEqual([...(await s.renderer.adoptExisting())].sort(), ["default/gone", "default/gonehx"]);
    await s.renderer.reconcile({ kind: "render", binding: "default/gone" });
    await s.renderer.reconcile({ kind: "render", binding: "default/gonehx" });
    assert.equal(existsSync(join(s.dir, "gone.conf")), false);
    assert.equal(existsSync(join(s.haproxyDir, "gonehx.cfg")), false);
    assert.ok(existsSync(join(s.dir, "foreign.conf")), "a file without the marker is never touched");
  });
});
