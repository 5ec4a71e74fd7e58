/**
 * Two controllers with the SAME --node on one Consul agent and one dockerd
 * (the registrator #505 trap: cloned VMs, copied compose files). Binding `a`
 * is only in A's directory, binding `b` only in B's; one container each.
 * Over two resync periods neither deregisters or rewrites the other's
 * registration, both services stay registered and passing, and both report
 * the collision (metric, /api/status, status page banner, one warn line).
 * Then: kill -9 + restart of B owns its registration again with zero Consul
 * writes; a registration written by an older dockbind (no engine/instance
 * meta) is adopted with exactly one rewrite; a controller restarted with a
 * new instance ID does not touch its old registrations until --adopt, which
 * takes them over with one rewrite each; an orphan left by the engine B used
 * before is kept and reported until --adopt <that engine>, then removed.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { StatusDocument } from "../../src/observability/statusModel.js";
import { startController, type ControllerHandle } from "../support/controller.js";
import { controllerGet } from "../support/controllerHttp.js";
import { startConsulProxy, type ConsulProxy } from "../support/consulProxy.js";
import { runBackend } from "../support/docker.js";
import { ensureBedRoot } from "../support/procs.js";
import { cleanupAll } from "../support/teardown.js";
import { delay, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type HealthEntry, type World } from "../support/world.js";

const NODE = "same-host";
const RESYNC_S = 5;
const SVC_A = "nid-a";
const SVC_B = "nid-b";
let world: World;
/** Controller A is the world's (proxy world.proxy); B has its own bindings dir and counting proxy on the same agent. */
let proxyB: ConsulProxy;
let bindingsB: string;
let controllerB: ControllerHandle | undefined;
const resync = ["--resync", `${RESYNC_S}s`];

async function startB(extraArgs: readonly string[] = []): Promise<ControllerHandle> {
  controllerB = await startController({
    bindingsDir: bindingsB,
    consulAddr: proxyB.addr,
    outputDir: mkdtempSync(join(ensureBedRoot(), "nid-b-out-")),
    nginxArgs: world.nginx.nginxArgs,
    node: NODE,
    logName: `controller-nid-b-${process.pid}.log`,
    extraArgs: [...resync, "--haproxy-output-dir", mkdtempSync(join(ensureBedRoot(), "nid-b-hx-")), ...extraArgs],
  });
  return controllerB;
}

function b(): ControllerHandle {
  if (controllerB === undefined) throw new Error("controller B not started");
  return controllerB;
}

function a(): ControllerHandle {
  if (world.controller === undefined) throw new Error("controller A not started");
  return world.controller;
}

const deregistrations = (p: ConsulProxy, from = 0): string[] =>
  p
    .writes()
    .slice(from)
    .filter((w) => w.path.includes("/deregister/"))
    .map((w) => w.path);
const registrations = (p: ConsulProxy, from = 0): string[] =>
  p
    .writes()
    .slice(from)
    .filter((w) => w.path.includes("/service/register"))
    .map((w) => w.path.split("?")[0] ?? w.path);

async function statusOf(c: ControllerHandle): Promise<StatusDocument> {
  return JSON.parse((await controllerGet(c, "/api/status")).body) as StatusDocument;
}

async function conflictGauge(c: ControllerHandle): Promise<number | undefined> {
  const m = new RegExp(`^dockbind_node_identity_conflicts\\{node="${NODE}"\\} (\\d+)$`, "m").exec((await controllerGet(c, "/metrics")).body);
  return m?.[1] === undefined ? undefined : Number(m[1]);
}

async function one(service: string): Promise<HealthEntry | undefined> {
  const entries = await world.health(service);
  return entries.length === 1 ? entries[0] : undefined;
}

