/**
 * Namespace scoping on a real kube-apiserver + etcd, real Consul and dockerd:
 * the chart rendered with `watchNamespaces: [a, b]` gives the ServiceAccount
 * Roles in a and b (and the Lease Role in the release namespace) and nothing
 * cluster-wide; the controller runs with that ServiceAccount's token and
 * `--watch-namespace a --watch-namespace b`. Bindings in a and b converge
 * (Consul, status, finalizer, Events); a binding in c, created first and
 * selecting a running container, gets nothing at all, and the audit log shows
 * the ServiceAccount never sent a request for c or a cluster-wide one, and was
 * never denied. Deleting the binding in a runs the finalizer.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parseAllDocuments, stringify } from "yaml";
import { startConsul, type ConsulHandle } from "../support/consul.js";
import { runBackend } from "../support/docker.js";
import { ensureDockerd } from "../support/dockerd.js";
import { httpGet } from "../support/http.js";
import { ensureBackendImage } from "../support/image.js";
import {
  condition,
  getBinding,
  getLease,
  installCrd,
  startK8sController,
  startKube,
  type AuditEvent,
  type K8sController,
  type KubeHandle,
} from "../support/k8s.js";
import { startNginx, type NginxHandle } from "../support/nginx.js";
import { cleanupAll } from "../support/teardown.js";
import { waitFor } from "../support/wait.js";

const REPO = join(import.meta.dirname, "..", "..");
const RELEASE_NS = "dockbind-system";
const SA = "dockbind";
const SA_USER = `system:serviceaccount:${RELEASE_NS}:${SA}`;
const NODE = "k8s-ns";
const WATCHED = ["a", "b"] as const;
const OTHER = "c";
const RBAC_KINDS = new Set(["ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"]);

let kube: KubeHandle;
let consul: ConsulHandle;
let nginx: NginxHandle;
let controller: K8sController | undefined;

interface Manifest {
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string };
}

/** The chart's ServiceAccount and RBAC objects for these watched namespaces (`helm template`). */
async function chartRbac(namespaces: readonly string[]): Promise<Manifest[]> {
  const r = await kube.helm([
    "template",
    "dockbind",
    join(REPO, "charts/dockbind"),
    "-n",
    RELEASE_NS,
    "--kube-version",
    "1.33.13",
    "--set-json",
    `watchNamespaces=${JSON.stringify(namespaces)}`,
  ]);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as Manifest | null)
    .filter((o): o is Manifest => o !== null && RBAC_KINDS.has(o.kind));
}

async function health(service: string): Promise<{ id: string; passing: boolean }[]> {
  const res = await httpGet(`${consul.url}/v1/health/service/${service}`);
  const entries = JSON.parse(res.body) as { Service: { ID: string }; Checks: { Status: string }[] }[];
  return entries.map((e) => ({ id: e.Service.ID, passing: e.Checks.every((c) => c.Status === "passing") }));
}

/** Binding keys (`<namespace>/<name>`) of every agent service this controller owns. */
async function ownedBindings(): Promise<string[]> {
  const res = await httpGet(`${consul.url}/v1/agent/services`);
  const all = JSON.parse(res.body) as Record<string, { Meta?: Record<string, string> | null }>;
  return Object.values(all)
    .filter((s) => s.Meta?.dockbind_node === NODE)
    .map((s) => s.Meta?.dockbind_binding ?? "");
}

async function eventsIn(ns: string): Promise<{ reason: string; involvedObject: { name: string } }[]> {
  const out = (await kube.kubectl(["get", "events", "-n", ns, "-o", "json"])).stdout;
  return (JSON.parse(out) as { items: { reason: string; involvedObject: { name: string } }[] }).items;
}

function bindingYaml(ns: string): string {
  return `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata: {name: web, namespace: ${ns}}
spec:
  service: {name: web-${ns}}
  backends:
    selector: {matchLabels: {app: k8s-ns-web-${ns}}}
    port: 80
  healthCheck: {type: tcp, interval: 1s, timeout: 1s}
`;
}

function saAudit(): AuditEvent[] {
  return kube.audit().filter((e) => e.user.username === SA_USER);
}

