/**
 * A second, private Docker engine for multi-endpoint tests:
 * a real `dockerd` beside the shared one, with its own socket, data-root,
 * exec-root, containerd namespace and a bridge this helper creates
 * (172.31.251.0/24 by default: a network the test makes itself). It manages
 * no iptables rules (--iptables=false), so it never touches the shared
 * daemon's chains; published ports go through docker-proxy on 127.0.0.1.
 *
 * restart() stops the daemon and starts it again on the same socket and
 * state: containers without a restart policy are gone, `--restart always`
 * ones come back (on new host ports when published on port 0). It touches
 * only this private engine, never the shared one.
 *
 * Containers of a private engine publish on hostPort()'s ports, not on the
 * engine's own pick: every engine walks the same range of host ports from its
 * start, so a private engine's next pick is often a port the shared engine
 * holds. runBackend() does so by itself.
 *
 * stop() stops the daemon (and its containers), deletes the bridge and the
 * state directory. A test MUST call it in after().
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { runBackend, type Backend, type BackendOptions } from "./docker.js";
import { docker, run, type RunResult } from "./exec.js";
import { ensureBackendImage } from "./image.js";
import { ensureBedRoot, startManaged, type ManagedProcess } from "./procs.js";
import { distinctPorts, waitFor } from "./wait.js";

export interface ExtraDockerd {
  /** unix:///…/docker.sock */
  readonly host: string;
  /** The socket path of `host`. */
  readonly socket: string;
  /** Runs the docker CLI against this engine. */
  docker(args: readonly string[], opts?: { readonly check?: boolean }): Promise<RunResult>;
  /**
   * A host port for one of this engine's containers: freePort's pick (outside the range engines allocate
   * from), never one this engine was already given, so concurrent starts cannot be handed the same port.
   */
  hostPort(): Promise<number>;
  /** test/support/docker.ts's runBackend on this engine; published on hostPort() unless `hostPort` is given. */
  runBackend(opts: Omit<BackendOptions, "dockerHost">): Promise<Backend>;
  /** Stops the daemon (SIGTERM: it stops its containers) and starts it again on the same socket and state; resolves once it answers. */
  restart(): Promise<void>;
  /** Stops the daemon and removes the bridge and all of its state. */
  stop(): Promise<void>;
}

export interface ExtraDockerdOptions {
  /** Short name (bridge `dkbind-<name>`, at most 8 characters). */
  readonly name: string;
  /** Gateway address/prefix of the bridge. */
  readonly bridgeCidr?: string;
}

export async function startExtraDockerd(opts: ExtraDockerdOptions): Promise<ExtraDockerd> {
  if (!/^[a-z0-9]{1,8}$/.test(opts.name)) throw new Error(`extra dockerd name ${opts.name}: 1-8 lowercase letters/digits`);
  const dir = join(ensureBedRoot(), `dockerd-${opts.name}-${process.pid}`);
  const socket = join(dir, "docker.sock");
  const host = `unix://${socket}`;
  const bridge = `dkbind-${opts.name}`;
  mkdirSync(dir, { recursive: true });
  await run("ip", ["link", "del", bridge]); // a leftover of an interrupted run
  await run("ip", ["link", "add", bridge, "type", "bridge"], { check: true });
  await run("ip", ["addr", "add", opts.bridgeCidr ?? "172.31.251.1/24", "dev", bridge], { check: true });
  await run("ip", ["link", "set", bridge, "up"], { check: true });

  const dockerHere = (args: readonly string[], o: { readonly check?: boolean } = {}): Promise<RunResult> =>
    docker(host, args, { check: o.check ?? false, timeoutMs: 120_000 });
  const args = [
    "--host",
    host,
    "--data-root",
    join(dir, "data"),
    "--exec-root",
    join(dir, "exec"),
    "--pidfile",
    join(dir, "docker.pid"),
    "--bridge",
    bridge,
    "--iptables=false",
    "--ip-masq=false",
    "--containerd-namespace",
    `dockbind-${opts.name}`,
    "--containerd-plugins-namespace",
    `dockbind-${opts.name}-plugins`,
  ];
  const launch = async (): Promise<ManagedProcess> => {
    const p = startManaged("dockerd", args, join(dir, "dockerd.log"));
    await waitFor(async () => ((await dockerHere(["info", "--format", "{{.ServerVersion}}"])).code === 0 ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 250,
      what: `extra dockerd ${opts.name} (log ${join(dir, "dockerd.log")})`,
    });
    return p;
  };
  const hostPort = distinctPorts();
  let proc = await launch();
  // The backend image, imported into this engine from the same recipe (no registry here; the shared engine is not asked).
  await ensureBackendImage(host);
  return {
    host,
    socket,
    docker: dockerHere,
    hostPort,
    runBackend: async (o) =>
      runBackend({ ...o, dockerHost: host, ...((o.publish ?? "published") === "published" ? { hostPort: o.hostPort ?? (await hostPort()) } : {}) }),
    restart: async () => {
      await proc.stop("SIGTERM", 30_000);
      proc = await launch();
    },
    stop: async () => {
      // SIGTERM: dockerd stops its containers, then its containerd; leftovers of its group are killed after 30 s.
      await proc.stop("SIGTERM", 30_000);
      await run("ip", ["link", "del", bridge]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
