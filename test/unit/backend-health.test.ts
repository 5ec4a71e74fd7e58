/**
 * Consul's health of every binding's service reaches status: the renderer router
 * sends a health change to every binding of the service, and the renderer
 * records the passing count of a binding without a load balancer (writing no
 * file) as it does for a rendered one.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RendererRouter } from "../../src/app/keyRouter.js";
import { serviceRef, type HealthInstance, type ServiceBinding } from "../../src/domain/types.js";
import { BindingStatusStore } from "../../src/reconcilers/bindingStatus.js";
import { passingCount } from "../../src/domain/maintenance.js";
import { RendererReconciler } from "../../src/reconcilers/renderer.js";
import type { LbConfigWriter } from "../../src/actuators/lb/configWriter.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { refKey } from "../../src/sources/consul/healthWatcher.js";
import type { BindingStore } from "../../src/ports/bindingStore.js";
import { FakeBindings, FakeHealth, makeBinding, makeInstance } from "../support/fakes.js";

function binding(name: string, service: string, withLb: boolean): ServiceBinding {
  return makeBinding(name, { service: { name: service }, ...(withLb ? { loadBalancer: {} } : {}) });
}

function store(bindings: readonly ServiceBinding[]): BindingStore {
  return new FakeBindings(bindings);
}

function instance(id: string, status: HealthInstance["status"]): HealthInstance {
  return makeInstance(id, status);
}

/** A writer that must never be called: bindings without a load balancer write nothing. */
const noWriter = {
  apply: () => Promise.reject(new Error("no file may be written")),
  remove: () => Promise.reject(new Error("no file may be removed")),
} as unknown as LbConfigWriter;

describe("backend health of every binding", () => {
  it("routes a health change to every binding of the service, with or without a load balancer", () => {
    const bindings = store([binding("web", "shop", true), binding("worker", "shop", false), binding("other", "mail", false)]);
    const rendered: string[] = [];
    const router = new RendererRouter({ bindings, renderer: { add: (r) => rendered.push(r.binding) } });
    router.healthChanged(refKey({ service: "shop" }));
    assert.deepEqual(rendered.sort(), ["default/web", "default/worker"]);
  });

  it("records the passing count of a binding without a load balancer and writes no file", async () => {
    const worker = binding("worker", "shop", false);
    const health = new FakeHealth();
    health.set(serviceRef(worker), [instance("a", "passing"), instance("b", "critical"), instance("c", "passing")]);
    const status = new BindingStatusStore();
    const renderer = new RendererReconciler({
      bindings: store([worker]),
      health,
      writer: noWriter,
      status,
      logger: silentLogger(),
      outputDir: "/nonexistent",
      templateDir: "/nonexistent",
    });
    assert.deepEqual(await renderer.reconcile({ kind: "render", binding: "default/worker" }), {});
    assert.equal(status.get("default/worker").backends.passing, 2);
  });

  it("counts only instances Consul reports passing", () => {
    assert.equal(passingCount([instance("a", "passing"), instance("b", "warning"), instance("c", "critical")]), 1);
    assert.equal(passingCount([]), 0);
  });
});
