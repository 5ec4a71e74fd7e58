/**
 * A complete docker-only test world on real programs: a Consul dev agent
 * behind a counting proxy, an nginx master, a bindings directory and the
 * controller process. Each test file builds its own world (own ports, own
 * dirs, own node identity) and tears it down with cleanupAll().
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startConsul, type ConsulHandle, type ConsulOptions } from "./consul.js";
import { startConsulProxy, type ConsulProxy } from "./consulProxy.js";
import { startController, type ControllerHandle } from "./controller.js";
import { ensureDockerd } from "./dockerd.js";
import { httpGet } from "./http.js";
import { ensureBackendImage } from "./image.js";
import { startNginx, type NginxHandle, type StartNginxOptions } from "./nginx.js";
import { ensureBedRoot } from "./procs.js";
import { sample, servedExactly } from "./traffic.js";

export interface BindingYamlOptions {
  readonly name: string;
  readonly service: string;
  /** Value of the `app` label selecting the backends. */
  readonly app: string;
  readonly listenPort?: number;
  readonly check?: "http" | "tcp" | "ttl" | "docker" | "none";
  readonly template?: string;
  readonly extraSpec?: string;
}

/** A ServiceBinding document; HTTP check on /health/ every 1 s unless told otherwise. */
export function bindingYaml(o: BindingYamlOptions): string {
  const lb =
    o.listenPort === undefined
      ? ""
      : `  loadBalancer:
    listen: {port: ${o.listenPort}}
    output: ${o.name}.conf
${o.template !== undefined ? `    template: ${o.template}\n` : ""}`;
  return `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata:
  name: ${o.name}
spec:
  service:
    name: ${o.service}
    tags: [dockbind-test]
  backends:
    selector:
      matchLabels: {app: ${o.app}}
    port: 80
  healthCheck:
    type: ${o.check ?? "http"}
    path: /health/
    interval: 1s
    timeout: 1s
${lb}${o.extraSpec ?? ""}`;
}

export interface HealthEntry {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  readonly status: string;
  readonly meta: Record<string, string>;
}

export interface World {
  readonly consul: ConsulHandle;
  readonly proxy: ConsulProxy;
  readonly nginx: NginxHandle;
  readonly bindingsDir: string;
  readonly node: string;
  controller: ControllerHandle | undefined;
  startController(extraArgs?: readonly string[]): Promise<ControllerHandle>;
  writeFile(name: string, text: string): void;
  removeFile(name: string): void;
  /** Generated LB file text, or undefined when absent. */
  lbFile(name: string): string | undefined;
  /** `/v1/health/service/<service>` from the real agent (not through the proxy). */
  health(service: string): Promise<HealthEntry[]>;
  /** Bodies of `n` sequential GETs through nginx on `port` (non-200 answers as `HTTP <code>`). */
  sample(port: number, n: number): Promise<string[]>;
  /** `servedExactly` of traffic.ts on the world's nginx (default timeout 30 s). */
  servedExactly(port: number, expected: readonly string[], timeoutMs?: number): Promise<void>;
}

/** `consul`: options of the world's agent (e.g. a datacenter server to WAN-federate); `nginx`: of its nginx (e.g. a stream include). */
export async function startWorld(node: string, opts: { readonly consul?: ConsulOptions; readonly nginx?: StartNginxOptions } = {}): Promise<World> {
  await ensureDockerd();
  await ensureBackendImage();
  const [consul, nginx] = await Promise.all([startConsul({ node: `consul-${node}`, ...opts.consul }), startNginx(opts.nginx)]);
  const proxy = await startConsulProxy(consul.httpAddr);
  const bindingsDir = mkdtempSync(join(ensureBedRoot(), `bindings-${node}-`));
  mkdirSync(bindingsDir, { recursive: true });
  const world: World = {
    consul,
    proxy,
    nginx,
    bindingsDir,
    node,
    controller: undefined,
    async startController(extraArgs = []) {
      world.controller = await startController({
        bindingsDir,
        consulAddr: proxy.addr,
        outputDir: nginx.confDir,
        nginxArgs: nginx.nginxArgs,
        node,
        extraArgs: ["--resync", "2s", "--wait-min", "50ms", "--wait-max", "500ms", ...extraArgs],
        logName: `controller-${node}.log`,
      });
      return world.controller;
    },
    writeFile(name, text) {
      // Write then rename: the watcher must never see a half-written file.
      const tmp = join(bindingsDir, `.${name}.tmp`);
      writeFileSync(tmp, text);
      renameSync(tmp, join(bindingsDir, name));
    },
    removeFile(name) {
      rmSync(join(bindingsDir, name), { force: true });
    },
    lbFile(name) {
      try {
        return readFileSync(join(nginx.confDir, name), "utf8");
      } catch {
        return undefined;
      }
    },
    async health(service) {
      const res = await httpGet(`${consul.url}/v1/health/service/${service}`);
      if (res.status !== 200) throw new Error(`consul health ${service}: HTTP ${res.status}`);
      const entries = JSON.parse(res.body) as {
        Service: { ID: string; Address: string; Port: number; Meta: Record<string, string> | null };
        Checks: { Status: string }[];
      }[];
      return entries.map((e) => ({
        id: e.Service.ID,
        address: e.Service.Address,
        port: e.Service.Port,
        meta: e.Service.Meta ?? {},
        status: e.Checks.some((c) => c.Status === "critical") ? "critical" : e.Checks.some((c) => c.Status === "warning") ? "warning" : "passing",
      }));
    },
    sample: (port, n) => sample(nginx, port, n),
    servedExactly(port, expected, timeoutMs = 30_000) {
      return servedExactly(nginx, port, expected, timeoutMs);
    },
  };
  return world;
}
