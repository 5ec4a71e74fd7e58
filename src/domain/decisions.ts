/**
 * The registration decisions of one node, as pure functions of what that
 * node sees. The registrar, `controller plan` and the status model all call
 * these: a rule about which instance is registered lives here once.
 *
 * - desiredRegistrations(binding, world): containers or Swarm tasks of a
 *   binding, or "unknown" (Swarm cannot be read: compute nothing, remove
 *   nothing);
 * - compatDesired(container, world): registrator-compat registrations of a
 *   container, without the ports a binding claims.
 */
import { desiredForBinding, type DesiredResult } from "./desired.js";
import { compatRegistrations, type CompatOptions, type CompatResult } from "./registratorCompat.js";
import { matchesSelector } from "./selector.js";
import { desiredForSwarmBinding, type SwarmView } from "./swarm.js";
import type { ContainerInfo, LabelSelector, ServiceBinding } from "./types.js";

/** The containers of one Docker engine, looked up by selector or id. */
export interface ContainerLookup {
  select(selector: LabelSelector): readonly ContainerInfo[];
  get(id: string): ContainerInfo | undefined;
}

/** What one node (one Docker endpoint of the controller) sees. */
export interface NodeWorld {
  readonly node: string;
  readonly hostIP: string;
  readonly containers: ContainerLookup;
  /** The endpoint's Swarm view; undefined when this controller does not read Swarm. */
  readonly swarm?: SwarmView;
  /** Every binding: a container port one of them selects is not registered by registrator-compat. */
  readonly bindings: readonly ServiceBinding[];
  /** registrator-compat options; undefined when --registrator-compat is off. */
  readonly compat?: CompatOptions;
}

/** Why a node computes nothing for a binding, or has no say on it. */
export interface NoSay {
  readonly reason: string;
  readonly message: string;
  /** True: this node has no say on the binding (it reports no counts of its own). */
  readonly abstain: boolean;
}

export type BindingDecision =
  /** Compare with Consul and converge; `noSay` when this node abstains (desired is then empty: its copies go). */
  | { readonly kind: "desired"; readonly desired: DesiredResult; readonly noSay?: NoSay }
  /** The backends cannot be known now: nothing is computed and nothing is deregistered. */
  | { readonly kind: "unknown"; readonly noSay: NoSay };

const NOTHING: DesiredResult = { registrations: [], skipped: [] };

/** A lookup over a plain list (plan, tests); the controller passes its indexed cache. */
export function containerLookup(containers: readonly ContainerInfo[]): ContainerLookup {
  const byId = new Map(containers.map((c) => [c.id, c]));
  return { select: (selector) => containers.filter((c) => matchesSelector(selector, c.labels)), get: (id) => byId.get(id) };
}

/** The registrations `binding` asks this node for, or why none can be computed. */
export function desiredRegistrations(binding: ServiceBinding, world: NodeWorld): BindingDecision {
  const { selector, swarm } = binding.spec.backends;
  const opts = { node: world.node, hostIP: world.hostIP };
  if (swarm === undefined)
    return { kind: "desired", desired: selector === undefined ? NOTHING : desiredForBinding(binding, world.containers.select(selector), opts) };
  const view = world.swarm;
  if (view === undefined)
    return { kind: "unknown", noSay: { reason: "SwarmUnsupported", message: "this controller does not read Swarm services", abstain: false } };
  if (view.kind !== "ready") {
    const abstain = view.reason === "SwarmNotActive" || view.reason === "SwarmNotManager" || view.reason === "SwarmServedByOtherEndpoint";
    const noSay = { reason: view.reason, message: view.message, abstain };
    // Another endpoint serves this swarm: copies this node made (before it knew) are removed.
    return view.reason === "SwarmServedByOtherEndpoint" ? { kind: "desired", desired: NOTHING, noSay } : { kind: "unknown", noSay };
  }
  const desired = desiredForSwarmBinding(binding, view.snapshot, {
    ...opts,
    isDraining: (id) => world.containers.get(id)?.draining === true,
    localContainer: (id) => world.containers.get(id),
  });
  return { kind: "desired", desired };
}

/**
 * The registrator-compat registrations of `container` on this node (none when compat is off or the
 * container is gone). A container port a binding selects (same port and protocol) belongs to that
 * binding and is not registered a second time.
 */
export function compatDesired(container: ContainerInfo | undefined, world: NodeWorld): CompatResult {
  if (container === undefined || world.compat === undefined) return { registrations: [], issues: [] };
  const claims = world.bindings
    .filter((b) => b.spec.backends.selector !== undefined && matchesSelector(b.spec.backends.selector, container.labels))
    .map((b) => `${b.spec.backends.port}/${b.spec.backends.protocol}`);
  const unclaimed =
    claims.length === 0 ? container : { ...container, ports: container.ports.filter((p) => !claims.includes(`${p.privatePort}/${p.protocol}`)) };
  return compatRegistrations(unclaimed, world.compat);
}
