/**
 * `controller plan` and the controller take one decision path, on real
 * dockerd (with a Swarm service), Consul, nginx and haproxy: once the
 * controller converged a world of an nginx binding, a haproxy binding, a
 * Swarm binding and a registrator-compat container, plan prints no change;
 * with the controller stopped, one container stopped and one binding file
 * changed, plan lists exactly those two changes, and the restarted
 * controller then makes exactly those writes.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { PlanResult } from "../../src/cli/planCompute.js";
import { runBackend, stopContainer, type Backend } from "../support/docker.js";
import { ensureSwarm, finishSwarm } from "../support/dockerd.js";
import { run, type RunResult } from "../support/exec.js";
import { startHaproxy, type HaproxyHandle } from "../support/haproxy.js";
import { ensureBackendImage } from "../support/image.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";
import { controllerCommand } from "../support/controller.js";

const NODE = "planworld";
const SWARM_SERVICE = `dockbind-planworld-${process.pid}`;
const COMPAT_ARGS = ["--registrator-compat", "--registrator-explicit", "--swarm-resync", "2s"];
let world: World;
let haproxy: HaproxyHandle;
let leftSwarm = false;
let compat: Backend;
let hapPort: number;

function hapYaml(method?: string): string {
  return bindingYaml({
    name: "hap",
    service: "pw-hap",
    app: "pw-hap",
    listenPort: hapPort,
    extraSpec: `    kind: haproxy\n${method !== undefined ? `    method: ${method}\n` : ""}`,
  }).replace("output: hap.conf", "output: hap.cfg");
}

function swarmYaml(): string {
  return `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata: {name: sw}
spec:
  service: {name: pw-swarm}
  backends:
    swarm: {selector: {matchLabels: {app: ${SWARM_SERVICE}}}}
    port: 80
  healthCheck: {type: tcp, interval: 1s, timeout: 1s}
`;
}

function hapFile(): string | undefined {
  try {
    return readFileSync(join(haproxy.confDir, "hap.cfg"), "utf8");
  } catch {
    return undefined;
  }
}

async function plan(): Promise<{ run: RunResult; json: PlanResult }> {
  const args = [
    ...controllerCommand(),
    "plan",
    "-f",
    world.bindingsDir,
    "--consul-addr",
    world.proxy.addr,
    "--node",
    NODE,
    "--lb-output-dir",
    world.nginx.confDir,
    ...haproxy.controllerArgs,
    ...COMPAT_ARGS,
  ];
  const r = await run(process.execPath, [...args, "--output", "json"], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  return { run: r, json: JSON.parse(r.stdout) as PlanResult };
}

async function passing(service: string, n: number): Promise<void> {
  await waitFor(async () => ((await world.health(service)).filter((e) => e.status === "passing").length === n ? true : undefined), {
    timeoutMs: 60_000,
    what: `${n} ${service} passing`,
  });
}

before(async () => {
  leftSwarm = (await run("docker", ["info", "--format", "{{.Swarm.LocalNodeState}}"], { check: true })).stdout.trim() !== "active";
  await ensureSwarm();
  world = await startWorld(NODE);
  haproxy = await startHaproxy();
  hapPort = await freePort();
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: "pw-web", app: "pw-web", listenPort: await freePort() }));
  world.writeFile("hap.yaml", hapYaml());
  world.writeFile("sw.yaml", swarmYaml());
  await world.startController([...haproxy.controllerArgs, ...COMPAT_ARGS]);
  await runBackend({ name: "pw-web-1", labels: { app: "pw-web" }, env: { NAME: "w1" } });
  await runBackend({ name: "pw-hap-1", labels: { app: "pw-hap" }, env: { NAME: "h1" } });
  compat = await runBackend({ name: "pw-compat-1", env: { NAME: "c1", SERVICE_NAME: "pw-legacy", SERVICE_CHECK_TCP: "true", SERVICE_CHECK_INTERVAL: "1s" } });
  await run(
    "docker",
    [
      "service",
      "create",
      "-d",
      "--name",
      SWARM_SERVICE,
      "--replicas",
      "1",
      "--label",
      `app=${SWARM_SERVICE}`,
      "--label",
      "dockbind-test=1",
      "--publish",
      "mode=host,target=80",
      await ensureBackendImage(),
    ],
    { check: true },
  );
  for (const s of ["pw-web", "pw-hap", "pw-legacy", "pw-swarm"]) await passing(s, 1);
  await waitFor(
    () => (/server \S+ 127\.0\.0\.1:\d+/.test(hapFile() ?? "") && /server 127\.0\.0\.1:\d+;/.test(world.lbFile("web.conf") ?? "") ? true : undefined),
    { timeoutMs: 30_000, what: "web.conf and hap.cfg rendered" },
  );
});

after(async () => {
  await run("docker", ["service", "rm", SWARM_SERVICE]);
  await world.controller?.stop();
  await world.proxy.close();
  await haproxy.stop();
  await cleanupAll();
  await finishSwarm(SWARM_SERVICE, leftSwarm);
});

describe("controller plan on a world of nginx, haproxy, Swarm and registrator-compat", () => {
  it("prints no change once the controller converged", async () => {
    const p = await waitFor(
      async () => {
        const r = await plan();
        return r.json.changes ? undefined : r.json;
      },
      { timeoutMs: 30_000, what: "a plan without changes" },
    );
    assert.deepEqual(p.registrations, []);
    assert.deepEqual(p.loadBalancer.map((f) => `${f.binding} ${f.action}`).sort(), ["default/hap unchanged", "default/web unchanged"]);
    assert.ok(
      p.loadBalancer.some((f) => f.path.startsWith(haproxy.confDir)),
      "the haproxy file is planned at --haproxy-output-dir",
    );
  });

  it("lists exactly one stopped container and one changed file, which the controller then applies", async () => {
    await world.controller?.stop();
    await stopContainer(compat.id);
    world.writeFile("hap.yaml", hapYaml("least_conn"));
    const p = (await plan()).json;
    assert.deepEqual(p.summary, { register: 0, update: 0, deregister: 1, lbCreate: 0, lbUpdate: 1, lbRemove: 0, lbErrors: 0 }, JSON.stringify(p, null, 2));
    const dereg = p.registrations[0];
    assert.equal(dereg?.serviceId, `${NODE}:pw-compat-1:80`);
    assert.equal(p.loadBalancer.find((f) => f.action === "update")?.binding, "default/hap");

    const writesBefore = world.proxy.writes().length;
    const webBefore = world.lbFile("web.conf");
    await world.startController([...haproxy.controllerArgs, ...COMPAT_ARGS]);
    await waitFor(async () => ((await plan()).json.changes ? undefined : true), { timeoutMs: 30_000, what: "plan without changes after the controller ran" });
    const writes = world.proxy
      .writes()
      .slice(writesBefore)
      .map((w) => `${w.method} ${w.path.split("?")[0] ?? ""}`);
    assert.deepEqual(writes, [`PUT /v1/agent/service/deregister/${encodeURIComponent(`${NODE}:pw-compat-1:80`)}`]);
    assert.match(hapFile() ?? "", /balance leastconn/);
    assert.equal(world.lbFile("web.conf"), webBefore, "the nginx file is untouched");
  });
});
