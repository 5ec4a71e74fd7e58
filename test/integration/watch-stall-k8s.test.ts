/**
 * Kubernetes mode on a real kube-apiserver + etcd, Consul, nginx and dockerd:
 *
 * 1. A silent watch stall: the controller reaches kube-apiserver through a
 *    stalling loopback proxy (test/support/stallProxy.ts). The ServiceBinding
 *    watch's connection (the one streaming while the controller is quiet)
 *    stops forwarding in both directions but stays open; its other
 *    connections (Lease renewals, status writes) and new ones pass. Bindings
 *    are created, changed and deleted during the stall. Asserted: detection
 *    within WATCH_STALL_BOUND_SECONDS (measured, printed) with the warn log
 *    line and dockbind_watch_restarts_total{source="kubernetes",reason="stalled"};
 *    nothing deregistered meanwhile; every change applied after; the leader
 *    keeps leading.
 * 2. kube-apiserver killed (SIGKILL) and restarted right after each of a
 *    create, a change and a delete: every change is applied once it is back,
 *    the finalizer runs, registrations of untouched bindings never go. An
 *    outage that reaches the 10 s renew deadline costs the lease: the replica
 *    logs "leader election lost" and exits 1 (restarted here as a kubelet
 *    would); one that does not keeps the leader. Then a deliberately long
 *    outage: the leader exits 1, deregistering nothing; changes made while it
 *    is down are applied by its restart, the finalizer included.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startConsul, type ConsulHandle } from "../support/consul.js";
import { runBackend } from "../support/docker.js";
import { ensureDockerd } from "../support/dockerd.js";
import { ensureBackendImage } from "../support/image.js";
import { getBinding, getLease, installCrd, startK8sController, startKube, type K8sController, type KubeHandle } from "../support/k8s.js";
import { metricSum } from "../support/metrics.js";
import { startNginx, type NginxHandle } from "../support/nginx.js";
import { startStallProxy, type StallProxy } from "../support/stallProxy.js";
import { cleanupAll } from "../support/teardown.js";
import { delay, waitFor } from "../support/wait.js";
import { isAborted } from "../../src/runtime/backoff.js";
import { WATCH_STALL_BOUND_SECONDS } from "../../src/sources/kubernetes/informer.js";

const NODE = "k8s-stall";
const IDENTITY = "stall-1";
let kube: KubeHandle;
let consul: ConsulHandle;
let nginx: NginxHandle;
let proxy: StallProxy;
let kubeconfig: string;
let controller: K8sController | undefined;

function bindingYaml(name: string, tags: readonly string[] = ["k8s"]): string {
  return `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata:
  name: ${name}
  namespace: default
spec:
  service:
    name: ${name}
    tags: [${tags.join(", ")}]
  backends:
    selector:
      matchLabels: {app: ${name}}
    port: 80
  healthCheck:
    type: tcp
    interval: 1s
    timeout: 1s
`;
}

async function apply(name: string, tags?: readonly string[]): Promise<void> {
  await kube.kubectl(["apply", "-f", "-"], { input: bindingYaml(name, tags) });
}

/** Registrations of this controller: service name -> tags of its instances. */
async function registered(): Promise<Map<string, string[]>> {
  const r = await fetch(`${consul.url}/v1/agent/services`);
  const all = (await r.json()) as Record<string, { Service: string; Tags: string[] | null; Meta?: Record<string, string> | null }>;
  const out = new Map<string, string[]>();
  for (const s of Object.values(all)) if (s.Meta?.dockbind_node === NODE) out.set(s.Service, s.Tags ?? []);
  return out;
}

async function converged(want: Readonly<Record<string, string>>, what: string, timeoutMs: number): Promise<void> {
  const target = Object.entries(want)
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(",");
  const text = (m: ReadonlyMap<string, readonly string[]>): string =>
    [...m]
      .map(([k, v]) => `${k}=${[...v].sort().join("+")}`)
      .sort()
      .join(",");
  await waitFor(async () => text(await registered()) === target || undefined, { timeoutMs, what: `${what}: registrations ${target}` });
}

async function gone(name: string, timeoutMs: number): Promise<void> {
  await waitFor(async () => (await getBinding(kube, name)) === undefined || undefined, { timeoutMs, what: `${name} finalized and gone` });
}

