/**
 * Issue #3 item 6: ONE controller serving TWO real Docker engines, each with
 * its own node identity — the shared dockerd over its unix socket (node
 * ep-a) and a second, private dockerd (test/support/extraDockerd.ts) reached
 * over tcp+TLS with a client certificate (node ep-b), as a controller that
 * does not run on the Docker hosts would reach them.
 *
 *  - both engines' containers are registered under their own node and served
 *    through one nginx upstream; status counts are summed over the engines;
 *  - engine B cut off (network) deregisters nothing of B's and does not stop
 *    A from converging; /readyz names the endpoint that is behind; when B is
 *    reachable again the container that died meanwhile is removed and new
 *    ones are added;
 *  - a controller restart makes zero Consul writes and zero nginx reloads.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { waitForReconciles } from "../support/controller.js";
import { controllerGet } from "../support/controllerHttp.js";
import { runBackend } from "../support/docker.js";
import { startExtraDockerd, type ExtraDockerd } from "../support/extraDockerd.js";
import { cleanupAll } from "../support/teardown.js";
import { startTlsDockerEndpoint, type TlsDockerEndpoint } from "../support/tlsDockerProxy.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const SERVICE = "ep-web";
const APP = "ep-web";
let world: World;
let engineB: ExtraDockerd;
let tlsB: TlsDockerEndpoint;
let port: number;

function endpointArgs(): string[] {
  return [
    "--docker-endpoint",
    "node=ep-a,host=unix:///var/run/docker.sock",
    "--docker-endpoint",
    `node=ep-b,host=${tlsB.host},cert-path=${tlsB.certPath}`,
    "--log-level",
    "debug",
  ];
}

/** Passing instances by owner node: `name@node` sorted (names are the backends' NAME). */
async function passingByNode(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const e of await world.health(SERVICE)) {
    if (e.status !== "passing") continue;
    const n = e.meta.dockbind_node ?? "";
    out.set(n, (out.get(n) ?? 0) + 1);
  }
  return out;
}

interface StatusDoc {
  readonly sources: {
    readonly docker: {
      readonly synced: boolean;
      readonly endpoints: readonly { readonly node: string; readonly synced: boolean; readonly containers: number }[];
    };
  };
  readonly bindings: readonly { readonly key: string; readonly counts: { readonly desired: number; readonly registered: number } }[];
}

async function statusDoc(): Promise<StatusDoc> {
  const c = world.controller;
  assert.ok(c);
  const r = await controllerGet(c, "/api/status");
  assert.equal(r.status, 200);
  return JSON.parse(r.body) as StatusDoc;
}

before(async () => {
  world = await startWorld("ep-ctl");
  engineB = await startExtraDockerd({ name: "epb" });
  tlsB = await startTlsDockerEndpoint(engineB.socket);
  port = await freePort();
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: SERVICE, app: APP, listenPort: port }));
  await world.startController(endpointArgs());
});

