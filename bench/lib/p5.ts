/**
 * P5: the controller against a simulated Docker API (bench/lib/fakeDocker.ts,
 * 10,000 containers by default) and a real Consul dev agent, with 500
 * ServiceBindings (one file each) in a temp bindings dir. Measured on the
 * controller child process from /proc:
 *  - initial full sync (list + inspect everything + register): CPU s, wall s; the median of
 *    BENCH_P5_INITIAL_RUNS (default 3) syncs, each against a fresh Consul agent, with their range
 *    (one run of the same code varies by up to 2x on a shared 2-core machine);
 *  - a converged periodic full resync: CPU s per resync;
 *  - peak RSS (VmHWM) over the whole run;
 *  - event handling cost as bindings grow (10, 100, 500): a stream of
 *    start/die events on matched containers, CPU ms per 1000 events, events/s.
 * Bindings register without a health check (type none) and without a load
 * balancer: this is the Docker -> Consul path only.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startConsul } from "../../test/support/consul.js";
import { startController, type ControllerHandle } from "../../test/support/controller.js";
import { run } from "../../test/support/exec.js";
import { ensureBedRoot } from "../../test/support/procs.js";
import { delay, waitFor } from "../../test/support/wait.js";
import { agentServiceCount, envNumber, quiet } from "./simulated.js";
import { startFakeDocker, type FakeContainer } from "./fakeDocker.js";
import { cpuSeconds, peakRssMiB, rssMiB } from "./procstat.js";

const num = envNumber;
const CONTAINERS = num("BENCH_P5_CONTAINERS", 10_000);
const BINDINGS = num("BENCH_P5_BINDINGS", 500);
const PER_BINDING = num("BENCH_P5_PER_BINDING", 2);
const EVENTS = num("BENCH_P5_EVENTS", 1000);
const INITIAL_RUNS = Math.max(1, num("BENCH_P5_INITIAL_RUNS", 3));
const RESYNC_S = 10;
const STEPS = [10, 100, 500].filter((b) => b <= BINDINGS);

export interface EventCost {
  readonly bindings: number;
  readonly events: number;
  readonly cpuMsPer1000: number;
  readonly eventsPerS: number;
}

export interface P5Result {
  readonly containers: number;
  readonly bindings: number;
  readonly registrations: number;
  /** Median over `initialRuns` syncs, and the wall time of that run. */
  readonly initialCpuS: number;
  readonly initialWallS: number;
  readonly initialRuns: number;
  readonly initialCpuMinS: number;
  readonly initialCpuMaxS: number;
  readonly resyncCpuS: number;
  readonly baselineRssMiB: number;
  readonly peakRssMiB: number;
  readonly events: readonly EventCost[];
}

function bindingYaml(i: number): string {
  return `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata:
  name: sim-${i}
spec:
  service:
    name: sim-${i}
    tags: [bench]
  backends:
    selector:
      matchLabels: {app: sim-${i}}
    port: 80
    addressMode: internal
    network: bench-sim
  healthCheck:
    type: none
`;
}

function makeContainers(): Map<string, FakeContainer> {
  const m = new Map<string, FakeContainer>();
  for (let i = 0; i < CONTAINERS; i++) {
    const id = randomBytes(32).toString("hex");
    const matched = i < BINDINGS * PER_BINDING;
    const app = matched ? `sim-${i % BINDINGS}` : `other-${i % 997}`;
    m.set(id, {
      id,
      name: `sim_${i}`,
      // Compose-like label set: realistic label counts per container.
      labels: {
        app,
        "com.docker.compose.project": "bench",
        "com.docker.compose.service": app,
        "com.docker.compose.container-number": String(i),
        "com.docker.compose.version": "2.24.0",
        "com.docker.compose.oneoff": "False",
        "org.opencontainers.image.source": "local",
        tier: i % 3 === 0 ? "frontend" : "backend",
      },
      env: ["PATH=/bin", `NAME=sim_${i}`, "TZ=UTC", "LANG=C.UTF-8", "APP_ENV=bench"],
      ip: `10.99.${Math.floor(i / 250) + 1}.${(i % 250) + 2}`,
      running: true,
    });
  }
  return m;
}

