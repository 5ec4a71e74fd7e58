/**
 * Issue #6 fault suite, part 3: `kill -9` of the controller at random points
 * while containers churn. After every restart the controller must converge
 * with zero duplicate and zero leaked registrations, checked against Consul
 * and Docker: one instance per running matching container, every instance's
 * dockbind_container running, ports right, and the LB file listing exactly
 * those backends.
 *
 * Knobs: FAULT_KILLS (default 15 in `make test`, bounded by controller start-up time, ~2-4 s per kill on 2 cores; `make soak` runs 200),
 * FAULT_KILL_MAX_MS (latest kill point, default 1500 ms).
 */
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { controllerArgs, controllerCommand } from "../support/controller.js";
import { TEST_LABEL } from "../support/docker.js";
import { apiRemoveContainer, apiRunContainer, apiRunningPorts } from "../support/dockerProxy.js";
import { upstreamServers } from "../support/fsWatch.js";
import { ensureBackendImage } from "../support/image.js";
import { ensureBedRoot, startManaged, type ManagedProcess } from "../support/procs.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const KILLS = Number(process.env.FAULT_KILLS ?? "15");
const KILL_MAX_MS = Number(process.env.FAULT_KILL_MAX_MS ?? "1500");
const SERVICE = "fault-kill";
const POOL = 5;
let world: World;
let port: number;
let image: string;
let seq = 0;

function runningMatching(): Promise<Map<string, number>> {
  return apiRunningPorts(`app=${SERVICE}`);
}

interface Instance {
  readonly id: string;
  readonly container: string;
  readonly port: number;
}

async function ownedInstances(): Promise<Instance[]> {
  const r = await fetch(`${world.consul.url}/v1/agent/services`);
  const all = (await r.json()) as Record<string, { ID: string; Port: number; Meta?: Record<string, string> | null }>;
  return Object.values(all)
    .filter((s) => s.Meta?.dockbind_node === world.node)
    .map((s) => ({ id: s.ID, container: s.Meta?.dockbind_container ?? "", port: s.Port }));
}

/** Undefined when converged; otherwise what is wrong. */
async function divergence(): Promise<string | undefined> {
  const running = await runningMatching();
  const inst = await ownedInstances();
  const byContainer = new Map<string, Instance[]>();
  for (const i of inst) byContainer.set(i.container, [...(byContainer.get(i.container) ?? []), i]);
  const dup = [...byContainer].filter(([, l]) => l.length > 1).map(([c]) => c.slice(0, 12));
  if (dup.length > 0) return `duplicate registrations for ${dup.join(",")}`;
  const leaked = inst.filter((i) => !running.has(i.container)).map((i) => i.id);
  if (leaked.length > 0) return `leaked (container not running): ${leaked.join(",")}`;
  const missing = [...running.keys()].filter((c) => !byContainer.has(c)).map((c) => c.slice(0, 12));
  if (missing.length > 0) return `missing registrations for ${missing.join(",")}`;
  const wrongPort = inst.filter((i) => running.get(i.container) !== i.port).map((i) => i.id);
  if (wrongPort.length > 0) return `wrong port: ${wrongPort.join(",")}`;
  const want = [...running.values()]
    .map((p) => `127.0.0.1:${p}`)
    .sort()
    .join(",");
  const file = upstreamServers(world.lbFile("kill.conf")).join(",");
  if (want !== "" && file !== want) return `LB file servers [${file}] != [${want}]`;
  return undefined;
}

/** Background churn: start and remove matching containers (Docker API) until stopped. */
function churn(): { pause(): Promise<void>; resume(): void; stop(): Promise<void> } {
  const st = { paused: false, stopped: false, current: Promise.resolve() as Promise<unknown>, wake: undefined as (() => void) | undefined };
  const loop = (async () => {
    while (!st.stopped) {
      if (st.paused) {
        await new Promise<void>((r) => (st.wake = r));
        continue;
      }
      const ids = [...(await runningMatching()).keys()];
      const start = ids.length < 2 || (ids.length < POOL && Math.random() < 0.55);
      st.current = start
        ? apiRunContainer({ name: `fk-${process.pid}-${seq++}`, image, labels: { [TEST_LABEL]: "1", "dockbind-test.pid": String(process.pid), app: SERVICE } })
        : apiRemoveContainer(ids[Math.floor(Math.random() * ids.length)] ?? "");
      await st.current;
    }
  })();
  return {
    async pause() {
      st.paused = true;
      await st.current;
    },
    resume() {
      st.paused = false;
      st.wake?.();
    },
    async stop() {
      st.stopped = true;
      st.paused = false;
      st.wake?.();
      await loop;
    },
  };
}

