/** `controller --docker-only`: the manager with bindings read from a directory of YAML files. */
import type { Config } from "../config/config.js";
import type { Logger } from "../runtime/logger.js";
import { FileBindingSource } from "../sources/files/fileBindingSource.js";
import { startManager, type Manager } from "./manager.js";
import { processTelemetry, setLeaderElectionMaster } from "../observability/telemetry.js";

export function startDockerOnly(config: Readonly<Config>, logger: Logger, signal: AbortSignal): Manager {
  setLeaderElectionMaster(true); // one controller per Docker host: it always leads
  return startManager({
    config,
    logger,
    signal,
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
}
