/**
 * `controller plan -f DIR [--output text|json] [controller flags]`: what a
 * controller run with these bindings would register, update, deregister and
 * render, against the live Docker engine, the live Consul agent and the LB
 * files on disk. Strictly read-only: Docker list+inspect, Consul GETs
 * (agent services, health), file reads. Nothing is registered, written or reloaded.
 *
 * Takes the controller's flags (--node, --host-ip, --docker-host,
 * --consul-addr, --consul-token-file, --lb-output-dir, --template-dir,
 * --registrator-compat, --registrator-internal) with the same environment
 * fallbacks, so the plan is computed for the same identity as the controller.
 *
 * Exit codes: 0 plan printed (with or without changes); 1 invalid binding
 * documents (plan printed for the valid ones, problems on stderr) or Docker /
 * Consul / files unreachable; 2 usage error.
 */
import { readTlsPair } from "../actuators/lb/tlsPair.js";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type Dockerode from "dockerode";
import { createConsulClient } from "../clients/consul/client.js";
import { readIfExists } from "../actuators/lb/atomicFile.js";
import { dockerClient } from "../clients/docker/dockerClient.js";
import { compatOptions, CONTROLLER_FLAGS, ConfigError, loadConfig, type Config, type DockerEndpoint } from "../config/config.js";
import type { SwarmView } from "../domain/swarm.js";
import { swarmDuty, type SwarmEndpoint } from "../app/dockerEndpoint.js";
import { readSwarmOnce } from "../sources/docker/swarmWatcher.js";
import { bindingKey, serviceRefs, type ContainerInfo, type ServiceBinding } from "../domain/types.js";
import { describeServed, servedDatacenter, type ServedDatacenter } from "../domain/failover.js";
import { refKey } from "../sources/consul/healthWatcher.js";
import { ownedFiles } from "../reconcilers/renderer.js";
import { outputPath, renderFor } from "../render/renderFor.js";
import { trafficShares } from "../render/trafficView.js";
import { errorMessage, silentLogger } from "../runtime/logger.js";
import { fromInspect } from "../sources/docker/inspect.js";
import type { BindingProblem } from "../ports/bindingStore.js";
import { formatProblem } from "../sources/files/problems.js";
import { FileBindingSource } from "../sources/files/fileBindingSource.js";
import { computePlan, type PlanEndpoint, type PlanInput, type PlanResult, type RenderedFile } from "./planCompute.js";
import { MAINTENANCE_KV_ROOT } from "../domain/maintenance.js";
import { formatPlanText } from "./planFormat.js";
import { consulConnection } from "../app/consulConnection.js";
import { engineId } from "../app/engineIdentity.js";

const USAGE = `Usage: controller plan -f DIR [--output text|json] [controller flags]

Shows what a controller run with the bindings in DIR would change, against
the live Docker engine, the live Consul agent and the generated files on disk:
  + register / ~ update / - deregister   Consul agent services owned by --node
  + create / ~ update / - remove         load balancer files (unified diff)
Changes nothing: only reads Docker, Consul and files.

  -f, --file DIR        directory of ServiceBinding YAML files
  -o, --output FORMAT   text (default) or json
  Controller flags that matter here (same environment fallbacks as a run):
  --node, --instance-id, --adopt, --host-ip, --docker-host, --consul-addr,
  --consul-token-file, --lb-output-dir, --template-dir, --registrator-compat,
  --registrator-internal, --registrator-explicit

Exit codes: 0 plan printed; 1 invalid bindings (plan shown for the valid ones)
or Docker/Consul unreachable; 2 usage error.
`;

const PLAN_FLAGS = { ...CONTROLLER_FLAGS, file: { type: "string", short: "f" }, output: { type: "string", short: "o" } } as const;
const OWN = new Set(["file", "output", "help", "bindings", "docker-only"]);

interface PlanArgs {
  readonly dir: string;
  readonly output: "text" | "json";
  readonly config: Readonly<Config>;
}

/** Splits plan's own flags from the controller flags, which go through loadConfig (env fallbacks included). */
function parsePlanArgs(argv: readonly string[]): PlanArgs | "help" {
  const { values, tokens } = parseArgs({ args: [...argv], options: PLAN_FLAGS, strict: true, allowPositionals: false, tokens: true });
  if (values.help === true) return "help";
  const dir = values.file ?? values.bindings;
  if (dir === undefined) throw new ConfigError("-f DIR is required");
  const output = values.output ?? "text";
  if (output !== "text" && output !== "json") throw new ConfigError(`--output must be text or json (got ${JSON.stringify(output)})`);
  const passOn: string[] = [];
  for (const t of tokens) {
    if (t.kind !== "option" || OWN.has(t.name)) continue;
    passOn.push(`--${t.name}`, ...(t.value !== undefined ? [t.value] : []));
  }
  return { dir, output, config: loadConfig([...passOn, "--docker-only", "--bindings", dir]) };
}

