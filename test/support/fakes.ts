/**
 * Shared in-memory fakes and builders for unit tests. Builders return valid
 * domain objects with fixed, documented defaults; every field can be
 * overridden. Fakes hold plain state the test sets and reads back; none of
 * them sleeps, and none is a stand-in for behaviour a test claims to check.
 */
import { serviceCheckId } from "../../src/actuators/consul/dockerHealthTtl.js";
import { ConsulError } from "../../src/clients/consul/types.js";
import type { ConsulApi, HealthQuery, HealthResult } from "../../src/ports/consul.js";
import type { LiveConfig, LoadBalancerDriver } from "../../src/actuators/lb/driver.js";
import type { SwarmTask } from "../../src/domain/swarm.js";
import { matchesSelector } from "../../src/domain/selector.js";
import {
  bindingKey,
  type BackendsSpec,
  type CheckStatus,
  type ContainerInfo,
  type HealthCheckSpec,
  type HealthInstance,
  type LabelSelector,
  type LoadBalancerKind,
  type LoadBalancerSpec,
  type RegisteredService,
  type Registration,
  type ServiceBinding,
  type ServiceRef,
  type ServiceSpec,
} from "../../src/domain/types.js";
import type { BindingProblem, BindingStore } from "../../src/ports/bindingStore.js";
import type { ContainerStore } from "../../src/ports/containerStore.js";
import type { HealthSnapshot, HealthStore } from "../../src/ports/healthStore.js";
import { refKey } from "../../src/sources/consul/healthWatcher.js";

// ---------------------------------------------------------------- builders

/** The health check every built binding has unless overridden: tcp, 10s/2s, starts critical. */
export const HEALTH_CHECK: HealthCheckSpec = { type: "tcp", path: "/", interval: "10s", timeout: "2s", ttl: "30s", initialStatus: "critical" };

export interface BindingOverrides {
  readonly namespace?: string;
  readonly generation?: number;
  readonly service?: Partial<ServiceSpec>;
  /** Merged over the defaults; the default selector `app=<name>` is left out when `selector` or `swarm` is given. */
  readonly backends?: Partial<BackendsSpec>;
  readonly healthCheck?: Partial<HealthCheckSpec>;
  /** Present (even `{}`): the binding has a load balancer, defaults below merged under it. */
  readonly loadBalancer?: Partial<LoadBalancerSpec>;
}

/**
 * A ServiceBinding `default/<name>` registering Consul service `<name>` (no
 * tags, no meta) for containers labelled `app=<name>` on private tcp port 80,
 * published address mode, HEALTH_CHECK; with `loadBalancer`: nginx on
 * 127.0.0.1:8080, only passing, round robin, output `<name>.conf`.
 */
export function makeBinding(name = "web", over: BindingOverrides = {}): ServiceBinding {
  const backends = over.backends ?? {};
  const selector = backends.selector === undefined && backends.swarm === undefined ? { selector: { matchLabels: { app: name } } } : {};
  return {
    apiVersion: "dockbind.io/v1alpha1",
    kind: "ServiceBinding",
    metadata: { name, namespace: over.namespace ?? "default", ...(over.generation !== undefined ? { generation: over.generation } : {}) },
    spec: {
      service: { name, tags: [], meta: {}, ...over.service },
      backends: { ...selector, port: 80, protocol: "tcp", addressMode: "published", ...backends },
      healthCheck: { ...HEALTH_CHECK, ...over.healthCheck },
      ...(over.loadBalancer !== undefined ? { loadBalancer: loadBalancer(name, over.loadBalancer) } : {}),
    },
  };
}

function loadBalancer(name: string, over: Partial<LoadBalancerSpec>): LoadBalancerSpec {
  const kind: LoadBalancerKind = over.kind ?? "nginx";
  return {
    kind,
    listen: { port: 8080, address: "127.0.0.1" },
    onlyPassing: true,
    method: "round_robin",
    output: `${name}.${kind === "haproxy" ? "cfg" : "conf"}`,
    ...over,
  };
}

/**
 * A running container `c-<id[0:4]>` (image nginx:1.27, no health check)
 * labelled `app=web`, private tcp port 80 published on 0.0.0.0:32768, on the
 * bridge network at 172.17.0.2.
 */
export function makeContainer(id: string, over: Partial<ContainerInfo> = {}): ContainerInfo {
  return {
    id,
    name: `c-${id.slice(0, 4)}`,
    image: "nginx:1.27",
    hostname: id.slice(0, 12),
    labels: { app: "web" },
    env: {},
    running: true,
    health: "none",
    ports: [{ privatePort: 80, protocol: "tcp", hostIP: "0.0.0.0", hostPort: 32768 }],
    networks: { bridge: "172.17.0.2" },
    ...over,
  };
}

