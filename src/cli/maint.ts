/**
 * `controller maint enable|disable --binding NS/NAME (--container NAME|ID | --all) [--reason TEXT]`:
 * per-backend maintenance in docker-only mode, what `consul maint -service=ID` does, remembered.
 *
 * - The declaration goes to Consul KV (`dockbind/maintenance/<node>/<ns>/<name>/<container name | _all>`,
 *   domain/maintenance.ts), keyed by container NAME, so it survives re-registration, resyncs,
 *   controller restarts, a Consul agent that lost its state, and a container replaced by one
 *   with the same name (`docker rm` + `docker run --name`); the controller's registrar re-applies it.
 * - For immediate effect the agent's maintenance of the matching registrations is set at once
 *   (the same call as `consul maint`), KV first on enable and on disable, so the registrar never
 *   sees an undeclared dockbind maintenance.
 * - Takes the controller's connection flags and environment (--consul-addr, CONSUL_HTTP_TOKEN,
 *   --consul-token-file, TLS, --docker-host / --docker-endpoint, --node), so it talks to the
 *   agent the controller registers on, under the controller's node name.
 *
 * Exit codes: 0 done; 1 Consul/Docker unreachable or the container is unknown; 2 usage error.
 */
import { parseArgs } from "node:util";
import { maintenanceReasonProblem } from "../api/v1alpha1/validate.js";
import { createConsulClient } from "../clients/consul/client.js";
import { dockerClient } from "../clients/docker/dockerClient.js";
import { CONTROLLER_FLAGS, ConfigError, loadConfig, type Config } from "../config/config.js";
import { MAINTENANCE_ALL, MAINTENANCE_MARK, maintenanceKvKey } from "../domain/maintenance.js";
import { OWNER_META, type RegisteredService } from "../domain/types.js";
import { errorMessage } from "../runtime/logger.js";
import { consulConnection } from "../app/consulConnection.js";

const USAGE = `Usage: controller maint enable|disable --binding NS/NAME (--container NAME|ID | --all) [--reason TEXT] [controller flags]

Puts one backend (--container) or every backend (--all) of a binding into Consul
maintenance, or takes it out: never rendered while in maintenance. Remembered in
Consul KV under dockbind/maintenance/<node>/ by container name, so a restart of
the controller or of the Consul agent, a resync, or a new container with the same
name (docker rm + docker run --name) keeps it until "maint disable".

  --binding NS/NAME     the binding (namespace "default" when NS/ is left out)
  --container NAME|ID   one container (looked up on the controller's Docker endpoints)
  --all                 every instance of the binding
  --reason TEXT         enable: the reason shown in Consul and the status (default "controller maint")
  Controller flags that matter here (same environment fallbacks as a run):
  --node, --consul-addr, --consul-token-file, --consul-cacert, --consul-client-cert,
  --consul-client-key, --docker-host, --docker-cert-path, --docker-endpoint

Exit codes: 0 done; 1 Consul or Docker unreachable, or no such container; 2 usage error.
`;

const MAINT_FLAGS = {
  ...CONTROLLER_FLAGS,
  binding: { type: "string" },
  container: { type: "string" },
  all: { type: "boolean" },
  reason: { type: "string" },
} as const;
const OWN = new Set(["binding", "container", "all", "reason", "help", "docker-only", "bindings"]);
const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

interface MaintArgs {
  readonly enable: boolean;
  readonly binding: string;
  /** undefined = --all */
  readonly container?: string;
  readonly reason: string;
  readonly config: Readonly<Config>;
}

function parseBinding(value: string | undefined): string {
  if (value === undefined) throw new ConfigError("--binding NS/NAME is required");
  const parts = value.includes("/") ? value.split("/") : ["default", value];
  if (parts.length !== 2 || !parts.every((p) => DNS_LABEL.test(p)))
    throw new ConfigError(`--binding: ${JSON.stringify(value)} is not NAMESPACE/NAME (DNS labels)`);
  return parts.join("/");
}