function start(): K8sController {
  controller = startK8sController({
    kubeconfig,
    consulAddr: consul.httpAddr,
    outputDir: nginx.confDir,
    nginxArgs: nginx.nginxArgs,
    node: NODE,
    identity: IDENTITY,
    logName: `controller-${NODE}.log`,
    extraArgs: ["--metrics-addr", "127.0.0.1:0"],
  });
  return controller;
}

before(async () => {
  await Promise.all([ensureDockerd(), ensureBackendImage()]);
  [kube, consul, nginx] = await Promise.all([startKube(), startConsul({ node: `consul-${NODE}` }), startNginx()]);
  proxy = await startStallProxy({ port: Number(new URL(kube.server).port) });
  // The admin kubeconfig, pointed at the proxy (the serving cert is for 127.0.0.1).
  kubeconfig = join(kube.dir, "stall.kubeconfig");
  writeFileSync(kubeconfig, readFileSync(kube.kubeconfig, "utf8").replace(kube.server, `https://${proxy.address}`));
  await installCrd(kube);
  for (const app of ["st-keep", "st-change", "st-del", "st-new", "kr-a", "kr-b", "kr-c"]) await runBackend({ name: `k8s-${app}`, labels: { app } });
  await start().waitForLog((l) => l.message === "controller started", "controller leads and runs", 60_000);
});

after(async () => {
  await controller?.stop();
  await proxy.close();
  await kube.stop();
  await consul.stop();
  await cleanupAll();
});

