/**
 * The failure table's stacks (bench/failures.ts): dockbind and registrator +
 * consul-template, each with its own Consul dev agent and nginx (startWorld),
 * both watching one private Docker engine (test/support/extraDockerd.ts), so
 * that the engine can be restarted and put in swarm mode without touching the
 * shared one. Unlike bench/lib/contender.ts, the registering program of each
 * stack can be killed and started again (the dockbind controller, which also
 * renders; registrator, while consul-template keeps running).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import Docker from "dockerode";
import { startConsulProxy } from "../../test/support/consulProxy.js";
import { TEST_LABEL } from "../../test/support/docker.js";
import type { ExtraDockerd } from "../../test/support/extraDockerd.js";
import type { ExitInfo, ManagedProcess } from "../../test/support/procs.js";
import { freePort } from "../../test/support/wait.js";
import type { World } from "../../test/support/world.js";
import { anchorBinary, startRegistrator } from "./anchors.js";
import { consulTemplateIn, DOCKBIND_EXTRA_ARGS, WAIT_MAX, WAIT_MIN, type Contender, type Phase } from "./contender.js";
import type { ConsulEntry, LiveBackend } from "./failMeasure.js";

export interface Engine extends ExtraDockerd {
  readonly api: Docker;
}

export function engineOf(d: ExtraDockerd): Engine {
  return { ...d, api: new Docker({ socketPath: d.socket }) };
}

export interface FailContender extends Contender {
  /** True while the registering program runs. */
  registrarAlive(): boolean;
  /** How the registering program's last run ended, once it has: when (performance.now()) and its log's last line then. */
  registrarExit(): Exit | undefined;
  /** Times a supervisor started the registering program again after it exited on its own. */
  supervisedRestarts(): number;
  /** SIGKILL the registering program (a crash: nothing is deregistered on the way out). */
  killRegistrar(): Promise<void>;
  /** Starts the registering program again (same flags). */
  startRegistrar(): Promise<void>;
}

export type Exit = ExitInfo & {
  readonly at: number;
  /** Last line of its log at exit (timestamp prefix stripped, at most 120 characters). */
  readonly lastLog: string;
};

function tracked(p: ManagedProcess, onExit: (i: Exit) => void): ManagedProcess {
  void p.exited.then((i) => {
    onExit({ ...i, at: performance.now(), lastLog: lastLine(p.logFile) });
  });
  return p;
}

function lastLine(file: string): string {
  try {
    const lines = readFileSync(file, "utf8").trimEnd().split("\n");
    return (lines[lines.length - 1] ?? "").replace(/^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d /, "").slice(0, 120);
  } catch {
    return "";
  }
}

/** dockbind on `engine`, bindings `yaml` (product defaults except the bench's render wait and 30 s resync). */
export async function dockbindOn(world: World, engine: Engine, yaml: string): Promise<FailContender> {
  world.writeFile("bench.yaml", yaml);
  const args = ["--resync", "30s", "--wait-min", WAIT_MIN, "--wait-max", WAIT_MAX, "--docker-host", engine.host, ...DOCKBIND_EXTRA_ARGS];
  let exit: Exit | undefined;
  let proc = tracked((await world.startController(args)).proc, (i) => (exit = i));
  return {
    name: "dockbind",
    world,
    pids: () => [proc.pid],
    proxies: [world.proxy],
    registersWithDockbind: true,
    outputFile: (p) => join(world.nginx.confDir, `${p.service}.conf`),
    listenPort: (p) => p.listenPort,
    supervisedRestarts: () => 0,
    registrarAlive: () => proc.alive(),
    registrarExit: () => exit,
    killRegistrar: async () => {
      await proc.stop("SIGKILL");
    },
    startRegistrar: async () => {
      exit = undefined;
      proc = tracked((await world.startController(args)).proc, (i) => (exit = i));
    },
    stop: async () => {
      await proc.stop();
    },
  };
}

export interface AnchorVariant {
  /** Shown after the contender's name, e.g. "-cleanup". */
  readonly label: string;
  /** More registrator flags (override the defaults). */
  readonly registratorArgs?: readonly string[];
  /** Start registrator again 1 s after it exits on its own (what a `--restart always` container or a service manager does). */
  readonly supervise?: boolean;
}

/**
 * registrator (`-internal -explicit -resync 0`, DOCKER_HOST = the engine) + consul-template, or a
 * variant of it; undefined without the binaries.
 */
