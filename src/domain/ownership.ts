/**
 * The ownership rule: which Consul registrations a controller may rewrite or
 * deregister. Every consumer (registrar, garbage collection, the sweep of
 * other agents, `controller plan`, the Kubernetes finalizer) calls ownership()
 * and nothing else. Pure.
 *
 * A registration carries `dockbind_node`, `dockbind_engine` (the Docker
 * engine ID of the container's engine) and `dockbind_instance` (the
 * controller installation, --instance-id). Against an OwnerIdentity it is:
 * - `other-node`: another node's; never touched (and not a conflict);
 * - `own`: same node, engine and instance;
 * - `legacy`: same node, neither engine nor instance meta (written before
 *   they existed): owned, so the next pass rewrites it once with our identity
 *   (its hash differs) or removes it as an orphan;
 * - `adopted`: same node, engine or instance listed in `adopt` (the takeover
 *   of a controller that moved to a new engine or instance ID): owned, hence
 *   rewritten or removed like a legacy one;
 * - `peer`: same node, another engine or instance: another controller uses
 *   our node name. Never rewritten, never deregistered; reported.
 */
import type { RegisteredService, Registration } from "./types.js";
import { OWNER_META } from "./types.js";

export interface OwnerIdentity {
  readonly node: string;
  /** Docker engine ID of the endpoint (`docker info` .ID). */
  readonly engine: string;
  /** Controller installation ID (--instance-id). */
  readonly instance: string;
  /** Engine or instance IDs whose registrations under `node` are taken over (--adopt). */
  readonly adopt: readonly string[];
}

/** The other controller's identity as read from Consul: each value passed safeIdentityValue() (the value, "(none)" or "(invalid)"). */
export interface PeerIdentity {
  readonly engine: string;
  readonly instance: string;
}

export type Ownership =
  | { readonly kind: "other-node" }
  | { readonly kind: "own" }
  | { readonly kind: "legacy" }
  | { readonly kind: "adopted" }
  | { readonly kind: "peer"; readonly peer: PeerIdentity };

/** Docker engine IDs (UUIDs or the older `XXXX:XXXX:…` form) and instance IDs; anything else is not shown verbatim. */
const IDENTITY_VALUE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** A meta value from another controller, safe for logs, metrics-free status fields and HTML: the value, "(none)" or "(invalid)". */
export function safeIdentityValue(v: string | undefined): string {
  if (v === undefined || v === "") return "(none)";
  return IDENTITY_VALUE.test(v) ? v : "(invalid)";
}

/** True when `v` may be used as an instance or adopt ID (config validation). */
export function isIdentityValue(v: string): boolean {
  return IDENTITY_VALUE.test(v);
}

export function ownership(meta: Readonly<Record<string, string>>, self: OwnerIdentity): Ownership {
  if (meta[OWNER_META.node] !== self.node) return { kind: "other-node" };
  const engine = meta[OWNER_META.engine];
  const instance = meta[OWNER_META.instance];
  if (engine === undefined && instance === undefined) return { kind: "legacy" };
  if (engine === self.engine && instance === self.instance) return { kind: "own" };
  if ((engine !== undefined && self.adopt.includes(engine)) || (instance !== undefined && self.adopt.includes(instance))) return { kind: "adopted" };
  return { kind: "peer", peer: { engine: safeIdentityValue(engine), instance: safeIdentityValue(instance) } };
}

/** The kinds this controller may rewrite and deregister. */
const OWNED_KINDS: ReadonlySet<Ownership["kind"]> = new Set(["own", "legacy", "adopted"]);

/** own, legacy or adopted: this controller may rewrite and deregister it. */
export function isOwned(meta: Readonly<Record<string, string>>, self: OwnerIdentity): boolean {
  return OWNED_KINDS.has(ownership(meta, self).kind);
}

