/**
 * The failure table: the same faults against dockbind and against
 * registrator + consul-template + nginx, each outcome measured. Prints a
 * markdown table (one row per scenario, one column per contender); exit code
 * 0 unless the bench itself breaks.
 *
 *   make bench-failures
 *   BENCH_FAIL_WINDOW_S=60 BENCH_FAIL_STORM=200 BENCH_FAIL_ONLY=programs,consul node --import tsx bench/failures.ts
 *
 * Both stacks (bench/lib/failStack.ts: own Consul dev agent behind a counting
 * proxy, own nginx) watch the same private Docker engine at the same time
 * (test/support/extraDockerd.ts: restarted and put in swarm mode here, the
 * shared engine is never touched). Backends carry both declarations: the
 * `dockbind-bench` label the binding selects and registrator's SERVICE_NAME +
 * SERVICE_CHECK_* env (the same HTTP check, /health/ every 1 s). Each
 * scenario is observed for a bounded window (BENCH_FAIL_WINDOW_S, 60 s; the
 * 200-container storm max(3 windows, 180 s)) or until the stack is converged
 * (every running backend registered once and passing, no stale entry, the
 * upstream naming exactly the running backends), whichever comes first.
 */
import { performance } from "node:perf_hooks";
import { readFileSync } from "node:fs";
import { run } from "../test/support/exec.js";
import { startExtraDockerd } from "../test/support/extraDockerd.js";
import { BACKEND_IMAGE } from "../test/support/image.js";
import { cleanupAll } from "../test/support/teardown.js";
import { delay, freePort, waitFor } from "../test/support/wait.js";
import { startWorld } from "../test/support/world.js";
import { anchorBinary } from "./lib/anchors.js";
import { pool } from "./lib/containers.js";
import { bindingDoc, counters, diff, DOCKBIND_PROBE, type Phase } from "./lib/contender.js";
import { converged, describe, seconds, tally, upstreamServers, type Tally } from "./lib/failMeasure.js";
import {
  anchorOn,
  backendLabels,
  dockbindOn,
  engineOf,
  entriesOf,
  liveBackends,
  registratorEnv,
  type AnchorVariant,
  type Engine,
  type FailContender,
} from "./lib/failStack.js";
import { envNumber } from "./lib/simulated.js";