export async function anchorOn(world: World, engine: Engine, phase: Phase, variant?: AnchorVariant): Promise<FailContender | undefined> {
  const ct = anchorBinary("consul-template");
  const reg = anchorBinary("registrator");
  if (ct.path === undefined || reg.path === undefined) return undefined;
  const regBin = reg.path;
  const ctProxy = await startConsulProxy(world.consul.httpAddr);
  const port = await freePort();
  const output = `ct-${phase.service}.conf`;
  const ctProc = consulTemplateIn(world, ct.path, ctProxy.addr, [{ service: phase.service, listenPort: port, output }]);
  let exit: Exit | undefined;
  let stopping = false;
  let restarts = 0;
  const launch = (): ManagedProcess =>
    tracked(
      startRegistrator({ bin: regBin, consulAddr: world.proxy.addr, tag: world.node, dockerHost: engine.host, extraArgs: variant?.registratorArgs ?? [] }),
      (i) => {
        exit = i;
        if (variant?.supervise !== true || stopping) return;
        setTimeout(() => {
          if (stopping) return;
          restarts++;
          registrar = launch();
        }, 1000);
      },
    );
  let registrar = launch();
  return {
    name: `registrator+consul-template${variant === undefined ? "" : ` (${variant.label})`}`,
    supervisedRestarts: () => restarts,
    world,
    pids: () => [registrar.pid, ctProc.pid],
    proxies: [world.proxy, ctProxy],
    registersWithDockbind: false,
    outputFile: () => join(world.nginx.confDir, output),
    listenPort: () => port,
    registrarAlive: () => registrar.alive(),
    registrarExit: () => exit,
    killRegistrar: async () => {
      stopping = true;
      await registrar.stop("SIGKILL");
    },
    startRegistrar: () => {
      stopping = false;
      exit = undefined;
      registrar = launch();
      return Promise.resolve();
    },
    stop: async () => {
      stopping = true;
      await Promise.all([ctProc.stop(), registrar.stop()]);
      await ctProxy.close();
    },
  };
}

/** Entries of `service` in the contender's Consul (read from the agent itself, not through the counting proxy); [] while it does not answer. */
export async function entriesOf(c: Contender, service: string): Promise<ConsulEntry[]> {
  try {
    return (await c.world.health(service)).map((e) => ({ id: e.id, address: e.address, port: e.port, status: e.status }));
  } catch {
    return [];
  }
}

interface ListedContainer {
  readonly Names: readonly string[];
  readonly Ports?: readonly { PrivatePort: number; PublicPort?: number; Type: string }[];
  readonly NetworkSettings?: { readonly Networks?: Record<string, { IPAddress?: string }> };
}

/**
 * The running containers labelled `dockbind-bench=<selector>` on the engine, each with the pairs that
 * reach it: every network IP with `port`, and 127.0.0.1 with each host port published for `port`.
 */
export async function liveBackends(engine: Engine, selector: string, port = 80): Promise<LiveBackend[]> {
  const list = (await engine.api.listContainers({ filters: { label: [`dockbind-bench=${selector}`], status: ["running"] } })) as unknown as ListedContainer[];
  return list.map((c) => {
    const ips = Object.values(c.NetworkSettings?.Networks ?? {})
      .map((n) => n.IPAddress ?? "")
      .filter((ip) => ip !== "");
    const published = (c.Ports ?? []).filter((p) => p.PrivatePort === port && p.Type === "tcp" && p.PublicPort !== undefined).map((p) => p.PublicPort);
    return {
      name: (c.Names[0] ?? "?").replace(/^\//, ""),
      keys: [...ips.map((ip) => `${ip}:${port}`), ...new Set(published.map((p) => `127.0.0.1:${String(p)}`))],
    };
  });
}

/** Labels of a bench backend on the private engine (TEST_LABEL: the test bed's teardown knows it). */
export function backendLabels(selector: string): Record<string, string> {
  return { [TEST_LABEL]: "1", "dockbind-test.pid": String(process.pid), "dockbind-bench": selector };
}

/** registrator's declaration of a backend: SERVICE_NAME and the same HTTP check as dockbind's binding. */
export function registratorEnv(service: string, name: string): Record<string, string> {
  return { NAME: name, SERVICE_NAME: service, SERVICE_CHECK_HTTP: "/health/", SERVICE_CHECK_INTERVAL: "1s", SERVICE_CHECK_TIMEOUT: "1s" };
}
