/**
 * `controller plan`, the pure part: given the bindings, the live containers,
 * the live agent services and the rendered/current LB files, returns the
 * changes a controller run would make. Pure, deterministic ordering. It calls
 * the registrar's own decisions (domain/decisions.ts: desiredRegistrations for
 * containers and Swarm tasks, compatDesired with the binding port claims;
 * ownership, planRegistrations) and the renderer's renderFor, so plan and
 * controller agree:
 * - registrations: per binding (and per container in registrator-compat
 *   mode), only services this controller owns (ownership(), the registrar's
 *   rule) are compared or deregistered; owned services of bindings/containers
 *   that no longer exist are deregistered (the controller's garbage
 *   collection); an ID held by another controller with our node name is never
 *   written and the collision is listed under `conflicts`;
 * - LB files: the rendered text vs the bytes on disk; generated files (by
 *   ownership marker) of bindings that no longer render are removed;
 * - maintenance: the registrar's maintenanceActions over each binding's
 *   registrations (spec.maintenance, the `controller maint` KV entries, the
 *   agent's maintenance checks), when the caller read them.
 */
import { createTwoFilesPatch, FILE_HEADERS_ONLY } from "diff";
import { compatDesired, containerLookup, desiredRegistrations, type NodeWorld } from "../domain/decisions.js";
import { allServices, isOwned, nodeConflicts, ownedView, type NodeConflict, type OwnerIdentity } from "../domain/ownership.js";
import { maintenanceActions, maintenanceEntries, registrationContainer, wantedMaintenance } from "../domain/maintenance.js";
import { planRegistrations } from "../domain/plan.js";
import { COMPAT_BINDING_KEY, type CompatOptions } from "../domain/registratorCompat.js";
import type { SwarmView } from "../domain/swarm.js";
import { SPLIT_META } from "../domain/traffic.js";
import type { TrafficView } from "../render/trafficView.js";
import { bindingKey, OWNER_META, type ContainerInfo, type RegisteredService, type Registration, type ServiceBinding } from "../domain/types.js";

export type RegistrationAction = "register" | "update" | "deregister";

export interface RegistrationChange {
  readonly action: RegistrationAction;
  /** Binding key, or `registrator-compat` for compat registrations. */
  readonly owner: string;
  readonly serviceId: string;
  readonly service: string;
  /** `address:port` after the change (register/update) or of the removed service (deregister). */
  readonly endpoint: string;
  readonly container?: string;
  /** Why: new container, what differs, or why it goes away. */
  readonly reason: string;
  /** Consul weight and split group of a register/update, when the registration has them (`weight 5, split group 0`). */
  readonly traffic?: string;
}

/** A backend the controller will not register for a rule of its binding (e.g. NoDockerHealthcheck), not an error. */
export interface PlanWarning {
  readonly binding: string;
  readonly container: string;
  /** CamelCase cause (SkippedBackend.code). */
  readonly reason: string;
  readonly message: string;
}

export type LbAction = "create" | "update" | "remove" | "unchanged" | "error";

export interface LbFileChange {
  readonly action: LbAction;
  readonly binding: string;
  readonly path: string;
  /** Unified diff (empty for unchanged/error). */
  readonly diff: string;
  readonly error?: string;
  /** Weights and shares of requests of the planned file's servers (and split groups). */
  readonly traffic?: TrafficView;
  /** `spec.service.datacenters` bindings: the served datacenter and every listed one (describeServed). */
  readonly datacenter?: string;
}

/** One load-balanced binding as rendered now: the full file text, or why it cannot be rendered. */
export type RenderedFile =
  | { readonly binding: string; readonly path: string; readonly text: string; readonly traffic?: TrafficView; readonly datacenter?: string }
  | { readonly binding: string; readonly path: string; readonly error: string };

/** One Docker endpoint as the plan sees it: its node identity and live containers. */
export interface PlanEndpoint {
  readonly node: string;
  /** The identity this endpoint's registrar plans with (node, engine, instance, adopt). */
  readonly owner: OwnerIdentity;
  readonly hostIP: string;
  readonly containers: readonly ContainerInfo[];
  /** The endpoint's Swarm view (read only when a binding selects Swarm services). */
  readonly swarm?: SwarmView;
  /** Registrator-compat options when --registrator-compat is on. */
  readonly compat?: CompatOptions;
}

