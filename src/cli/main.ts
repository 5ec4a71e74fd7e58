/**
 * `controller` command line. Exit codes: 0 ok, 1 runtime failure or invalid
 * bindings (validate), 2 usage/configuration error.
 */
import { loadConfig, ConfigError, type Config } from "../config/config.js";
import { ConsulTokenFile } from "../config/consulToken.js";
import { createLogger, errorMessage, registerSecret, type Logger } from "../runtime/logger.js";
import { aborted, type Runnable } from "../runtime/manager.js";
import { runValidate } from "./validate.js";

const USAGE = `Usage:
  controller --docker-only --bindings DIR [flags]   run the controller (bindings from YAML files)
  controller [flags]                                run the controller in Kubernetes mode (ServiceBinding objects)
  controller validate -f FILE|DIR                   check binding files, print every problem
  controller plan -f DIR [--output text|json]       show what a run would register, deregister and render; changes nothing
  controller status [--addr HOST:PORT]              bindings, backends and conditions of a running controller
  Every subcommand takes --help. Exit codes: 0 ok, 1 failure (invalid bindings, unreachable peer), 2 usage error.

Kubernetes mode flags (without --docker-only):
  --kubeconfig FILE             kubeconfig [KUBECONFIG]; default: in-cluster ServiceAccount, then ~/.kube/config
  --kube-context NAME           kubeconfig context (default: current-context)
  --watch-namespace NS[,NS]     watch, read and write ServiceBindings (status, finalizer, Events) of these namespaces
                                only, repeatable; needs only Roles there [DOCKBIND_WATCH_NAMESPACES: comma-separated]
                                (default: all namespaces, needs a ClusterRole). --namespace NS [DOCKBIND_NAMESPACE]
                                is a deprecated alias that adds one namespace
  --lease-namespace NS          namespace of the Lease; needs a Role there for leases (create; get, update)
                                [DOCKBIND_LEASE_NAMESPACE] (default: POD_NAMESPACE, the ServiceAccount's namespace, or default)

Leader election (both modes):
  --leader-elect true|false     one leader among several controllers [DOCKBIND_LEADER_ELECT]: a Lease in Kubernetes
                                mode (default true), a Consul session lock on dockbind/leader/NAME with
                                --docker-only (default false)
  --lease-name NAME             the Lease's or the Consul lock's name [DOCKBIND_LEASE_NAME] (default dockbind-controller)
  --leader-identity ID          holder identity [POD_NAME] (default: hostname_random)

Run flags (environment variable in brackets):
  --docker-only                 read bindings from --bindings instead of Kubernetes
  --bindings DIR                directory of ServiceBinding YAML files [DOCKBIND_BINDINGS_DIR]
  --registrator-compat          also register containers from registrator SERVICE_* labels/env
  --registrator-internal        registrator -internal: container IP + exposed port
  --registrator-explicit        registrator -explicit: only ports with SERVICE_NAME / SERVICE_<port>_NAME
  --node NAME                   node identity written as owner meta [DOCKBIND_NODE] (default: hostname)
  --instance-id ID              this installation's identity in owner meta [DOCKBIND_INSTANCE_ID] (default: derived from
                                the bindings directory, or from the Lease in Kubernetes mode; stable across restarts)
  --adopt ID[,ID]               take over the registrations under our node made by this Docker engine ID or instance ID
                                (a controller moved to a new engine or instance ID), repeatable [DOCKBIND_ADOPT]
  --host-ip IP                  address advertised for ports published on 0.0.0.0 [DOCKBIND_HOST_IP] (default 127.0.0.1)
  --docker-host URL             unix:///var/run/docker.sock or tcp://host:port [DOCKER_HOST]
  --docker-cert-path DIR        tcp+TLS: ca.pem, cert.pem, key.pem [DOCKER_CERT_PATH]; DOCKER_TLS_VERIFY=0 skips server verification
  --consul-addr ADDR[,ADDR]     Consul agent(s), repeatable, failover in order [CONSUL_HTTP_ADDR: one] (default 127.0.0.1:8500)
  --consul-token-file FILE      ACL token file [CONSUL_HTTP_TOKEN_FILE], re-read when it changes (a rotated token is
                                used without a restart); token itself via [CONSUL_HTTP_TOKEN]
  --consul-cacert FILE          CA for HTTPS to Consul [CONSUL_CACERT]
  --consul-client-cert FILE     client certificate (+ --consul-client-key FILE) [CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY]
  --lb-output-dir DIR           where generated nginx files go [DOCKBIND_LB_OUTPUT_DIR] (default /etc/nginx/conf.d)
  --lb-file-mode MODE           mode of generated files, octal, never world-writable [DOCKBIND_LB_FILE_MODE] (default 0644)
  --lb-file-owner UID:GID       numeric owner of generated files [DOCKBIND_LB_FILE_OWNER] (default: the controller's user)
  --template-dir DIR            custom templates [DOCKBIND_TEMPLATE_DIR] (default: the bindings directory)
  --nginx-bin PATH              nginx binary [DOCKBIND_NGINX_BIN] (default nginx)
  --nginx-prefix DIR            nginx -p for -t and reload [DOCKBIND_NGINX_PREFIX]
  --nginx-conf FILE             nginx -c for -t and reload [DOCKBIND_NGINX_CONF]
  --haproxy-config FILE         haproxy main config [DOCKBIND_HAPROXY_CONFIG] (default /etc/haproxy/haproxy.cfg)
  --haproxy-output-dir DIR      kind: haproxy files (*.cfg) [DOCKBIND_HAPROXY_OUTPUT_DIR] (default /etc/haproxy/conf.d)
  --haproxy-master-socket FILE  haproxy master CLI, for reload [DOCKBIND_HAPROXY_MASTER_SOCKET] (default /run/haproxy-master.sock)
  --haproxy-bin PATH            haproxy binary [DOCKBIND_HAPROXY_BIN] (default haproxy)
  --resync DURATION             full resync period [DOCKBIND_RESYNC] (default 30s)
  --drain-delay DURATION        graceful drain: a container stays out of Consul this long after its kill/stop event,
                                before it dies [DOCKBIND_DRAIN_DELAY] (default 10s; 0s = off)
  --delete-delay DURATION       a binding removed from --bindings (file or document gone) is deleted only after it stayed
                                absent this long; back earlier = nothing happens [DOCKBIND_DELETE_DELAY] (default 10s; 0s = at once)
  --swarm-resync DURATION       Swarm services/tasks/nodes re-list period [DOCKBIND_SWARM_RESYNC] (default 2s)
  --wait-min / --wait-max D     render debounce, like consul-template's wait (default 100ms / 1s)
  --min-reload-interval D       at most one LB reload per D; bursts coalesce [DOCKBIND_MIN_RELOAD_INTERVAL] (default 1s)
  --max-reload-interval D       within a burst, additions after the second reload are D apart, removals at most
                                --min-reload-interval; reset after a quiet period
                                [DOCKBIND_MAX_RELOAD_INTERVAL] (default 4s; <= --min-reload-interval: constant interval)
  --workers N                   registrar workers [DOCKBIND_WORKERS] (default 2)
  --log-level LEVEL             error|warn|info|debug [DOCKBIND_LOG_LEVEL] (default info)
  --log-format FORMAT           json|text [DOCKBIND_LOG_FORMAT] (default json, text on a TTY)
  --metrics-addr HOST:PORT      /metrics, /healthz, /readyz, /api/status and the status page on / [DOCKBIND_METRICS_ADDR]
                                (default 127.0.0.1:9464; "off" disables)
`;

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
  // One token holder for every Consul client of the process, following --consul-token-file until shutdown.
  const tokenFile = config.consul.tokenFile;
  const consulToken = tokenFile !== undefined && config.consul.token !== undefined ? new ConsulTokenFile({ path: tokenFile, initial: config.consul.token, logger }) : undefined;
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
