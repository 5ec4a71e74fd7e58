/**
 * A contender: one complete stack (its own Consul dev agent behind a counting
 * proxy, its own nginx master) plus the process(es) doing registration and
 * rendering. Every contender watches the same dockerd, so one `docker run`
 * is observed by all of them at once.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startConsulProxy, type ConsulProxy } from "../../test/support/consulProxy.js";
import { httpGet } from "../../test/support/http.js";
import { freePort } from "../../test/support/wait.js";
import type { ManagedProcess } from "../../test/support/procs.js";
import type { World } from "../../test/support/world.js";
import { anchorBinary, startConsulTemplate, startRegistrator, type CtTemplate } from "./anchors.js";
import { cpuSeconds } from "./procstat.js";

export interface Phase {
  readonly service: string;
  /** Value of the `dockbind-bench` label selecting its backends. */
  readonly selector: string;
  readonly listenPort: number;
  /** Consul HTTP check interval. */
  readonly interval: string;
  /** Backend (container) port the binding selects; default 80. */
  readonly backendPort?: number;
}

export interface Contender {
  readonly name: string;
  readonly world: World;
  /** Processes whose CPU counts for this contender. */
  readonly pids: () => readonly number[];
  /** Every proxy whose writes count (registration and rendering clients). */
  readonly proxies: readonly ConsulProxy[];
  /** True when this contender's registration path is dockbind's own (anchor without registrator). */
  readonly registersWithDockbind: boolean;
  outputFile(phase: Phase): string;
  /**
   * The port this contender's nginx serves `phase` on. Every contender has its
   * own: two nginx masters cannot bind one socket (the later one's reloads
   * fail as a whole), and a GET on a shared port would measure whichever holds it.
   */
  listenPort(phase: Phase): number;
  stop(): Promise<void>;
}

export const WAIT_MIN = "50ms";
export const WAIT_MAX = "500ms";

/**
 * dockbind's own bindings probe new backends before registering (healthCheck.probeBeforeRegister)
 * unless BENCH_DOCKBIND_PROBE=0; the anchor's registering controller never does (registrator cannot).
 */
export const DOCKBIND_PROBE = process.env.BENCH_DOCKBIND_PROBE !== "0";
/** Extra flags for every dockbind controller under test, e.g. BENCH_DOCKBIND_ARGS="--max-reload-interval 4s". */
export const DOCKBIND_EXTRA_ARGS: readonly string[] = (process.env.BENCH_DOCKBIND_ARGS ?? "").split(/\s+/).filter((a) => a !== "");

/** Where a bench binding's backends come from: containers on a Docker network (their IPs), or the tasks of Swarm services (their published ports). */
export type BenchBackends = { readonly network: string } | { readonly swarm: true };

function backendsYaml(p: Phase, from: BenchBackends): string {
  const selector = `selector:
      matchLabels: {dockbind-bench: ${p.selector}}`;
  return "swarm" in from
    ? `  backends:
    swarm:
      ${selector.replace("\n", "\n  ")}
    port: ${p.backendPort ?? 80}
    addressMode: published
`
    : `  backends:
    ${selector}
    port: ${p.backendPort ?? 80}
    addressMode: internal
    network: ${from.network}
`;
}

/** The bench's ServiceBinding for `p`: backends selected by the `dockbind-bench` label (see BenchBackends), HTTP check on /health/, nginx when `withLb`. */
export function bindingDoc(p: Phase, from: BenchBackends, withLb: boolean, probe = false): string {
  const lb = withLb
    ? `  loadBalancer:
    listen: {port: ${p.listenPort}, address: 127.0.0.1}
    onlyPassing: true
    output: ${p.service}.conf
`
    : "";
  return `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata:
  name: ${p.service}
spec:
  service:
    name: ${p.service}
${backendsYaml(p, from)}  healthCheck:
    type: http
    path: /health/
    interval: ${p.interval}
    timeout: 1s
${probe ? "    probeBeforeRegister: true\n" : ""}${lb}`;
}

