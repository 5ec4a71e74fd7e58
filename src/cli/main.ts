/**
 * `controller` command line. Exit codes: 0 ok, 1 runtime failure or invalid
 * bindings (validate), 2 usage/configuration error.
 */
import { loadConfig, ConfigError, type Config } from "../config/config.js";
import { ConsulTokenFile } from "../config/consulToken.js";
import { flagHelp } from "../config/options.js";
import { createLogger, errorMessage, registerSecret, type Logger } from "../runtime/logger.js";
import { aborted, type Runnable } from "../runtime/manager.js";
import { runValidate } from "./validate.js";

const COMMANDS = `Usage:
  controller --docker-only --bindings DIR [flags]   run the controller (bindings from YAML files)
  controller [flags]                                run the controller in Kubernetes mode (ServiceBinding objects)
  controller validate -f FILE|DIR                   check binding files, print every problem
  controller plan -f DIR [--output text|json]       show what a run would register, deregister and render; changes nothing
  controller status [--addr HOST:PORT]              bindings, backends and conditions of a running controller
  controller maint enable|disable --binding NS/NAME (--container NAME|ID | --all) [--reason TEXT]
                                                    put backends into Consul maintenance or out (docker-only; remembered)
  Every subcommand takes --help. Exit codes: 0 ok, 1 failure (invalid bindings, unreachable peer), 2 usage error.
`;

/** The whole `controller --help`: commands, then every option from the option table. */
const USAGE = `${COMMANDS}\n${flagHelp()}`;

async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === "validate") return runValidate(rest);
  // Modules are loaded on demand: a subcommand does not pay for the controller's (seconds under tsx).
  if (first === "plan") return (await import("./plan.js")).runPlan(rest);
  if (first === "status") return (await import("./status.js")).runStatus(rest);
  if (first === "maint") return (await import("./maint.js")).runMaint(rest);
  if (first === "--help" || first === "-h" || first === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  let config;
  try {
    config = loadConfig(argv);
  } catch (err) {
    process.stderr.write(`controller: ${errorMessage(err)}\n\n${err instanceof ConfigError ? USAGE : ""}`);
    return 2;
  }
  registerSecret(config.consul.token);
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, defaultMeta: { node: config.node } });
  const abort = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      logger.info("shutting down", { signal: sig });
      abort.abort();
    });
  }
  // One token holder for every Consul client of the process, following --consul-token-file until shutdown.
  const tokenFile = config.consul.tokenFile;
  const consulToken =
    tokenFile !== undefined && config.consul.token !== undefined ? new ConsulTokenFile({ path: tokenFile, initial: config.consul.token, logger }) : undefined;
  const runnables = [httpRunnable(config, logger), ...(consulToken !== undefined ? [tokenRunnable(consulToken)] : [])];
  const app = { runnables, ...(consulToken !== undefined ? { consulToken } : {}) };
  const start = config.dockerOnly ? (await import("../app/dockerOnly.js")).startDockerOnly : (await import("../app/kubernetes.js")).startKubernetes;
  const code = await start(config, logger, abort.signal, app).done;
  // Leadership lost or a part failed: exit now, dropping in-flight work (a non-leader must not write).
  if (code !== 0) process.exit(code);
  return 0;
}

/** /metrics, /healthz, /readyz and the status page, on every replica; a listen failure stops the controller. */
function httpRunnable(config: Readonly<Config>, logger: Logger): Runnable {
  return {
    name: "http",
    needsLeadership: false,
    start: async (signal) => {
      let http;
      try {
        http = await (await import("../api/http/serve.js")).serveTelemetry(config, logger);
      } catch (err) {
        logger.error("cannot serve metrics and status", { action: "listen", error: errorMessage(err) });
        throw err;
      }
      await aborted(signal);
      await http?.close();
    },
  };
}

/** Follows --consul-token-file on every replica. */
function tokenRunnable(consulToken: ConsulTokenFile): Runnable {
  return { name: "consul-token-file", needsLeadership: false, start: (signal) => consulToken.run(signal) };
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`controller: fatal: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  },
);