/** PUT to the real agent (not through a proxy): what an older dockbind or an operator would write. */
function agentPut(path: string, body: unknown): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${world.consul.url}${path}`,
      { method: "PUT", agent: false, headers: { "content-type": "application/json", connection: "close" } },
      (res) => {
        res.resume();
        res.on("end", () => {
          resolve(res.statusCode ?? 0);
        });
      },
    );
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

before(async () => {
  world = await startWorld(NODE);
  proxyB = await startConsulProxy(world.consul.httpAddr);
  bindingsB = mkdtempSync(join(ensureBedRoot(), "bindings-nid-b-"));
  world.writeFile("a.yaml", bindingYaml({ name: "a", service: SVC_A, app: "nid-a" }));
  writeFileSync(join(bindingsB, "b.yaml"), bindingYaml({ name: "b", service: SVC_B, app: "nid-b" }));
  await Promise.all([world.startController(resync), startB()]);
  await runBackend({ name: `nid-a-${process.pid}`, labels: { app: "nid-a" }, env: { NAME: "nid-a" } });
  await runBackend({ name: `nid-b-${process.pid}`, labels: { app: "nid-b" }, env: { NAME: "nid-b" } });
});

after(async () => {
  await Promise.all([world.controller?.stop(), controllerB?.stop()]);
  await Promise.all([world.proxy.close(), proxyB.close()]);
  await cleanupAll();
});

describe("two controllers with the same --node on one Consul agent and one dockerd", () => {
  it("each registers its own binding's container, with its engine and instance in the meta", async () => {
    const [ea, eb] = await waitFor(
      async () => {
        const [x, y] = [await one(SVC_A), await one(SVC_B)];
        return x?.status === "passing" && y?.status === "passing" ? ([x, y] as const) : undefined;
      },
      { timeoutMs: 30_000, what: "both services registered and passing" },
    );
    const [sa, sb] = [await statusOf(a()), await statusOf(b())];
    assert.equal(ea.meta.dockbind_node, NODE);
    assert.equal(eb.meta.dockbind_node, NODE);
    assert.equal(ea.meta.dockbind_instance, sa.instance);
    assert.equal(eb.meta.dockbind_instance, sb.instance);
    assert.notEqual(sa.instance, sb.instance, "two bindings directories, two installations");
    const engine = sa.sources.docker.endpoints[0]?.engine;
    assert.ok(engine !== undefined && engine !== "");
    assert.equal(sb.sources.docker.endpoints[0]?.engine, engine, "one dockerd: one engine ID");
    assert.equal(ea.meta.dockbind_engine, engine);
    assert.equal(eb.meta.dockbind_engine, engine);
  });

  it(`for 2 x the resync period (${2 * RESYNC_S} s): zero deregistrations, both services registered and passing throughout, the conflict reported by both`, async () => {
    const [deregA, deregB, regA, regB] = [deregistrations(world.proxy), deregistrations(proxyB), registrations(world.proxy), registrations(proxyB)];
    const start = Date.now();
    let polls = 0;
    while (Date.now() - start < 2 * RESYNC_S * 1000 + 1000) {
      const [x, y] = [await one(SVC_A), await one(SVC_B)];
      assert.equal(x?.status, "passing", `${SVC_A} after ${Date.now() - start} ms`);
      assert.equal(y?.status, "passing", `${SVC_B} after ${Date.now() - start} ms`);
      polls++;
      await delay(250);
    }
    assert.deepEqual(deregA, [], "A deregistered nothing, ever");
    assert.deepEqual(deregB, [], "B deregistered nothing, ever");
    assert.equal(regA.length, 1, "A registered its one container once");
    assert.equal(regB.length, 1, "B registered its one container once");
    process.stdout.write(
      `node-identity: ${2 * RESYNC_S + 1} s window, ${polls} polls: A ${regA.length} register / ${deregA.length} deregister, B ${regB.length} register / ${deregB.length} deregister\n`,
    );

    const [sa, sb] = [await statusOf(a()), await statusOf(b())];
    for (const [self, other, name] of [
      [sa, sb, "A"],
      [sb, sa, "B"],
    ] as const) {
      assert.equal(self.nodeIdentityConflicts.length, 1, `${name} sees one other controller`);
      const c = self.nodeIdentityConflicts[0];
      assert.ok(c !== undefined);
      assert.equal(c.node, NODE);
      assert.equal(c.instance, other.instance, `${name} names the other's instance`);
      assert.equal(c.engine, other.sources.docker.endpoints[0]?.engine, `${name} names the other's engine`);
      assert.equal(c.adoptWith, other.instance);
    }
    assert.equal(await conflictGauge(a()), 1);
    assert.equal(await conflictGauge(b()), 1);
    for (const [c, other] of [
      [a(), sb],
      [b(), sa],
    ] as const) {
      const page = (await controllerGet(c, "/")).body;
      assert.match(page, /data-section="node-identity-conflicts"/);
      assert.ok(page.includes(`data-conflict-instance="${other.instance}"`), "the banner names the other instance");
      assert.ok(page.includes("--node"), "the banner says what to do");
      const warns = c.logs().filter((l) => l.message === "node identity conflict");
      assert.equal(warns.length, 1, "one warn line per peer, not one per resync");
      assert.equal(warns[0]?.level, "warn");
    }
  });

  it("kill -9 and restart of B: it still owns its registration (same ID), zero Consul writes from either", async () => {
    const before = (await one(SVC_B))?.id;
    assert.ok(before !== undefined);
    const [writesA, writesB] = [world.proxy.writes().length, proxyB.writes().length];
    b().proc.kill();
    await b().proc.exited;
    const next = await startB();
    await waitFor(async () => ((await statusOf(next)).nodeIdentityConflicts.length === 1 ? true : undefined), {
      timeoutMs: 30_000,
      what: "restarted B has listed the agent (conflict seen again)",
    });
    const reads = proxyB.requests.length;
    await waitFor(() => (proxyB.requests.length > reads + 6 ? true : undefined), { timeoutMs: 30_000, what: "several passes of restarted B" });
    assert.equal((await one(SVC_B))?.id, before, "same ID, one registration");
    assert.equal((await one(SVC_A))?.status, "passing");
    assert.deepEqual(proxyB.writes().slice(writesB), [], "restarted B wrote nothing: its registration is its own and converged");
    assert.deepEqual(world.proxy.writes().slice(writesA), [], "A wrote nothing");
    process.stdout.write(
      `node-identity: restart of B: ${proxyB.writes().length - writesB} Consul writes from B, ${world.proxy.writes().length - writesA} from A\n`,
    );
  });

  it("a registration of an older dockbind (no engine/instance meta) is adopted with exactly one rewrite", async () => {
    // A is stopped first: a legacy registration under our node is claimed by the first upgraded controller that sees it.
    await a().stop();
    const cur = await one(SVC_B);
    assert.ok(cur !== undefined);
    // An older dockbind wrote no engine/instance meta, and its hash covered the meta without them: another value.
    const legacyMeta = {
      ...Object.fromEntries(Object.entries(cur.meta).filter(([k]) => k !== "dockbind_engine" && k !== "dockbind_instance")),
      dockbind_hash: "0123456789abcdef",
    };
    const code = await agentPut("/v1/agent/service/register", {
      ID: cur.id,
      Name: SVC_B,
      Address: cur.address,
      Port: cur.port,
      Tags: ["dockbind-test"],
      Meta: legacyMeta,
      Check: { HTTP: `http://${cur.address}:${cur.port}/health/`, Interval: "1s", Timeout: "1s" },
    });
    assert.equal(code, 200);
    const writes = proxyB.writes().length;
    const rewritten = await waitFor(
      async () => {
        const e = await one(SVC_B);
        return e?.meta.dockbind_instance !== undefined ? e : undefined;
      },
      { timeoutMs: 3 * RESYNC_S * 1000, what: "B rewrote the legacy registration with its identity" },
    );
    assert.equal(rewritten.id, cur.id);
    const reads = proxyB.requests.length;
    await waitFor(() => (proxyB.requests.length > reads + 6 ? true : undefined), { timeoutMs: 30_000, what: "more passes of B" });
    assert.deepEqual(registrations(proxyB, writes), [`/v1/agent/service/register`], "exactly one rewrite");
    assert.deepEqual(deregistrations(proxyB, writes), []);
    assert.equal((await one(SVC_A))?.status, "passing", "A's registration (a peer's, A stopped) untouched");
  });

  it("B restarted under a new instance ID leaves its old registration alone until --adopt, which takes it over with one rewrite", async () => {
    const old = (await statusOf(b())).instance;
    await b().stop();
    const writes = proxyB.writes().length;
    const moved = await startB(["--instance-id", "nid-b-moved"]);
    await waitFor(async () => ((await statusOf(moved)).nodeIdentityConflicts.length === 2 ? true : undefined), {
      timeoutMs: 30_000,
      what: "B sees its old instance and A as peers",
    });
    const reads = proxyB.requests.length;
    await waitFor(() => (proxyB.requests.length > reads + 6 ? true : undefined), { timeoutMs: 30_000, what: "passes of the moved B" });
    assert.deepEqual(proxyB.writes().slice(writes), [], "the old instance's registration is a peer's: neither rewritten nor removed");
    assert.equal((await one(SVC_B))?.meta.dockbind_instance, old);
    assert.equal(await conflictGauge(moved), 2);

    await moved.stop();
    const before = proxyB.writes().length;
    const adopting = await startB(["--instance-id", "nid-b-moved", "--adopt", old]);
    await waitFor(async () => ((await one(SVC_B))?.meta.dockbind_instance === "nid-b-moved" ? true : undefined), {
      timeoutMs: 3 * RESYNC_S * 1000,
      what: "B adopted its old registration",
    });
    const reads2 = proxyB.requests.length;
    await waitFor(() => (proxyB.requests.length > reads2 + 6 ? true : undefined), { timeoutMs: 30_000, what: "passes of the adopting B" });
    assert.deepEqual(registrations(proxyB, before), ["/v1/agent/service/register"], "one rewrite");
    assert.deepEqual(deregistrations(proxyB, before), []);
    assert.equal((await statusOf(adopting)).nodeIdentityConflicts.length, 1, "only A is left as a peer");
    assert.equal((await one(SVC_A))?.meta.dockbind_instance !== "nid-b-moved", true, "A's registration was not adopted");
  });

  it("B moved to a new Docker engine: the old engine's orphan is kept and reported until --adopt <old engine>, then removed", async () => {
    const OLD_ENGINE = "OLD0:ENGINE:0001";
    const orphanId = `dockbind:${NODE}:default:b:${"d".repeat(12)}:80`;
    const meta = {
      dockbind_node: NODE,
      dockbind_binding: "default/b",
      dockbind_container: "d".repeat(64),
      dockbind_engine: OLD_ENGINE,
      dockbind_instance: "nid-b-moved",
      dockbind_hash: "0123456789abcdef",
    };
    assert.equal(
      await agentPut("/v1/agent/service/register", { ID: orphanId, Name: SVC_B, Address: "127.0.0.1", Port: 9, Tags: ["dockbind-test"], Meta: meta }),
      200,
    );
    const st = await waitFor(
      async () => {
        const d = await statusOf(b());
        return d.nodeIdentityConflicts.some((c) => c.engine === OLD_ENGINE) ? d : undefined;
      },
      { timeoutMs: 3 * RESYNC_S * 1000, what: "B reports the old engine's registration" },
    );
    assert.equal(st.nodeIdentityConflicts.find((c) => c.engine === OLD_ENGINE)?.adoptWith, OLD_ENGINE, "same instance, other engine: adopt the engine");
    const writes = proxyB.writes().length;
    const reads = proxyB.requests.length;
    await waitFor(() => (proxyB.requests.length > reads + 6 ? true : undefined), { timeoutMs: 30_000, what: "passes of B" });
    assert.deepEqual(proxyB.writes().slice(writes), [], "the old engine's registration is not an orphan of ours until adopted");

    await b().stop();
    const before = proxyB.writes().length;
    await startB(["--instance-id", "nid-b-moved", "--adopt", OLD_ENGINE]);
    await waitFor(async () => ((await world.health(SVC_B)).some((e) => e.id === orphanId) ? undefined : true), {
      timeoutMs: 3 * RESYNC_S * 1000,
      what: "the adopted orphan removed",
    });
    assert.deepEqual(deregistrations(proxyB, before), [`/v1/agent/service/deregister/${encodeURIComponent(orphanId)}`]);
    assert.deepEqual(registrations(proxyB, before), [], "B's own registration was converged already");
    assert.equal((await one(SVC_B))?.meta.dockbind_instance, "nid-b-moved");
  });
});