const WINDOW_MS = envNumber("BENCH_FAIL_WINDOW_S", 60) * 1000;
const STORM_N = Math.floor(envNumber("BENCH_FAIL_STORM", 200));
const STORM_TIMEOUT_MS = Math.max(3 * WINDOW_MS, 180_000);
const SETTLE_MS = Math.max(WINDOW_MS, 60_000);
const ONLY = new Set(
  (process.env.BENCH_FAIL_ONLY ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);
const TAG = String(process.pid);
const ANCHOR = "registrator+consul-template";

const log = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

interface Stack {
  readonly key: string;
  readonly engine: Engine;
  readonly phase: Phase;
  readonly contenders: readonly FailContender[];
  /** Published-port backends (Swarm host mode): the target port the pairs are built from. */
  readonly port: number;
}

type Cells = Map<string, string>;

interface Scenario {
  readonly key: string;
  readonly title: string;
  readonly measured: string;
  readonly swarm?: boolean;
  /** A second registrator stack with the flag or supervision that addresses this fault, measured beside the plain one. */
  readonly variant?: AnchorVariant;
  run(s: Stack): Promise<Cells>;
}

interface Observation {
  /** Time until converged, or undefined when the window ended first. */
  readonly ms: number | undefined;
  readonly tally: Tally;
  readonly live: number;
  /** Fewest upstream servers naming a running backend seen during the observation, and when it first dropped below `want`. */
  readonly minRendered: number;
  readonly firstDropMs: number | undefined;
}

function upstreamOf(c: FailContender, p: Phase): string[] {
  try {
    return upstreamServers(readFileSync(c.outputFile(p), "utf8"));
  } catch {
    return [];
  }
}

/** Polls one contender until `ready()`, `want` backends run and it is converged on them, or `timeoutMs` passed since `t0` (default now). */
/** The cell text of an observation: `settled(ms)` when the stack converged, else what it held when the window (`windowMs`) ended, then `unsettledNote`. */
function settledOr(o: Observation, windowMs: number, settled: (ms: number) => string, unsettledNote = ""): string {
  return o.ms !== undefined ? settled(o.ms) : `after ${seconds(windowMs)}: ${describe(o.tally, o.live)}${unsettledNote}`;
}

async function observe(
  s: Stack,
  c: FailContender,
  want: number,
  timeoutMs: number,
  intervalMs = 250,
  t0 = performance.now(),
  ready: () => boolean = () => true,
): Promise<Observation> {
  let minRendered = Number.POSITIVE_INFINITY;
  let firstDropMs: number | undefined;
  for (;;) {
    const live = await liveBackends(s.engine, s.phase.selector, s.port).catch(() => []);
    const t = tally(await entriesOf(c, s.phase.service), live, upstreamOf(c, s.phase));
    minRendered = Math.min(minRendered, t.renderedLive);
    const elapsed = performance.now() - t0;
    if (t.renderedLive < want) firstDropMs ??= elapsed;
    if (ready() && live.length === want && converged(t, want)) return { ms: elapsed, tally: t, live: live.length, minRendered, firstDropMs };
    if (elapsed >= timeoutMs) return { ms: undefined, tally: t, live: live.length, minRendered, firstDropMs };
    await delay(intervalMs);
  }
}

/** Runs `fn` for every contender at once; its cell is what `fn` returns (or the error it threw). */
async function perContender(s: Stack, fn: (c: FailContender) => Promise<string>): Promise<Cells> {
  const cells: Cells = new Map();
  await Promise.all(
    s.contenders.map(async (c) => {
      cells.set(c.name, await fn(c).catch((err: unknown) => `bench error: ${err instanceof Error ? err.message : String(err)}`));
    }),
  );
  return cells;
}

/** Waits until every contender has converged on `n` backends before the fault; names the ones that did not. */
async function settle(s: Stack, n: number): Promise<Map<string, string>> {
  const notReady = new Map<string, string>();
  await Promise.all(
    s.contenders.map(async (c) => {
      const o = await observe(s, c, n, SETTLE_MS);
      if (o.ms === undefined || o.live !== n) notReady.set(c.name, `not converged before the fault (${describe(o.tally, o.live)}); `);
    }),
  );
  return notReady;
}

async function runBackend(s: Stack, name: string, restartAlways = false): Promise<void> {
  const labels = Object.entries(backendLabels(s.phase.selector)).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
  const env = Object.entries(registratorEnv(s.phase.service, name)).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  await s.engine.docker(["run", "-d", "--name", name, ...labels, ...env, ...(restartAlways ? ["--restart", "always"] : []), BACKEND_IMAGE], { check: true });
}

/** How the registering program ended: code or signal, seconds after `since`, and its last log line. */
const exitText = (c: FailContender, since: number): string => {
  const e = c.registrarExit();
  if (e === undefined) return "running";
  const how = e.signal !== null ? `killed (${e.signal})` : `exited (code ${String(e.code)})`;
  return `${how} ${seconds(e.at - since)} after the restart began, last log line "${e.lastLog}"`;
};

const programs: Scenario = {
  key: "programs",
  title: "Registration program restarted while two containers stopped",
  measured:
    "5 backends registered; the registering program SIGKILLed (dockbind controller / registrator; consul-template keeps running), 2 backends `docker stop`ped, the program started again; then entries naming the stopped backends (stale) and upstream lines naming them",
  variant: { label: "-cleanup", registratorArgs: ["-cleanup"] },
  async run(s) {
    for (let i = 0; i < 5; i++) await runBackend(s, `programs-b${i}`);
    const pre = await settle(s, 5);
    await Promise.all(s.contenders.map((c) => c.killRegistrar()));
    await s.engine.docker(["stop", "-t", "2", "programs-b0", "programs-b1"], { check: true });
    return perContender(s, async (c) => {
      const t0 = performance.now();
      await c.startRegistrar();
      const up = performance.now() - t0;
      const o = await observe(s, c, 3, WINDOW_MS, 250, t0);
      const startup = up > 500 ? `, ${seconds(up)} of it the program's start-up` : "";
      return `${pre.get(c.name) ?? ""}${settledOr(o, WINDOW_MS, (ms) => `0 stale ${seconds(ms)} after the program started${startup} (3 of 3 running registered and served)`)}`;
    });
  },
};

const dockerd: Scenario = {
  key: "dockerd",
  title: "dockerd restarted",
  measured:
    "3 backends (`--restart always`) registered; the engine restarted (SIGTERM, its containers stop, then start again with new addresses possibly); one more backend started once it answers; whether each program still runs, then registrations of the 4 running backends",
  variant: { label: "supervised: started again 1 s after it exits", supervise: true },
  async run(s) {
    for (let i = 0; i < 3; i++) await runBackend(s, `dockerd-b${i}`, true);
    const pre = await settle(s, 3);
    const before = new Set((await liveBackends(s.engine, s.phase.selector)).flatMap((b) => b.keys));
    const t0 = performance.now();
    await s.engine.restart();
    const answered = performance.now();
    log(`dockerd: engine restarted in ${seconds(answered - t0)}`);
    const after = await waitFor(
      async () => ((await liveBackends(s.engine, s.phase.selector)).length === 3 ? liveBackends(s.engine, s.phase.selector) : undefined),
      {
        timeoutMs: 60_000,
        what: "the 3 backends running again",
      },
    ).catch(() => []);
    log(`dockerd: ${after.filter((b) => !b.keys.some((k) => before.has(k))).length} of 3 backends came back on a new address`);
    await runBackend(s, "dockerd-after");
    return perContender(s, async (c) => {
      const o = await observe(s, c, 4, WINDOW_MS, 250, answered);
      const restarts = c.supervisedRestarts() > 0 ? `, started again by its supervisor (${c.supervisedRestarts()}×)` : "";
      const state = c.registrarExit() === undefined ? "kept running" : `${exitText(c, t0)}${restarts}`;
      return `${pre.get(c.name) ?? ""}${state}; ${settledOr(o, WINDOW_MS, (ms) => `resynced: 4 of 4 registered and served ${seconds(ms)} after dockerd answered, 0 stale`)}`;
    });
  },
};

const consul: Scenario = {
  key: "consul",
  title: "Consul agent restarted with its state lost",
  measured:
    "3 backends registered; each stack's dev agent stopped and started on the same address with an empty data dir; time from the stop until all 3 are registered again, passing and in the upstream, and the fewest upstream servers seen meanwhile (sampled every 0.25 s)",
  variant: { label: "-resync 30", registratorArgs: ["-resync", "30"] },
  async run(s) {
    for (let i = 0; i < 3; i++) await runBackend(s, `consul-b${i}`);
    const pre = await settle(s, 3);
    return perContender(s, async (c) => {
      // Observed from the stop on (the upstream during the outage counts), converged only once the agent answers again.
      const t0 = performance.now();
      let answeredAt: number | undefined;
      const restarted = c.world.consul.restart().then(() => (answeredAt = performance.now()));
      const o = await observe(s, c, 3, WINDOW_MS, 250, t0, () => answeredAt !== undefined);
      await restarted;
      const queries = c.proxies.flatMap((p) => p.requests.filter((r) => r.path.startsWith(`/v1/health/service/${s.phase.service}`)));
      log(`consul: ${c.name}: last health query of the service through its proxies: ${queries[queries.length - 1]?.path ?? "none"}`);
      const agent = `agent answering again after ${seconds((answeredAt ?? t0) - t0)}`;
      const dip =
        o.minRendered < 3
          ? `; upstream down to ${o.minRendered} of 3 (first seen ${seconds(o.firstDropMs ?? 0)} after the restart began)`
          : "; upstream kept all 3 throughout";
      return `${pre.get(c.name) ?? ""}${
        o.ms !== undefined
          ? `back ${seconds(o.ms)} after the restart began (${agent})`
          : `not back ${seconds(WINDOW_MS)} after the restart began (${agent}): ${describe(o.tally, o.live)}`
      }${dip}`;
    });
  },
};

const rename: Scenario = {
  key: "rename",
  title: "Container renamed or restarted",
  measured:
    "3 backends registered; `docker rename` b0 → b0-renamed and `docker restart` b1 (observed), then a new backend takes the old name b0 (blue/green style, observed again); duplicates (more than one entry for one container), stale and missing entries",
  async run(s) {
    for (let i = 0; i < 3; i++) await runBackend(s, `rename-b${i}`);
    const pre = await settle(s, 3);
    const outcome = (o: Observation, n: number): string => {
      const missing = o.tally.missing.length > 0 ? ` (missing: ${o.tally.missing.join(", ")})` : "";
      return settledOr(o, WINDOW_MS, (ms) => `0 duplicates, 0 stale, ${n} of ${n} registered and served after ${seconds(ms)}`, missing);
    };
    await s.engine.docker(["rename", "rename-b0", "rename-b0-renamed"], { check: true });
    await s.engine.docker(["restart", "-t", "2", "rename-b1"], { check: true });
    const first = await perContender(s, async (c) => outcome(await observe(s, c, 3, WINDOW_MS), 3));
    await runBackend(s, "rename-b0");
    const second = await perContender(s, async (c) => outcome(await observe(s, c, 4, WINDOW_MS), 4));
    return new Map(
      s.contenders.map((c) => [c.name, `${pre.get(c.name) ?? ""}rename + restart: ${first.get(c.name) ?? "?"}; old name reused: ${second.get(c.name) ?? "?"}`]),
    );
  },
};

const storm: Scenario = {
  key: "storm",
  title: `${STORM_N} containers started at once`,
  measured: `${STORM_N} backends created, then all started with concurrent API calls; Consul writes (counting proxy, every client of the stack) and nginx reloads until 3 s after converged, and the time until all are registered, passing and in the upstream`,
  async run(s) {
    const ids: string[] = new Array<string>(STORM_N);
    await pool(
      Array.from({ length: STORM_N }, (_, i) => i),
      8,
      async (i) => {
        const c = await s.engine.api.createContainer({
          name: `storm-b${i}`,
          Image: BACKEND_IMAGE,
          Labels: backendLabels(s.phase.selector),
          Env: Object.entries(registratorEnv(s.phase.service, `storm-b${i}`)).map(([k, v]) => `${k}=${v}`),
        });
        ids[i] = c.id;
      },
    );
    await delay(2000);
    const before = new Map(await Promise.all(s.contenders.map(async (c) => [c.name, await counters(c)] as const)));
    const t0 = performance.now();
    await Promise.all(ids.map((id) => s.engine.api.getContainer(id).start()));
    log(`storm: ${STORM_N} containers started in ${seconds(performance.now() - t0)} (${STORM_N} concurrent API starts)`);
    return perContender(s, async (c) => {
      const o = await observe(s, c, STORM_N, STORM_TIMEOUT_MS, 1000, t0);
      await delay(3000); // a trailing render (wait max 500 ms) lands before counting
      const b = before.get(c.name);
      const d = b === undefined ? undefined : diff(b, await counters(c));
      const cost = d === undefined ? "" : `${d.writes} writes / ${d.reloads} reloads; `;
      return `${cost}${settledOr(o, STORM_TIMEOUT_MS, (ms) => `all ${STORM_N} registered and served ${seconds(ms)} after the starts began`)}`;
    });
  },
};

const SWARM_SERVICE = `failtab-web-${TAG}`;
const GW_BRIDGE = "dkbind-ftgw";

const swarm: Scenario = {
  key: "swarm",
  title: "Swarm service scaled 3→5",
  measured:
    "a Swarm service (host-mode published port, registrator's env on its tasks) of 3 tasks registered; `docker service scale` to 5; time from the scale command until 5 are registered, passing and in the upstream, and which address each program registers",
  swarm: true,
  async run(s) {
    const labels = Object.entries(backendLabels(s.phase.selector)).flatMap(([k, v]) => ["--label", `${k}=${v}`, "--container-label", `${k}=${v}`]);
    const env = Object.entries(registratorEnv(s.phase.service, "swarm-task")).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
    await s.engine.docker(
      ["service", "create", "-d", "--name", SWARM_SERVICE, "--replicas", "3", ...labels, ...env, "--publish", "mode=host,target=80", BACKEND_IMAGE],
      { check: true },
    );
    const pre = await settle(s, 3);
    const t0 = performance.now();
    await s.engine.docker(["service", "scale", "-d", `${SWARM_SERVICE}=5`], { check: true });
    return perContender(s, async (c) => {
      const o = await observe(s, c, 5, WINDOW_MS, 250, t0);
      const entries = await entriesOf(c, s.phase.service);
      const published = entries.filter((e) => e.address === "127.0.0.1").length;
      const how =
        entries.length === 0
          ? ""
          : published === entries.length
            ? " (at the published host ports)"
            : published === 0
              ? " (at the task containers' IPs, port 80)"
              : " (mixed addresses)";
      return `${pre.get(c.name) ?? ""}${settledOr(o, WINDOW_MS, (ms) => `5 of 5 registered and served ${seconds(ms)} after the scale`)}${how}`;
    });
  },
};

/** Table order (the issue's); the storm, the heaviest, runs last. */
const SCENARIOS: readonly Scenario[] = [programs, dockerd, consul, rename, storm, swarm];
const RUN_ORDER: readonly Scenario[] = [programs, dockerd, consul, rename, swarm, storm];

/** Makes the private engine a single-node swarm manager that uses no port, bridge or VXLAN port of the shared engine's. */
async function swarmInit(engine: Engine): Promise<void> {
  // The gateway bridge swarm mode creates is named docker_gwbridge unless it exists: create it under our own name first
  // (after removing a leftover of an interrupted run).
  await run("ip", ["link", "del", GW_BRIDGE]);
  await engine.docker(
    [
      "network",
      "create",
      "--subnet",
      "172.31.244.0/24",
      "--opt",
      `com.docker.network.bridge.name=${GW_BRIDGE}`,
      "--opt",
      "com.docker.network.bridge.enable_icc=false",
      "docker_gwbridge",
    ],
    { check: true },
  );
  const port = await freePort();
  await engine.docker(
    ["swarm", "init", "--advertise-addr", `127.0.0.1:${port}`, "--listen-addr", `127.0.0.1:${port}`, "--data-path-port", String(4800 + (process.pid % 100))],
    { check: true },
  );
}

/** Leaves the swarm and removes the gateway bridge (the engine's stop() removes only its own bridge). */
async function swarmLeave(engine: Engine): Promise<void> {
  await engine.docker(["service", "rm", SWARM_SERVICE]);
  await engine.docker(["swarm", "leave", "--force"]);
  await engine.docker(["network", "rm", "docker_gwbridge"]);
  await run("ip", ["link", "del", GW_BRIDGE]);
}

/** Starts both stacks for `sc`, runs it, stops them and removes its backends. */
async function runScenario(engine: Engine, sc: Scenario): Promise<Cells> {
  const phase: Phase = { service: `failtab-${sc.key}`, selector: `${TAG}-${sc.key}`, listenPort: await freePort(), interval: "1s" };
  const worlds = [await startWorld(`failtab-${sc.key}-dockbind-${TAG}`), await startWorld(`failtab-${sc.key}-anchor-${TAG}`)];
  if (sc.variant !== undefined) worlds.push(await startWorld(`failtab-${sc.key}-variant-${TAG}`));
  const contenders: FailContender[] = [];
  try {
    if (sc.swarm === true) await swarmInit(engine);
    const [wDockbind, wAnchor, wVariant] = worlds;
    if (wDockbind === undefined || wAnchor === undefined) throw new Error("worlds not started");
    contenders.push(await dockbindOn(wDockbind, engine, bindingDoc(phase, sc.swarm === true ? { swarm: true } : { network: "bridge" }, true, DOCKBIND_PROBE)));
    for (const [w, v] of [
      [wAnchor, undefined],
      [wVariant, sc.variant],
    ] as const) {
      const anchor = w === undefined ? undefined : await anchorOn(w, engine, phase, v);
      if (anchor !== undefined) contenders.push(anchor);
    }
    await delay(2000); // first renders and reloads happen before the scenario
    return await sc.run({ key: sc.key, engine, phase, contenders, port: 80 });
  } finally {
    for (const c of contenders) await c.stop().catch(() => undefined);
    for (const w of worlds) {
      await w.proxy.close();
      await Promise.all([w.consul.stop(), w.nginx.stop()]);
    }
    if (sc.swarm === true) await swarmLeave(engine);
    const left = await engine.api.listContainers({ all: true, filters: { label: [`dockbind-bench=${phase.selector}`] } });
    await pool(left, 8, async (c) => {
      await engine.api
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => undefined);
    });
  }
}

