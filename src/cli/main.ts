/**
 * `controller` command line. Exit codes: 0 ok, 1 runtime failure or invalid
 * bindings (validate), 2 usage/configuration error.
 */
import { loadConfig, ConfigError } from "../config/config.js";
import { ConsulTokenFile } from "../config/consulToken.js";
import { flagHelp } from "../config/options.js";
import { createLogger, errorMessage, registerSecret } from "../runtime/logger.js";
import { runValidate } from "./validate.js";

const COMMANDS = `Usage:
  controller --docker-only --bindings DIR [flags]   run the controller (bindings from YAML files)
  controller [flags]                                run the controller in Kubernetes mode (ServiceBinding objects)
  controller validate -f FILE|DIR                   check binding files, print every problem
  controller plan -f DIR [--output text|json]       show what a run would register, deregister and render; changes nothing
  controller status [--addr HOST:PORT]              bindings, backends and conditions of a running controller
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
  let http;
  try {
    http = await (await import("../api/http/serve.js")).serveTelemetry(config, logger);
  } catch (err) {
    logger.error("cannot serve metrics and status", { action: "listen", error: errorMessage(err) });
    return 1;
  }
  // One token holder for every Consul client of the process, following --consul-token-file until shutdown.
  const tokenFile = config.consul.tokenFile;
  const consulToken = tokenFile !== undefined && config.consul.token !== undefined ? new ConsulTokenFile({ path: tokenFile, initial: config.consul.token, logger }) : undefined;
  const tokenWatch = consulToken?.run(abort.signal);
  if (!config.dockerOnly) {
    const { startKubernetes } = await import("../app/kubernetes.js");
    const code = await startKubernetes(config, logger, abort.signal, consulToken).done;
    await http?.close();
    // Lease lost: exit now, dropping in-flight work (a non-leader must not write).
    if (code !== 0) process.exit(code);
    await tokenWatch;
    return 0;
  }
  const { startDockerOnly } = await import("../app/dockerOnly.js");
  const code = await startDockerOnly(config, logger, abort.signal, consulToken).done;
  await http?.close();
  // Leader lock lost: exit now, dropping in-flight work (a non-leader must not write).
  if (code !== 0) process.exit(code);
  await tokenWatch;
  return 0;
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