/** A running task of Swarm service `svc1` on node `node1`, no published ports, no networks. */
export function makeSwarmTask(id: string, over: Partial<SwarmTask> = {}): SwarmTask {
  return { id, serviceId: "svc1", nodeId: "node1", desiredState: "running", state: "running", ports: [], networks: {}, ...over };
}

/** A Consul health instance `<serviceId>` on node `n` at 192.0.2.1:80, no tags. */
export function makeInstance(serviceId: string, status: HealthInstance["status"] = "passing", over: Partial<HealthInstance> = {}): HealthInstance {
  return { serviceId, node: "n", address: "192.0.2.1", port: 80, tags: [], status, ...over };
}

// ---------------------------------------------------------------- stores

/** BindingStore over a map keyed `<namespace>/<name>`; synced unless `isSynced` is set false. */
export class FakeBindings implements BindingStore {
  isSynced = true;
  readonly items = new Map<string, ServiceBinding>();
  readonly problemList: BindingProblem[] = [];

  constructor(initial: readonly ServiceBinding[] = []) {
    for (const b of initial) this.put(b);
  }

  synced(): boolean {
    return this.isSynced;
  }
  get(key: string): ServiceBinding | undefined {
    return this.items.get(key);
  }
  list(): readonly ServiceBinding[] {
    return [...this.items.values()];
  }
  problems(): readonly BindingProblem[] {
    return this.problemList;
  }
  put(b: ServiceBinding): void {
    this.items.set(bindingKey(b), b);
  }
  delete(key: string): void {
    this.items.delete(key);
  }
}

/** ContainerStore over a map keyed by container id; `select` matches labels like the real index. */
export class FakeContainers implements ContainerStore {
  isSynced = true;
  readonly items = new Map<string, ContainerInfo>();

  constructor(initial: readonly ContainerInfo[] = []) {
    for (const c of initial) this.put(c);
  }

  synced(): boolean {
    return this.isSynced;
  }
  list(): readonly ContainerInfo[] {
    return [...this.items.values()];
  }
  get(id: string): ContainerInfo | undefined {
    return this.items.get(id);
  }
  select(selector: LabelSelector): readonly ContainerInfo[] {
    return this.list().filter((c) => matchesSelector(selector, c.labels));
  }
  put(c: ContainerInfo): void {
    this.items.set(c.id, c);
  }
}

/** HealthStore whose snapshots the test sets; a ref never set answers undefined (Consul not answered yet). */
export class FakeHealth implements HealthStore {
  private readonly snapshots = new Map<string, HealthSnapshot>();

  get(ref: ServiceRef): HealthSnapshot | undefined {
    return this.snapshots.get(refKey(ref));
  }
  set(ref: ServiceRef, instances: readonly HealthInstance[]): void {
    this.snapshots.set(refKey(ref), { instances, updatedAt: Date.now() });
  }
}

// ---------------------------------------------------------------- Consul

/** One health query the fake Consul received and has not answered yet. */
export interface PendingHealthQuery {
  readonly query: HealthQuery;
  /** Answers the query (as Consul would, with X-Consul-Index `index`). */
  respond(instances: readonly HealthInstance[], index: string): void;
  /** Fails the query with `err` (default: ConsulUnavailable). */
  fail(err?: Error): void;
}

/**
 * In-process Consul agent: keeps agent services, records every agent call in
 * `calls` ("list", "register <id>", "deregister <id>"), and can fail one kind
 * of call with `failWith`. Health queries are held until the test answers
 * them through nextHealthQuery(), so a blocking query blocks exactly until
 * the test says so; an aborted query rejects like the real client.
 */
export class FakeConsul implements ConsulApi {
  readonly services = new Map<string, RegisteredService>();
  readonly calls: string[] = [];
  /** Every registration sent to register(), in order, as sent (e.g. the status after a probe); failed ones too. */
  readonly sent: Registration[] = [];
  failOn: "list" | "register" | "deregister" | undefined;
  /** Called with each registration as it is received, before the fake agent answers (a watcher seeing it first). */
  beforeRegister: ((r: Registration) => void) | undefined;
  failWith: Error = new ConsulError("ConsulUnavailable", "list agent services: connect ECONNREFUSED");
  /**
   * Status of each service's check (`service:<id>`), as a Consul 1.8 agent keeps it: a registration sets
   * it only when the check does not exist yet (Consul restores an existing check's status on
   * re-registration); deregisterCheck and deregister remove it.
   */
  readonly checkStatus = new Map<string, CheckStatus>();
  /** Every health query received, in order. */
  readonly healthQueries: HealthQuery[] = [];
  private readonly unclaimed: PendingHealthQuery[] = [];
  private readonly claimers: ((q: PendingHealthQuery) => void)[] = [];

  /** Agent writes only (register / deregister), in order. */
  writes(): string[] {
    return this.calls.filter((c) => !c.startsWith("list"));
  }

