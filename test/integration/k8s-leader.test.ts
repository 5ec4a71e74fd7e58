/**
 * Issue #3 acceptance on a real kube-apiserver: `helm lint` + `helm install`
 * of charts/dockbind, then two controller replicas running with the chart's
 * ServiceAccount (tokens from the TokenRequest API, RBAC authorization):
 * exactly one leader, only the leader writes (proven from Consul's side by a
 * counting proxy per replica, and from the API server's audit log by user
 * agent), crash (SIGKILL) of the leader hands over within the lease duration,
 * a graceful stop hands over at once, and no request of the ServiceAccount was
 * ever denied.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startConsul, type ConsulHandle } from "../support/consul.js";
import { startConsulProxy, type ConsulProxy } from "../support/consulProxy.js";
import { runBackend } from "../support/docker.js";
import { ensureDockerd } from "../support/dockerd.js";
import { httpGet } from "../support/http.js";
import { ensureBackendImage } from "../support/image.js";
import { condition, getBinding, getLease, startK8sController, startKube, type AuditEvent, type K8sController, type KubeHandle } from "../support/k8s.js";
import { startNginx, type NginxHandle } from "../support/nginx.js";
import { cleanupAll } from "../support/teardown.js";
import { waitFor } from "../support/wait.js";

const REPO = join(import.meta.dirname, "..", "..");
const NS = "dockbind-system";
const SA = "dockbind";
const SA_USER = `system:serviceaccount:${NS}:${SA}`;
const NODE = "k8s-leader";
const WRITES = new Set(["create", "update", "patch", "delete", "deletecollection"]);

let kube: KubeHandle;
let consul: ConsulHandle;
let nginx: NginxHandle;
const proxies = new Map<string, ConsulProxy>();
const kubeconfigs = new Map<string, string>();
const running = new Map<string, K8sController>();

function startReplica(id: string): K8sController {
  const proxy = proxies.get(id);
  const kubeconfig = kubeconfigs.get(id);
  assert.ok(proxy !== undefined && kubeconfig !== undefined);
  const c = startK8sController({
    kubeconfig,
    consulAddr: proxy.addr,
    outputDir: nginx.confDir,
    nginxArgs: nginx.nginxArgs,
    node: NODE,
    identity: id,
    leaseNamespace: NS,
    logName: `controller-${NODE}-${id}.log`,
  });
  running.set(id, c);
  return c;
}

/** Audit events of the chart's ServiceAccount sent by replica `id` (user agent carries the identity). */
function auditOf(id: string): AuditEvent[] {
  return kube.audit().filter((e) => e.user.username === SA_USER && (e.userAgent ?? "").includes(`(${id})`));
}

/** Writes of replica `id` the API server received at or after `since` (ISO time). */
function writesOf(id: string, since = ""): AuditEvent[] {
  return auditOf(id).filter((e) => WRITES.has(e.verb) && (e.requestReceivedTimestamp ?? e.stageTimestamp) >= since);
}

/** How long after a SIGKILLed replica died a request it had already sent may still be received. */
const IN_FLIGHT_MS = 1_000;

async function health(service: string): Promise<{ id: string; tags: string[] }[]> {
  const res = await httpGet(`${consul.url}/v1/health/service/${service}`);
  return (JSON.parse(res.body) as { Service: { ID: string; Tags: string[] | null } }[]).map((e) => ({ id: e.Service.ID, tags: e.Service.Tags ?? [] }));
}

const binding = (tag: string): string => `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata: {name: leader-web, namespace: default}
spec:
  service: {name: leader-web, tags: [${tag}]}
  backends:
    selector: {matchLabels: {app: k8s-leader-web}}
    port: 80
  healthCheck: {type: tcp, interval: 1s, timeout: 1s}
`;

before(async () => {
  await Promise.all([ensureDockerd(), ensureBackendImage()]);
  [kube, consul, nginx] = await Promise.all([startKube(), startConsul({ node: `consul-${NODE}` }), startNginx()]);
  for (const id of ["replica-a", "replica-b"]) proxies.set(id, await startConsulProxy(consul.httpAddr));
});

after(async () => {
  for (const c of running.values()) await c.stop();
  for (const p of proxies.values()) await p.close();
  await kube.stop();
  await cleanupAll();
});

