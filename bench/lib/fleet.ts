/**
 * Fleet: one controller serving 20 simulated Docker engines (bench/lib/fakeDocker.ts,
 * 500 containers each: 10,000 in all) through 20 `--docker-endpoint`s, 500
 * ServiceBindings (one file each) and a real Consul agent. Of each engine's
 * containers, 50 are selected (25 bindings x 2), so 1,000 registrations spread
 * over the 20 nodes. Measured on the controller child process from /proc:
 *  - initial full sync (20 lists + inspects + 1,000 registrations): CPU s, wall s;
 *  - a converged periodic full resync of all 20 engines: CPU s per resync;
 *  - peak RSS (VmHWM) over the whole run;
 *  - `start` event on engine 0 -> registered on the agent (poll every 2 ms),
 *    while the other 19 engines churn `BENCH_FLEET_CHURN` events/s in total:
 *    start/die flips of random containers of theirs (one in ten is selected by
 *    a binding, so about one event in ten is a Consul write); with
 *    `BENCH_FLEET_CHURN_SELECTED=1` only selected ones flip (every event a write).
 * Bindings register without a health check and without a load balancer: this
 * is the Docker -> Consul path at fleet size.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startConsul, type ConsulHandle } from "../../test/support/consul.js";
import { startController, type ControllerHandle } from "../../test/support/controller.js";
import { run } from "../../test/support/exec.js";
import { httpGet } from "../../test/support/http.js";
import { ensureBedRoot } from "../../test/support/procs.js";
import { delay, waitFor } from "../../test/support/wait.js";
import { agentServiceCount, envNumber, quiet } from "./simulated.js";
import { startFakeDocker, type FakeContainer, type FakeDocker } from "./fakeDocker.js";
import { cpuSeconds, peakRssMiB, rssMiB } from "./procstat.js";
import { percentile } from "../stats.js";

const num = envNumber;
const ENGINES = num("BENCH_FLEET_ENGINES", 20);
const PER_ENGINE = num("BENCH_FLEET_CONTAINERS", 500);
const BINDINGS = num("BENCH_FLEET_BINDINGS", 500);
const CHURN_PER_S = num("BENCH_FLEET_CHURN", 50);
const SAMPLES = num("BENCH_FLEET_SAMPLES", 50);
const CHURN_SELECTED_ONLY = process.env.BENCH_FLEET_CHURN_SELECTED === "1";
const RESYNC_S = 10;
/** Selected containers per binding (spread over the engines). */
const PER_BINDING = 2;

export interface FleetResult {
  readonly engines: number;
  readonly containers: number;
  readonly bindings: number;
  readonly registrations: number;
  readonly initialCpuS: number;
  readonly initialWallS: number;
  readonly resyncCpuS: number;
  readonly peakRssMiB: number;
  readonly churnPerS: number;
  readonly churnAchievedPerS: number;
  /** Whether only selected containers flipped (every churn event a Consul write). */
  readonly churnSelectedOnly: boolean;
  /** start event -> registered on the agent, ms, sorted. */
  readonly latencyMs: readonly number[];
}

interface Engine {
  readonly node: string;
  readonly fake: FakeDocker;
  /** Selected containers of this engine with the binding each belongs to. */
  readonly selected: readonly { readonly id: string; readonly binding: number }[];
}

function bindingYaml(i: number): string {
  return `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata:
  name: fleet-${i}
spec:
  service:
    name: fleet-${i}
  backends:
    selector:
      matchLabels: {app: fleet-${i}}
    port: 80
    addressMode: internal
    network: bench-sim
  healthCheck:
    type: none
`;
}

/** Engine `e`'s containers: the first `selectedPerEngine` are selected by bindings e*k .. e*k+k-1, two each. */
function engineContainers(e: number, selectedPerEngine: number): Map<string, FakeContainer> {
  const m = new Map<string, FakeContainer>();
  for (let j = 0; j < PER_ENGINE; j++) {
    const id = randomBytes(32).toString("hex");
    const binding = e * (selectedPerEngine / PER_BINDING) + Math.floor(j / PER_BINDING);
    const app = j < selectedPerEngine ? `fleet-${binding}` : `other-${j % 97}`;
    m.set(id, {
      id,
      name: `e${e}_c${j}`,
      labels: {
        app,
        "com.docker.compose.project": `fleet-${e}`,
        "com.docker.compose.service": app,
        "com.docker.compose.container-number": String(j),
        tier: j % 3 === 0 ? "frontend" : "backend",
      },
      env: ["PATH=/bin", `NAME=e${e}_c${j}`, "TZ=UTC"],
      ip: `10.${100 + Math.floor(e / 50)}.${(e % 50) * 5 + Math.floor(j / 250)}.${(j % 250) + 2}`,
      running: true,
    });
  }
  return m;
}

