/**
 * In-memory status of every binding, shaped like the Kubernetes status the
 * CRD carries: conditions with CamelCase reasons and a
 * lastTransitionTime that changes only when the condition's status changes.
 * Reconcilers write here; the status page, metrics and the Kubernetes status
 * writer read here.
 */
export type ConditionType = "Ready" | "Registered" | "LoadBalancerConfigured" | "Degraded";
export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  readonly type: ConditionType;
  readonly status: ConditionStatus;
  readonly reason: string;
  readonly message: string;
  readonly lastTransitionTime: string;
}

export interface BackendCounts {
  readonly desired: number;
  readonly registered: number;
  readonly passing: number;
  /** Instances of the service in Consul maintenance (service or node); never passing, never rendered. */
  readonly maintenance?: number;
}

export interface BindingStatus {
  readonly conditions: readonly Condition[];
  readonly backends: BackendCounts;
  readonly lastRender?: { readonly at: string; readonly result: string; readonly servers: number };
}

export type StatusListener = (key: string, status: BindingStatus) => void;

/**
 * What one Docker endpoint's registrar found for a binding.
 * `counts` absent = keep that node's last counts (e.g. on a failed pass).
 * `abstain`: this node has nothing to contribute (e.g. a swarm worker for a
 * Swarm binding); it only decides the condition when every node abstains.
 */
export interface NodeRegistration {
  readonly status: ConditionStatus;
  readonly reason: string;
  readonly message: string;
  readonly counts?: { readonly desired: number; readonly registered: number };
  readonly abstain?: boolean;
}

const EMPTY: BindingStatus = { conditions: [], backends: { desired: 0, registered: 0, passing: 0 } };

export class BindingStatusStore {
  private readonly statuses = new Map<string, BindingStatus>();
  /** Per binding, per node: the last NodeRegistration (merged counts), summed into `backends` and `Registered`. */
  private readonly byNode = new Map<string, Map<string, NodeRegistration>>();
  private readonly listeners: StatusListener[] = [];

  get(key: string): BindingStatus {
    return this.statuses.get(key) ?? EMPTY;
  }

  keys(): readonly string[] {
    return [...this.statuses.keys()].sort();
  }

  delete(key: string): void {
    this.statuses.delete(key);
    this.byNode.delete(key);
  }

  /**
   * One node's registration outcome for `key`; the binding's `desired`/`registered`
   * counts become the sums over nodes and its Registered condition the
   * combination (False if any node is False; one node's words as they are).
   */
  setRegistration(key: string, node: string, r: NodeRegistration): void {
    const nodes = this.byNode.get(key) ?? new Map<string, NodeRegistration>();
    this.byNode.set(key, nodes);
    const counts = r.counts ?? nodes.get(node)?.counts;
    nodes.set(node, { ...r, ...(counts !== undefined ? { counts } : {}) });
    const all = [...nodes.entries()].sort((a, b) => a[0].localeCompare(b[0]));
    const sum = (f: "desired" | "registered"): number => all.reduce((n, [, x]) => n + (x.counts?.[f] ?? 0), 0);
    if (all.some(([, x]) => x.counts !== undefined)) this.setBackends(key, { desired: sum("desired"), registered: sum("registered") });
    const voting = all.filter(([, x]) => x.abstain !== true);
    const considered = voting.length > 0 ? voting : all;
    const failing = considered.filter(([, x]) => x.status !== "True");
    const shown = failing.length > 0 ? failing : considered;
    const first = shown[0]?.[1];
    if (first === undefined) return;
    const message = all.length === 1 ? first.message : shown.map(([n, x]) => `${n}: ${x.message}`).join("; ");
    this.setCondition(key, "Registered", first.status, first.reason, message);
  }

  onChange(listener: StatusListener): void {
    this.listeners.push(listener);
  }

  /** Sets one condition; Ready is derived. Registered should come through setRegistration (it combines nodes). */
  setCondition(key: string, type: ConditionType, status: ConditionStatus, reason: string, message: string): void {
    const cur = this.get(key);
    const prev = cur.conditions.find((c) => c.type === type);
    if (prev?.status === status && prev.reason === reason && prev.message === message) return;
    const lastTransitionTime = prev !== undefined && prev.status === status ? prev.lastTransitionTime : new Date().toISOString();
    const conditions = [...cur.conditions.filter((c) => c.type !== type), { type, status, reason, message, lastTransitionTime }];
    this.put(key, { ...cur, conditions: deriveReady(conditions) });
  }

  /** `maintenance` is kept only while above 0: a binding without maintenance shows its three counts. */
  setBackends(key: string, patch: Partial<BackendCounts>): void {
    const cur = this.get(key);
    const { maintenance, ...counts } = { ...cur.backends, ...patch };
    const backends = maintenance !== undefined && maintenance > 0 ? { ...counts, maintenance } : counts;
    if (JSON.stringify(backends) !== JSON.stringify(cur.backends)) this.put(key, { ...cur, backends });
  }

  setLastRender(key: string, result: string, servers: number): void {
    const cur = this.get(key);
    this.put(key, { ...cur, lastRender: { at: new Date().toISOString(), result, servers } });
  }

  private put(key: string, status: BindingStatus): void {
    this.statuses.set(key, status);
    for (const l of this.listeners) l(key, status);
  }
}

/** Ready = Registered and (if present) LoadBalancerConfigured are True and not Degraded. */
function deriveReady(conditions: Condition[]): Condition[] {
  const get = (t: ConditionType): Condition | undefined => conditions.find((c) => c.type === t);
  const blocking = [get("Registered"), get("LoadBalancerConfigured")].find((c) => c !== undefined && c.status !== "True");
  const degraded = get("Degraded");
  const ready: Omit<Condition, "lastTransitionTime"> =
    blocking !== undefined
      ? { type: "Ready", status: "False", reason: blocking.reason, message: blocking.message }
      : degraded?.status === "True"
        ? { type: "Ready", status: "False", reason: degraded.reason, message: degraded.message }
        : { type: "Ready", status: "True", reason: "Converged", message: "registrations and load balancer config are converged" };
  const prev = get("Ready");
  const lastTransitionTime = prev !== undefined && prev.status === ready.status ? prev.lastTransitionTime : new Date().toISOString();
  return [...conditions.filter((c) => c.type !== "Ready"), { ...ready, lastTransitionTime }].sort((a, b) => a.type.localeCompare(b.type));
}
