/**
 * StatusWriter: what goes into ServiceBinding .status and when it is written
 * (only on change, once per change even before the watch has caught up),
 * observedGeneration, lastTransitionTime kept across restarts, InvalidSpec
 * overlay, Ready transitions as Events.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { EventRecorder } from "../../src/actuators/kubernetes/events.js";
import type { KubeClient, KubeObject, RequestOpts } from "../../src/clients/kubernetes/kubeClient.js";
import { StatusWriter, type StatusSource } from "../../src/reconcilers/kubernetes/statusWriter.js";
import type { ServiceBinding } from "../../src/domain/types.js";
import { BindingStatusStore } from "../../src/reconcilers/bindingStatus.js";
import { silentLogger } from "../../src/runtime/logger.js";
import type { BindingProblem } from "../../src/ports/bindingStore.js";

const KEY = "default/web";

class FakeClient implements KubeClient {
  readonly server = "fake";
  readonly patches: { path: string; body: unknown }[] = [];
  rv = 100;
  request<T>(method: string, path: string, opts?: RequestOpts): Promise<T> {
    assert.equal(method, "PATCH");
    assert.equal(opts?.contentType, "application/merge-patch+json");
    this.patches.push({ path, body: opts.body });
    return Promise.resolve({ metadata: { name: "web", resourceVersion: String(++this.rv) } } as T);
  }
  watch(): Promise<void> {
    return Promise.reject(new Error("not used"));
  }
}

function setup(
  obj: KubeObject,
  problems: BindingProblem[] = [],
): { writer: StatusWriter; client: FakeClient; status: BindingStatusStore; events: string[]; src: { obj: KubeObject; problems: BindingProblem[] } } {
  const client = new FakeClient();
  const status = new BindingStatusStore();
  const events: string[] = [];
  const recorder: EventRecorder = { record: (_o, type, reason) => events.push(`${type} ${reason}`) };
  const src = { obj, problems };
  const source: StatusSource = {
    object: (k) => (k === KEY ? src.obj : undefined),
    get: (k) => (k === KEY ? ({ metadata: { name: "web", namespace: "default", generation: 1 } } as ServiceBinding) : undefined),
    problemsOf: () => src.problems,
  };
  return { writer: new StatusWriter({ client, source, status, events: recorder, logger: silentLogger() }), client, status, events, src };
}

const object = (generation: number, status?: unknown, rv = "1"): KubeObject => ({
  apiVersion: "dockbind.io/v1alpha1",
  kind: "ServiceBinding",
  metadata: { name: "web", namespace: "default", generation, resourceVersion: rv },
  ...(status !== undefined ? { status } : {}),
});

describe("StatusWriter", () => {
  it("writes conditions, counts and observedGeneration once both reconcilers finished the generation; never twice for one change", async () => {
    const { writer, client, status, events, src } = setup(object(1));
    status.setBackends(KEY, { desired: 2, registered: 2 });
    status.setCondition(KEY, "Registered", "True", "Registered", "2 instance(s) registered");
    writer.noteReconciled("registrar", KEY, 1);
    await writer.reconcile(KEY);
    const first = client.patches[0]?.body as { status: { observedGeneration?: number; conditions: { type: string; status: string }[] } };
    assert.equal(client.patches[0]?.path, "/apis/dockbind.io/v1alpha1/namespaces/default/servicebindings/web/status");
    assert.equal(first.status.observedGeneration, undefined, "renderer has not finished generation 1 yet");
    assert.deepEqual(
      first.status.conditions.map((c) => `${c.type}=${c.status}`),
      ["Ready=True", "Registered=True"],
    );
    assert.deepEqual(events, ["Normal Ready"]);
    // Same desired status again before the informer saw our write: no second PATCH.
    await writer.reconcile(KEY);
    assert.equal(client.patches.length, 1);
    writer.noteReconciled("renderer", KEY, 1);
    await writer.reconcile(KEY);
    const second = client.patches[1]?.body as { status: { observedGeneration: number; backends: unknown } };
    assert.equal(second.status.observedGeneration, 1);
    assert.deepEqual(second.status.backends, { desired: 2, registered: 2, passing: 0 });
    // Once the object carries it, nothing more is written.
    src.obj = object(1, second.status, String(client.rv));
    await writer.reconcile(KEY);
    assert.equal(client.patches.length, 2);
  });

  it("keeps lastTransitionTime from the object while a condition's status is unchanged (e.g. after a controller restart)", async () => {
    const carried = {
      observedGeneration: 1,
      conditions: [{ type: "Ready", status: "True", reason: "Converged", message: "old", lastTransitionTime: "2020-01-01T00:00:00Z", observedGeneration: 1 }],
      backends: { desired: 1, registered: 1, passing: 0 },
    };
    const { writer, client, status } = setup(object(1, carried));
    status.setCondition(KEY, "Registered", "True", "Registered", "1 instance(s) registered");
    writer.noteReconciled("registrar", KEY, 1);
    writer.noteReconciled("renderer", KEY, 1);
    await writer.reconcile(KEY);
    const body = client.patches[0]?.body as { status: { conditions: { type: string; lastTransitionTime: string }[] } };
    assert.equal(body.status.conditions.find((c) => c.type === "Ready")?.lastTransitionTime, "2020-01-01T00:00:00Z");
    assert.notEqual(body.status.conditions.find((c) => c.type === "Registered")?.lastTransitionTime, "2020-01-01T00:00:00Z");
  });

  it("an invalid spec: Ready=False/InvalidSpec and Degraded=True naming the field, observedGeneration = the object's, Warning event", async () => {
    const problems: BindingProblem[] = [{ source: "x", document: 0, field: "spec.backends.port", message: "must be <= 65535", key: KEY }];
    const { writer, client, events } = setup(object(3), problems);
    await writer.reconcile(KEY);
    const body = client.patches[0]?.body as {
      status: { observedGeneration: number; conditions: { type: string; status: string; reason: string; message: string }[] };
    };
    assert.equal(body.status.observedGeneration, 3);
    const ready = body.status.conditions.find((c) => c.type === "Ready");
    assert.ok(ready);
    assert.equal(ready.status, "False");
    assert.equal(ready.reason, "InvalidSpec");
    assert.match(ready.message, /spec\.backends\.port: must be <= 65535/);
    assert.match(ready.message, /still serving generation 1/);
    assert.equal(body.status.conditions.find((c) => c.type === "Degraded")?.status, "True");
    assert.deepEqual(events, ["Warning InvalidSpec"]);
  });
});