describe("Helm chart on the real API server", () => {
  it("helm lint passes and helm install creates the CRD, ServiceAccount, RBAC, Deployment and Service", async () => {
    const lint = await kube.helm(["lint", join(REPO, "charts/dockbind"), "--strict"]);
    assert.match(lint.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
    await kube.helm(["install", "dockbind", join(REPO, "charts/dockbind"), "-n", NS, "--create-namespace", "--wait=false"]);
    await kube.kubectl(["wait", "--for", "condition=Established", "crd/servicebindings.dockbind.io", "--timeout=30s"]);
    for (const [kind, name, ns] of [
      ["serviceaccount", SA, NS],
      ["clusterrole", "dockbind", ""],
      ["clusterrolebinding", "dockbind", ""],
      ["role", "dockbind-leader-election", NS],
      ["rolebinding", "dockbind-leader-election", NS],
      ["deployment", "dockbind", NS],
      ["service", "dockbind-metrics", NS],
    ] as const) {
      await kube.kubectl(["get", kind, name, ...(ns === "" ? [] : ["-n", ns])]);
    }
    // Least privilege: nothing beyond what the controller uses.
    const can = async (verb: string, resource: string, ns = "default"): Promise<boolean> =>
      (await kube.kubectl(["auth", "can-i", verb, resource, "-n", ns, "--as", SA_USER], { check: false })).stdout.trim() === "yes";
    assert.equal(await can("patch", "servicebindings.dockbind.io"), true);
    assert.equal(await can("patch", "servicebindings.dockbind.io/status"), true);
    assert.equal(await can("delete", "servicebindings.dockbind.io"), false);
    assert.equal(await can("create", "servicebindings.dockbind.io"), false);
    assert.equal(await can("get", "secrets"), false);
    assert.equal(await can("update", "leases/other-lease", NS), false);
    assert.equal(await can("update", "leases/dockbind-controller", "default"), false);
  });
});

describe("two replicas with the chart's ServiceAccount", () => {
  let killedAt = 0;
  let takeoverMs = 0;

  it("exactly one leader; it converges a binding while the standby makes no write", async () => {
    for (const id of ["replica-a", "replica-b"]) kubeconfigs.set(id, await kube.serviceAccountKubeconfig(NS, SA, id));
    const a = startReplica("replica-a");
    await a.waitForLog((l) => l.message === "controller started", "replica-a leads");
    const b = startReplica("replica-b");
    await b.waitForLog((l) => l.message === "leader election: waiting for the lease", "replica-b campaigns");
    await runBackend({ name: "k8s-leader-1", labels: { app: "k8s-leader-web" }, env: { NAME: "one" } });
    await kube.kubectl(["apply", "-f", "-"], { input: binding("v1") });
    await waitFor(async () => ((await health("leader-web")).length === 1 ? true : undefined), { timeoutMs: 30_000, what: "leader-web registered" });
    await waitFor(async () => (condition(await getBinding(kube, "leader-web"), "Registered")?.status === "True" ? true : undefined), {
      timeoutMs: 20_000,
      what: "status written",
    });
    assert.equal((await getLease(kube, NS))?.holder, "replica-a");
    assert.equal(
      b.logs().some((l) => l.message === "controller started"),
      false,
      "the standby never started the manager",
    );
    // From Consul's side: every write came through replica-a's proxy.
    assert.ok((proxies.get("replica-a")?.writes().length ?? 0) > 0);
    assert.deepEqual(proxies.get("replica-b")?.writes(), []);
    // From the API server's side: the standby only read the Lease.
    assert.deepEqual(
      writesOf("replica-b").map((e) => `${e.verb} ${e.requestURI}`),
      [],
    );
    assert.ok(
      auditOf("replica-b").some((e) => e.objectRef?.resource === "leases" && e.verb === "get"),
      "the standby polls the Lease",
    );
    // The leader's kinds of writes. A lease renewal comes once per renew period and the API server
    // writes its audit log asynchronously, so the list is awaited rather than read once.
    const kinds = (): Set<string> =>
      new Set(
        writesOf("replica-a").map(
          (e) => `${e.verb} ${e.objectRef?.resource ?? ""}${e.objectRef?.subresource !== undefined ? `/${e.objectRef.subresource}` : ""}`,
        ),
      );
    const wanted = ["update leases", "patch servicebindings", "patch servicebindings/status", "create events"];
    const aWrites = await waitFor(() => (wanted.every((w) => kinds().has(w)) ? kinds() : undefined), {
      timeoutMs: 20_000,
      what: "the leader's writes in the audit log",
    }).catch(() => kinds());
    for (const w of wanted) assert.ok(aWrites.has(w), `leader did ${w}`);
  });

  it("SIGKILL of the leader: the standby takes over within the lease duration (15 s) and converges changes", async () => {
    const b = running.get("replica-b");
    assert.ok(b);
    const before = (await getLease(kube, NS))?.transitions ?? 0;
    killedAt = Date.now();
    await running.get("replica-a")?.kill();
    // Once the process is gone it cannot send anything; a request it had already written may still be
    // handled by the API server a moment later. Anything received from it more than IN_FLIGHT_MS after
    // it died would be a write of a process that outlived the kill.
    const since = new Date(Date.now() + IN_FLIGHT_MS).toISOString();
    await waitFor(async () => ((await getLease(kube, NS))?.holder === "replica-b" ? true : undefined), {
      timeoutMs: 25_000,
      intervalMs: 100,
      what: "replica-b holds the lease",
    });
    takeoverMs = Date.now() - killedAt;
    assert.ok(takeoverMs <= 15_500, `takeover took ${takeoverMs} ms (lease 15 s + one API round trip allowed)`);
    assert.equal((await getLease(kube, NS))?.transitions, before + 1);
    await b.waitForLog((l) => l.message === "controller started", "replica-b runs the manager");
    assert.deepEqual(writesOf("replica-a", since), [], "the dead leader wrote nothing after the kill");
    await kube.kubectl(["apply", "-f", "-"], { input: binding("v2") });
    await waitFor(async () => ((await health("leader-web")).every((e) => e.tags.includes("v2")) ? true : undefined), {
      timeoutMs: 30_000,
      what: "v2 converged by replica-b",
    });
    assert.ok((proxies.get("replica-b")?.writes().length ?? 0) > 0, "replica-b writes to Consul now");
    process.stdout.write(`# leader handover after SIGKILL: ${takeoverMs} ms\n`);
  });

  it("graceful stop of the leader releases the lease: the restarted replica-a takes over at once", async () => {
    const a = startReplica("replica-a");
    await a.waitForLog((l) => l.message === "leader election: waiting for the lease", "replica-a campaigns again");
    const proxyA = proxies.get("replica-a");
    assert.ok(proxyA);
    const aWritesBefore = proxyA.writes().length;
    const since = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 3000)); // a few retry periods as standby
    assert.equal(proxyA.writes().length, aWritesBefore, "standby replica-a made no Consul write");
    assert.deepEqual(writesOf("replica-a", since), [], "standby replica-a made no API write");
    const stoppedAt = Date.now();
    await running.get("replica-b")?.stop();
    running.delete("replica-b");
    await waitFor(async () => ((await getLease(kube, NS))?.holder === "replica-a" ? true : undefined), {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: "replica-a holds the lease",
    });
    const handover = Date.now() - stoppedAt;
    assert.ok(handover < 6_000, `graceful handover took ${handover} ms`);
    await a.waitForLog((l) => l.message === "controller started", "replica-a runs the manager");
    await kube.kubectl(["apply", "-f", "-"], { input: binding("v3") });
    await waitFor(async () => ((await health("leader-web")).every((e) => e.tags.includes("v3")) ? true : undefined), {
      timeoutMs: 30_000,
      what: "v3 converged by replica-a",
    });
    process.stdout.write(`# leader handover after SIGTERM: ${handover} ms\n`);
  });

  it("the ServiceAccount had every permission it needed: no request was denied", async () => {
    await kube.kubectl(["delete", "sb", "leader-web", "--wait=true", "--timeout=30s"]);
    assert.equal((await health("leader-web")).length, 0);
    const sa = kube.audit().filter((e) => e.user.username === SA_USER);
    assert.ok(sa.length > 0);
    const denied = sa.filter((e) => e.responseStatus?.code === 403);
    assert.deepEqual(
      denied.map((e) => `${e.verb} ${e.requestURI}`),
      [],
    );
  });
});
