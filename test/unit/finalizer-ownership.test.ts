/**
 * The Kubernetes finalizer waits only for registrations this controller owns
 * (the registrar's ownership rule): another controller's registration of the
 * same binding key under the same node name does not hold the object back,
 * ours (or a legacy one) does, and nothing is judged before the engine IDs are known.
 * It removes the finalizer only after both the registrar and the renderer finished a
 * pass with the binding absent, whatever order their passes end in.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { FinalizerController } from "../../src/reconcilers/kubernetes/finalizer.js";
import type { KubeClient, KubeObject } from "../../src/clients/kubernetes/kubeClient.js";
import type { OwnerIdentity } from "../../src/domain/ownership.js";
import { OWNER_META, type RegisteredService } from "../../src/domain/types.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { FINALIZER } from "../../src/sources/kubernetes/kubeBindingSource.js";
import type { ConsulApi } from "../../src/ports/consul.js";

const SELF: OwnerIdentity = { node: "k8s-node", engine: "ENGINE-1", instance: "i-release-a", adopt: [] };
const KEY = "default/web";

function svc(id: string, instance: string | undefined): RegisteredService {
  const identity: Record<string, string> = instance === undefined ? {} : { [OWNER_META.engine]: SELF.engine, [OWNER_META.instance]: instance };
  return { id, name: "web", address: "10.0.0.1", port: 80, tags: [], meta: { [OWNER_META.node]: SELF.node, [OWNER_META.binding]: KEY, ...identity } };
}

function run(services: readonly RegisteredService[], owners: () => readonly (OwnerIdentity | undefined)[], passes?: (f: FinalizerController) => void) {
  const patches: string[] = [];
  const deleting: KubeObject = {
    metadata: { name: "web", namespace: "default", resourceVersion: "7", deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: [FINALIZER] },
  };
  const client = {
    server: "https://test",
    request: (method: string, path: string): Promise<never> => {
      patches.push(`${method} ${path}`);
      return Promise.resolve({} as never);
    },
    watch: () => Promise.resolve(),
  } as unknown as KubeClient;
  const consul = { listAgentServices: () => Promise.resolve(services) } as unknown as ConsulApi;
  const f = new FinalizerController({
    client,
    consul,
    owners,
    source: { object: () => deleting, needsFinalizer: () => false },
    outputDirs: [mkdtempSync(join(tmpdir(), "dockbind-fin-"))],
    events: { record: () => undefined },
    logger: silentLogger(),
    recheckMs: 123,
  });
  if (passes !== undefined) passes(f);
  else {
    f.noteReconciled("registrar", KEY, false);
    f.noteReconciled("renderer", KEY, false);
  }
  return { reconcile: () => f.reconcile(KEY), patches };
}

describe("FinalizerController: ownership of leftovers", () => {
  it("another controller's registration under our node does not hold the finalizer", async () => {
    const r = run([svc("peer", "i-release-b")], () => [SELF]);
    assert.deepEqual(await r.reconcile(), {});
    assert.equal(r.patches.length, 1, "finalizer removed");
  });

  it("our own registration, or one written before engine/instance meta existed, holds it", async () => {
    for (const left of [svc("ours", SELF.instance), svc("legacy", undefined)]) {
      const r = run([left], () => [SELF]);
      assert.deepEqual(await r.reconcile(), { requeueAfterMs: 123 }, left.id);
      assert.deepEqual(r.patches, []);
    }
  });

  it("a registrar pass that started before the delete and ends after the renderer's absent pass does not cancel that pass", async () => {
    const r = run(
      [],
      () => [SELF],
      (f) => {
        f.noteReconciled("renderer", KEY, false);
        f.noteReconciled("registrar", KEY, true);
        f.noteReconciled("registrar", KEY, false);
      },
    );
    assert.deepEqual(await r.reconcile(), {});
    assert.equal(r.patches.length, 1, "finalizer removed");
  });

  it("waits for both reconcilers' absent passes; a reconciler's later present pass withdraws its own", async () => {
    const onlyRegistrar = run(
      [],
      () => [SELF],
      (f) => {
        f.noteReconciled("registrar", KEY, false);
      },
    );
    assert.deepEqual(await onlyRegistrar.reconcile(), { requeueAfterMs: 123 });
    const withdrawn = run(
      [],
      () => [SELF],
      (f) => {
        f.noteReconciled("registrar", KEY, false);
        f.noteReconciled("renderer", KEY, false);
        f.noteReconciled("renderer", KEY, true);
      },
    );
    assert.deepEqual(await withdrawn.reconcile(), { requeueAfterMs: 123 });
    assert.deepEqual(withdrawn.patches, []);
  });

  it("waits while an endpoint's engine ID is not known yet", async () => {
    const r = run([], () => [SELF, undefined]);
    assert.deepEqual(await r.reconcile(), { requeueAfterMs: 123 });
    assert.deepEqual(r.patches, []);
  });
});
