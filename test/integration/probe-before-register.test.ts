/**
 * Issue #6 P2: `healthCheck.probeBeforeRegister` on real dockerd, Consul and
 * nginx. Consul 1.8 runs a new check's first probe at a random moment within
 * its interval (60 s here), so without the probe a new backend would wait on
 * average 30 s to be served. With it, the controller probes the backend
 * itself (and re-probes while it is still starting) and registers it passing:
 * served within seconds. A backend that fails its check stays critical and is
 * never served. One that starts answering after its first probe is registered
 * critical, then passing by a re-probe: Consul keeps an existing check's status
 * when a service is registered again, so only a re-registration that replaces
 * the check serves it before Consul's own check runs.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { runBackend, type Backend } from "../support/docker.js";
import { run } from "../support/exec.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type HealthEntry, type World } from "../support/world.js";

const SERVICE = "probe-web";
let world: World;
let port: number;

before(async () => {
  world = await startWorld("probe");
  port = await freePort();
  const doc = bindingYaml({ name: "web", service: SERVICE, app: "probe-web", listenPort: port })
    .replace("interval: 1s", "interval: 60s")
    .replace("    timeout: 1s\n", "    timeout: 1s\n    probeBeforeRegister: true\n");
  assert.match(doc, /probeBeforeRegister: true/);
  world.writeFile("web.yaml", doc);
  await world.startController();
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

/**
 * Starts a backend whose health check fails (FAIL_HEALTH) and returns it with its Consul entry once
 * that is registered critical and the controller logged the failed probe.
 */
async function startFailingBackend(name: string): Promise<{ backend: Backend; entry: HealthEntry }> {
  const c = world.controller;
  assert.ok(c);
  const backend = await runBackend({ name: `probe-${name}-${process.pid}`, labels: { app: "probe-web" }, env: { NAME: name, FAIL_HEALTH: "1" } });
  const entry = await waitFor(async () => (await world.health(SERVICE)).find((e) => e.port === backend.hostPort), {
    timeoutMs: 10_000,
    what: `${name} backend registered`,
  });
  assert.equal(entry.status, "critical");
  // The log line may land in the file just after Consul shows the entry: wait for it.
  await c.waitForLog((l) => l.message === "registered" && l.serviceId === entry.id && l.probe === "failed", `${name}: its probe failed`, 5_000);
  return { backend, entry };
}

describe("healthCheck.probeBeforeRegister", () => {
  it("a healthy backend is registered passing by the controller's probe and served within seconds (check interval 60 s)", async () => {
    const c = world.controller;
    assert.ok(c);
    const t0 = performance.now();
    const b = await runBackend({ name: `probe-ok-${process.pid}`, labels: { app: "probe-web" }, env: { NAME: "ok" } });
    await waitFor(async () => ((await world.nginx.get(port).catch(() => undefined))?.body === "ok" ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: "served through nginx well before Consul's own first check could be relied on",
    });
    const servedMs = performance.now() - t0;
    const entry = (await world.health(SERVICE)).find((e) => e.port === b.hostPort);
    assert.equal(entry?.status, "passing");
    // Registered passing by the probe, at once or by a follow-up while the backend was starting.
    const line = await c.waitForLog(
      (l) => l.message === "registered" && l.serviceId === entry.id && String(l.probe).startsWith("passing"),
      "registered passing by the probe",
      5_000,
    );
    console.log(`probeBeforeRegister: docker run -> served through nginx in ${servedMs.toFixed(0)} ms (${String(line.probe)})`);
  });

  it("a backend failing its check is registered critical and never served", async () => {
    const { backend: bad } = await startFailingBackend("bad");
    // Re-probes (every 200 ms) keep failing; once the file is rendered from Consul's view it holds the passing instance only.
    await waitFor(
      async () => {
        const want = (await world.health(SERVICE))
          .filter((e) => e.status === "passing")
          .map((e) => e.port)
          .sort()
          .join(",");
        const got = [...(world.lbFile("web.conf") ?? "").matchAll(/server 127\.0\.0\.1:(\d+);/g)]
          .map((m) => Number(m[1]))
          .sort()
          .join(",");
        return want !== "" && got === want ? true : undefined;
      },
      { timeoutMs: 10_000, what: "generated upstream equals the passing instances" },
    );
    const bodies = await world.sample(port, 12);
    assert.ok(!bodies.includes("bad"), bodies.join(","));
    assert.equal((await world.health(SERVICE)).find((e) => e.port === bad.hostPort)?.status, "critical");
    assert.doesNotMatch(world.lbFile("web.conf") ?? "", new RegExp(`:${bad.hostPort ?? -1};`));
  });

  it("a backend that answers its check only after its first probe is re-probed, registered passing and served within seconds", async () => {
    const c = world.controller;
    assert.ok(c);
    const { backend: late, entry } = await startFailingBackend("late");
    // Its check starts answering; the 60 s check of Consul's own has not run yet when the re-probe passes.
    const t0 = performance.now();
    await run("docker", ["exec", late.id, "sh", "-c", "mkdir -p /www/health && printf ok > /www/health/index.html"], { check: true });
    await waitFor(async () => ((await world.sample(port, 6)).includes("late") ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: "the late backend served through nginx after a re-probe passed",
    });
    const servedMs = performance.now() - t0;
    assert.equal((await world.health(SERVICE)).find((e) => e.port === late.hostPort)?.status, "passing");
    await c.waitForLog(
      (l) => l.message === "registered" && l.serviceId === entry.id && l.probe === "passing (follow-up)",
      "registered passing by a re-probe",
      5_000,
    );
    console.log(`probeBeforeRegister: check answering -> served through nginx in ${servedMs.toFixed(0)} ms (re-probe)`);
  });
});
