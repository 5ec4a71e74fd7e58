/**
 * Maintenance in Kubernetes mode, through the binding's spec on a real
 * kube-apiserver (the CRD generated from the schema), real Consul, nginx and
 * dockerd: `spec.maintenance.containers` takes one backend out of nginx,
 * removing the field (kubectl patch) brings it back; the API server rejects a
 * hostile reason with its field path, before the controller ever sees it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startConsul, type ConsulHandle } from "../support/consul.js";
import { startConsulProxy, type ConsulProxy } from "../support/consulProxy.js";
import { runBackend } from "../support/docker.js";
import { ensureDockerd } from "../support/dockerd.js";
import { httpGet } from "../support/http.js";
import { ensureBackendImage } from "../support/image.js";
import { installCrd, startK8sController, startKube, type K8sController, type KubeHandle } from "../support/k8s.js";
import { startNginx, type NginxHandle } from "../support/nginx.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";

const NODE = "k8s-maint";
let kube: KubeHandle;
let consul: ConsulHandle;
let proxy: ConsulProxy;
let nginx: NginxHandle;
let controller: K8sController | undefined;

function bindingYaml(port: number, maintenance: string): string {
  return `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata:
  name: maint-web
  namespace: default
spec:
  service:
    name: maint-web
  backends:
    selector:
      matchLabels: {app: k8s-maint-web}
    port: 80
  healthCheck:
    type: http
    path: /health/
    interval: 1s
    timeout: 1s
  loadBalancer:
    listen: {port: ${port}}
    output: maint-web.conf
${maintenance}`;
}

/** Service ID -> reason of the agent's maintenance checks. */
async function agentMaintenance(): Promise<Map<string, string>> {
  const res = await httpGet(`${consul.url}/v1/agent/checks`);
  const checks = JSON.parse(res.body) as Record<string, { ServiceID: string; Notes: string }>;
  return new Map(
    Object.entries(checks)
      .filter(([id]) => id.startsWith("_service_maintenance:"))
      .map(([, c]) => [c.ServiceID, c.Notes]),
  );
}

async function served(port: number, n: number): Promise<string> {
  const got = new Set<string>();
  for (let i = 0; i < n; i++) {
    const r = await nginx.get(port).catch(() => ({ status: 0, body: "" }));
    got.add(r.status === 200 ? r.body : `HTTP ${r.status}`);
  }
  return [...got].sort().join(",");
}

before(async () => {
  await Promise.all([ensureDockerd(), ensureBackendImage()]);
  [kube, consul, nginx] = await Promise.all([startKube(), startConsul({ node: `consul-${NODE}` }), startNginx()]);
  proxy = await startConsulProxy(consul.httpAddr);
  await installCrd(kube);
  controller = startK8sController({
    kubeconfig: kube.kubeconfig,
    consulAddr: proxy.addr,
    outputDir: nginx.confDir,
    nginxArgs: nginx.nginxArgs,
    node: NODE,
    identity: "maint-1",
    logName: `controller-${NODE}.log`,
  });
  await controller.waitForLog((l) => l.message === "controller started", "controller leads and runs");
});

after(async () => {
  await controller?.stop();
  await proxy.close();
  await kube.stop();
  await cleanupAll();
});

describe("maintenance through the ServiceBinding spec (Kubernetes mode)", () => {
  it("spec.maintenance.containers takes one backend out; removing the field brings it back", async () => {
    const port = await freePort();
    await runBackend({ name: "k8s-maint-a", labels: { app: "k8s-maint-web" }, env: { NAME: "a" } });
    const b = await runBackend({ name: "k8s-maint-b", labels: { app: "k8s-maint-web" }, env: { NAME: "b" } });
    await kube.kubectl(["apply", "-f", "-"], { input: bindingYaml(port, "") });
    await waitFor(async () => ((await served(port, 8)) === "a,b" ? true : undefined), { timeoutMs: 40_000, what: "nginx serving a and b" });

    await kube.kubectl(["apply", "-f", "-"], { input: bindingYaml(port, "  maintenance:\n    reason: release 2.4\n    containers: [k8s-maint-b]\n") });
    const id = await waitFor(async () => [...(await agentMaintenance())].find(([, reason]) => reason === "dockbind: release 2.4")?.[0], {
      timeoutMs: 20_000,
      what: "b in maintenance",
    });
    assert.ok(id.includes(b.id.slice(0, 12)), `${id} is b's registration`);
    await waitFor(async () => ((await served(port, 8)) === "a" ? true : undefined), { timeoutMs: 20_000, what: "nginx serving a only" });

    await kube.kubectl(["patch", "sb", "maint-web", "--type", "json", "-p", '[{"op":"remove","path":"/spec/maintenance"}]']);
    await waitFor(async () => ((await agentMaintenance()).size === 0 ? true : undefined), { timeoutMs: 20_000, what: "b out of maintenance" });
    await waitFor(async () => ((await served(port, 8)) === "a,b" ? true : undefined), { timeoutMs: 20_000, what: "nginx serving a and b again" });
  });

  it("the API server rejects a hostile reason with its field path", async () => {
    for (const reason of ['"deploy; include /etc/passwd"', '"line\\nbreak"']) {
      const r = await kube.kubectl(["apply", "-f", "-"], {
        input: bindingYaml(await freePort(), `  maintenance:\n    reason: ${reason}\n`).replace("name: maint-web\n  namespace", "name: maint-bad\n  namespace"),
        check: false,
      });
      assert.notEqual(r.code, 0, reason);
      assert.match(r.stderr, /spec\.maintenance\.reason/, r.stderr);
    }
  });
});