  seed(s: RegisteredService): void {
    this.services.set(s.id, s);
  }

  listAgentServices(): Promise<readonly RegisteredService[]> {
    this.calls.push("list");
    if (this.failOn === "list") return Promise.reject(this.failWith);
    return Promise.resolve([...this.services.values()].map((s) => ({ ...s, tags: [...s.tags], meta: { ...s.meta } })));
  }

  register(r: Registration): Promise<void> {
    this.calls.push(`register ${r.id}`);
    this.sent.push(r);
    this.beforeRegister?.(r);
    if (this.failOn === "register") return Promise.reject(this.failWith);
    const weight = r.weight !== undefined ? { weight: r.weight } : {};
    const checkId = serviceCheckId(r.id);
    if (r.check !== undefined && !this.checkStatus.has(checkId)) this.checkStatus.set(checkId, r.check.status ?? "critical");
    this.services.set(r.id, { id: r.id, name: r.name, address: r.address, port: r.port, tags: [...r.tags], meta: { ...r.meta }, ...weight });
    return Promise.resolve();
  }

  deregister(id: string): Promise<void> {
    this.calls.push(`deregister ${id}`);
    if (this.failOn === "deregister") return Promise.reject(this.failWith);
    this.services.delete(id);
    this.checkStatus.delete(serviceCheckId(id));
    return Promise.resolve();
  }

  deregisterCheck(checkId: string): Promise<void> {
    this.calls.push(`deregister check ${checkId}`);
    if (this.failOn === "deregister") return Promise.reject(this.failWith);
    this.checkStatus.delete(checkId);
    return Promise.resolve();
  }

  healthService(query: HealthQuery): Promise<HealthResult> {
    this.healthQueries.push(query);
    return new Promise<HealthResult>((resolve, reject) => {
      let settled = false;
      const settle = (f: () => void): void => {
        if (settled) return;
        settled = true;
        query.signal?.removeEventListener("abort", onAbort);
        f();
      };
      const onAbort = (): void => {
        settle(() => {
          reject(new Error(`health of ${query.service}: aborted`));
        });
      };
      query.signal?.addEventListener("abort", onAbort, { once: true });
      const pending: PendingHealthQuery = {
        query,
        respond: (instances, index) => {
          settle(() => {
            resolve({ instances, index });
          });
        },
        fail: (err = new ConsulError("ConsulUnavailable", `health of ${query.service}: connect ECONNREFUSED`)) => {
          settle(() => {
            reject(err);
          });
        },
      };
      if (query.signal?.aborted === true) onAbort();
      else this.hand(pending);
    });
  }

  /** The oldest health query not yet handed out; waits for the next one if there is none. */
  nextHealthQuery(): Promise<PendingHealthQuery> {
    const q = this.unclaimed.shift();
    if (q !== undefined) return Promise.resolve(q);
    return new Promise((resolve) => this.claimers.push(resolve));
  }

  leader(): Promise<string> {
    return Promise.resolve("127.0.0.1:8300");
  }

  /** TTL check updates, in order: `<checkId> <status>`. */
  readonly checkUpdates: string[] = [];
  failCheckUpdates = false;

  updateTtlCheck(checkId: string, status: CheckStatus): Promise<void> {
    this.checkUpdates.push(`${checkId} ${status}`);
    return this.failCheckUpdates ? Promise.reject(new ConsulError("ConsulUnavailable", `set check ${checkId}: connect ECONNREFUSED`)) : Promise.resolve();
  }

  private hand(q: PendingHealthQuery): void {
    const claimer = this.claimers.shift();
    if (claimer !== undefined) claimer(q);
    else this.unclaimed.push(q);
  }
}

// ---------------------------------------------------------------- load balancer

/**
 * LoadBalancerDriver that accepts everything and counts calls; set
 * `failValidation` / `failReload` to make the next validations / reloads
 * reject with that error until cleared.
 */
export class FakeDriver implements LoadBalancerDriver {
  validations = 0;
  reloads = 0;
  failValidation: Error | undefined;
  failReload: Error | undefined;

  constructor(readonly kind: LoadBalancerKind = "nginx") {}

  validateCandidate(): Promise<void> {
    this.validations++;
    return this.failValidation === undefined ? Promise.resolve() : Promise.reject(this.failValidation);
  }
  /** Files the fake LB reports loaded (nginx -T); undefined: it does not report them (haproxy). */
  loaded: ReadonlySet<string> | undefined;
  validateLive(): Promise<LiveConfig> {
    return this.failValidation === undefined ? Promise.resolve(this.loaded === undefined ? {} : { files: this.loaded }) : Promise.reject(this.failValidation);
  }
  reload(): Promise<void> {
    if (this.failReload !== undefined) return Promise.reject(this.failReload);
    this.reloads++;
    return Promise.resolve();
  }
}
