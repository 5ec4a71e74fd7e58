/**
 * Issue #6 fault suite, part 2: the REAL shared dockerd is stopped and started
 * again while the controller runs. Files run one at a time
 * (--test-concurrency=1), and after() restarts dockerd whatever happened.
 *
 * - containers without a restart policy die with the daemon: removed after reconnect;
 * - a `--restart always` container comes back (possibly on a new host port): re-registered with its new port;
 * - a container started after the daemon returned: added;
 * - while Docker is unreachable: zero Consul writes (nothing deregistered).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TEST_LABEL } from "../support/docker.js";
import { startDockerd, stopDockerd } from "../support/dockerd.js";
import { run } from "../support/exec.js";
import { ensureBackendImage } from "../support/image.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const SERVICE = "fault-dockerd";
let world: World;
let port: number;

async function dockerRun(name: string, extra: readonly string[] = []): Promise<string> {
  const image = await ensureBackendImage();
  const args = ["run", "-d", "--name", name, "--label", `${TEST_LABEL}=1`, "--label", `dockbind-test.pid=${process.pid}`, "--label", `app=${SERVICE}`];
  args.push("--env", `NAME=${name}`, "--publish", "127.0.0.1::80", ...extra, image);
  return (await run("docker", args, { check: true })).stdout.trim();
}

async function hostPort(id: string): Promise<number> {
  const out = (await run("docker", ["port", id, "80/tcp"], { check: true })).stdout;
  return Number(/127\.0\.0\.1:(\d+)/.exec(out)?.[1] ?? "0");
}

/** Owned registrations: container id (12) -> port. */
async function owned(): Promise<Map<string, number>> {
  const r = await fetch(`${world.consul.url}/v1/agent/services`);
  const all = (await r.json()) as Record<string, { Port: number; Meta?: Record<string, string> | null }>;
  const out = new Map<string, number>();
  for (const s of Object.values(all)) {
    if (s.Meta?.dockbind_node !== world.node) continue;
    const c = (s.Meta.dockbind_container ?? "").slice(0, 12);
    assert.ok(!out.has(c), `duplicate registration for container ${c}`);
    out.set(c, s.Port);
  }
  return out;
}

function fmt(m: Map<string, number>): string {
  return [...m]
    .map(([c, p]) => `${c}:${p}`)
    .sort()
    .join(",");
}

before(async () => {
  world = await startWorld("faults-dockerd");
  port = await freePort();
  world.writeFile("web.yaml", bindingYaml({ name: "web", service: SERVICE, app: SERVICE, listenPort: port, check: "none" }));
  await world.startController();
});

after(async () => {
  await startDockerd(); // whatever happened above, the shared daemon runs again
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("dockerd restart", () => {
  it("never deregisters while Docker is unreachable, then resyncs: dead containers removed, new ones added", async () => {
    const c = world.controller;
    assert.ok(c);
    const survivor = await dockerRun("fd-survivor", ["--restart", "always"]);
    const victim = await dockerRun("fd-victim");
    const want1 = new Map([
      [survivor.slice(0, 12), await hostPort(survivor)],
      [victim.slice(0, 12), await hostPort(victim)],
    ]);
    await waitFor(async () => (fmt(await owned()) === fmt(want1) ? true : undefined), { timeoutMs: 20_000, what: "2 registrations" });

    const mark = c.logs().length;
    await stopDockerd();
    await c.waitForLog(
      (l) => l.message === "docker unreachable; keeping last known containers" || l.message === "docker event stream ended; reconnecting",
      "docker loss noticed",
    );
    // Registrations as they stand once Docker is gone (containers that died with the daemon may already be gone).
    const writesAtLoss = world.proxy.writes().length;
    const atLoss = fmt(await owned());
    // Stay down for more than a resync period (2 s) and a few reconnect attempts.
    await waitFor(
      () =>
        c
          .logs()
          .slice(mark)
          .filter((l) => l.message === "docker unreachable; keeping last known containers").length >= 3 || undefined,
      {
        timeoutMs: 30_000,
        what: "3 failed reconnects",
      },
    );
    assert.equal(fmt(await owned()), atLoss, "no registration changed while Docker was unreachable");
    assert.deepEqual(world.proxy.writes().slice(writesAtLoss), [], "zero Consul writes while Docker was unreachable");

    await startDockerd();
    // Reconnect attempts back off (up to 60 s apart): allow for one full step after the daemon answers.
    await c.waitForLog((l) => l.message === "docker event stream reconnected", "reconnect", 90_000);
    const fresh = await dockerRun("fd-fresh");
    await waitFor(async () => ((await run("docker", ["inspect", "-f", "{{.State.Running}}", survivor])).stdout.trim() === "true" ? true : undefined), {
      timeoutMs: 30_000,
      what: "the restart-always container running again",
    });
    const want2 = new Map([
      [survivor.slice(0, 12), await hostPort(survivor)],
      [fresh.slice(0, 12), await hostPort(fresh)],
    ]);
    await waitFor(async () => (fmt(await owned()) === fmt(want2) ? true : undefined), { timeoutMs: 30_000, what: `registrations ${fmt(want2)}` });
    const servers = [...want2.values()].map((p) => `127.0.0.1:${p};`);
    await waitFor(() => servers.every((s) => world.lbFile("web.conf")?.includes(s) === true) || undefined, {
      timeoutMs: 20_000,
      what: "LB file with the survivor and the new container",
    });
    assert.ok(
      !(world.lbFile("web.conf") ?? "").includes(`127.0.0.1:${want1.get(victim.slice(0, 12)) ?? 0};`) ||
        want2.get(survivor.slice(0, 12)) === want1.get(victim.slice(0, 12)),
      "dead container's server removed",
    );
    assert.equal(c.proc.alive(), true);
  });
});
