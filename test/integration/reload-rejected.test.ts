/**
 * Issue #6 (nginx reload failing): `nginx -s reload` exits 0 even when the
 * master then rejects the new configuration — here a binding whose listen
 * port is held by another process (`nginx -t` tolerates EADDRINUSE, so both
 * validations pass). On real nginx, dockbind confirms every reload by the
 * master's new worker processes; a rejected one is reported as
 * ReloadRejected, the binding's file is taken back (disk = what nginx runs),
 * other bindings keep converging, and it is retried until the port is free.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { after, before, describe, it } from "node:test";
import { controllerGet } from "../support/controllerHttp.js";
import { runBackend } from "../support/docker.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

let world: World;
let portA: number;
let portB: number;
let squatter: Server | undefined;

interface StatusDoc {
  readonly bindings: readonly {
    readonly key: string;
    readonly conditions: readonly { readonly type: string; readonly status: string; readonly reason: string; readonly message: string }[];
  }[];
}

async function lbCondition(key: string): Promise<{ status: string; reason: string; message: string } | undefined> {
  const c = world.controller;
  assert.ok(c);
  const doc = JSON.parse((await controllerGet(c, "/api/status")).body) as StatusDoc;
  return doc.bindings.find((b) => b.key === key)?.conditions.find((x) => x.type === "LoadBalancerConfigured");
}

before(async () => {
  world = await startWorld("rejected");
  [portA, portB] = [await freePort(), await freePort()];
  world.writeFile("a.yaml", bindingYaml({ name: "a", service: "rej-a", app: "rej-a", listenPort: portA }));
  await world.startController();
  await runBackend({ name: `rej-a1-${process.pid}`, labels: { app: "rej-a" }, env: { NAME: "a1" } });
  await runBackend({ name: `rej-b1-${process.pid}`, labels: { app: "rej-b" }, env: { NAME: "b1" } });
  await waitFor(async () => ((await world.nginx.get(portA).catch(() => undefined))?.body === "a1" ? true : undefined), { timeoutMs: 20_000, what: "a served" });
});

after(async () => {
  const s = squatter;
  if (s !== undefined) await new Promise((r) => s.close(r));
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("a reload nginx rejects", () => {
  it("is reported as ReloadRejected, its file is taken back, other bindings keep converging, and it recovers when the port is free", async () => {
    const c = world.controller;
    assert.ok(c);
    squatter = createServer();
    await new Promise<void>((r) => squatter?.listen(portB, "127.0.0.1", r));
    world.writeFile("b.yaml", bindingYaml({ name: "b", service: "rej-b", app: "rej-b", listenPort: portB }));

    const cond = await waitFor(
      async () => {
        const x = await lbCondition("default/b");
        return x?.reason === "ReloadRejected" ? x : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: "b: LoadBalancerConfigured False/ReloadRejected" },
    );
    assert.equal(cond.status, "False");
    assert.match(cond.message, /kept its previous configuration/);
    // Between attempts (each retry puts the file back for its confirmation window) the file is taken back:
    // disk matches what nginx runs. With one renderer worker no other binding's reload sees it meanwhile.
    await waitFor(() => (world.lbFile("b.conf") === undefined ? true : undefined), { timeoutMs: 15_000, intervalMs: 20, what: "b's rejected file taken back" });

    // Binding a is not held back by b: a new backend of a is rendered, reloaded and served.
    await runBackend({ name: `rej-a2-${process.pid}`, labels: { app: "rej-a" }, env: { NAME: "a2" } });
    await waitFor(
      async () => {
        const seen = new Set(await world.sample(portA, 6));
        return seen.has("a1") && seen.has("a2") ? true : undefined;
      },
      { timeoutMs: 30_000, what: "a serving a1 and a2 while b is rejected" },
    );
    assert.equal((await lbCondition("default/a"))?.status, "True");

    // The port is freed: b's retry (backoff) reloads, is confirmed, and b is served.
    await new Promise((r) => squatter?.close(r));
    squatter = undefined;
    await waitFor(async () => ((await world.nginx.get(portB).catch(() => undefined))?.body === "b1" ? true : undefined), {
      timeoutMs: 90_000,
      intervalMs: 100,
      what: "b served once its port is free",
    });
    await waitFor(async () => ((await lbCondition("default/b"))?.status === "True" ? true : undefined), {
      timeoutMs: 10_000,
      what: "b: LoadBalancerConfigured True",
    });
    assert.match(world.lbFile("b.conf") ?? "", new RegExp(`listen 127\\.0\\.0\\.1:${portB}`));
  });
});