/** A dockbind controller started in `world` with the bindings file already written: product defaults except the shared render wait. */
async function dockbindWith(world: World, args: readonly string[]): Promise<Contender> {
  const ctl = await world.startController(["--resync", "5m", "--wait-min", WAIT_MIN, "--wait-max", WAIT_MAX, ...args, ...DOCKBIND_EXTRA_ARGS]);
  return {
    name: "dockbind",
    world,
    pids: () => [ctl.proc.pid],
    proxies: [world.proxy],
    registersWithDockbind: true,
    outputFile: (p) => join(world.nginx.confDir, `${p.service}.conf`),
    listenPort: (p) => p.listenPort,
    stop: async () => {
      await ctl.stop();
    },
  };
}

/** dockbind alone: registration and nginx rendering. `extraArgs` go to the controller (e.g. `--docker-host` of a simulated Docker API). */
export async function dockbindContender(world: World, phases: readonly Phase[], network: string, extraArgs: readonly string[] = []): Promise<Contender> {
  world.writeFile("bench.yaml", phases.map((p) => bindingDoc(p, { network }, true, DOCKBIND_PROBE)).join("---\n"));
  return dockbindWith(world, extraArgs);
}

/**
 * dockbind with --registrator-compat: containers are registered from their
 * registrator SERVICE_* env alone (no binding selects them), and one binding
 * without backends renders the service, as consul-template renders
 * registrator's registrations. -explicit: only containers naming their
 * service (the bench's), not whatever else runs on this dockerd.
 */
export async function dockbindCompatContender(world: World, phase: Phase, network: string): Promise<Contender> {
  world.writeFile("bench.yaml", bindingDoc({ ...phase, selector: "selects-nothing" }, { network }, true));
  return dockbindWith(world, ["--registrator-compat", "--registrator-internal", "--registrator-explicit"]);
}

/**
 * registrator + consul-template. Without a registrator binary, registration
 * is done by a dockbind controller with LB-less bindings, so the render half
 * (consul-template -> nginx) is still measured against dockbind's.
 */
/** `extraArgs` go to the registering dockbind controller (when there is no registrator). */
export async function anchorContender(
  world: World,
  phases: readonly Phase[],
  network: string,
  extraArgs: readonly string[] = [],
): Promise<Contender | undefined> {
  const ct = anchorBinary("consul-template");
  if (ct.path === undefined) return undefined;
  const reg = anchorBinary("registrator");
  const ctProxy = await startConsulProxy(world.consul.httpAddr);
  let registrar: ManagedProcess;
  let name: string;
  if (reg.path !== undefined) {
    registrar = startRegistrator({ bin: reg.path, consulAddr: world.proxy.addr, tag: world.node });
    name = "registrator+consul-template";
  } else {
    world.writeFile("bench.yaml", phases.map((p) => bindingDoc(p, { network }, false)).join("---\n"));
    registrar = (await world.startController(["--resync", "30s", ...extraArgs])).proc;
    name = "dockbind-reg+consul-template";
  }
  // Its own listen ports (see Contender.listenPort): phase.listenPort is dockbind's.
  const ports = new Map<string, number>();
  for (const p of phases) ports.set(p.service, await freePort());
  const templates: CtTemplate[] = phases.map((p) => ({ service: p.service, listenPort: ports.get(p.service) ?? 0, output: `ct-${p.service}.conf` }));
  const ctProc = consulTemplateIn(world, ct.path, ctProxy.addr, templates);
  return {
    name,
    world,
    pids: () => [registrar.pid, ctProc.pid],
    proxies: [world.proxy, ctProxy],
    registersWithDockbind: reg.path === undefined,
    outputFile: (p) => join(world.nginx.confDir, `ct-${p.service}.conf`),
    listenPort: (p) => ports.get(p.service) ?? 0,
    stop: async () => {
      await Promise.all([ctProc.stop(), registrar.stop()]);
      await ctProxy.close();
    },
  };
}

/** consul-template rendering `templates` into `world`'s nginx (reloading it), with the bench's render wait, reading Consul at `consulAddr`. */
export function consulTemplateIn(world: World, bin: string, consulAddr: string, templates: readonly CtTemplate[]): ManagedProcess {
  return startConsulTemplate({
    bin,
    consulAddr,
    confDir: world.nginx.confDir,
    nginxArgs: world.nginx.nginxArgs,
    waitMin: WAIT_MIN,
    waitMax: WAIT_MAX,
    templates,
    tag: world.node,
  });
}

