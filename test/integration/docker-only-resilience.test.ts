/**
 * Issue #2 acceptance, failure paths: invalid binding files, a Consul outage
 * and an nginx validation failure, against real dockerd, Consul and nginx.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runBackend } from "../support/docker.js";
import { metricSum } from "../support/metrics.js";
import { bindingCondition, controllerStatus, waitForCondition, waitForProblem } from "../support/status.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

let world: World;
let webPort: number;
const names = ["res-a", "res-b"];

before(async () => {
  world = await startWorld("resilience");
  webPort = await freePort();
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: "res-web", app: "res-web", listenPort: webPort }));
  await world.startController();
  for (const n of names) await runBackend({ name: n, labels: { app: "res-web" }, env: { NAME: n } });
  await world.servedExactly(webPort, names, 20_000);
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("bad input and failures", () => {
  it("reports an invalid binding file by file, document and field, and leaves other bindings alone", async () => {
    const controller = world.controller;
    assert.ok(controller);
    const writes = world.proxy.writes().length;
    world.writeFile("broken.yaml", bindingYaml({ name: "broken", service: "res-broken", app: "res-web" }).replace("port: 80", "port: 99999"));
    const problem = await waitForProblem(controller, (p) => p.source.endsWith("broken.yaml"), "broken.yaml reported in /api/status");
    assert.equal(problem.field, "spec.backends.port");
    assert.equal(problem.document, 1);
    assert.match(problem.message, /65535/);
    assert.ok((await metricSum(controller, "dockbind_binding_validation_errors")) >= 1, "counted in dockbind_binding_validation_errors");
    assert.equal((await world.health("res-broken")).length, 0);
    assert.equal((await world.health("res-web")).length, 2);
    await world.servedExactly(webPort, names, 20_000);
    assert.deepEqual(world.proxy.writes().slice(writes), [], "an invalid file causes no Consul write");
  });

  it("keeps the last good version of a binding whose file becomes invalid", async () => {
    const controller = world.controller;
    assert.ok(controller);
    const writes = world.proxy.writes().length;
    const good = bindingYaml({ name: "web", service: "res-web", app: "res-web", listenPort: webPort });
    world.writeFile("web.yaml", good.replace("type: http", "type: carrier-pigeon"));
    await waitForProblem(controller, (p) => p.source.endsWith("web.yaml") && p.field === "spec.healthCheck.type", "invalid edit reported in /api/status");
    world.writeFile("web.yaml", "this: is: not: yaml: [");
    await waitForProblem(controller, (p) => p.source.endsWith("web.yaml") && p.field === "(yaml)", "YAML error reported in /api/status");
    assert.equal((await world.health("res-web")).length, 2, "registrations survive invalid edits");
    await world.servedExactly(webPort, names, 20_000);
    assert.deepEqual(world.proxy.writes().slice(writes), [], "invalid edits cause no Consul write");
    world.writeFile("web.yaml", good);
    world.removeFile("broken.yaml");
  });

  it("leaves nginx config untouched while Consul is down and converges after it returns", async () => {
    const controller = world.controller;
    assert.ok(controller);
    const fileBefore = world.lbFile("web.conf");
    const reloadsBefore = await world.nginx.reloadCount();
    await world.consul.stop();
    const late = await runBackend({ name: "res-c", labels: { app: "res-web" }, env: { NAME: "res-c" } });
    // The controller notices the new container and fails to register it while Consul is down.
    await waitForCondition(
      controller,
      "default/web",
      "Registered",
      (c) => c.status === "False" && c.reason === "ConsulUnavailable",
      "default/web not Registered (ConsulUnavailable) during the outage",
    );
    // Synchronisation point, not an effect: the health watcher has seen the outage (its only effect is the unchanged file asserted below).
    await controller.waitForLog((l) => l.message === "consul health query failed; keeping last known instances", "health query failing during outage");
    assert.equal(world.lbFile("web.conf"), fileBefore, "config untouched during the outage");
    assert.equal(await world.nginx.reloadCount(), reloadsBefore, "no reload during the outage");
    await world.servedExactly(webPort, names, 20_000);
    // A dev agent comes back empty: everything must be registered again, including the new container.
    await world.consul.restart();
    await waitFor(async () => ((await world.health("res-web")).filter((e) => e.status === "passing").length === 3 ? true : undefined), {
      timeoutMs: 30_000,
      what: "3 passing instances after Consul returned",
    });
    await world.servedExactly(webPort, [...names, "res-c"], 20_000);
    assert.match(world.lbFile("web.conf") ?? "", new RegExp(`:${late.hostPort ?? -1};`));
  });

  it("keeps the last good config when nginx -t rejects a render, reports it, and recovers", async () => {
    const controller = world.controller;
    assert.ok(controller);
    const fileBefore = world.lbFile("web.conf");
    assert.ok(fileBefore !== undefined);
    const reloadsBefore = await world.nginx.reloadCount();
    // A custom template that renders an nginx directive that does not exist.
    writeFileSync(join(world.bindingsDir, "broken.tmpl"), "server { listen {{listenAddress}}:{{listenPort}}; no_such_directive on; }\n");
    const good = bindingYaml({ name: "web", service: "res-web", app: "res-web", listenPort: webPort });
    world.writeFile("web.yaml", bindingYaml({ name: "web", service: "res-web", app: "res-web", listenPort: webPort, template: "broken.tmpl" }));
    const degraded = await waitForCondition(
      controller,
      "default/web",
      "Degraded",
      (c) => c.status === "True" && c.reason === "ValidationFailed",
      "default/web Degraded (ValidationFailed)",
    );
    assert.match(degraded.message, /no_such_directive/);
    assert.equal(bindingCondition(await controllerStatus(controller), "default/web", "LoadBalancerConfigured")?.reason, "ValidationFailed");
    assert.equal(world.lbFile("web.conf"), fileBefore, "last good config kept byte for byte");
    assert.equal(await world.nginx.reloadCount(), reloadsBefore, "no reload of a rejected config");
    await world.servedExactly(webPort, [...names, "res-c"], 20_000);
    // Fixing the template converges again without operator action: a valid custom template goes live.
    writeFileSync(
      join(world.bindingsDir, "broken.tmpl"),
      "# custom-template-ok\n{{#hasServers}}upstream {{upstream}} {\n{{#servers}}  server {{address}}:{{port}};\n{{/servers}}}\n" +
        "server { listen {{listenAddress}}:{{listenPort}}; location / { proxy_pass http://{{upstream}}; } }\n{{/hasServers}}\n",
    );
    await waitFor(() => (world.lbFile("web.conf")?.includes("# custom-template-ok") === true ? true : undefined), {
      timeoutMs: 30_000,
      what: "custom template rendered",
    });
    await waitFor(async () => ((await world.nginx.reloadCount()) > reloadsBefore ? true : undefined), { timeoutMs: 10_000, what: "reload after recovery" });
    await waitForCondition(controller, "default/web", "Degraded", (c) => c.status === "False", "default/web no longer Degraded");
    await world.servedExactly(webPort, [...names, "res-c"], 20_000);
    world.writeFile("web.yaml", good);
    await waitFor(() => (world.lbFile("web.conf") === fileBefore ? true : undefined), { timeoutMs: 20_000, what: "default template restored" });
  });
});