function writeBindings(dir: string, n: number): void {
  for (const f of readdirSync(dir)) rmSync(join(dir, f), { force: true });
  for (let i = 0; i < n; i++) writeFileSync(join(dir, `sim-${i}.yaml`), bindingYaml(i));
}

export async function runP5(log: (s: string) => void): Promise<P5Result> {
  // A loaded machine may need minutes to compile: the default 2 min limit of run() is not enough.
  await run("npx", ["tsc", "-p", "tsconfig.json"], { check: true, cwd: join(import.meta.dirname, "..", ".."), timeoutMs: 600_000 });
  const root = mkdtempSync(join(ensureBedRoot(), "p5-"));
  const bindingsDir = join(root, "bindings");
  const nginxPrefix = join(root, "nginx");
  mkdirSync(bindingsDir);
  mkdirSync(join(nginxPrefix, "conf.d"), { recursive: true });
  const containers = makeContainers();
  const fake = await startFakeDocker(containers);
  let consul = await startConsul({ node: "consul-bench-p5" });
  const matchedIds = [...containers.values()].slice(0, BINDINGS * PER_BINDING).map((c) => c.id);
  let ctl: ControllerHandle | undefined;
  const start = async (bindings: number, tag: string): Promise<ControllerHandle> => {
    writeBindings(bindingsDir, bindings);
    // BENCH_P5_CPU_PROF=DIR: the controller writes a V8 CPU profile there on exit (node refuses
    // --cpu-prof in NODE_OPTIONS, so it goes through the harness's DOCKBIND_TEST_NODE_FLAGS).
    const prof = process.env.BENCH_P5_CPU_PROF;
    if (prof !== undefined && prof !== "") process.env.DOCKBIND_TEST_NODE_FLAGS = `--cpu-prof --cpu-prof-dir=${prof}`;
    return startController({
      bindingsDir,
      consulAddr: consul.httpAddr,
      outputDir: join(nginxPrefix, "conf.d"),
      nginxArgs: ["-p", nginxPrefix, "-c", join(nginxPrefix, "nginx.conf")],
      node: "bench-p5",
      extraArgs: ["--docker-host", fake.url, "--resync", `${RESYNC_S}s`],
      logName: `controller-bench-p5-${process.pid}-${tag}.log`,
      // The compiled controller, as deployed: tsx's transpiler would add ~150 MB of RSS.
      entry: "built",
    });
  };
  try {
    log(`P5: simulated Docker API with ${CONTAINERS} containers, ${BINDINGS} bindings x ${PER_BINDING} matched containers, real Consul`);
    const expected = BINDINGS * PER_BINDING;
    const initial: { cpuS: number; wallS: number }[] = [];
    let baselineRss = 0;
    for (let run = 0; run < INITIAL_RUNS; run++) {
      if (ctl !== undefined) {
        // The next sync starts from an empty catalog, as the first did.
        await ctl.stop();
        ctl = undefined;
        await consul.stop();
        consul = await startConsul({ node: "consul-bench-p5" });
      }
      const t0 = performance.now();
      ctl = await start(BINDINGS, `full-${run}`);
      const cpu0 = cpuSeconds(ctl.proc.pid);
      baselineRss = rssMiB(ctl.proc.pid);
      await waitFor(async () => ((await agentServiceCount(consul)) >= expected ? true : undefined), {
        timeoutMs: 600_000,
        intervalMs: 250,
        what: `${expected} registrations`,
      });
      await quiet(() => fake.lastRequestAt(), 500, 120_000);
      initial.push({ cpuS: cpuSeconds(ctl.proc.pid) - cpu0, wallS: (performance.now() - t0) / 1000 });
      log(
        `P5: initial sync ${run + 1}/${INITIAL_RUNS}: ${initial.at(-1)?.wallS.toFixed(1)} s wall, ${initial.at(-1)?.cpuS.toFixed(2)} s CPU (from "controller started"), RSS ${rssMiB(ctl.proc.pid).toFixed(0)} MiB`,
      );
    }
    if (ctl === undefined) throw new Error("P5: no initial sync ran");
    const pid = ctl.proc.pid;
    const byCpu = [...initial].sort((a, b) => a.cpuS - b.cpuS);
    const median = byCpu[Math.floor((byCpu.length - 1) / 2)] ?? { cpuS: 0, wallS: 0 };
    // Converged periodic resyncs: CPU over whole resync periods, per resync.
    const lists0 = fake.hits.list;
    await waitFor(() => fake.hits.list > lists0 || undefined, { timeoutMs: (RESYNC_S + 5) * 1000, intervalMs: 20, what: "a resync" });
    const cpuR0 = cpuSeconds(pid);
    const listsR0 = fake.hits.list;
    await waitFor(() => fake.hits.list >= listsR0 + 2 || undefined, { timeoutMs: (RESYNC_S * 2 + 10) * 1000, intervalMs: 20, what: "two more resyncs" });
    const resyncCpuS = (cpuSeconds(pid) - cpuR0) / 2;
    log(`P5: converged full resync ${resyncCpuS.toFixed(2)} s CPU each (agent services ${await agentServiceCount(consul)})`);
    let peak = peakRssMiB(pid);
    log(`P5: peak RSS ${peak.toFixed(0)} MiB (initial sync and resyncs, ${BINDINGS} bindings)`);
    await ctl.stop();
    ctl = undefined;

    const events: EventCost[] = [];
    for (const b of STEPS) {
      // Fresh Consul state per step is not needed: the restarted controller
      // garbage-collects registrations of bindings it no longer has.
      ctl = await start(b, `events-${b}`);
      const epid = ctl.proc.pid;
      const want = b * PER_BINDING;
      await waitFor(async () => ((await agentServiceCount(consul)) === want ? true : undefined), {
        timeoutMs: 600_000,
        intervalMs: 250,
        what: `${want} registrations for ${b} bindings`,
      });
      await quiet(() => fake.lastRequestAt(), 1000, 120_000);
      // The same 20 containers (bindings sim-0..sim-9) flip in every step.
      const targets = matchedIds.filter((_, i) => i % BINDINGS < 10);
      const c0 = cpuSeconds(epid);
      const t1 = performance.now();
      for (let e = 0; e < EVENTS; e++) {
        const id = targets[e % targets.length] ?? "";
        const c = containers.get(id);
        fake.emit(id, c?.running === true ? "die" : "start");
        if (e % 50 === 49) await delay(25); // ~2000 events/s offered
      }
      // Final state: every target running again (an even number of flips per target, or one more start).
      for (const id of targets) if (containers.get(id)?.running === false) fake.emit(id, "start");
      await waitFor(async () => ((await agentServiceCount(consul)) === want ? true : undefined), {
        timeoutMs: 300_000,
        intervalMs: 50,
        what: "event storm converged",
      });
      await quiet(() => fake.lastRequestAt(), 1000, 120_000);
      const wall = (performance.now() - t1 - 1000) / 1000;
      const cpuMs = (cpuSeconds(epid) - c0) * 1000;
      events.push({ bindings: b, events: EVENTS, cpuMsPer1000: (cpuMs * 1000) / EVENTS, eventsPerS: EVENTS / Math.max(wall, 0.001) });
      const stepPeak = peakRssMiB(epid);
      log(`P5: ${b} bindings: ${EVENTS} events in ${wall.toFixed(2)} s, ${cpuMs.toFixed(0)} ms CPU, peak RSS ${stepPeak.toFixed(0)} MiB`);
      peak = Math.max(peak, stepPeak);
      await ctl.stop();
      ctl = undefined;
    }
    return {
      containers: CONTAINERS,
      bindings: BINDINGS,
      registrations: expected,
      initialCpuS: median.cpuS,
      initialWallS: median.wallS,
      initialRuns: initial.length,
      initialCpuMinS: byCpu[0]?.cpuS ?? 0,
      initialCpuMaxS: byCpu.at(-1)?.cpuS ?? 0,
      resyncCpuS,
      baselineRssMiB: baselineRss,
      peakRssMiB: peak,
      events,
    };
  } finally {
    await ctl?.stop();
    await consul.stop();
    await fake.close();
    rmSync(root, { recursive: true, force: true });
  }
}
