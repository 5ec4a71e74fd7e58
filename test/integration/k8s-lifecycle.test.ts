/**
 * Issue #3 acceptance, Kubernetes mode on a real kube-apiserver + etcd, real
 * Consul, nginx and dockerd: create / edit / delete converge Consul and the
 * generated nginx config with correct status; an invalid object (old, loose
 * CRD) affects only itself; delete while the controller is stopped leaves
 * nothing behind; an API server restart mid-run does not stop reconciliation.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startConsul, type ConsulHandle } from "../support/consul.js";
import { startConsulProxy, type ConsulProxy } from "../support/consulProxy.js";
import { runBackend } from "../support/docker.js";
import { ensureDockerd } from "../support/dockerd.js";
import { httpGet } from "../support/http.js";
import { ensureBackendImage } from "../support/image.js";
import { condition, getBinding, installCrd, startK8sController, startKube, type K8sController, type KubeHandle } from "../support/k8s.js";
import { startNginx, type NginxHandle } from "../support/nginx.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";

const NODE = "k8s-life";
let kube: KubeHandle;
let consul: ConsulHandle;
let proxy: ConsulProxy;
let nginx: NginxHandle;
let controller: K8sController | undefined;

interface HealthEntry {
  readonly id: string;
  readonly tags: readonly string[];
  readonly status: string;
  readonly meta: Readonly<Record<string, string>>;
}

async function health(service: string): Promise<HealthEntry[]> {
  const res = await httpGet(`${consul.url}/v1/health/service/${service}`);
  const entries = JSON.parse(res.body) as {
    Service: { ID: string; Tags: string[] | null; Meta: Record<string, string> | null };
    Checks: { Status: string }[];
  }[];
  return entries.map((e) => ({
    id: e.Service.ID,
    tags: e.Service.Tags ?? [],
    meta: e.Service.Meta ?? {},
    status: e.Checks.some((c) => c.Status !== "passing") ? "not-passing" : "passing",
  }));
}

/** Agent services owned by this test's controller node. */
async function owned(): Promise<string[]> {
  const res = await httpGet(`${consul.url}/v1/agent/services`);
  const all = JSON.parse(res.body) as Record<string, { Meta?: Record<string, string> | null }>;
  return Object.entries(all)
    .filter(([, s]) => s.Meta?.dockbind_node === NODE)
    .map(([id]) => id);
}

function lbFile(name: string): string | undefined {
  try {
    return readFileSync(join(nginx.confDir, name), "utf8");
  } catch {
    return undefined;
  }
}

function bindingYaml(name: string, app: string, opts: { listenPort?: number; tags?: readonly string[] } = {}): string {
  const lb = opts.listenPort === undefined ? "" : `  loadBalancer:\n    listen: {port: ${opts.listenPort}}\n    output: ${name}.conf\n`;
  return `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata:
  name: ${name}
  namespace: default
spec:
  service:
    name: ${name}
    tags: [${(opts.tags ?? ["k8s"]).join(", ")}]
  backends:
    selector:
      matchLabels: {app: ${app}}
    port: 80
  healthCheck:
    type: http
    path: /health/
    interval: 1s
    timeout: 1s
${lb}`;
}

function start(): K8sController {
  controller = startK8sController({
    kubeconfig: kube.kubeconfig,
    consulAddr: proxy.addr,
    outputDir: nginx.confDir,
    nginxArgs: nginx.nginxArgs,
    node: NODE,
    identity: "life-1",
    logName: `controller-${NODE}.log`,
  });
  return controller;
}

before(async () => {
  await Promise.all([ensureDockerd(), ensureBackendImage()]);
  [kube, consul, nginx] = await Promise.all([startKube(), startConsul({ node: `consul-${NODE}` }), startNginx()]);
  proxy = await startConsulProxy(consul.httpAddr);
  await installCrd(kube);
  const c = start();
  await c.waitForLog((l) => l.message === "controller started", "controller leads and runs");
});

after(async () => {
  await controller?.stop();
  await proxy.close();
  await kube.stop();
  await cleanupAll();
});