function parseMaintArgs(argv: readonly string[]): MaintArgs | "help" {
  const { values, tokens, positionals } = parseArgs({ args: [...argv], options: MAINT_FLAGS, strict: true, allowPositionals: true, tokens: true });
  if (values.help === true) return "help";
  const [action, ...extra] = positionals;
  if ((action !== "enable" && action !== "disable") || extra.length > 0) throw new ConfigError("the first argument must be enable or disable");
  const binding = parseBinding(values.binding);
  if ((values.container === undefined) === (values.all !== true)) throw new ConfigError("give exactly one of --container NAME|ID and --all");
  const reason = values.reason ?? "controller maint";
  const problem = maintenanceReasonProblem(reason);
  if (problem !== undefined) throw new ConfigError(`--reason ${problem}`);
  const passOn: string[] = [];
  for (const t of tokens) {
    if (t.kind !== "option" || OWN.has(t.name)) continue;
    passOn.push(`--${t.name}`, ...(t.value !== undefined ? [t.value] : []));
  }
  const config = loadConfig([...passOn, "--docker-only", "--bindings", values.bindings ?? "."]);
  return { enable: action === "enable", binding, ...(values.container !== undefined ? { container: values.container } : {}), reason, config };
}

/** The container named `ref` on one of the controller's Docker endpoints: its node, full ID and name. */
async function findContainer(config: Readonly<Config>, ref: string): Promise<{ node: string; id: string; name: string }> {
  for (const e of config.dockerEndpoints) {
    try {
      const info = await dockerClient(e.host, e.tls).getContainer(ref).inspect();
      return { node: e.node, id: info.Id, name: info.Name.replace(/^\//, "") };
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw new Error(`Docker endpoint ${e.node} (${e.host}): ${errorMessage(err)}`);
    }
  }
  throw new Error(`no container ${JSON.stringify(ref)} on ${config.dockerEndpoints.map((e) => e.node).join(", ")}`);
}

type Consul = ReturnType<typeof createConsulClient>;

/** Declares (or removes) the maintenance in KV, then sets the agent's maintenance of `targets`. */
async function apply(consul: Consul, a: MaintArgs, node: string, target: string, targets: readonly RegisteredService[]): Promise<string[]> {
  const key = maintenanceKvKey(node, a.binding, target);
  const out: string[] = [];
  if (a.enable) {
    await consul.kvPut(key, a.reason);
    out.push(`declared: ${key}`);
  } else if (target === MAINTENANCE_ALL) {
    await consul.kvDelete(maintenanceKvKey(node, a.binding, ""), true);
    out.push(`removed: ${maintenanceKvKey(node, a.binding, "*")}`);
  } else {
    const all = await consul.kvList(maintenanceKvKey(node, a.binding, MAINTENANCE_ALL));
    if (all.length > 0) throw new Error(`binding ${a.binding} is in maintenance with --all on node ${node}: run "maint disable --all" first`);
    await consul.kvDelete(key);
    out.push(`removed: ${key}`);
  }
  for (const s of targets) {
    await consul.setMaintenance(s.id, a.enable, a.enable ? MAINTENANCE_MARK + a.reason : undefined);
    out.push(`${a.enable ? "in maintenance" : "out of maintenance"}: ${s.id} (${s.address}:${s.port})`);
  }
  if (targets.length === 0) out.push("no registration on the agent now: applied by the controller when one is registered");
  return out;
}

async function runMaintOnce(a: MaintArgs): Promise<string[]> {
  const consul = createConsulClient({ ...consulConnection(a.config.consul), timeoutMs: 5000 });
  const services = (await consul.listAgentServices()).filter((s) => s.meta[OWNER_META.binding] === a.binding);
  if (a.container === undefined) {
    const out: string[] = [];
    for (const node of new Set(a.config.dockerEndpoints.map((e) => e.node))) {
      out.push(
        ...(await apply(
          consul,
          a,
          node,
          MAINTENANCE_ALL,
          services.filter((s) => s.meta[OWNER_META.node] === node),
        )),
      );
    }
    return out;
  }
  const c = await findContainer(a.config, a.container);
  const targets = services.filter((s) => s.meta[OWNER_META.node] === c.node && s.meta[OWNER_META.container] === c.id);
  return apply(consul, a, c.node, c.name, targets);
}

export async function runMaint(argv: readonly string[]): Promise<number> {
  let args: MaintArgs | "help";
  try {
    args = parseMaintArgs(argv);
  } catch (err) {
    process.stderr.write(`controller maint: ${errorMessage(err)}\n\n${USAGE}`);
    return 2;
  }
  if (args === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    for (const line of await runMaintOnce(args)) process.stdout.write(`${line}\n`);
  } catch (err) {
    process.stderr.write(`controller maint: ${errorMessage(err)}\n`);
    return 1;
  }
  if (!args.enable) process.stdout.write("note: a binding's spec.maintenance, if any, keeps applying until it is removed from the binding\n");
  return 0;
}
