/**
 * `controller` command line. Exit codes: 0 ok, 1 runtime failure or invalid
 * bindings (validate), 2 usage/configuration error.
 */
import { loadConfig, ConfigError } from "../config/config.js";
import { startDockerOnly } from "../app/dockerOnly.js";
import { createLogger, errorMessage, registerSecret } from "../runtime/logger.js";
import { runValidate } from "./validate.js";

const USAGE = `Usage:
  controller --docker-only --bindings DIR [flags]   run the controller (bindings from YAML files)
  controller validate -f FILE|DIR                   check binding files, print every problem

Run flags (environment variable in brackets):
  --docker-only                 read bindings from --bindings instead of Kubernetes
  --bindings DIR                directory of ServiceBinding YAML files [DOCKBIND_BINDINGS_DIR]
  --registrator-compat          also register containers from registrator SERVICE_* labels/env
  --registrator-internal        registrator -internal: container IP + exposed port
  --node NAME                   node identity written as owner meta [DOCKBIND_NODE] (default: hostname)
  --host-ip IP                  address advertised for ports published on 0.0.0.0 [DOCKBIND_HOST_IP] (default 127.0.0.1)
  --docker-host URL             unix:///var/run/docker.sock or tcp://host:port [DOCKER_HOST]
  --consul-addr ADDR            Consul agent HTTP address [CONSUL_HTTP_ADDR] (default 127.0.0.1:8500)
  --consul-token-file FILE      ACL token file [CONSUL_HTTP_TOKEN_FILE]; token itself via [CONSUL_HTTP_TOKEN]
  --lb-output-dir DIR           where generated nginx files go [DOCKBIND_LB_OUTPUT_DIR] (default /etc/nginx/conf.d)
  --template-dir DIR            custom templates [DOCKBIND_TEMPLATE_DIR] (default: the bindings directory)
  --nginx-bin PATH              nginx binary [DOCKBIND_NGINX_BIN] (default nginx)
  --nginx-prefix DIR            nginx -p for -t and reload [DOCKBIND_NGINX_PREFIX]
  --nginx-conf FILE             nginx -c for -t and reload [DOCKBIND_NGINX_CONF]
  --resync DURATION             full resync period [DOCKBIND_RESYNC] (default 30s)
  --wait-min / --wait-max D     render debounce, like consul-template's wait (default 100ms / 1s)
  --workers N                   registrar workers [DOCKBIND_WORKERS] (default 2)
  --log-level LEVEL             error|warn|info|debug [DOCKBIND_LOG_LEVEL] (default info)
  --log-format FORMAT           json|text [DOCKBIND_LOG_FORMAT] (default json, text on a TTY)
`;

async function main(argv: readonly string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === "validate") return runValidate(rest);
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
  if (!config.dockerOnly) {
    process.stderr.write("controller: Kubernetes mode is not available in this build; run with --docker-only\n");
    return 2;
  }
  registerSecret(config.consul.token);
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  const abort = new AbortController();
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.once(sig, () => {
      logger.info("shutting down", { signal: sig });
      abort.abort();
    });
  }
  const app = startDockerOnly(config, logger, abort.signal);
  await app.done;
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
