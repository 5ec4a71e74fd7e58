/**
 * A generated file nginx's configuration does not include is reported, not
 * taken for served (real dockerd, Consul and nginx): the controller writes to
 * an output directory the test bed's nginx.conf does not include.
 * - the binding is Degraded with reason NotIncluded, naming the file and the
 *   include to add; the valid file stays in place and nginx is not reloaded;
 * - once nginx.conf includes the directory, the controller's next retry
 *   (at most NOT_INCLUDED_RETRY_CAP_MS later) reloads and traffic is served,
 *   with no action from the operator beyond the include.
 */
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { NOT_INCLUDED_RETRY_CAP_MS } from "../../src/actuators/lb/errors.js";
import type { StatusDocument } from "../../src/observability/statusModel.js";
import { controllerGet } from "../support/controllerHttp.js";
import { runBackend } from "../support/docker.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const SERVICE = "notincl-web";
let world: World;
let port: number;
let extraDir: string;

async function degraded(): Promise<{ reason: string; message: string } | undefined> {
  const c = world.controller;
  assert.ok(c);
  const doc = JSON.parse((await controllerGet(c, "/api/status")).body) as StatusDocument;
  const b = doc.bindings.find((x) => x.service === SERVICE);
  const cond = b?.conditions.find((x) => x.type === "Degraded" && x.status === "True");
  return cond === undefined ? undefined : { reason: cond.reason, message: cond.message };
}

before(async () => {
  world = await startWorld("notincl");
  port = await freePort();
  extraDir = join(world.nginx.prefix, "extra.d");
  mkdirSync(extraDir);
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: SERVICE, app: SERVICE, listenPort: port }));
  await world.startController(["--lb-output-dir", extraDir]);
  await runBackend({ name: "notincl-a", labels: { app: SERVICE }, env: { NAME: "notincl-a" } });
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("a generated file nginx does not include", () => {
  it("is reported NotIncluded, stays in place, and nginx is not reloaded for it", async () => {
    const reloads = await world.nginx.reloadCount();
    const d = await waitFor(
      async () => {
        const x = await degraded();
        return x?.reason === "NotIncluded" ? x : undefined;
      },
      { timeoutMs: 30_000, what: "Degraded=True, reason NotIncluded" },
    );
    const file = join(extraDir, "web.conf");
    assert.match(d.message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} is valid and in place`));
    assert.match(d.message, /include .*extra\.d\/\*\.conf;/);
    assert.ok(existsSync(file), "the valid file stays");
    assert.equal(await world.nginx.reloadCount(), reloads, "no reload for a file nginx would not load");
  });

  it("is served once nginx.conf includes its directory, without touching the controller", async () => {
    const conf = readFileSync(world.nginx.mainConf, "utf8");
    const withInclude = conf.replace(/include [^;]*conf\.d\/\*\.conf;/, (m) => `${m}\n  include ${extraDir}/*.conf;`);
    assert.notEqual(withInclude, conf, "the test bed's http {} include was found");
    writeFileSync(world.nginx.mainConf, withInclude);
    const t0 = performance.now();
    await world.servedExactly(port, ["notincl-a"], NOT_INCLUDED_RETRY_CAP_MS + 20_000);
    process.stdout.write(
      `# include added -> served after ${((performance.now() - t0) / 1000).toFixed(1)} s (retry cap ${NOT_INCLUDED_RETRY_CAP_MS / 1000} s)\n`,
    );
    await waitFor(async () => ((await degraded()) === undefined ? true : undefined), { timeoutMs: 10_000, what: "no longer Degraded" });
  });
});
