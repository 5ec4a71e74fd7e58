/**
 * `controller --docker-only`: the manager with bindings read from a directory
 * of YAML files.
 *
 * With --leader-elect true, candidates sharing the same Docker engine(s),
 * bindings and Consul elect one leader through a Consul session lock
 * (consulSessionLock.ts): only the leader runs the manager (reads Docker,
 * writes Consul and LB files); a candidate that loses the lock stops at once
 * and the process exits non-zero, as in Kubernetes mode. Without it the one
 * controller always leads.
 */
import { createConsulClient } from "../clients/consul/client.js";
import { ConsulSessionLock } from "../actuators/consul/consulSessionLock.js";
import type { Config } from "../config/config.js";
import type { ConsulTokenFile } from "../config/consulToken.js";
import { processTelemetry, setLeaderElectionMaster } from "../observability/telemetry.js";
import { runElection } from "../runtime/leaderElection.js";
import type { Logger } from "../runtime/logger.js";
import { FileBindingSource } from "../sources/files/fileBindingSource.js";
import { consulConnection } from "./consulConnection.js";
import { startManager } from "./manager.js";

export interface DockerOnlyApp {
  /** Resolves with the process exit code: 0 after a normal stop, 1 when the leader lock was lost. */
  readonly done: Promise<number>;
}

/** `consulToken`: the process's rotating token holder (--consul-token-file), shared by every Consul client. */
export function startDockerOnly(config: Readonly<Config>, logger: Logger, signal: AbortSignal, consulToken?: ConsulTokenFile): DockerOnlyApp {
  const election = config.consulLeaderElection;
  if (election === undefined) {
    setLeaderElectionMaster(true); // the only controller for its engines: it always leads
    return { done: runManager(config, logger, signal, consulToken) };
  }
  setLeaderElectionMaster(false);
  logger.info("docker-only leader election", { lock: election.name, identity: election.identity, consul: config.consul.url });
  const lock = new ConsulSessionLock({
    consul: createConsulClient({ ...consulConnection(config.consul, consulToken), timeoutMs: 5_000 }),
    name: election.name,
    identity: election.identity,
    logger,
    onNewLeader: (holder) => {
      logger.info("leader observed", { holder: holder === "" ? "(none)" : holder, self: holder === election.identity });
    },
  });
  const hooks = {
    identity: election.identity,
    logger,
    onLeaderChange: (leading: boolean) => {
      setLeaderElectionMaster(leading);
    },
  };
  return { done: runElection(lock, hooks, signal, (leaderSignal) => runManager(config, logger, leaderSignal, consulToken).then(() => undefined)).then((o) => (o === "lost" ? 1 : 0)) };
}

/** The manager until `signal` aborts; resolves 0. */
async function runManager(config: Readonly<Config>, logger: Logger, signal: AbortSignal, consulToken: ConsulTokenFile | undefined): Promise<number> {
  const manager = startManager({
    config,
    logger,
    signal,
    ...(consulToken !== undefined ? { consulToken } : {}),
    bindingSource: (onChange) =>
      new FileBindingSource({
        dir: config.bindingsDir,
        logger,
        onChange,
        deleteDelayMs: config.deleteDelayMs,
        onMassDeletion: () => {
          processTelemetry().metrics.massDeletions.inc();
        },
      }),
  });
  await manager.done;
  return 0;
}