after(async () => {
  await world.controller?.stop();
  await tlsB.close();
  await engineB.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("one controller, two Docker engines", () => {
  it("registers each engine's containers under its own node and serves all of them", async () => {
    await runBackend({ name: `ep-a1-${process.pid}`, labels: { app: APP }, env: { NAME: "a1" } });
    await runBackend({ name: `ep-a2-${process.pid}`, labels: { app: APP }, env: { NAME: "a2" } });
    await runBackend({ name: "ep-b1", labels: { app: APP }, env: { NAME: "b1" }, dockerHost: engineB.host });
    await runBackend({ name: "ep-b2", labels: { app: APP }, env: { NAME: "b2" }, dockerHost: engineB.host });
    await waitFor(
      async () => {
        const n = await passingByNode();
        return n.get("ep-a") === 2 && n.get("ep-b") === 2 ? true : undefined;
      },
      { timeoutMs: 30_000, what: "2 passing instances per engine" },
    );
    const entries = await world.health(SERVICE);
    assert.equal(entries.length, 4, "no duplicates, nothing registered under the controller's own --node");
    for (const e of entries) {
      const node = e.meta.dockbind_node ?? "";
      assert.ok(e.id.startsWith(`dockbind:${node}:default:web:`), e.id);
      assert.equal(e.address, "127.0.0.1");
    }
    await world.servedExactly(port, ["a1", "a2", "b1", "b2"]);
    await world.nginx.settled();
    const bodies = await world.sample(port, 8);
    for (const name of ["a1", "a2", "b1", "b2"]) assert.equal(bodies.filter((b) => b === name).length, 2, `round-robin share of ${name}`);
    assert.ok(tlsB.stats.authorized > 0, "engine B was reached over TLS with the endpoint's client certificate");

    const doc = await waitFor(
      async () => {
        const d = await statusDoc();
        return JSON.stringify(d.bindings.find((b) => b.key === "default/web")?.counts) === JSON.stringify({ desired: 4, registered: 4, passing: 4 })
          ? d
          : undefined;
      },
      { timeoutMs: 10_000, what: "status counts {desired 4, registered 4, passing 4}: summed over both engines" },
    );
    assert.deepEqual(
      doc.sources.docker.endpoints.map((e) => `${e.node}:${String(e.synced)}`),
      ["ep-a:true", "ep-b:true"],
    );
    assert.equal(doc.sources.docker.endpoints.find((e) => e.node === "ep-b")?.containers, 2);
  });

  it("engine B cut off: B's registrations stay, A keeps converging, /readyz names ep-b; B back: the container that died meanwhile is removed", async () => {
    const c = world.controller;
    assert.ok(c);
    const bIds = (await world.health(SERVICE))
      .filter((e) => e.meta.dockbind_node === "ep-b")
      .map((e) => e.id)
      .sort();
    assert.equal(bIds.length, 2);
    const writesAtCut = world.proxy.writes().length;
    // A network cut between the controller and engine B (its TLS endpoint stops answering); B itself keeps running.
    await tlsB.pause();
    await waitFor(
      async () => {
        const r = await controllerGet(c, "/readyz");
        return r.status === 503 && r.body.includes("ep-b") ? r : undefined;
      },
      { timeoutMs: 30_000, what: "/readyz 503 naming the unsynced endpoint ep-b" },
    );
    // Behind the cut, b2 stops: the controller cannot see it.
    const b2 = await engineB.docker(["ps", "-q", "--filter", "name=^ep-b2$"], { check: true });
    await engineB.docker(["stop", b2.stdout.trim()], { check: true });

    // A is unaffected: a new container on A is registered and served while B is away.
    await runBackend({ name: `ep-a3-${process.pid}`, labels: { app: APP }, env: { NAME: "a3" } });
    await waitFor(async () => ((await passingByNode()).get("ep-a") === 3 ? true : undefined), { timeoutMs: 30_000, what: "a3 registered while B is cut off" });
    await world.servedExactly(port, ["a1", "a2", "a3", "b1"]);
    // B's registrations are all still there (b2's now fails its check): "unreachable" never reads as "no containers".
    const stillB = (await world.health(SERVICE))
      .filter((e) => e.meta.dockbind_node === "ep-b")
      .map((e) => e.id)
      .sort();
    assert.deepEqual(stillB, bIds);
    const deregisteredB = world.proxy
      .writes()
      .slice(writesAtCut)
      .filter((w) => decodeURIComponent(w.path).includes("/deregister/dockbind:ep-b:"));
    assert.deepEqual(deregisteredB, [], "nothing of ep-b deregistered in Consul while it was cut off");

    await tlsB.resume();
    await waitFor(async () => ((await world.health(SERVICE)).filter((e) => e.meta.dockbind_node === "ep-b").length === 1 ? true : undefined), {
      timeoutMs: 60_000,
      what: "b2 (died during the cut) deregistered once B is reachable again",
    });
    await runBackend({ name: "ep-b3", labels: { app: APP }, env: { NAME: "b3" }, dockerHost: engineB.host });
    await waitFor(async () => ((await passingByNode()).get("ep-b") === 2 ? true : undefined), { timeoutMs: 30_000, what: "b3 registered on ep-b" });
    await world.servedExactly(port, ["a1", "a2", "a3", "b1", "b3"]);
    const r = await waitFor(
      async () => {
        const x = await controllerGet(c, "/readyz");
        return x.status === 200 ? x : undefined;
      },
      { timeoutMs: 10_000, what: "/readyz 200 again" },
    );
    assert.match(r.body, /docker/);
  });

  it("restarting the controller makes zero Consul writes and zero nginx reloads across both engines", async () => {
    const c = world.controller;
    assert.ok(c);
    await world.servedExactly(port, ["a1", "a2", "a3", "b1", "b3"]);
    await world.nginx.settled();
    await c.stop();
    const writesBefore = world.proxy.writes().length;
    const reloadsBefore = await world.nginx.reloadCount();
    const fileBefore = world.lbFile("web.conf");
    const next = await world.startController(endpointArgs());
    await waitForReconciles(next, "default/web", 3);
    // Both endpoints' registrars finished passes: their keys are qualified by node.
    for (const node of ["ep-a", "ep-b"]) {
      await next.waitForLog((l) => l.message === "reconciled" && l.key === `binding/default/web@${node}`, `a registrar pass for ${node}`, 10_000);
    }
    assert.deepEqual(world.proxy.writes().slice(writesBefore), [], "Consul writes after restart");
    assert.equal(await world.nginx.reloadCount(), reloadsBefore, "nginx reloads after restart");
    assert.equal(world.lbFile("web.conf"), fileBefore);
    assert.equal((await world.health(SERVICE)).length, 5);
  });
});
