/**
 * Real Consul dev agents (`consul agent -dev`) for integration tests.
 *
 * Each agent binds only 127.0.0.1 with every port freshly chosen (gRPC off),
 * so several can run side by side. NOTE: even in dev mode an agent given a
 * -data-dir persists API-registered services and checks there and reloads them
 * on start, so `restart()` wipes them (and the node id) to really lose state.
 * The agent is tracked by procs.ts: it is killed when the test process exits.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { httpGet } from "./http.js";
import { ensureBedRoot, startManaged, type ManagedProcess } from "./procs.js";
import { distinctPorts, waitFor } from "./wait.js";

export interface ConsulOptions {
  /** Node name (default `dockbind-testbed`). */
  readonly node?: string;
  /** Readiness timeout per start (default 30 s). */
  readonly readyTimeoutMs?: number;
  /** `-datacenter` (default Consul's dc1). */
  readonly datacenter?: string;
  /** A single-server non-dev agent (`-server -bootstrap-expect 1`) instead of `-dev`: what a WAN federation is made of. */
  readonly server?: boolean;
  /** `-retry-join-wan` address (`127.0.0.1:<the other server's serf WAN port>`): WAN-federates the datacenters. */
  readonly joinWan?: string;
}

export interface ConsulPorts {
  readonly http: number;
  readonly dns: number;
  readonly serfLan: number;
  readonly serfWan: number;
  readonly server: number;
}

export interface ConsulHandle {
  /** `127.0.0.1:PORT` (what the consul client library and CONSUL_HTTP_ADDR take). */
  readonly httpAddr: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly node: string;
  readonly ports: ConsulPorts;
  readonly dataDir: string;
  /** stdout+stderr of every run of this agent (appended across restarts). */
  readonly logFile: string;
  /** SIGTERM, wait for exit (SIGKILL after 10 s). Idempotent. */
  stop(): Promise<void>;
  /** stop() then start again on the same ports and wait for a leader; all state is lost. */
  restart(): Promise<void>;
  /** SIGKILL now, without waiting (simulates a crash). */
  kill(): void;
}

/** Starts an agent and resolves once it has a leader and /v1/agent/self answers. */
export async function startConsul(opts: ConsulOptions = {}): Promise<ConsulHandle> {
  const node = opts.node ?? "dockbind-testbed";
  const timeoutMs = opts.readyTimeoutMs ?? 30_000;
  const dir = join(ensureBedRoot(), `consul-${randomBytes(4).toString("hex")}`);
  const dataDir = join(dir, "data");
  mkdirSync(dataDir, { recursive: true });
  const logFile = join(dir, "consul.log");

  // freePort is racy (and TCP-only while serf/dns also use UDP): retry with new ports.
  let lastErr: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const ports = await pickPorts();
    const args = [...agentArgs(node, dataDir, ports, opts.server === true), ...federationArgs(opts)];
    try {
      let proc = await launch(args, ports.http, logFile, timeoutMs);
      const handle: ConsulHandle = {
        httpAddr: `127.0.0.1:${ports.http}`,
        url: `http://127.0.0.1:${ports.http}`,
        node,
        ports,
        dataDir,
        logFile,
        stop: async () => {
          await proc.stop("SIGTERM", 10_000);
        },
        restart: async () => {
          await proc.stop("SIGTERM", 10_000);
          for (const d of ["services", "checks", "node-id"]) rmSync(join(dataDir, d), { recursive: true, force: true });
          proc = await launch(args, ports.http, logFile, timeoutMs);
        },
        kill: () => {
          proc.kill();
        },
      };
      return handle;
    } catch (err) {
      lastErr = err;
    }
  }
  throw lastErr instanceof Error ? lastErr : new Error(String(lastErr));
}

async function pickPorts(): Promise<ConsulPorts> {
  const next = distinctPorts();
  return { http: await next(), dns: await next(), serfLan: await next(), serfWan: await next(), server: await next() };
}

function federationArgs(opts: ConsulOptions): string[] {
  return [...(opts.datacenter !== undefined ? ["-datacenter", opts.datacenter] : []), ...(opts.joinWan !== undefined ? ["-retry-join-wan", opts.joinWan] : [])];
}

function agentArgs(node: string, dataDir: string, p: ConsulPorts, server: boolean): string[] {
  return [
    "agent",
    ...(server ? ["-server", "-bootstrap-expect", "1"] : ["-dev"]),
    "-bind",
    "127.0.0.1",
    "-client",
    "127.0.0.1",
    "-advertise",
    "127.0.0.1",
    "-http-port",
    String(p.http),
    "-dns-port",
    String(p.dns),
    "-serf-lan-port",
    String(p.serfLan),
    "-serf-wan-port",
    String(p.serfWan),
    "-server-port",
    String(p.server),
    "-grpc-port",
    "-1",
    // -dev logs at DEBUG: a "Service in sync" line per service and anti-entropy pass, which also slows
    // the agent. Request errors (ACL denials the token tests read) are ERROR lines.
    "-log-level",
    "info",
    "-data-dir",
    dataDir,
    "-node",
    node,
  ];
}

/** Spawns the agent and waits for readiness; kills it and rejects if it dies or times out. */
async function launch(args: readonly string[], httpPort: number, logFile: string, timeoutMs: number): Promise<ManagedProcess> {
  const proc = startManaged("consul", args, logFile);
  const base = `http://127.0.0.1:${httpPort}`;
  const died = new AbortController();
  void proc.exited.then((info) => {
    died.abort(new Error(`consul exited early (code ${String(info.code)}, signal ${String(info.signal)}), see ${logFile}`));
  });
  try {
    await waitFor(
      async () => {
        const leader = await httpGet(`${base}/v1/status/leader`, 2_000);
        if (leader.status !== 200 || (JSON.parse(leader.body) as unknown) === "") return undefined;
        const self = await httpGet(`${base}/v1/agent/self`, 2_000);
        return self.status === 200 || undefined;
      },
      { timeoutMs, intervalMs: 100, what: `consul leader on 127.0.0.1:${httpPort} (log ${logFile})`, signal: died.signal },
    );
  } catch (err) {
    await proc.stop("SIGKILL");
    throw err;
  }
  return proc;
}