function spawnController(i: number): ManagedProcess {
  const args = controllerArgs({
    bindingsDir: world.bindingsDir,
    consulAddr: world.proxy.addr,
    outputDir: world.nginx.confDir,
    nginxArgs: world.nginx.nginxArgs,
    node: world.node,
    extraArgs: ["--resync", "2s", "--wait-min", "20ms", "--wait-max", "200ms"],
  });
  return startManaged(process.execPath, [...controllerCommand(), ...args], join(ensureBedRoot(), `controller-faults-kill-${i % 2}.log`));
}

before(async () => {
  image = await ensureBackendImage();
  world = await startWorld("faults-kill");
  port = await freePort();
  world.writeFile("kill.yaml", bindingYaml({ name: "kill", service: SERVICE, app: SERVICE, listenPort: port, check: "none" }));
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("kill -9 at random points", () => {
  it(`converges after every restart with no duplicate and no leaked registration (${KILLS} kills)`, async () => {
    const load = churn();
    const convergeMs: number[] = [];
    let early = 0;
    let proc = spawnController(0);
    let spawnedAt = Date.now();
    let previousEarly = true; // the first controller is always verified
    try {
      for (let i = 0; i < KILLS; i++) {
        // Kill points alternate at random between "while starting" (Docker churning) and "after it converged,
        // while Docker churns again". Every kill is followed by a restart, and no two early kills are
        // consecutive, so convergence is verified after every restart that is given the time to converge.
        const killEarly: boolean = !previousEarly && Math.random() < 0.35;
        if (!killEarly) {
          await load.pause();
          await waitFor(async () => ((await divergence()) === undefined ? true : undefined), {
            timeoutMs: 30_000,
            intervalMs: 50,
            what: `convergence after restart ${i}`,
          }).catch(async (err: unknown) => {
            throw new Error(`${err instanceof Error ? err.message : String(err)}: ${(await divergence()) ?? "converged late"}`);
          });
          convergeMs.push(Date.now() - spawnedAt);
          load.resume();
        } else early++;
        previousEarly = killEarly;
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * KILL_MAX_MS)));
        proc.kill(); // SIGKILL, whatever it is doing (starting, registering, writing, reloading)
        await proc.exited;
        proc = spawnController(i + 1);
        spawnedAt = Date.now();
      }
      await load.pause();
      await waitFor(async () => ((await divergence()) === undefined ? true : undefined), { timeoutMs: 30_000, what: "convergence after the last restart" });
    } finally {
      proc.kill();
      await proc.exited;
      await load.stop();
    }
    const sorted = [...convergeMs].sort((a, b) => a - b);
    process.stdout.write(
      `# kill -9: ${KILLS} kills (${early} while starting); spawn -> converged p50 ${sorted[Math.floor(sorted.length / 2)] ?? 0} ms, max ${sorted.at(-1) ?? 0} ms\n`,
    );
    // Killed mid-write, the atomic writer can leave temp siblings; a restarted controller must clean them up.
    const leftovers = readdirSync(world.nginx.confDir).filter((n) => n.endsWith(".tmp"));
    const c = await world.startController(["--resync", "2s"]);
    await waitFor(async () => ((await divergence()) === undefined ? true : undefined), { timeoutMs: 20_000, what: "final convergence" });
    await waitFor(() => readdirSync(world.nginx.confDir).filter((n) => n.endsWith(".tmp")).length === 0 || undefined, {
      timeoutMs: 10_000,
      what: `temp files removed (${leftovers.join(",")})`,
    });
    assert.equal(c.proc.alive(), true);
  });
});