/** Everything that proves c was neither read nor acted on, from the API objects, Consul and the audit log. */
async function assertOtherUntouched(): Promise<void> {
  const c = await getBinding(kube, "web", OTHER);
  assert.ok(c !== undefined, "the binding in c still exists");
  assert.deepEqual(c.finalizers, [], "no finalizer added in c");
  assert.equal(c.observedGeneration, undefined, "no status in c");
  assert.deepEqual(c.conditions, []);
  assert.equal(c.backends, undefined);
  assert.deepEqual(await eventsIn(OTHER), [], "no Event in c");
  assert.deepEqual(await health(`web-${OTHER}`), [], "nothing registered for c");
  assert.equal(
    (await ownedBindings()).some((k) => k.startsWith(`${OTHER}/`)),
    false,
  );
  const sa = saAudit();
  assert.deepEqual(
    sa.filter((e) => e.objectRef?.namespace === OTHER).map((e) => `${e.verb} ${e.requestURI}`),
    [],
    "no request for namespace c",
  );
  const clusterWide = sa.filter((e) => e.objectRef?.namespace === undefined && e.objectRef?.resource !== undefined);
  assert.deepEqual(
    clusterWide.map((e) => `${e.verb} ${e.requestURI}`),
    [],
    "no cluster-wide request",
  );
  assert.deepEqual(
    sa.filter((e) => e.responseStatus?.code === 403).map((e) => `${e.verb} ${e.requestURI}`),
    [],
    "nothing denied",
  );
}

before(async () => {
  await Promise.all([ensureDockerd(), ensureBackendImage()]);
  [kube, consul, nginx] = await Promise.all([startKube(), startConsul({ node: `consul-${NODE}` }), startNginx()]);
  await installCrd(kube);
  for (const ns of [...WATCHED, OTHER, RELEASE_NS]) await kube.kubectl(["create", "namespace", ns]);
});

after(async () => {
  await controller?.stop();
  await kube.stop();
  await cleanupAll();
});

