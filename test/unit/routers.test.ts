/**
 * The event routers: which source events become which typed requests. Each
 * Docker endpoint has its own RegistrarRouter (its node's registrar requests
 * only); the one RendererRouter turns binding and health changes into render
 * requests, without any endpoint.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ConsulApi } from "../../src/ports/consul.js";
import { DockerEndpointPipeline } from "../../src/app/dockerEndpoint.js";
import { RegistrarRouter, RendererRouter } from "../../src/app/keyRouter.js";
import { loadConfig } from "../../src/config/config.js";
import type { ContainerInfo, ServiceBinding } from "../../src/domain/types.js";
import { processTelemetry } from "../../src/observability/telemetry.js";
import { BindingStatusStore } from "../../src/reconcilers/bindingStatus.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { decodeNodeRequest, type RegistrarRequest, type RendererRequest } from "../../src/runtime/requests.js";
import { WorkQueue } from "../../src/runtime/workqueue.js";
import { refKey } from "../../src/sources/consul/healthWatcher.js";
import type { BindingStore } from "../../src/ports/bindingStore.js";
import type { ContainerStore } from "../../src/ports/containerStore.js";
import type { SwarmStore } from "../../src/ports/swarmStore.js";

function binding(name: string, service: string, backends: ServiceBinding["spec"]["backends"]): ServiceBinding {
  return {
    apiVersion: "dockbind.io/v1alpha1",
    kind: "ServiceBinding",
    metadata: { name, namespace: "default" },
    spec: {
      service: { name: service, tags: [], meta: {} },
      backends,
      healthCheck: { type: "tcp", path: "/", interval: "10s", timeout: "2s", ttl: "30s", initialStatus: "critical" },
    },
  };
}

const selected = (app: string): ServiceBinding["spec"]["backends"] => ({
  selector: { matchLabels: { app } },
  port: 80,
  protocol: "tcp",
  addressMode: "published",
});

const WEB = binding("web", "shop", selected("web"));
const API = binding("api", "shop", selected("api"));
const MAIL = binding("mail", "mail", selected("mail"));

function store(bindings: readonly ServiceBinding[]): BindingStore {
  return { synced: () => true, get: (k) => bindings.find((b) => `default/${b.metadata.name}` === k), list: () => bindings, problems: () => [] };
}

function container(id: string, labels: Record<string, string>): ContainerInfo {
  return { id, labels } as unknown as ContainerInfo;
}

function containers(list: readonly ContainerInfo[]): ContainerStore {
  return { synced: () => true, list: () => list, get: (id) => list.find((c) => c.id === id), select: () => [] };
}

const noSwarm: SwarmStore = { view: () => ({ kind: "unavailable", reason: "SwarmNotActive", message: "" }) };

function registrarRouter(compat: boolean, list: readonly ContainerInfo[] = []): { router: RegistrarRouter; requests: RegistrarRequest[] } {
  const requests: RegistrarRequest[] = [];
  const router = new RegistrarRouter({
    bindings: store([WEB, API, MAIL]),
    containers: containers(list),
    swarm: noSwarm,
    registrar: { add: (r) => requests.push(r) },
    compat,
  });
  return { router, requests };
}

describe("RegistrarRouter (one per Docker endpoint)", () => {
  it("a container change queues the bindings whose selector matched it before or after, and nothing to render", () => {
    const { router, requests } = registrarRouter(false);
    router.containerChanged({ id: "c1", before: container("c1", { app: "web" }), after: container("c1", { app: "api" }) });
    assert.deepEqual(requests, [
      { kind: "binding", binding: "default/web" },
      { kind: "binding", binding: "default/api" },
    ]);
  });

  it("with --registrator-compat a container change also queues the container itself", () => {
    const { router, requests } = registrarRouter(true);
    router.containerChanged({ id: "c9", after: container("c9", { other: "x" }) });
    assert.deepEqual(requests, [{ kind: "container", container: "c9" }]);
  });

  it("changed bindings queue each binding, plus every compat container (port claims may have moved)", () => {
    const { router, requests } = registrarRouter(true, [container("c1", {}), container("c2", {})]);
    router.bindingsChanged(["default/web", "default/gone"]);
    assert.deepEqual(requests, [
      { kind: "binding", binding: "default/web" },
      { kind: "binding", binding: "default/gone" },
      { kind: "container", container: "c1" },
      { kind: "container", container: "c2" },
    ]);
  });

  it("a resync queues every binding and, without compat, no container", () => {
    const { router, requests } = registrarRouter(false, [container("c1", {})]);
    router.allRegistrations();
    assert.deepEqual(
      requests.map((r) => (r.kind === "binding" ? r.binding : r.container)),
      ["default/web", "default/api", "default/mail"],
    );
  });

  it("a periodic resync queues at low priority (never ahead of events); events and recovery at high", () => {
    const seen: string[] = [];
    const router = new RegistrarRouter({
      bindings: store([WEB]),
      containers: containers([container("c1", {})]),
      swarm: noSwarm,
      registrar: { add: (r, priority) => seen.push(`${r.kind}:${priority ?? "high"}`) },
      compat: true,
    });
    router.allRegistrations("low");
    assert.deepEqual(seen.splice(0), ["binding:low", "container:low"]);
    router.allRegistrations();
    router.containerChanged({ id: "c1", after: container("c1", { app: "web" }) });
    assert.deepEqual(seen, ["binding:high", "container:high", "binding:high", "container:high"]);
  });
});

describe("RendererRouter (one per manager)", () => {
  function rendererRouter(): { router: RendererRouter; requests: RendererRequest[] } {
    const requests: RendererRequest[] = [];
    return { router: new RendererRouter({ bindings: store([WEB, API, MAIL]), renderer: { add: (r) => requests.push(r) } }), requests };
  }

  it("a health change queues every binding of that service, and only those", () => {
    const { router, requests } = rendererRouter();
    router.healthChanged(refKey({ service: "shop" }));
    assert.deepEqual(requests, [
      { kind: "render", binding: "default/web" },
      { kind: "render", binding: "default/api" },
    ]);
  });

  it("changed bindings queue their render requests; a resync queues every binding", () => {
    const { router, requests } = rendererRouter();
    router.bindingsChanged(["default/mail", "default/gone"]);
    router.allRendered();
    assert.deepEqual(
      requests.map((r) => r.binding),
      ["default/mail", "default/gone", "default/web", "default/api", "default/mail"],
    );
  });
});

describe("each Docker endpoint's router queues requests of its own node only", () => {
  it("two endpoints share the registrar queue; a container change on one yields keys of that node", async () => {
    const config = loadConfig(
      [
        "--docker-only",
        "--bindings",
        "/srv/bindings",
        "--log-format",
        "json",
        "--docker-endpoint",
        "node=host-a,host=tcp://192.0.2.10:2375",
        "--docker-endpoint",
        "node=host-b,host=tcp://192.0.2.11:2375",
      ],
      {},
    );
    const registrarQueue = new WorkQueue({ name: "registrar", backoff: { baseMs: 10, maxMs: 100 } });
    const endpoints: DockerEndpointPipeline[] = [];
    for (const endpoint of config.dockerEndpoints) {
      endpoints.push(
        new DockerEndpointPipeline({
          endpoint,
          config,
          logger: silentLogger(),
          bindings: store([WEB, API, MAIL]),
          consul: {} as ConsulApi,
          status: new BindingStatusStore(),
          telemetry: processTelemetry(),
          registrarQueue,
          backoff: { baseMs: 10, maxMs: 100 },
          peers: () => endpoints,
          onSwarmAvailability: () => undefined,
        }),
      );
    }
    const [a, b] = endpoints;
    assert.ok(a !== undefined && b !== undefined);
    b.route.containerChanged({ id: "c1", after: container("c1", { app: "mail" }) });
    a.route.bindingsChanged(["default/web"]);
    const keys: string[] = [];
    for (let i = 0; i < 2; i++) {
      const key = await registrarQueue.get();
      assert.ok(key !== undefined);
      keys.push(key);
    }
    assert.deepEqual(
      keys.map((k) => decodeNodeRequest(k)),
      [
        { node: "host-b", request: { kind: "binding", binding: "default/mail" } },
        { node: "host-a", request: { kind: "binding", binding: "default/web" } },
      ],
    );
    registrarQueue.shutDown();
  });
});