export interface Counters {
  readonly writes: number;
  readonly reads: number;
  readonly reloads: number;
  readonly cpuS: number;
}

/** A burst's figures: counters over the burst, when it converged (NaN: never), passing instances at the end, and registrations left after every container was removed (NaN: not measured). */
export interface BurstCounters extends Counters {
  readonly convergeMs: number;
  readonly registered?: number;
  readonly stale?: number;
}

export async function counters(c: Contender): Promise<Counters> {
  const writes = c.proxies.reduce((n, p) => n + p.writes().length, 0);
  const all = c.proxies.reduce((n, p) => n + p.requests.length, 0);
  return { writes, reads: all - writes, reloads: await c.world.nginx.reloadCount(), cpuS: c.pids().reduce((s, pid) => s + cpuSeconds(pid), 0) };
}

export function diff(a: Counters, b: Counters): Counters {
  return { writes: b.writes - a.writes, reads: b.reads - a.reads, reloads: b.reloads - a.reloads, cpuS: b.cpuS - a.cpuS };
}

/** True once the contender's Consul agent holds a registration of `service` (agent-local view, any status). */
export async function agentHasService(c: Contender, service: string): Promise<boolean> {
  const r = await httpGet(`${c.world.consul.url}/v1/agent/services`, 5_000);
  return r.status === 200 && Object.values(JSON.parse(r.body) as Record<string, { Service: string }>).some((s) => s.Service === service);
}

/** Instances of `service` in the contender's Consul catalog (all statuses / passing only). */
export async function instanceCount(c: Contender, service: string, passingOnly = false): Promise<number> {
  const r = await httpGet(`${c.world.consul.url}/v1/health/service/${service}${passingOnly ? "?passing=1" : ""}`, 5_000);
  if (r.status !== 200) return -1;
  return (JSON.parse(r.body) as unknown[]).length;
}

/** Deregisters every instance of `service` from the contender's agent directly (not counted: bench housekeeping between phases). */
export async function deregisterService(c: Contender, service: string): Promise<void> {
  const r = await httpGet(`${c.world.consul.url}/v1/agent/services`, 5_000);
  if (r.status !== 200) return;
  const ids = Object.entries(JSON.parse(r.body) as Record<string, { Service: string }>)
    .filter(([, s]) => s.Service === service)
    .map(([id]) => id);
  for (const id of ids) await fetch(`${c.world.consul.url}/v1/agent/service/deregister/${encodeURIComponent(id)}`, { method: "PUT" });
}

/**
 * Checks of `service` whose output the agent has not written back to the catalog yet (read from the
 * agent directly, not through the counting proxy). Consul defers a check's output-only change by
 * check_update_interval (5 min: 2.5-7.5 min), so a check registered `passing` (probeBeforeRegister)
 * bumps the service's health index once more minutes after its first run; a check registered
 * critical gets that write at its first passing run instead (a status change is written at once).
 */
export async function unsyncedCheckOutputs(c: Contender, service: string): Promise<number> {
  const [agent, catalog] = await Promise.all([
    httpGet(`${c.world.consul.url}/v1/agent/checks`, 10_000),
    httpGet(`${c.world.consul.url}/v1/health/service/${service}`, 10_000),
  ]);
  if (agent.status !== 200 || catalog.status !== 200) return -1;
  type Check = { CheckID: string; ServiceName: string; Output: string };
  const inCatalog = new Map<string, string>();
  for (const e of JSON.parse(catalog.body) as { Checks: Check[] }[]) for (const ch of e.Checks) inCatalog.set(ch.CheckID, ch.Output);
  return Object.values(JSON.parse(agent.body) as Record<string, Check>).filter((ch) => ch.ServiceName === service && inCatalog.get(ch.CheckID) !== ch.Output)
    .length;
}

/** `server ADDR:PORT;` lines in the generated nginx file. */
export function renderedServers(c: Contender, p: Phase): number {
  try {
    return readFileSync(c.outputFile(p), "utf8")
      .split("\n")
      .filter((l) => /^\s+server \d/.test(l)).length;
  } catch {
    return 0;
  }
}