export interface PlanInput {
  /** Every Docker endpoint the controller serves; registrations are planned per endpoint node. */
  readonly endpoints: readonly PlanEndpoint[];
  readonly bindings: readonly ServiceBinding[];
  readonly agentServices: readonly RegisteredService[];
  readonly rendered: readonly RenderedFile[];
  /** Current bytes of every path in `rendered` and `ownedFiles` (undefined = no file). */
  readonly onDisk: ReadonlyMap<string, string | undefined>;
  /** Generated files found in the output directory, by binding key. */
  readonly ownedFiles: ReadonlyMap<string, string>;
  /** The agent's maintenance checks (service ID -> reason) and the KV entries under `dockbind/maintenance/` (undefined: unreadable). */
  readonly maintenance?: { readonly current: ReadonlyMap<string, string>; readonly kv?: readonly { readonly key: string; readonly value: string }[] };
}

/** One maintenance call the registrar would make. */
export interface MaintenanceChange {
  readonly action: "enable" | "disable";
  readonly binding: string;
  readonly serviceId: string;
  readonly container?: string;
  /** enable: the reason sent; disable: why. */
  readonly reason: string;
}

export interface PlanSummary {
  readonly register: number;
  readonly update: number;
  readonly deregister: number;
  readonly lbCreate: number;
  readonly lbUpdate: number;
  readonly lbRemove: number;
  readonly lbErrors: number;
}

export interface PlanResult {
  readonly registrations: readonly RegistrationChange[];
  readonly loadBalancer: readonly LbFileChange[];
  readonly summary: PlanSummary;
  /** True when applying would write anything (Consul or files). */
  readonly changes: boolean;
  /** Other controllers registering under one of our node names (never touched). */
  readonly conflicts: readonly NodeConflict[];
  /** Selected backends a binding's rule keeps out of Consul (e.g. containers without a Docker HEALTHCHECK). */
  readonly warnings: readonly PlanWarning[];
  /** Instances the registrar would put into maintenance or take out of it. */
  readonly maintenance: readonly MaintenanceChange[];
}

