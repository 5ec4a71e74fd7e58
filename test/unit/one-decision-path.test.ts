/**
 * The controller and `controller plan` take the same decisions on the same
 * world: for each kind of binding (containers, Swarm tasks, registrator-compat,
 * compat next to a binding claiming the port, several endpoints) the
 * registrations the registrar writes are exactly what the plan lists as
 * `register`, and once the registrar converged the plan lists nothing; for
 * nginx, haproxy and custom-template bindings the plan previews the very file
 * (path and bytes) the renderer writes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ApplyOptions, ApplyResult, LbConfigWriter } from "../../src/actuators/lb/configWriter.js";
import { computePlan, type PlanEndpoint } from "../../src/cli/planCompute.js";
import { containerLookup } from "../../src/domain/decisions.js";
import type { OwnerIdentity } from "../../src/domain/ownership.js";
import { COMPAT_BINDING_KEY } from "../../src/domain/registratorCompat.js";
import type { SwarmSnapshot, SwarmView } from "../../src/domain/swarm.js";
import {
  bindingKey,
  type ContainerInfo,
  type HealthInstance,
  type LoadBalancerSpec,
  type RegisteredService,
  type ServiceBinding,
} from "../../src/domain/types.js";
import { BindingStatusStore } from "../../src/reconcilers/bindingStatus.js";
import { RegistrarReconciler } from "../../src/reconcilers/registrar.js";
import { RendererReconciler } from "../../src/reconcilers/renderer.js";
import { renderFor } from "../../src/render/renderFor.js";
import { silentLogger } from "../../src/runtime/logger.js";
import type { BindingStore } from "../../src/ports/bindingStore.js";
import { FakeBindings, FakeConsul, FakeHealth, makeBinding, makeContainer } from "../support/fakes.js";

const HOST_IP = "192.0.2.10";

function store(bindings: readonly ServiceBinding[]): BindingStore {
  return new FakeBindings(bindings);
}

function binding(name: string, backends: Partial<ServiceBinding["spec"]["backends"]>, lb?: Partial<LoadBalancerSpec>): ServiceBinding {
  return makeBinding(name, { backends, ...(lb !== undefined ? { loadBalancer: lb } : {}) });
}

function container(id: string, labels: Record<string, string>, hostPort: number, privatePort = 80): ContainerInfo {
  return makeContainer(id, { image: "web:1", labels, ports: [{ privatePort, protocol: "tcp", hostIP: "0.0.0.0", hostPort }] });
}

const id = (c: string): string => c.repeat(64).slice(0, 64);
const SWARM: SwarmSnapshot = {
  services: [{ id: "svc1", name: "api", labels: {} }],
  tasks: [
    {
      id: "task1",
      serviceId: "svc1",
      nodeId: "n1",
      desiredState: "running",
      state: "running",
      ports: [{ protocol: "tcp", targetPort: 80, publishedPort: 30080, publishMode: "host" }],
      networks: {},
    },
  ],
  nodes: [{ id: "n1", hostname: "h1", addr: "192.0.2.50" }],
};

interface Case {
  readonly name: string;
  readonly bindings: readonly ServiceBinding[];
  readonly containers: readonly ContainerInfo[];
  readonly swarm?: SwarmView;
  readonly compat?: boolean;
}

const CASES: readonly Case[] = [
  {
    name: "containers",
    bindings: [binding("web", { selector: { matchLabels: { app: "web" } } })],
    containers: [container(id("a"), { app: "web" }, 30001), container(id("b"), { app: "web" }, 30002), container(id("c"), { app: "other" }, 30003)],
  },
  { name: "Swarm tasks", bindings: [binding("api", { swarm: { service: "api" } })], containers: [], swarm: { kind: "ready", snapshot: SWARM } },
  {
    name: "Swarm served by another endpoint (copies removed, none added)",
    bindings: [binding("api", { swarm: { service: "api" } })],
    containers: [],
    swarm: { kind: "unavailable", reason: "SwarmServedByOtherEndpoint", message: "x" },
  },
  { name: "registrator-compat", bindings: [], containers: [{ ...container(id("d"), { SERVICE_NAME: "legacy" }, 30004) }], compat: true },
  {
    name: "registrator-compat next to a binding claiming the port",
    bindings: [binding("web", { selector: { matchLabels: { app: "web" } } })],
    containers: [
      {
        ...container(id("e"), { app: "web", SERVICE_NAME: "legacy" }, 30005),
        ports: [
          { privatePort: 80, protocol: "tcp", hostIP: "0.0.0.0", hostPort: 30005 },
          { privatePort: 9090, protocol: "tcp", hostIP: "0.0.0.0", hostPort: 30006 },
        ],
      },
    ],
    compat: true,
  },
];

/** What the registrar writes for `c` on node `node`, reconciling every key a resync queues. */
async function controllerRegisters(c: Case, node: string, consul: FakeConsul): Promise<void> {
  const containers = { synced: () => true, list: () => c.containers, ...containerLookup(c.containers) };
  const registrar = new RegistrarReconciler({
    bindings: store(c.bindings),
    containers,
    consul,
    status: new BindingStatusStore(),
    logger: silentLogger(),
    node,
    identity: () => owner(node),
    hostIP: HOST_IP,
    agentServicesMaxAgeMs: 0,
    ...(c.swarm !== undefined ? { swarm: { view: () => c.swarm ?? { kind: "unavailable", reason: "SwarmNotSynced", message: "" } } } : {}),
    ...(c.compat === true ? { compat: { node, hostIP: HOST_IP, internal: false, extraTags: [] } } : {}),
  });
  for (const b of c.bindings) await registrar.reconcile({ kind: "binding", binding: bindingKey(b) });
  for (const x of c.containers) await registrar.reconcile({ kind: "container", container: x.id });
}