function serviceId(node: string, binding: number, containerId: string): string {
  return `dockbind:${node}:default:fleet-${binding}:${containerId.slice(0, 12)}:80`;
}

async function registered(consul: ConsulHandle, id: string): Promise<boolean> {
  return (await httpGet(`${consul.url}/v1/agent/service/${encodeURIComponent(id)}`, 5_000)).status === 200;
}

/** Flips containers of `engines` (see CHURN_SELECTED_ONLY) at `perS` events/s until `signal` aborts; returns events sent. */
async function churn(engines: readonly Engine[], perS: number, signal: AbortSignal): Promise<number> {
  const ids = (e: Engine): readonly string[] => (CHURN_SELECTED_ONLY ? e.selected.map((s) => s.id) : [...e.fake.containers.keys()]);
  const targets = engines.flatMap((e) => ids(e).map((id) => ({ fake: e.fake, id })));
  let sent = 0;
  const t0 = performance.now();
  while (!signal.aborted && targets.length > 0) {
    const t = targets[Math.floor(Math.random() * targets.length)];
    if (t !== undefined) t.fake.emit(t.id, t.fake.containers.get(t.id)?.running === true ? "die" : "start");
    sent++;
    const due = t0 + (sent * 1000) / perS;
    await delay(Math.max(0, due - performance.now()));
  }
  // Every flipped container running again: the final state is the converged one.
  for (const t of targets) if (t.fake.containers.get(t.id)?.running === false) t.fake.emit(t.id, "start");
  return sent;
}

/** `start` on engine 0 -> registered, SAMPLES times (each: die, wait deregistered, start, wait registered). */
async function measureLatency(consul: ConsulHandle, e0: Engine): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const s = e0.selected[i % e0.selected.length];
    if (s === undefined) break;
    const id = serviceId(e0.node, s.binding, s.id);
    e0.fake.emit(s.id, "die");
    await waitFor(async () => !(await registered(consul, id)) || undefined, { timeoutMs: 30_000, intervalMs: 5, what: `${id} deregistered` });
    const t0 = performance.now();
    e0.fake.emit(s.id, "start");
    await waitFor(async () => (await registered(consul, id)) || undefined, { timeoutMs: 30_000, intervalMs: 2, what: `${id} registered` });
    out.push(performance.now() - t0);
  }
  return out.sort((a, b) => a - b);
}

async function startFleet(): Promise<Engine[]> {
  const selectedPerEngine = Math.floor((BINDINGS * PER_BINDING) / ENGINES);
  const engines: Engine[] = [];
  for (let e = 0; e < ENGINES; e++) {
    const containers = engineContainers(e, selectedPerEngine);
    const fake = await startFakeDocker(containers, `FAKE:FLEET:${String(e).padStart(4, "0")}`);
    const ids = [...containers.keys()].slice(0, selectedPerEngine);
    const selected = ids.map((id, j) => ({ id, binding: e * (selectedPerEngine / PER_BINDING) + Math.floor(j / PER_BINDING) }));
    engines.push({ node: `fleet-${e}`, fake, selected });
  }
  return engines;
}