const ep = (address: string, port: number): string => (address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`);

function whatDiffers(cur: RegisteredService, r: Registration): string {
  const d: string[] = [];
  if (cur.address !== r.address || cur.port !== r.port) d.push(`endpoint ${ep(cur.address, cur.port)} -> ${ep(r.address, r.port)}`);
  if (cur.name !== r.name) d.push(`name ${cur.name} -> ${r.name}`);
  if ([...cur.tags].sort().join(",") !== [...r.tags].sort().join(",")) d.push(`tags [${cur.tags.join(",")}] -> [${r.tags.join(",")}]`);
  if ((cur.weight ?? 1) !== (r.weight ?? 1)) d.push(`weight ${cur.weight ?? 1} -> ${r.weight ?? 1}`);
  return d.length > 0 ? d.join("; ") : "check or meta changed";
}

/** `weight N` and `split group I` of a registration; "" when it has neither. */
function registrationTraffic(r: Registration): string {
  const group = r.meta[SPLIT_META];
  return [...(r.weight !== undefined ? [`weight ${r.weight}`] : []), ...(group !== undefined ? [`split group ${group}`] : [])].join(", ");
}

function compare(
  owner: string,
  current: readonly RegisteredService[],
  desired: readonly Registration[],
  goneReason: string,
  names: ReadonlyMap<string, string>,
): RegistrationChange[] {
  const plan = planRegistrations(current, desired);
  const byId = new Map(current.map((s) => [s.id, s]));
  const out: RegistrationChange[] = [];
  for (const r of plan.register) {
    const cur = byId.get(r.id);
    const cid = r.meta[OWNER_META.container];
    const container = cid === undefined ? undefined : (names.get(cid) ?? cid.slice(0, 12));
    const traffic = registrationTraffic(r);
    out.push({
      action: cur === undefined ? "register" : "update",
      owner,
      serviceId: r.id,
      service: r.name,
      endpoint: ep(r.address, r.port),
      ...(container !== undefined ? { container } : {}),
      reason: cur === undefined ? "new backend" : whatDiffers(cur, r),
      ...(traffic !== "" ? { traffic } : {}),
    });
  }
  for (const id of plan.deregister) {
    const cur = byId.get(id);
    const cid = cur?.meta[OWNER_META.container];
    out.push({
      action: "deregister",
      owner,
      serviceId: id,
      service: cur?.name ?? "",
      endpoint: cur === undefined ? "" : ep(cur.address, cur.port),
      ...(cid !== undefined ? { container: names.get(cid) ?? cid.slice(0, 12) } : {}),
      reason: goneReason,
    });
  }
  return out;
}

/** What the endpoint's registrar would see: the same NodeWorld the controller builds from its caches. */
function planWorld(input: PlanInput, endpoint: PlanEndpoint): NodeWorld {
  return {
    node: endpoint.node,
    hostIP: endpoint.hostIP,
    containers: containerLookup(endpoint.containers),
    bindings: input.bindings,
    ...(endpoint.swarm !== undefined ? { swarm: endpoint.swarm } : {}),
    ...(endpoint.compat !== undefined ? { compat: endpoint.compat } : {}),
  };
}

function registrationChanges(input: PlanInput, endpoint: PlanEndpoint): RegistrationChange[] {
  const owned = input.agentServices.filter((s) => isOwned(s.meta, endpoint.owner));
  const agent = allServices(input.agentServices);
  const names = new Map(endpoint.containers.map((c) => [c.id, c.name]));
  const out: RegistrationChange[] = [];
  const keys = new Set<string>();
  /** The registrar's step for one key: our owned services among `filter`, our desired minus peer-held IDs. */
  const planKey = (
    owner: string,
    filter: (m: Readonly<Record<string, string>>) => boolean,
    desired: readonly Registration[],
    why: string,
  ): RegistrationChange[] => {
    const view = ownedView(agent, endpoint.owner, filter, desired);
    return compare(owner, view.owned, view.desired, why, names);
  };
  const world = planWorld(input, endpoint);
  for (const b of [...input.bindings].sort((x, y) => bindingKey(x).localeCompare(bindingKey(y)))) {
    const key = bindingKey(b);
    keys.add(key);
    const decision = desiredRegistrations(b, world);
    // Backends unknown (Swarm unreadable): the controller computes and removes nothing, so neither does the plan.
    if (decision.kind === "unknown") continue;
    const gone = b.spec.backends.swarm !== undefined ? "task no longer running or selected" : "container no longer running or matching";
    out.push(...planKey(key, (m) => m[OWNER_META.binding] === key, decision.desired.registrations, gone));
  }
  const orphanKeys = [
    ...new Set(owned.map((s) => s.meta[OWNER_META.binding]).filter((k): k is string => k !== undefined && k !== COMPAT_BINDING_KEY && !keys.has(k))),
  ].sort();
  for (const key of orphanKeys) out.push(...planKey(key, (m) => m[OWNER_META.binding] === key, [], `binding ${key} no longer exists`));

  const compatOwned = owned.filter((s) => s.meta[OWNER_META.binding] === COMPAT_BINDING_KEY);
  const containerIds = new Set<string>([
    ...(endpoint.compat !== undefined ? endpoint.containers.map((c) => c.id) : []),
    ...compatOwned.map((s) => s.meta[OWNER_META.container]).filter((id): id is string => id !== undefined),
  ]);
  for (const id of [...containerIds].sort()) {
    const desired = compatDesired(world.containers.get(id), world).registrations;
    const why = endpoint.compat === undefined ? "registrator-compat is off" : "container no longer running";
    out.push(...planKey(COMPAT_BINDING_KEY, (m) => m[OWNER_META.binding] === COMPAT_BINDING_KEY && m[OWNER_META.container] === id, desired, why));
  }
  return out;
}

/** The backends each binding's decision skips for a rule (SkippedBackend.code), on one endpoint. */
function planWarnings(input: PlanInput, endpoint: PlanEndpoint): PlanWarning[] {
  const world = planWorld(input, endpoint);
  const names = new Map(endpoint.containers.map((c) => [c.id, c.name]));
  return [...input.bindings]
    .sort((x, y) => bindingKey(x).localeCompare(bindingKey(y)))
    .flatMap((b) => {
      const decision = desiredRegistrations(b, world);
      const skipped = decision.kind === "desired" ? decision.desired.skipped : [];
      return skipped.flatMap((s) =>
        s.code === undefined
          ? []
          : [{ binding: bindingKey(b), container: names.get(s.containerId) ?? s.containerId.slice(0, 12), reason: s.code, message: s.reason }],
      );
    });
}

/** The maintenance calls `endpoint`'s registrar would make after registering (MaintenanceSync's decision). */
function maintenanceChanges(input: PlanInput, endpoint: PlanEndpoint): MaintenanceChange[] {
  const m = input.maintenance;
  if (m === undefined) return [];
  const entries = m.kv === undefined ? undefined : maintenanceEntries(endpoint.node, m.kv);
  const world = planWorld(input, endpoint);
  const agent = allServices(input.agentServices);
  const out: MaintenanceChange[] = [];
  for (const b of [...input.bindings].sort((x, y) => bindingKey(x).localeCompare(bindingKey(y)))) {
    const decision = desiredRegistrations(b, world);
    if (decision.kind === "unknown") continue;
    const key = bindingKey(b);
    const regs = ownedView(agent, endpoint.owner, (meta) => meta[OWNER_META.binding] === key, decision.desired.registrations).desired;
    const nameOf = (r: Registration): { id: string; name: string } | undefined => {
      const id = registrationContainer(r);
      return id === undefined ? undefined : { id, name: world.containers.get(id)?.name ?? "" };
    };
    const actions = maintenanceActions(regs, (r) => wantedMaintenance(b, nameOf(r), entries), m.current, entries !== undefined);
    const byId = new Map(regs.map((r) => [r.id, r]));
    const container = (id: string): { container?: string } => {
      const r = byId.get(id);
      const c = r === undefined ? undefined : nameOf(r);
      return c === undefined ? {} : { container: c.name || c.id.slice(0, 12) };
    };
    for (const e of actions.enable) out.push({ action: "enable", binding: key, serviceId: e.id, ...container(e.id), reason: e.reason });
    for (const id of actions.disable) out.push({ action: "disable", binding: key, serviceId: id, ...container(id), reason: "no longer declared" });
  }
  return out;
}

/**
 * `diff -u` of a file from `fromLabel` to `toLabel` (3 lines of context, `---`/`+++` headers
 * without timestamps); "" when the texts are equal. An undefined text is a file that does not
 * exist: its side is labelled /dev/null.
 */
function fileDiff(before: string | undefined, after: string | undefined, fromLabel: string, toLabel: string): string {
  if (before === after) return "";
  const from = before === undefined ? "/dev/null" : fromLabel;
  const to = after === undefined ? "/dev/null" : toLabel;
  return createTwoFilesPatch(from, to, before ?? "", after ?? "", undefined, undefined, { context: 3, headerOptions: FILE_HEADERS_ONLY });
}

function lbChanges(input: PlanInput): LbFileChange[] {
  const out: LbFileChange[] = [];
  const kept = new Set<string>();
  for (const r of [...input.rendered].sort((a, b) => a.binding.localeCompare(b.binding))) {
    kept.add(r.path);
    if ("error" in r) {
      out.push({ action: "error", binding: r.binding, path: r.path, diff: "", error: r.error });
      continue;
    }
    const cur = input.onDisk.get(r.path);
    const action: LbAction = cur === undefined ? "create" : cur === r.text ? "unchanged" : "update";
    const diff = fileDiff(cur, r.text, `${r.path} (on disk)`, `${r.path} (planned)`);
    const extra = { ...(r.traffic !== undefined ? { traffic: r.traffic } : {}), ...(r.datacenter !== undefined ? { datacenter: r.datacenter } : {}) };
    out.push({ action, binding: r.binding, path: r.path, diff, ...extra });
  }
  for (const [binding, path] of [...input.ownedFiles].sort((a, b) => a[0].localeCompare(b[0]))) {
    if (kept.has(path)) continue;
    const cur = input.onDisk.get(path);
    if (cur === undefined) continue;
    out.push({ action: "remove", binding, path, diff: fileDiff(cur, undefined, `${path} (on disk)`, path) });
  }
  return out;
}

export function computePlan(input: PlanInput): PlanResult {
  const registrations = input.endpoints.flatMap((e) => registrationChanges(input, e));
  const loadBalancer = lbChanges(input);
  const maintenance = input.endpoints.flatMap((e) => maintenanceChanges(input, e));
  const count = (xs: readonly { readonly action: string }[], a: string): number => xs.filter((x) => x.action === a).length;
  const summary: PlanSummary = {
    register: count(registrations, "register"),
    update: count(registrations, "update"),
    deregister: count(registrations, "deregister"),
    lbCreate: count(loadBalancer, "create"),
    lbUpdate: count(loadBalancer, "update"),
    lbRemove: count(loadBalancer, "remove"),
    lbErrors: count(loadBalancer, "error"),
  };
  const changes = registrations.length > 0 || maintenance.length > 0 || summary.lbCreate + summary.lbUpdate + summary.lbRemove > 0;
  const conflicts = input.endpoints.flatMap((e) => nodeConflicts(input.agentServices, e.owner));
  const warnings = input.endpoints.flatMap((e) => planWarnings(input, e));
  return { registrations, loadBalancer, summary, changes, conflicts, warnings, maintenance };
}