function owner(node: string): OwnerIdentity {
  return { node, engine: `engine-${node}`, instance: "i-test", adopt: [] };
}

function endpoint(c: Case, node: string): PlanEndpoint {
  return {
    node,
    owner: owner(node),
    hostIP: HOST_IP,
    containers: c.containers,
    ...(c.swarm !== undefined ? { swarm: c.swarm } : {}),
    ...(c.compat === true ? { compat: { node, hostIP: HOST_IP, internal: false, extraTags: [] } } : {}),
  };
}

function plan(c: Case, nodes: readonly string[], agent: readonly RegisteredService[]): ReturnType<typeof computePlan> {
  return computePlan({
    endpoints: nodes.map((n) => endpoint(c, n)),
    bindings: c.bindings,
    agentServices: agent,
    rendered: [],
    onDisk: new Map(),
    ownedFiles: new Map(),
  });
}

describe("one decision path: the registrar and `controller plan` agree", () => {
  for (const c of CASES) {
    for (const nodes of [["node-a"], ["node-a", "node-b"]]) {
      it(`${c.name} (${nodes.length} endpoint${nodes.length > 1 ? "s" : ""})`, async () => {
        const consul = new FakeConsul();
        const planned = plan(c, nodes, []);
        for (const n of nodes) await controllerRegisters(c, n, consul);
        const written = [...consul.services.keys()].sort();
        assert.deepEqual(
          planned.registrations
            .filter((r) => r.action === "register")
            .map((r) => r.serviceId)
            .sort(),
          written,
        );
        assert.deepEqual(
          planned.registrations.filter((r) => r.action !== "register"),
          [],
        );
        assert.deepEqual(plan(c, nodes, [...consul.services.values()]).registrations, [], "converged: the plan lists nothing");
      });
    }
  }

  it("compat never registers a port a binding claims; the other ports are registered", async () => {
    const c = CASES[4];
    assert.ok(c);
    const consul = new FakeConsul();
    await controllerRegisters(c, "node-a", consul);
    const compat = [...consul.services.values()].filter((s) => s.meta.dockbind_binding === COMPAT_BINDING_KEY).map((s) => s.port);
    assert.deepEqual(compat, [30006]);
  });
});

describe("one decision path: the renderer writes what the plan previews", () => {
  const instances: readonly HealthInstance[] = [{ serviceId: "s1", node: "n", address: "192.0.2.7", port: 30001, tags: [], status: "passing" }];
  const dirs = { nginx: "/out/nginx", haproxy: "/out/haproxy" };
  for (const [name, lb, path] of [
    ["nginx", { kind: "nginx" as const, output: "web.conf" }, "/out/nginx/web.conf"],
    ["haproxy", { kind: "haproxy" as const, output: "web.cfg" }, "/out/haproxy/web.cfg"],
    ["custom template", { kind: "nginx" as const, output: "web.conf", template: "web.tmpl" }, "/out/nginx/web.conf"],
  ] as const) {
    it(name, async () => {
      const b = binding("web", { selector: { matchLabels: { app: "web" } } }, lb);
      const template = "template" in lb ? "upstream {{upstream}} {\n{{#servers}}  server {{address}}:{{port}};\n{{/servers}}}\n" : undefined;
      const written: ApplyOptions[] = [];
      const writer = {
        apply: (req: ApplyOptions): Promise<ApplyResult> => (written.push(req), Promise.resolve({ changed: true, reloaded: true })),
        remove: () => Promise.resolve(),
      } as unknown as LbConfigWriter;
      const health = new FakeHealth();
      health.set({ service: "web" }, instances);
      const renderer = new RendererReconciler({
        bindings: store([b]),
        health,
        writer,
        status: new BindingStatusStore(),
        logger: silentLogger(),
        outputDir: dirs.nginx,
        templateDir: "/nonexistent",
        haproxy: { writer, outputDir: dirs.haproxy },
      });
      if (template !== undefined) (renderer as unknown as { readTemplate: () => Promise<string> }).readTemplate = () => Promise.resolve(template);
      await renderer.reconcile({ kind: "render", binding: "default/web" });
      const planned = renderFor(b, instances, template, dirs);
      const w = written[0];
      assert.ok(w !== undefined && planned !== undefined);
      assert.equal(w.path, path);
      assert.equal(planned.path, path);
      assert.equal(w.text, planned.text);
      const onDisk = new Map([[path, w.text]]);
      const lbPlan = computePlan({
        endpoints: [],
        bindings: [b],
        agentServices: [],
        rendered: [{ binding: "default/web", path: planned.path, text: planned.text }],
        onDisk,
        ownedFiles: new Map(),
      });
      assert.deepEqual(
        lbPlan.loadBalancer.map((x) => x.action),
        ["unchanged"],
      );
    });
  }
});