export async function runFleet(log: (s: string) => void): Promise<FleetResult> {
  // A loaded machine may need minutes to compile: the default 2 min limit of run() is not enough.
  await run("npx", ["tsc", "-p", "tsconfig.json"], { check: true, cwd: join(import.meta.dirname, "..", ".."), timeoutMs: 600_000 });
  const root = mkdtempSync(join(ensureBedRoot(), "fleet-"));
  const bindingsDir = join(root, "bindings");
  const nginxPrefix = join(root, "nginx");
  mkdirSync(bindingsDir);
  mkdirSync(join(nginxPrefix, "conf.d"), { recursive: true });
  for (let i = 0; i < BINDINGS; i++) writeFileSync(join(bindingsDir, `fleet-${i}.yaml`), bindingYaml(i));
  const engines = await startFleet();
  const consul = await startConsul({ node: "consul-bench-fleet" });
  let ctl: ControllerHandle | undefined;
  try {
    const expected = engines.reduce((n, e) => n + e.selected.length, 0);
    log(`fleet: ${ENGINES} simulated engines x ${PER_ENGINE} containers, ${BINDINGS} bindings, ${expected} registrations, real Consul`);
    const t0 = performance.now();
    ctl = await startController({
      bindingsDir,
      consulAddr: consul.httpAddr,
      outputDir: join(nginxPrefix, "conf.d"),
      nginxArgs: ["-p", nginxPrefix, "-c", join(nginxPrefix, "nginx.conf")],
      node: "bench-fleet",
      extraArgs: [...engines.flatMap((e) => ["--docker-endpoint", `node=${e.node},host=${e.fake.url}`]), "--resync", `${RESYNC_S}s`],
      logName: `controller-bench-fleet-${process.pid}.log`,
      entry: "built",
    });
    const pid = ctl.proc.pid;
    const cpu0 = cpuSeconds(pid);
    await waitFor(async () => ((await agentServiceCount(consul)) >= expected ? true : undefined), {
      timeoutMs: 600_000,
      intervalMs: 250,
      what: `${expected} registrations`,
    });
    await quiet(() => Math.max(...engines.map((e) => e.fake.lastRequestAt())), 500, 120_000);
    const initialCpuS = cpuSeconds(pid) - cpu0;
    const initialWallS = (performance.now() - t0) / 1000;
    log(`fleet: initial sync ${initialWallS.toFixed(1)} s wall, ${initialCpuS.toFixed(2)} s CPU, RSS ${rssMiB(pid).toFixed(0)} MiB`);

    const lists = (): number => Math.min(...engines.map((e) => e.fake.hits.list));
    const l0 = lists();
    await waitFor(() => lists() > l0 || undefined, { timeoutMs: (RESYNC_S + 10) * 1000, intervalMs: 20, what: "a resync of every engine" });
    const cpuR0 = cpuSeconds(pid);
    const lR0 = lists();
    await waitFor(() => lists() >= lR0 + 2 || undefined, { timeoutMs: (RESYNC_S * 2 + 20) * 1000, intervalMs: 20, what: "two more resyncs" });
    const resyncCpuS = (cpuSeconds(pid) - cpuR0) / 2;
    log(`fleet: converged resync of ${ENGINES} engines ${resyncCpuS.toFixed(2)} s CPU each`);

    const stop = new AbortController();
    const tc = performance.now();
    const churning = churn(engines.slice(1), CHURN_PER_S, stop.signal);
    await delay(2000);
    const latencyMs = await measureLatency(consul, engines[0] as Engine);
    stop.abort();
    const sent = await churning;
    const churnAchievedPerS = sent / ((performance.now() - tc) / 1000);
    await waitFor(async () => ((await agentServiceCount(consul)) === expected ? true : undefined), {
      timeoutMs: 300_000,
      intervalMs: 250,
      what: "churn converged",
    });
    const peak = peakRssMiB(pid);
    log(
      `fleet: start -> registered under ${churnAchievedPerS.toFixed(0)} events/s of churn: p50 ${percentile(latencyMs, 50).toFixed(1)} ms, p99 ${percentile(latencyMs, 99).toFixed(1)} ms; peak RSS ${peak.toFixed(0)} MiB`,
    );
    return {
      engines: ENGINES,
      containers: ENGINES * PER_ENGINE,
      bindings: BINDINGS,
      registrations: expected,
      initialCpuS,
      initialWallS,
      resyncCpuS,
      peakRssMiB: peak,
      churnPerS: CHURN_PER_S,
      churnAchievedPerS,
      churnSelectedOnly: CHURN_SELECTED_ONLY,
      latencyMs,
    };
  } finally {
    await ctl?.stop();
    await consul.stop();
    for (const e of engines) await e.fake.close();
    rmSync(root, { recursive: true, force: true });
  }
}