describe("silent watch stall and API server restarts", () => {
  it("a stalled ServiceBinding watch is detected and re-established within the bound; nothing is deregistered meanwhile; changes made during the stall are applied", async () => {
    const c = controller;
    assert.ok(c);
    await apply("st-keep");
    await apply("st-change");
    await apply("st-del");
    await converged({ "st-keep": "k8s", "st-change": "k8s", "st-del": "k8s" }, "before the stall", 60_000);

    // Make the watch's connection show itself (an event while the controller is quiet), then stall it.
    let touch = 0;
    await waitFor(
      async () => {
        await kube.kubectl(["annotate", "--overwrite", "sb", "st-keep", `touch=${String(++touch)}`]);
        await delay(1_500);
        return proxy.stall((v) => v.streaming) || undefined;
      },
      { timeoutMs: 60_000, intervalMs: 0, what: "the watch connection stalled" },
    );
    const stalledAt = Date.now();
    const mark = c.logs().length;
    // Registrations seen missing, with when the poll that saw it started: once the stall is detected the
    // re-established watch applies the delete made meanwhile, which is no loss "during the stall".
    const lost: { readonly service: string; readonly at: number }[] = [];
    const polling = { on: true }; // cleared below, read by the poller
    const poller = (async () => {
      while (polling.on) {
        const at = Date.now();
        const now = await registered();
        for (const s of ["st-keep", "st-change", "st-del"]) if (!now.has(s) && !lost.some((l) => l.service === s)) lost.push({ service: s, at });
        await delay(200);
      }
    })();

    await apply("st-new");
    await apply("st-change", ["k8s", "v2"]);
    await kube.kubectl(["delete", "sb", "st-del", "--wait=false"]);
    const line = await c.waitForLog(
      (l) => l.message === "kubernetes watch stalled; re-establishing",
      "stall detected",
      (WATCH_STALL_BOUND_SECONDS + 30) * 1000,
    );
    const detectedAt = Date.parse(String(line.timestamp));
    const detectedMs = detectedAt - stalledAt;
    polling.on = false;
    await poller;
    console.log(
      `kubernetes watch stall detected ${detectedMs} ms after the stall (bound ${WATCH_STALL_BOUND_SECONDS} s; idle deadline ${String(line.idleMs)} ms)`,
    );
    assert.ok(detectedMs <= WATCH_STALL_BOUND_SECONDS * 1000, `detected after ${detectedMs} ms`);
    assert.deepEqual(
      lost.filter((l) => l.at < detectedAt).map((l) => l.service),
      [],
      "nothing was deregistered during the stall",
    );
    assert.ok(
      !c
        .logs()
        .slice(mark)
        .some((l) => l.message === "leader election lost"),
    );

    const t0 = Date.now();
    await converged({ "st-keep": "k8s", "st-change": "k8s+v2", "st-new": "k8s" }, "after the stall", 30_000);
    await gone("st-del", 30_000);
    console.log(`changes made during the stall applied ${Date.now() - t0} ms after detection`);
    assert.ok((await metricSum(c, "dockbind_watch_restarts_total", { source: "kubernetes", reason: "stalled" })) >= 1);
    assert.equal(await metricSum(c, "leader_election_master_status"), 1);
    assert.ok(c.proc.alive());
    assert.equal((await getLease(kube, "default"))?.holder, IDENTITY);
  });

  it("kube-apiserver killed and restarted right after a create, a change and a delete: every change applied, the finalizer runs, leadership as documented", async () => {
    // Supervised like a kubelet would: a replica that loses the lease (an outage reaching the
    // 10 s renew deadline; a restart takes 7-10 s on this machine) must exit 1 and is restarted.
    const exits: { code: number | null; lostLogged: boolean }[] = [];
    const lost: string[] = [];
    const done = new AbortController(); // ends the supervisor and the poller
    const supervisor = (async () => {
      while (!isAborted(done.signal)) {
        const cur = controller;
        assert.ok(cur);
        const info = await Promise.race([cur.proc.exited, delay(200).then(() => undefined)]);
        if (info === undefined || isAborted(done.signal)) continue;
        exits.push({ code: info.code, lostLogged: cur.logs().some((l) => l.message === "leader election lost") });
        start();
      }
    })();
    const poller = (async () => {
      while (!isAborted(done.signal)) {
        const now = await registered();
        for (const s of ["st-keep", "st-change"]) if (!now.has(s) && !lost.includes(s)) lost.push(s);
        await delay(200);
      }
    })();
    const bounce = async (): Promise<void> => {
      await kube.killApiserver();
      await kube.startApiserver();
    };
    try {
      await apply("kr-a");
      await bounce();
      await apply("kr-a", ["k8s", "v2"]);
      await bounce();
      await apply("kr-b");
      await kube.kubectl(["delete", "sb", "st-new", "--wait=false"]);
      await bounce();
      await converged({ "st-keep": "k8s", "st-change": "k8s+v2", "kr-a": "k8s+v2", "kr-b": "k8s" }, "after three API server crashes", 90_000);
      await gone("st-new", 30_000);
    } finally {
      done.abort();
      await Promise.all([supervisor, poller]);
    }
    console.log(`three kube-apiserver crashes: ${exits.length} leadership loss(es), each an exit ${JSON.stringify(exits.map((e) => e.code))}`);
    for (const e of exits) assert.deepEqual(e, { code: 1, lostLogged: true }, "a replica that lost the lease logged it and exited 1");
    assert.deepEqual(lost, [], "registrations of bindings that stayed were never removed");
    const c = controller;
    assert.ok(c);
    await c.waitForLog((l) => l.message === "controller started", "the current replica leads", 60_000);
    assert.equal((await getLease(kube, "default"))?.holder, IDENTITY);
  });

  it("an outage longer than the renew deadline: the leader exits 1 deregistering nothing; its restart applies what changed meanwhile, finalizer included", async () => {
    const c = controller;
    assert.ok(c);
    await kube.killApiserver();
    const exit = await c.proc.exited;
    assert.equal(exit.code, 1, "a replica that lost the lease exits non-zero");
    assert.ok(c.logs().some((l) => l.message === "leader election lost"));
    const before = await registered();
    assert.deepEqual([...before.keys()].sort(), ["kr-a", "kr-b", "st-change", "st-keep"], "a lost leader deregisters nothing");
    await kube.startApiserver();
    await kube.kubectl(["delete", "sb", "kr-b", "--wait=false"]);
    await apply("kr-c");
    await apply("st-keep", ["k8s", "v3"]);
    const again = start();
    await again.waitForLog((l) => l.message === "controller started", "restarted controller leads", 60_000);
    await converged({ "st-keep": "k8s+v3", "st-change": "k8s+v2", "kr-a": "k8s+v2", "kr-c": "k8s" }, "after the restart", 60_000);
    await gone("kr-b", 30_000);
    assert.equal((await getLease(kube, "default"))?.holder, IDENTITY);
  });
});
