/**
 * Issue #3 item 6 in Kubernetes mode, against a real kube-apiserver + etcd: a
 * controller that does not run on the Docker hosts serves two real engines
 * (the shared dockerd as node k8s-a, a private dockerd over tcp+TLS as node
 * k8s-b). A ServiceBinding applied with kubectl registers both engines'
 * containers; status counts are summed (printer columns); deleting the binding
 * while the controller is down and starting it again leaves zero registrations
 * of either node (the finalizer checks every endpoint's node).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startConsul, type ConsulHandle } from "../support/consul.js";
import { startConsulProxy, type ConsulProxy } from "../support/consulProxy.js";
import { runBackend } from "../support/docker.js";
import { ensureDockerd } from "../support/dockerd.js";
import { startExtraDockerd, type ExtraDockerd } from "../support/extraDockerd.js";
import { httpGet } from "../support/http.js";
import { ensureBackendImage } from "../support/image.js";
import { condition, getBinding, installCrd, startK8sController, startKube, type K8sController, type KubeHandle } from "../support/k8s.js";
import { startNginx, type NginxHandle } from "../support/nginx.js";
import { cleanupAll } from "../support/teardown.js";
import { startTlsDockerEndpoint, type TlsDockerEndpoint } from "../support/tlsDockerProxy.js";
import { freePort, waitFor } from "../support/wait.js";

const NODES = ["k8s-a", "k8s-b"] as const;
let kube: KubeHandle;
let consul: ConsulHandle;
let proxy: ConsulProxy;
let nginx: NginxHandle;
let engineB: ExtraDockerd;
let tlsB: TlsDockerEndpoint;
let controller: K8sController | undefined;

/** Agent services owned by either endpoint node, as `node` per service. */
async function ownedNodes(): Promise<string[]> {
  const res = await httpGet(`${consul.url}/v1/agent/services`);
  const all = JSON.parse(res.body) as Record<string, { Meta?: Record<string, string> | null }>;
  return Object.values(all)
    .map((s) => s.Meta?.dockbind_node ?? "")
    .filter((n) => (NODES as readonly string[]).includes(n))
    .sort();
}

function start(): K8sController {
  controller = startK8sController({
    kubeconfig: kube.kubeconfig,
    consulAddr: proxy.addr,
    outputDir: nginx.confDir,
    nginxArgs: nginx.nginxArgs,
    node: "k8s-ep-ctl",
    identity: "ep-1",
    logName: "controller-k8s-endpoints.log",
    extraArgs: [
      "--docker-endpoint",
      "node=k8s-a,host=unix:///var/run/docker.sock",
      "--docker-endpoint",
      `node=k8s-b,host=${tlsB.host},cert-path=${tlsB.certPath}`,
    ],
  });
  return controller;
}

function bindingYaml(port: number): string {
  return `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata:
  name: ep-web
  namespace: default
spec:
  service:
    name: k8s-ep-web
  backends:
    selector:
      matchLabels: {app: k8s-ep-web}
    port: 80
  healthCheck:
    type: http
    path: /health/
    interval: 1s
    timeout: 1s
  loadBalancer:
    listen: {port: ${port}}
    output: ep-web.conf
`;
}

before(async () => {
  await Promise.all([ensureDockerd(), ensureBackendImage()]);
  [kube, consul, nginx] = await Promise.all([startKube(), startConsul({ node: "consul-k8s-ep" }), startNginx()]);
  proxy = await startConsulProxy(consul.httpAddr);
  engineB = await startExtraDockerd({ name: "k8sb", bridgeCidr: "172.31.252.1/24" });
  tlsB = await startTlsDockerEndpoint(engineB.socket);
  await installCrd(kube);
  await start().waitForLog((l) => l.message === "controller started", "controller leads and runs");
});

after(async () => {
  await controller?.stop();
  await tlsB.close();
  await engineB.stop();
  await proxy.close();
  await kube.stop();
  await cleanupAll();
});

describe("Kubernetes mode, two Docker engines", () => {
  it("kubectl apply: both engines' containers registered, counts summed in status and printer columns", async () => {
    const port = await freePort();
    await runBackend({ name: `k8s-ep-a-${process.pid}`, labels: { app: "k8s-ep-web" }, env: { NAME: "a" } });
    await runBackend({ name: "k8s-ep-b", labels: { app: "k8s-ep-web" }, env: { NAME: "b" }, dockerHost: engineB.host });
    await kube.kubectl(["apply", "-f", "-"], { input: bindingYaml(port) });
    await waitFor(async () => (JSON.stringify(await ownedNodes()) === JSON.stringify(["k8s-a", "k8s-b"]) ? true : undefined), {
      timeoutMs: 30_000,
      what: "one registration per engine",
    });
    const b = await waitFor(
      async () => {
        const v = await getBinding(kube, "ep-web");
        return condition(v, "Ready")?.status === "True" && v?.observedGeneration === 1 && v.backends?.passing === 2 ? v : undefined;
      },
      { timeoutMs: 30_000, what: "Ready, observedGeneration 1, 2 passing" },
    );
    assert.deepEqual(b.backends, { desired: 2, registered: 2, passing: 2 });
    assert.equal(condition(b, "Registered")?.message, "k8s-a: 1 instance(s) registered; k8s-b: 1 instance(s) registered");
    assert.match((await kube.kubectl(["get", "sb", "ep-web"])).stdout, /^ep-web\s+k8s-ep-web\s+2\s+2\s+2\s+True\s+\S+/m);
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const r = await nginx.get(port).catch(() => undefined);
        if (r?.status === 200) seen.add(r.body);
        return seen.has("a") && seen.has("b") ? true : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 50, what: "nginx serving both engines' backends" },
    );
  });

  it("delete while the controller is stopped: on restart every endpoint's registrations are gone, then the finalizer is released", async () => {
    await controller?.stop();
    await kube.kubectl(["delete", "sb", "ep-web", "--wait=false"]);
    assert.ok((await getBinding(kube, "ep-web"))?.deletionTimestamp !== undefined, "object waits for the finalizer");
    assert.deepEqual(await ownedNodes(), ["k8s-a", "k8s-b"], "nobody cleaned up yet");
    const c = start();
    await waitFor(async () => ((await getBinding(kube, "ep-web")) === undefined ? true : undefined), {
      timeoutMs: 40_000,
      what: "ep-web finalized after restart",
    });
    assert.deepEqual(await ownedNodes(), [], "zero registrations of either node");
    await c.waitForLog((l) => l.message === "finalizer removed" && l.binding === "default/ep-web", "finalizer removed");
    const deregistered = c
      .logs()
      .filter((l) => l.message === "deregistered")
      .map((l) => String(l.serviceId).split(":")[1])
      .sort();
    assert.deepEqual(deregistered, ["k8s-a", "k8s-b"], "each endpoint removed its own registration");
  });
});
