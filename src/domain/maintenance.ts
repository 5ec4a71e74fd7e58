/**
 * Maintenance decisions: which instances of a binding dockbind keeps in Consul
 * service maintenance, and which agent calls converge the agent to that. Pure;
 * the registrar, `controller plan` and `controller maint` call these.
 *
 * Sources of the declaration, in order: the binding's `spec.maintenance`
 * (all instances, or the containers it names), then per-container entries
 * that `controller maint` keeps in Consul KV under
 * `dockbind/maintenance/<node>/<namespace>/<name>/<container name | _all>`.
 *
 * Ownership of a maintenance check is its reason: dockbind sends
 * `MAINTENANCE_MARK + reason`. Only a check carrying that mark is ever taken
 * out by the registrar (declaration removed); maintenance anyone else set
 * (`consul maint -service`, the HTTP API) is never cleared.
 */
import type { HealthInstance, Registration, ServiceBinding } from "./types.js";
import { bindingKey, OWNER_META } from "./types.js";

/** Prefix of every maintenance reason dockbind sends: marks the check as dockbind's. */
export const MAINTENANCE_MARK = "dockbind: ";

/** KV key segment for "every instance of the binding" (not a valid container name: those start with [A-Za-z0-9]). */
export const MAINTENANCE_ALL = "_all";

/** KV prefix of every node's per-container maintenance entries. */
export const MAINTENANCE_KV_ROOT = "dockbind/maintenance/";

/** KV prefix of one node's per-container maintenance entries. */
export function maintenanceKvPrefix(node: string): string {
  return `${MAINTENANCE_KV_ROOT}${node}/`;
}

/** KV key of one entry: `target` is a container name or MAINTENANCE_ALL. */
export function maintenanceKvKey(node: string, binding: string, target: string): string {
  return `${maintenanceKvPrefix(node)}${binding}/${target}`;
}

/** Per-container maintenance of one node, from KV: binding key -> target (container name or `_all`) -> reason. */
export type MaintenanceEntries = ReadonlyMap<string, ReadonlyMap<string, string>>;

/** Parses KV keys under `maintenanceKvPrefix(node)`; malformed keys are ignored. */
export function maintenanceEntries(node: string, kv: readonly { readonly key: string; readonly value: string }[]): MaintenanceEntries {
  const out = new Map<string, Map<string, string>>();
  const prefix = maintenanceKvPrefix(node);
  for (const { key, value } of kv) {
    if (!key.startsWith(prefix)) continue;
    const parts = key.slice(prefix.length).split("/");
    if (parts.length !== 3 || parts.some((p) => p === "")) continue;
    const [ns, name, target] = parts as [string, string, string];
    const m = out.get(`${ns}/${name}`) ?? new Map<string, string>();
    m.set(target, value);
    out.set(`${ns}/${name}`, m);
  }
  return out;
}

/** The container behind a registration, as far as the node knows it. */
export interface InstanceIdentity {
  readonly id: string;
  readonly name: string;
}

function namesContainer(entry: string, c: InstanceIdentity): boolean {
  return entry === c.name || (/^[0-9a-f]{12,64}$/.test(entry) && c.id.startsWith(entry));
}

/**
 * The maintenance reason (without the mark) dockbind wants for one instance of `binding`, or
 * undefined. `spec.maintenance` wins over KV entries; `_all` over a container's own entry.
 */
export function wantedMaintenance(binding: ServiceBinding, container: InstanceIdentity | undefined, entries?: MaintenanceEntries): string | undefined {
  const spec = binding.spec.maintenance;
  if (spec !== undefined && (spec.containers === undefined || (container !== undefined && spec.containers.some((e) => namesContainer(e, container)))))
    return spec.reason;
  const own = entries?.get(bindingKey(binding));
  if (own === undefined) return undefined;
  return own.get(MAINTENANCE_ALL) ?? (container !== undefined ? own.get(container.name) : undefined);
}

export interface MaintenanceActions {
  /** Service ID -> full reason to send (MAINTENANCE_MARK included). */
  readonly enable: readonly { readonly id: string; readonly reason: string }[];
  /** Service IDs whose dockbind maintenance is no longer declared. */
  readonly disable: readonly string[];
}

/**
 * What to send to the agent so that `registrations` (this node's, of one binding) carry the
 * maintenance `wanted` says. `current`: service ID -> reason of its maintenance check on the agent.
 * `mayDisable` false (the KV declaration could not be read): nothing is taken out.
 */
export function maintenanceActions(
  registrations: readonly Registration[],
  wanted: (r: Registration) => string | undefined,
  current: ReadonlyMap<string, string>,
  mayDisable = true,
): MaintenanceActions {
  const enable: { id: string; reason: string }[] = [];
  const disable: string[] = [];
  for (const r of registrations) {
    const want = wanted(r);
    const have = current.get(r.id);
    if (want !== undefined) {
      // Anyone's maintenance already keeps the instance out; only our own stale reason is refreshed.
      const reason = MAINTENANCE_MARK + want;
      if (have === undefined || (have.startsWith(MAINTENANCE_MARK) && have !== reason)) enable.push({ id: r.id, reason });
    } else if (mayDisable && have?.startsWith(MAINTENANCE_MARK) === true) {
      disable.push(r.id);
    }
  }
  return { enable, disable };
}

/** The container (id) a registration stands for: its owner meta. */
export function registrationContainer(r: Pick<Registration, "meta">): string | undefined {
  return r.meta[OWNER_META.container];
}

/** Instances in maintenance (service or node): never rendered, never counted as passing. */
export function inMaintenance(i: Pick<HealthInstance, "maintenance">): boolean {
  return i.maintenance !== undefined;
}

/** Whether an instance counts as passing: status passing and not in Consul maintenance. */
export function isPassing(i: Pick<HealthInstance, "status" | "maintenance">): boolean {
  return i.status === "passing" && !inMaintenance(i);
}

/** Instances that count as passing (status counts and datacenter failover). */
export function passingCount(instances: readonly HealthInstance[]): number {
  return instances.filter(isPassing).length;
}

/**
 * True when `next` only adds passing instances to `prev`: at least one instance passes that did
 * not, and every instance that passed before is still there, unchanged. Such a change takes
 * nothing out of rotation and changes no failover away from a datacenter.
 */
export function onlyAddsPassing(prev: readonly HealthInstance[], next: readonly HealthInstance[]): boolean {
  const nextById = new Map(next.map((i) => [i.serviceId, i]));
  const passedBefore = prev.filter(isPassing);
  if (next.filter(isPassing).length <= passedBefore.length) return false;
  return passedBefore.every((i) => {
    const now = nextById.get(i.serviceId);
    return now !== undefined && JSON.stringify(now) === JSON.stringify(i);
  });
}