function table(rows: readonly { sc: Scenario; cells: Cells }[]): string {
  const reg = anchorBinary("registrator");
  const ct = anchorBinary("consul-template");
  const missing = reg.path === undefined ? reg.why : ct.path === undefined ? ct.why : undefined;
  const lines = [`| scenario (what is measured) | dockbind | registrator + consul-template |`, `|---|---|---|`];
  for (const { sc, cells } of rows) {
    const variant = sc.variant === undefined ? "" : `<br>**with ${sc.variant.label}**: ${cells.get(`${ANCHOR} (${sc.variant.label})`) ?? "not measured"}`;
    const anchorCell = missing !== undefined ? `not measured: ${missing}` : `${cells.get(ANCHOR) ?? "not measured"}${variant}`;
    lines.push(`| **${sc.title}**: ${sc.measured} | ${cells.get("dockbind") ?? "not measured"} | ${anchorCell} |`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const reg = anchorBinary("registrator");
  log(`anchors: registrator ${reg.path ?? `UNAVAILABLE — ${reg.why}`}; window ${seconds(WINDOW_MS)}, storm ${STORM_N}`);
  const rows: { sc: Scenario; cells: Cells }[] = [];
  const engine = engineOf(await startExtraDockerd({ name: "failtab", bridgeCidr: "172.31.240.1/22" }));
  try {
    for (const sc of RUN_ORDER) {
      if (ONLY.size > 0 && !ONLY.has(sc.key)) continue;
      const t0 = performance.now();
      log(`${sc.key}: ${sc.title}...`);
      let cells: Cells;
      try {
        cells = await runScenario(engine, sc);
      } catch (err) {
        const why = `bench error: ${err instanceof Error ? err.message : String(err)}`;
        cells = new Map([
          ["dockbind", why],
          [ANCHOR, why],
        ]);
      }
      for (const [k, v] of cells) log(`  ${k}: ${v}`);
      log(`${sc.key}: done in ${seconds(performance.now() - t0)}`);
      rows.push({ sc, cells });
    }
  } finally {
    await engine.stop().catch((err: unknown) => {
      log(`private dockerd stop: ${String(err)}`);
    });
    await cleanupAll().catch(() => undefined);
  }
  log("");
  log(`Failure table (window ${seconds(WINDOW_MS)}; storm ${STORM_N} containers, timeout ${seconds(STORM_TIMEOUT_MS)})`);
  log("");
  log(table([...rows].sort((a, b) => SCENARIOS.indexOf(a.sc) - SCENARIOS.indexOf(b.sc))));
}

await main();