describe("ServiceBinding lifecycle through the API server", () => {
  let port = 0;
  let readySince = "";

  it("create: registers backends, renders nginx, adds the finalizer and reports Ready with observedGeneration 1", async () => {
    port = await freePort();
    await runBackend({ name: "k8s-life-a", labels: { app: "k8s-life-web" }, env: { NAME: "a" } });
    await runBackend({ name: "k8s-life-b", labels: { app: "k8s-life-web" }, env: { NAME: "b" } });
    await kube.kubectl(["apply", "-f", "-"], { input: bindingYaml("life-web", "k8s-life-web", { listenPort: port }) });
    await waitFor(async () => ((await health("life-web")).filter((e) => e.status === "passing").length === 2 ? true : undefined), {
      timeoutMs: 30_000,
      what: "2 passing life-web instances",
    });
    await waitFor(async () => ((await nginx.get(port)).status === 200 ? true : undefined), { timeoutMs: 20_000, what: "nginx serves life-web" });
    const b = await waitFor(
      async () => {
        const v = await getBinding(kube, "life-web");
        return condition(v, "Ready")?.status === "True" && v?.observedGeneration === 1 && v.backends?.passing === 2 ? v : undefined;
      },
      { timeoutMs: 30_000, what: "life-web Ready, observedGeneration 1, 2 passing" },
    );
    assert.deepEqual(b.finalizers, ["dockbind.io/finalizer"]);
    assert.deepEqual(b.backends, { desired: 2, registered: 2, passing: 2 });
    for (const t of ["Ready", "Registered", "LoadBalancerConfigured"]) assert.equal(condition(b, t)?.status, "True", t);
    assert.equal(condition(b, "Degraded")?.status, "False");
    assert.equal(condition(b, "Registered")?.reason, "Registered");
    assert.equal(condition(b, "Ready")?.reason, "Converged");
    readySince = condition(b, "Ready")?.lastTransitionTime ?? "";
    // Printer columns.
    const table = (await kube.kubectl(["get", "sb", "life-web"])).stdout;
    assert.match(table, /^NAME\s+SERVICE\s+DESIRED\s+REGISTERED\s+PASSING\s+READY\s+AGE/m);
    assert.match(table, /^life-web\s+life-web\s+2\s+2\s+2\s+True\s+\S+/m);
    // A Normal "Ready" event for the object.
    await waitFor(
      async () => {
        const ev = (await kube.kubectl(["get", "events", "--field-selector", "involvedObject.name=life-web", "-o", "json"])).stdout;
        return (JSON.parse(ev) as { items: { reason: string; type: string }[] }).items.some((e) => e.reason === "Ready" && e.type === "Normal") || undefined;
      },
      { timeoutMs: 10_000, what: "Ready event" },
    );
  });

  it("edit: a new generation converges Consul and nginx, observedGeneration follows, lastTransitionTime stays", async () => {
    const newPort = await freePort();
    await kube.kubectl(["apply", "-f", "-"], { input: bindingYaml("life-web", "k8s-life-web", { listenPort: newPort, tags: ["k8s", "v2"] }) });
    await waitFor(async () => ((await health("life-web")).every((e) => e.tags.includes("v2")) ? true : undefined), {
      timeoutMs: 20_000,
      what: "v2 tag in Consul",
    });
    await waitFor(async () => ((await nginx.get(newPort)).status === 200 ? true : undefined), { timeoutMs: 20_000, what: "nginx on the new port" });
    const b = await waitFor(
      async () => {
        const v = await getBinding(kube, "life-web");
        return v?.generation === 2 && v.observedGeneration === 2 && condition(v, "Ready")?.status === "True" ? v : undefined;
      },
      { timeoutMs: 20_000, what: "observedGeneration 2" },
    );
    assert.equal(condition(b, "Ready")?.lastTransitionTime, readySince, "Ready stayed True: no transition");
    assert.equal(condition(b, "Ready")?.observedGeneration, 2);
    assert.match(lbFile("life-web.conf") ?? "", new RegExp(`listen 127\\.0\\.0\\.1:${newPort}`));
    port = newPort;
  });

  it("an invalid object (accepted by an outdated, loose CRD) gets Ready=False/InvalidSpec and affects only itself", async () => {
    // Simulate an old CRD without validation: the controller's own validation must catch the object.
    const loose = readFileSync(join(import.meta.dirname, "..", "..", "crds", "servicebindings.dockbind.io.yaml"), "utf8").replace(
      /openAPIV3Schema:\n[\s\S]*$/,
      "openAPIV3Schema:\n            type: object\n            x-kubernetes-preserve-unknown-fields: true\n",
    );
    await kube.kubectl(["apply", "-f", "-"], { input: loose });
    try {
      await waitFor(
        async () => {
          const r = await kube.kubectl(["apply", "-f", "-"], {
            input: bindingYaml("life-bad", "k8s-life-none").replace("port: 80", "port: 99999"),
            check: false,
          });
          return r.code === 0 || undefined;
        },
        { timeoutMs: 20_000, what: "loose CRD in effect" },
      );
      const bad = await waitFor(
        async () => {
          const v = await getBinding(kube, "life-bad");
          return condition(v, "Ready")?.reason === "InvalidSpec" ? v : undefined;
        },
        { timeoutMs: 20_000, what: "life-bad InvalidSpec" },
      );
      assert.equal(condition(bad, "Ready")?.status, "False");
      assert.match(condition(bad, "Ready")?.message ?? "", /spec\.backends\.port/);
      assert.equal(bad.observedGeneration, 1);
      assert.deepEqual(bad.finalizers, [], "never valid: nothing owned, no finalizer");
      assert.equal((await health("life-bad")).length, 0);
      // The valid binding is untouched.
      assert.equal(condition(await getBinding(kube, "life-web"), "Ready")?.status, "True");
      assert.equal((await nginx.get(port)).status, 200);
      await kube.kubectl(["delete", "sb", "life-bad", "--wait=true"]);
    } finally {
      await installCrd(kube);
    }
  });

  it("delete: deregisters, removes the nginx file, then releases the finalizer", async () => {
    await kube.kubectl(["delete", "sb", "life-web", "--wait=false"]);
    await waitFor(async () => ((await getBinding(kube, "life-web")) === undefined ? true : undefined), {
      timeoutMs: 30_000,
      what: "life-web gone from the API",
    });
    assert.equal((await health("life-web")).length, 0, "no registration left once the object is gone");
    assert.equal(lbFile("life-web.conf"), undefined, "no nginx file left once the object is gone");
  });

  it("delete while the controller is stopped: on restart it finishes the cleanup, zero owned registrations left", async () => {
    await runBackend({ name: "k8s-life-c", labels: { app: "k8s-life-down" }, env: { NAME: "c" } });
    const downPort = await freePort();
    await kube.kubectl(["apply", "-f", "-"], { input: bindingYaml("life-down", "k8s-life-down", { listenPort: downPort }) });
    await waitFor(async () => ((await health("life-down")).length === 1 && lbFile("life-down.conf") !== undefined ? true : undefined), {
      timeoutMs: 30_000,
      what: "life-down converged",
    });
    await controller?.stop();
    await kube.kubectl(["delete", "sb", "life-down", "--wait=false"]);
    const pending = await getBinding(kube, "life-down");
    assert.ok(pending?.deletionTimestamp !== undefined, "object waits for the finalizer");
    assert.equal((await health("life-down")).length, 1, "nobody cleaned up yet");
    const c = start();
    await waitFor(async () => ((await getBinding(kube, "life-down")) === undefined ? true : undefined), {
      timeoutMs: 40_000,
      what: "life-down finalized after restart",
    });
    assert.deepEqual(await owned(), [], "zero owned registrations");
    assert.equal(lbFile("life-down.conf"), undefined);
    await c.waitForLog((l) => l.message === "finalizer removed" && l.binding === "default/life-down", "finalizer removed by the restarted controller");
  });

  it("API server restart mid-run: the informer recovers and reconciliation continues", async () => {
    const c = controller;
    assert.ok(c);
    // A crash + restart (a graceful kube-apiserver stop alone takes ~10 s, the
    // leader's renew deadline: the leader would then exit, by design).
    await kube.killApiserver();
    await c.waitForLog((l) => l.message === "kubernetes watch failed; resuming" || l.message === "kubernetes list failed; retrying", "watch loss noticed");
    await kube.startApiserver();
    await runBackend({ name: "k8s-life-d", labels: { app: "k8s-life-again" }, env: { NAME: "d" } });
    await kube.kubectl(["apply", "-f", "-"], { input: bindingYaml("life-again", "k8s-life-again") });
    await waitFor(async () => ((await health("life-again")).length === 1 ? true : undefined), {
      timeoutMs: 30_000,
      what: "binding created after the restart converges",
    });
    await waitFor(
      async () => {
        const v = await getBinding(kube, "life-again");
        return condition(v, "Ready")?.status === "True" && v?.observedGeneration === 1 ? true : undefined;
      },
      { timeoutMs: 30_000, what: "status written after the restart" },
    );
    assert.ok(c.proc.alive(), "the controller kept running (and leading) through the restart");
    await kube.kubectl(["delete", "sb", "life-again", "--wait=true", "--timeout=30s"]);
    assert.deepEqual(await owned(), []);
  });
});