/** The registration with this controller's engine and instance in its meta (before hashing: the hash covers them). */
export function stamped(r: Registration, self: OwnerIdentity): Registration {
  return { ...r, meta: { ...r.meta, [OWNER_META.engine]: self.engine, [OWNER_META.instance]: self.instance } };
}

export interface BlockedRegistration {
  readonly id: string;
  readonly peer: PeerIdentity;
}

export interface OwnedView {
  /** Agent services matching the caller's filter that this controller owns: what a plan may rewrite or deregister. */
  readonly owned: readonly RegisteredService[];
  /** `desired`, stamped with our identity, minus the IDs a peer holds. */
  readonly desired: readonly Registration[];
  /** Desired IDs held by a peer: never overwritten. */
  readonly blocked: readonly BlockedRegistration[];
}

/**
 * The agent's services as one planning step reads them: `candidates` holds at
 * least every service the step's filter can select (all of them, or those of
 * one binding), `byId` looks up any service of the agent.
 */
export interface AgentServices {
  readonly candidates: readonly RegisteredService[];
  byId(id: string): RegisteredService | undefined;
}

/** Every service of `agent` as candidates. */
export function allServices(agent: readonly RegisteredService[]): AgentServices {
  const ids = new Map(agent.map((s) => [s.id, s]));
  return { candidates: agent, byId: (id) => ids.get(id) };
}

/**
 * Splits the agent's services for one planning step: what we own (among those
 * `filter` selects) and which desired registrations we may write. A desired
 * ID already registered by a peer is left alone (blocked), whatever it holds.
 * Cost: O(candidates + desired).
 */
export function ownedView(
  agent: AgentServices,
  self: OwnerIdentity,
  filter: (meta: Readonly<Record<string, string>>) => boolean,
  desired: readonly Registration[],
): OwnedView {
  const owned = agent.candidates.filter((s) => OWNED_KINDS.has(ownership(s.meta, self).kind) && filter(s.meta));
  const blocked: BlockedRegistration[] = [];
  const writable: Registration[] = [];
  for (const r of desired) {
    const held = agent.byId(r.id);
    const o = held === undefined ? undefined : ownership(held.meta, self);
    if (o?.kind === "peer") blocked.push({ id: r.id, peer: o.peer });
    else writable.push(stamped(r, self));
  }
  return { owned, desired: writable, blocked };
}

/** One other controller using our node name: its identity and how many registrations it holds. */
export interface NodeConflict {
  readonly node: string;
  readonly peer: PeerIdentity;
  readonly registrations: number;
  /** The --adopt value that takes these registrations over: the peer's instance when it differs from ours, else its engine. */
  readonly adoptWith: string;
}

/** Every peer (same node, other engine/instance) among the agent's services, sorted; at most `limit`. */
export function nodeConflicts(agent: readonly RegisteredService[], self: OwnerIdentity, limit = 16): NodeConflict[] {
  const byPeer = new Map<string, NodeConflict>();
  for (const s of agent) {
    const o = ownership(s.meta, self);
    if (o.kind !== "peer") continue;
    const k = `${o.peer.engine}/${o.peer.instance}`;
    const cur = byPeer.get(k);
    const adoptWith = o.peer.instance !== self.instance && isIdentityValue(o.peer.instance) ? o.peer.instance : o.peer.engine;
    byPeer.set(k, { node: self.node, peer: o.peer, registrations: (cur?.registrations ?? 0) + 1, adoptWith });
  }
  return [...byPeer.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, limit)
    .map(([, c]) => c);
}

/** What an operator reads about a conflict (log, status page, plan): who, and what to do. Values are safeIdentityValue()s. */
export function conflictMessage(c: NodeConflict): string {
  return (
    `another controller registers under node ${c.node} (Docker engine ${c.peer.engine}, instance ${c.peer.instance}, ${c.registrations} registration(s)); ` +
    `they are never rewritten or deregistered by this controller. Give one of the two controllers its own --node; ` +
    `if that controller is gone (this one moved to a new engine or instance ID), take its registrations over with --adopt ${c.adoptWith}`
  );
}