/** One full list + inspect of running containers (the DockerWatcher's resync, once). */
async function dockerSnapshot(docker: Dockerode): Promise<ContainerInfo[]> {
  const listed = await docker.listContainers({ all: false });
  const out: ContainerInfo[] = [];
  const queue = listed.map((c) => c.Id);
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        try {
          const info = await docker.getContainer(id).inspect();
          if (info.State.Running) out.push(fromInspect(info));
        } catch (err) {
          if ((err as { statusCode?: number }).statusCode !== 404) throw err; // gone between list and inspect
        }
      }
    }),
  );
  return out.sort((a, b) => a.id.localeCompare(b.id));
}

/**
 * The instances the controller would render for `b` now (servedDatacenter(), the renderer's rule):
 * one health read per listed datacenter; a datacenter whose read fails counts as unreachable.
 * Rejects when none answers (Consul unreachable).
 */
async function servedNow(b: ServiceBinding, consul: ReturnType<typeof createConsulClient>): Promise<ServedDatacenter> {
  const refs = serviceRefs(b);
  const errors: unknown[] = [];
  const answers = await Promise.all(
    refs.map((ref) =>
      consul.healthService({ ...ref, waitMs: 0 }).then(
        (res) => ({ key: refKey(ref), instances: res.instances }),
        (err: unknown) => {
          errors.push(err);
          return { key: refKey(ref), instances: [], stale: true };
        },
      ),
    ),
  );
  const byKey = new Map(answers.map((a) => [a.key, a]));
  const served = servedDatacenter(b, (ref) => byKey.get(refKey(ref)));
  if (served === undefined || errors.length === refs.length)
    throw errors[0] instanceof Error ? errors[0] : new Error(`consul health of ${b.spec.service.name}: no answer`);
  return served;
}

async function renderAll(
  bindings: readonly ServiceBinding[],
  config: Readonly<Config>,
  consul: ReturnType<typeof createConsulClient>,
): Promise<RenderedFile[]> {
  const out: RenderedFile[] = [];
  // The controller's renderer writes nginx files to --lb-output-dir (tcp/udp: --nginx-stream-dir) and haproxy files to --haproxy-output-dir.
  const dirs = { nginx: config.lbOutputDir, haproxy: config.haproxy.outputDir, nginxStream: config.nginxStreamDir };
  for (const b of bindings) {
    const lb = b.spec.loadBalancer;
    if (lb === undefined) continue;
    const key = bindingKey(b);
    const path = outputPath(lb, dirs);
    const served = await servedNow(b, consul);
    try {
      const template = lb.template === undefined ? undefined : await readFile(join(config.templateDir, lb.template), "utf8");
      // The pair the controller would install (validated now); plan only reads, it writes no managed copy.
      const tls = lb.tls === undefined ? undefined : await readTlsPair(config.tlsDir, lb.tls, Date.now());
      const file = renderFor(b, served.instances, template, dirs, tls?.hash);
      const dc = describeServed(served);
      // Traffic is shown when it is not an even spread: a split, or a server weight other than 1.
      const weighted = lb.split !== undefined || (file?.result.servers ?? []).some((s) => s.weight !== undefined);
      if (file !== undefined)
        out.push({
          binding: key,
          path: file.path,
          text: file.text,
          ...(weighted ? { traffic: trafficShares(lb.split, file.result.servers) } : {}),
          ...(dc !== "" ? { datacenter: dc } : {}),
        });
    } catch (err) {
      out.push({ binding: key, path, error: errorMessage(err) });
    }
  }
  return out;
}

export interface PlanRun {
  readonly plan: PlanResult;
  readonly problems: readonly BindingProblem[];
}

/** Gathers live state and computes the plan. Reads only. Rejects when Docker, Consul or the bindings dir are unreachable. */
/** One Docker endpoint read once: containers, engine ID, and (when a binding selects Swarm services) its swarm. */
async function planEndpoint(config: Readonly<Config>, e: DockerEndpoint, wantSwarm: boolean): Promise<PlanEndpoint & { readonly cluster?: string }> {
  const docker = dockerClient(e.host, e.tls);
  const [containers, engine] = await Promise.all([dockerSnapshot(docker), engineId(docker)]).catch((err: unknown) => {
    throw new Error(`Docker endpoint ${e.node} (${e.host}): ${errorMessage(err)}`);
  });
  const unreachable = (err: unknown): { readonly view: SwarmView; readonly cluster?: string } => ({
    view: { kind: "unavailable", reason: "SwarmUnreachable", message: `Docker (swarm) unreachable: ${errorMessage(err)}` },
  });
  const swarm = wantSwarm ? await readSwarmOnce(docker).catch(unreachable) : undefined;
  const compat = compatOptions(config, e);
  return {
    node: e.node,
    hostIP: e.hostIP,
    containers,
    owner: { node: e.node, engine, instance: config.instanceId, adopt: config.adopt },
    ...(swarm !== undefined ? { swarm: swarm.view, ...(swarm.cluster !== undefined ? { cluster: swarm.cluster } : {}) } : {}),
    ...(compat !== undefined ? { compat } : {}),
  };
}

