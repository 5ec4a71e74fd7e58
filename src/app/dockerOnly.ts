/**
 * `controller --docker-only`: the pipeline with bindings read from a
 * directory of YAML files, run by one Manager.
 *
 * With --leader-elect true, candidates sharing the same Docker engine(s),
 * bindings and Consul elect one leader through a Consul session lock
 * (consulSessionLock.ts): only the leader runs the pipeline (reads Docker,
 * writes Consul and LB files); a candidate that loses the lock stops at once
 * and the process exits non-zero, as in Kubernetes mode. Without it the one
 * controller always leads. The process's runnables (HTTP server) run on every
 * candidate.
 */
import { createConsulClient } from "../clients/consul/client.js";
import { ConsulSessionLock } from "../actuators/consul/consulSessionLock.js";
import type { Config } from "../config/config.js";
import { processTelemetry, setLeaderElectionMaster } from "../observability/telemetry.js";
import type { Logger } from "../runtime/logger.js";
import { Manager, type ManagerElection } from "../runtime/manager.js";
import { FileBindingSource } from "../sources/files/fileBindingSource.js";
import { exitCode, type AppOptions } from "./app.js";
import { consulConnection } from "./consulConnection.js";
import { buildPipeline } from "./pipeline.js";

export interface DockerOnlyApp {
  /** Resolves with the process exit code: 0 after a normal stop, 1 when the leader lock was lost or a part failed. */
  readonly done: Promise<number>;
}

/** Builds everything, then runs it until `signal` aborts. */
export function startDockerOnly(config: Readonly<Config>, logger: Logger, signal: AbortSignal, app: AppOptions = {}): DockerOnlyApp {
  const { consulToken } = app;
  const pipeline = buildPipeline({
    config,
    logger,
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
  const election = consulElection(config, logger, app);
  setLeaderElectionMaster(election === undefined); // without an election the only controller for its engines always leads
  const manager = new Manager({ logger, ...(election !== undefined ? { election } : {}) });
  manager.add(...(app.runnables ?? []), ...pipeline.runnables);
  return { done: manager.run(signal).then(exitCode) };
}

/**
 * The Consul session lock of --leader-elect, or undefined without it. The
 * lock has a Consul client of its own with a 5 s request timeout, so a hung
 * agent cannot hold a renewal past the session's TTL.
 */
function consulElection(config: Readonly<Config>, logger: Logger, app: AppOptions): ManagerElection | undefined {
  const election = config.consulLeaderElection;
  if (election === undefined) return undefined;
  logger.info("docker-only leader election", { lock: election.name, identity: election.identity, consul: config.consul.url });
  const lock = new ConsulSessionLock({
    consul: createConsulClient({ ...consulConnection(config.consul, app.consulToken), timeoutMs: 5_000 }),
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
  return { lock, hooks };
}
