/**
 * A generated file edited or deleted by hand is restored at once, not at the
 * next full resync (real dockerd, Consul and nginx; the controller runs with a
 * 10 min resync, longer than the test): the output-directory watch renders the
 * binding again and the writer, finding other bytes, writes, validates and
 * reloads its own.
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runBackend } from "../support/docker.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const SERVICE = "handedit-web";
let world: World;
let port: number;
let rendered: string;

before(async () => {
  world = await startWorld("handedit");
  port = await freePort();
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: SERVICE, app: SERVICE, listenPort: port }));
  await world.startController(["--resync", "10m"]);
  for (const n of ["handedit-a", "handedit-b"]) await runBackend({ name: n, labels: { app: SERVICE }, env: { NAME: n } });
  await world.servedExactly(port, ["handedit-a", "handedit-b"], 30_000);
  const text = world.lbFile("web.conf");
  assert.ok(text !== undefined);
  rendered = text;
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

async function restored(what: string): Promise<number> {
  const t0 = performance.now();
  await waitFor(() => (world.lbFile("web.conf") === rendered ? true : undefined), { timeoutMs: 10_000, what: `web.conf restored after ${what}` });
  return performance.now() - t0;
}

describe("a generated file changed by hand (resync 10 min)", () => {
  it("edited: its own bytes are written back and nginx reloaded", async () => {
    const reloads = await world.nginx.reloadCount();
    const edited = rendered.replace(/^\s*server [^\n]*\n/m, "");
    assert.notEqual(edited, rendered, "a server line was taken out");
    writeFileSync(join(world.nginx.confDir, "web.conf"), edited);
    const ms = await restored("a hand edit");
    process.stdout.write(`# hand-edited web.conf restored after ${ms.toFixed(0)} ms\n`);
    await waitFor(async () => ((await world.nginx.reloadCount()) > reloads ? true : undefined), { timeoutMs: 10_000, what: "nginx reloaded" });
    await world.servedExactly(port, ["handedit-a", "handedit-b"], 10_000);
  });

  it("deleted: written again and served", async () => {
    rmSync(join(world.nginx.confDir, "web.conf"));
    const ms = await restored("a hand delete");
    process.stdout.write(`# hand-deleted web.conf restored after ${ms.toFixed(0)} ms\n`);
    await world.servedExactly(port, ["handedit-a", "handedit-b"], 10_000);
  });
});