describe("--watch-namespace with only namespaced permissions", () => {
  it("the chart with watchNamespaces [a, b] grants Roles in a and b, the Lease Role, and nothing cluster-wide", async () => {
    const objects = await chartRbac(WATCHED);
    assert.deepEqual(
      objects.filter((o) => o.kind.startsWith("Cluster")),
      [],
    );
    assert.deepEqual(objects.map((o) => `${o.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}`).sort(), [
      "Role a/dockbind",
      "Role b/dockbind",
      `Role ${RELEASE_NS}/dockbind-leader-election`,
      "RoleBinding a/dockbind",
      "RoleBinding b/dockbind",
      `RoleBinding ${RELEASE_NS}/dockbind-leader-election`,
      `ServiceAccount ${RELEASE_NS}/dockbind`,
    ]);
    await kube.kubectl(["apply", "-f", "-"], { input: objects.map((o) => stringify(o)).join("---\n") });
    const can = async (args: readonly string[]): Promise<boolean> =>
      (await kube.kubectl(["auth", "can-i", ...args, "--as", SA_USER], { check: false })).stdout.trim() === "yes";
    // The RBAC authorizer sees new Roles through its own watch: wait until the last one is in effect.
    await waitFor(async () => (await can(["watch", "servicebindings.dockbind.io", "-n", WATCHED[1]])) || undefined, {
      timeoutMs: 10_000,
      what: "Roles in effect",
    });
    for (const ns of WATCHED) {
      assert.equal(await can(["watch", "servicebindings.dockbind.io", "-n", ns]), true, `watch in ${ns}`);
      assert.equal(await can(["patch", "servicebindings.dockbind.io", "--subresource=status", "-n", ns]), true, `status in ${ns}`);
      assert.equal(await can(["create", "events", "-n", ns]), true, `events in ${ns}`);
    }
    assert.equal(await can(["list", "servicebindings.dockbind.io", "-n", OTHER]), false, "nothing in c");
    assert.equal(await can(["create", "events", "-n", OTHER]), false, "no events in c");
    assert.equal(await can(["list", "servicebindings.dockbind.io", "--all-namespaces"]), false, "nothing cluster-wide");
  });

  it("bindings in a and b converge (Consul, status, finalizer, Events); the one in c, created first, gets nothing", async () => {
    for (const ns of [OTHER, ...WATCHED]) await runBackend({ name: `k8s-ns-${ns}`, labels: { app: `k8s-ns-web-${ns}` }, env: { NAME: ns } });
    // c first: by the time a and b have converged, c has been there longer than either.
    for (const ns of [OTHER, ...WATCHED]) await kube.kubectl(["apply", "-f", "-"], { input: bindingYaml(ns) });
    const kubeconfig = await kube.serviceAccountKubeconfig(RELEASE_NS, SA, "ns-scoped");
    const startedAt = Date.now();
    controller = startK8sController({
      kubeconfig,
      consulAddr: consul.httpAddr,
      outputDir: nginx.confDir,
      nginxArgs: nginx.nginxArgs,
      node: NODE,
      identity: "ns-1",
      leaseNamespace: RELEASE_NS,
      extraArgs: WATCHED.flatMap((ns) => ["--watch-namespace", ns]),
      logName: `controller-${NODE}-${process.pid}.log`, // this run's lines only
    });
    await controller.waitForLog((l) => l.message === "controller started", "the controller leads and runs");
    assert.equal((await getLease(kube, RELEASE_NS))?.holder, "ns-1", "the Lease in the release namespace");
    for (const ns of WATCHED) {
      await waitFor(async () => ((await health(`web-${ns}`)).filter((e) => e.passing).length === 1 ? true : undefined), {
        timeoutMs: 30_000,
        what: `web-${ns} registered and passing`,
      });
      const b = await waitFor(
        async () => {
          const v = await getBinding(kube, "web", ns);
          return condition(v, "Ready")?.status === "True" && v?.observedGeneration === 1 ? v : undefined;
        },
        { timeoutMs: 30_000, what: `${ns}/web Ready with observedGeneration 1` },
      );
      assert.deepEqual(b.finalizers, ["dockbind.io/finalizer"]);
      // Ready is the registrar's; the passing count follows Consul's health (a status-only service: at most ~2 s later).
      const counted = await waitFor(
        async () => {
          const v = await getBinding(kube, "web", ns);
          return v?.backends?.passing === 1 ? v : undefined;
        },
        { timeoutMs: 10_000, what: `${ns}/web status counting its passing backend` },
      );
      assert.deepEqual(counted.backends, { desired: 1, registered: 1, passing: 1 });
      await waitFor(async () => ((await eventsIn(ns)).some((e) => e.reason === "Ready" && e.involvedObject.name === "web") ? true : undefined), {
        timeoutMs: 10_000,
        what: `Ready event in ${ns}`,
      });
    }
    process.stdout.write(`# a and b converged ${Date.now() - startedAt} ms after the controller started\n`);
    await assertOtherUntouched();
    // Positive control: the ServiceAccount did list and watch a and b through namespaced URLs.
    const reads = new Set(
      saAudit()
        .filter((e) => e.objectRef?.resource === "servicebindings")
        .map((e) => `${e.verb} ${e.objectRef?.namespace ?? "(all)"}`),
    );
    for (const ns of WATCHED) for (const verb of ["list", "watch"]) assert.ok(reads.has(`${verb} ${ns}`), `${verb} in ${ns}: ${[...reads].join(", ")}`);
  });

  it("deleting the binding in a runs the finalizer; b keeps serving, c stays untouched", async () => {
    await kube.kubectl(["delete", "sb", "web", "-n", "a", "--wait=false"]);
    await waitFor(async () => ((await getBinding(kube, "web", "a")) === undefined ? true : undefined), { timeoutMs: 30_000, what: "a/web finalized and gone" });
    assert.deepEqual(await health("web-a"), [], "a's registration removed before the object went");
    await controller?.waitForLog((l) => l.message === "finalizer removed" && l.binding === "a/web", "the finalizer ran for a/web");
    await waitFor(async () => ((await eventsIn("a")).some((e) => e.reason === "CleanedUp") ? true : undefined), {
      timeoutMs: 10_000,
      what: "CleanedUp event in a",
    });
    assert.equal((await health("web-b")).length, 1, "b untouched");
    assert.deepEqual((await ownedBindings()).sort(), ["b/web"]);
    await assertOtherUntouched();
    // The binding in c never had a finalizer: it goes at once.
    await kube.kubectl(["delete", "sb", "web", "-n", OTHER, "--wait=true", "--timeout=10s"]);
  });

  it("the controller log has no forbidden/403 error: it never tried a namespace or scope it may not read", () => {
    assert.ok(controller !== undefined);
    const text = readFileSync(controller.logFile, "utf8"); // JSON lines and anything else the process printed
    const bad = text.split("\n").filter((l) => /forbidden|\b403\b/i.test(l));
    assert.deepEqual(bad, []);
    assert.ok(
      controller.logs().some((l) => l.message === "kubernetes mode" && l.namespaces === "a,b"),
      "the controller reports its watched namespaces",
    );
  });
});