/** Endpoints managing the same swarm: only the first serves it, as in the controller (swarmDuty). */
function withSwarmDuty(endpoints: readonly (PlanEndpoint & { readonly cluster?: string })[]): PlanEndpoint[] {
  const stores: SwarmEndpoint[] = endpoints.map((e) => ({ node: e.node, swarm: { view: () => e.swarm ?? NO_SWARM, clusterId: () => e.cluster } }));
  return endpoints.map((e, i) => {
    const self = stores[i];
    return e.swarm === undefined || self === undefined ? e : { ...e, swarm: swarmDuty(self, () => stores).view() };
  });
}

const NO_SWARM: SwarmView = { kind: "unavailable", reason: "SwarmNotSynced", message: "not read" };

/** The agent's maintenance checks and the `controller maint` KV entries (undefined when KV cannot be read, as in the registrar). */
async function readMaintenance(consul: ReturnType<typeof createConsulClient>): Promise<NonNullable<PlanInput["maintenance"]>> {
  const [current, kv] = await Promise.all([consul.agentMaintenance(), consul.kvList(MAINTENANCE_KV_ROOT).catch(() => undefined)]);
  return { current, ...(kv !== undefined ? { kv } : {}) };
}

async function computeLivePlan(config: Readonly<Config>): Promise<PlanRun> {
  const source = new FileBindingSource({ dir: config.bindingsDir, logger: silentLogger(), onChange: () => undefined });
  await source.rescan();
  if (!source.synced()) throw new Error(`cannot read bindings directory ${config.bindingsDir}`);
  const bindings = source.list();
  const consul = createConsulClient({ ...consulConnection(config.consul), timeoutMs: 5000 });
  const wantSwarm = bindings.some((b) => b.spec.backends.swarm !== undefined);
  const [endpoints, agentServices, maintenance, rendered, owned] = await Promise.all([
    Promise.all(config.dockerEndpoints.map((e) => planEndpoint(config, e, wantSwarm))).then(withSwarmDuty),
    consul.listAgentServices(),
    readMaintenance(consul),
    renderAll(bindings, config, consul),
    Promise.all([ownedFiles(config.lbOutputDir), ownedFiles(config.haproxy.outputDir), ownedFiles(config.nginxStreamDir)]).then(
      ([nginx, haproxy, stream]) => new Map([...nginx, ...haproxy, ...stream]),
    ),
  ]);
  const onDisk = new Map<string, string | undefined>();
  for (const path of [...rendered.map((r) => r.path), ...owned.values()]) onDisk.set(path, (await readIfExists(path))?.toString("utf8"));
  const plan = computePlan({
    endpoints,
    bindings,
    agentServices,
    rendered,
    onDisk,
    ownedFiles: owned,
    maintenance,
  });
  return { plan, problems: source.problems() };
}

export async function runPlan(argv: readonly string[]): Promise<number> {
  let args: PlanArgs | "help";
  try {
    args = parsePlanArgs(argv);
  } catch (err) {
    process.stderr.write(`controller plan: ${errorMessage(err)}\n\n${USAGE}`);
    return 2;
  }
  if (args === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  const { config } = args;
  let run: PlanRun;
  try {
    run = await computeLivePlan(config);
  } catch (err) {
    process.stderr.write(`controller plan: ${errorMessage(err)}\n`);
    return 1;
  }
  if (args.output === "json") {
    const doc = { apiVersion: "dockbind.io/plan/v1", node: config.node, instance: config.instanceId, ...run.plan, problems: run.problems };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else {
    process.stdout.write(
      formatPlanText(run.plan, {
        node: config.node,
        bindingsDir: config.bindingsDir,
        docker: config.dockerEndpoints.map((e) => (config.dockerEndpoints.length > 1 ? `${e.node}=${e.host}` : e.host)).join(", "),
        consul: config.consul.url,
        outputDir: config.lbOutputDir,
      }),
    );
  }
  for (const p of run.problems) process.stderr.write(`invalid binding: ${formatProblem(p)}\n`);
  return run.problems.length > 0 ? 1 : 0;
}
