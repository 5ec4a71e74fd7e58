/**
 * Issue #3: charts/dockbind and manifests/ stay consistent (the plain
 * manifests are what `helm template dockbind -n dockbind-system` renders with
 * default values, minus Helm's own labels), the chart ships the generated CRD,
 * and values.schema.json / template guards reject bad values. Needs the helm
 * binary of the test bed (test/bed/k8s/build.sh), no API server.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { loadConfig } from "../../src/config/config.js";
import { run } from "../support/exec.js";
import { ensureK8sBinaries, HELM } from "../support/k8s.js";

const REPO = join(import.meta.dirname, "..", "..");
const CHART = join(REPO, "charts", "dockbind");

interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  readonly [k: string]: unknown;
}

function parse(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

async function template(...set: string[]): Promise<{ code: number; objects: K8sObject[]; stderr: string }> {
  // `--set-json k=JSON` for a value starting with "json:", `--set` otherwise.
  const flags = set.flatMap((s) => (s.startsWith("json:") ? ["--set-json", s.slice("json:".length)] : ["--set", s]));
  const r = await run(HELM, ["template", "dockbind", CHART, "-n", "dockbind-system", "--kube-version", "1.33.13", ...flags]);
  return { code: r.code, objects: r.code === 0 ? parse(r.stdout) : [], stderr: r.stderr };
}

/** Helm's bookkeeping labels are the only allowed difference. */
function normalize(o: K8sObject): K8sObject {
  const labels = { ...(o.metadata.labels ?? {}) };
  delete labels["helm.sh/chart"];
  delete labels["app.kubernetes.io/managed-by"];
  return { ...o, metadata: { ...o.metadata, labels } };
}

const id = (o: K8sObject): string => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

before(async () => {
  await ensureK8sBinaries();
});

describe("Helm chart and plain manifests", () => {
  it("helm template (default values) renders exactly the objects in manifests/ (plus the Namespace)", async () => {
    const { code, objects, stderr } = await template();
    assert.equal(code, 0, stderr);
    const files = readdirSync(join(REPO, "manifests")).filter((f) => f.endsWith(".yaml"));
    const manifests = files.flatMap((f) => parse(readFileSync(join(REPO, "manifests", f), "utf8")));
    const fromChart = new Map(objects.map((o) => [id(o), normalize(o)]));
    const fromFiles = new Map(manifests.filter((o) => o.kind !== "Namespace").map((o) => [id(o), normalize(o)]));
    assert.deepEqual([...fromFiles.keys()].sort(), [...fromChart.keys()].sort());
    for (const [k, o] of fromChart) assert.deepEqual(fromFiles.get(k), o, `${k} differs between chart and manifests/`);
    const ns = manifests.find((o) => o.kind === "Namespace");
    assert.equal(ns?.metadata.name, "dockbind-system");
  });

  it("RBAC is least privilege and identical cluster-wide and namespace-scoped", async () => {
    const cluster = (await template()).objects;
    const scoped = (await template(`json:watchNamespaces=["team-a","team-b"]`)).objects;
    const rulesOf = (objs: K8sObject[], kind: string, name: string, ns?: string): unknown =>
      objs.find((o) => o.kind === kind && o.metadata.name === name && (ns === undefined || o.metadata.namespace === ns))?.rules;
    const rules = rulesOf(cluster, "ClusterRole", "dockbind");
    assert.deepEqual(rules, [
      { apiGroups: ["dockbind.io"], resources: ["servicebindings"], verbs: ["get", "list", "watch", "patch"] },
      { apiGroups: ["dockbind.io"], resources: ["servicebindings/status"], verbs: ["patch"] },
      { apiGroups: [""], resources: ["events"], verbs: ["create"] },
    ]);
    assert.deepEqual(
      scoped.filter((o) => o.kind.startsWith("Cluster")),
      [],
      "no cluster-wide RBAC when namespaces are given",
    );
    for (const ns of ["team-a", "team-b"]) {
      assert.deepEqual(rulesOf(scoped, "Role", "dockbind", ns), rules, `Role in ${ns}`);
      const rb = scoped.find((o) => o.kind === "RoleBinding" && o.metadata.name === "dockbind" && o.metadata.namespace === ns);
      assert.deepEqual(rb?.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "dockbind" });
      assert.deepEqual(rb.subjects, [{ kind: "ServiceAccount", name: "dockbind", namespace: "dockbind-system" }]);
    }
    const leaseRules = [
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["create"] },
      { apiGroups: ["coordination.k8s.io"], resources: ["leases"], resourceNames: ["dockbind-controller"], verbs: ["get", "update"] },
    ];
    assert.deepEqual(rulesOf(cluster, "Role", "dockbind-leader-election", "dockbind-system"), leaseRules);
    assert.deepEqual(rulesOf(scoped, "Role", "dockbind-leader-election", "dockbind-system"), leaseRules, "the Lease Role stays in the release namespace");
    // The rendered args are what the controller's own parser turns into the watched namespaces.
    type Deploy = { spec: { template: { spec: { containers: { args: string[] }[] } } } };
    const argsOf = (objs: K8sObject[]): string[] =>
      (objs.find((o) => o.kind === "Deployment") as Deploy | undefined)?.spec.template.spec.containers[0]?.args ?? [];
    const nsArgs = argsOf(scoped).filter((a) => a.startsWith("--watch-namespace="));
    assert.deepEqual(nsArgs, ["--watch-namespace=team-a", "--watch-namespace=team-b"]);
    assert.deepEqual(loadConfig(["--kubeconfig", "/dev/null", ...nsArgs], {}).kubernetes?.watchNamespaces, ["team-a", "team-b"]);
    assert.equal(
      argsOf(cluster).some((a) => a.startsWith("--watch-namespace") || a.startsWith("--namespace")),
      false,
      "all namespaces by default",
    );
    // The deprecated single value joins the list.
    const legacy = (await template("watchNamespace=team-c", `json:watchNamespaces=["team-a"]`)).objects;
    assert.deepEqual(
      legacy.filter((o) => o.kind === "Role" && o.metadata.name === "dockbind").map((o) => o.metadata.namespace),
      ["team-a", "team-c"],
    );
    assert.deepEqual(
      argsOf(legacy).filter((a) => a.startsWith("--watch-namespace=")),
      ["--watch-namespace=team-a", "--watch-namespace=team-c"],
    );
    const dup = await template(`json:watchNamespaces=["team-a","team-a"]`);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /watchNamespaces/);
  });

  it("the chart ships the generated CRD unchanged", () => {
    assert.equal(
      readFileSync(join(CHART, "crds", "servicebindings.dockbind.io.yaml"), "utf8"),
      readFileSync(join(REPO, "crds", "servicebindings.dockbind.io.yaml"), "utf8"),
    );
  });

  it("optional ServiceMonitor renders when enabled", async () => {
    const { objects } = await template("serviceMonitor.enabled=true");
    const sm = objects.find((o) => o.kind === "ServiceMonitor") as { spec: { endpoints: { port: string }[] } } | undefined;
    assert.equal(sm?.spec.endpoints[0]?.port, "metrics");
    assert.equal(
      (await template()).objects.some((o) => o.kind === "ServiceMonitor"),
      false,
    );
  });

  it("docker.endpoints renders one --docker-endpoint per engine that the controller parses, with each TLS secret mounted at its cert-path", async () => {
    const endpoints = [
      { node: "docker-1", host: "tcp://192.0.2.11:2376", tlsSecret: "docker-1-tls" },
      { node: "docker-2", host: "tcp://docker-2.lan:2376", hostIP: "192.0.2.12", tlsSecret: "docker-2-tls", tlsVerify: false },
      { node: "local", host: "unix:///var/run/docker.sock" },
    ];
    const { code, objects, stderr } = await template(`json:docker.endpoints=${JSON.stringify(endpoints)}`);
    assert.equal(code, 0, stderr);
    type Pod = {
      containers: { args: string[]; volumeMounts: { name: string; mountPath: string }[] }[];
      volumes: { name: string; secret?: { secretName: string } }[];
    };
    const pod = (objects.find((o) => o.kind === "Deployment") as { spec: { template: { spec: Pod } } } | undefined)?.spec.template.spec;
    const c = pod?.containers[0];
    assert.ok(pod !== undefined && c !== undefined);
    assert.ok(!c.args.some((a) => a.startsWith("--docker-host")), "endpoints replace --docker-host");
    const epArgs = c.args.filter((a) => a.startsWith("--docker-endpoint="));
    assert.equal(epArgs.length, 3);
    // Every TLS endpoint's cert-path is where its secret is mounted.
    const mountOf = new Map(c.volumeMounts.map((m) => [m.mountPath, m.name]));
    const secretOf = new Map(pod.volumes.map((v) => [v.name, v.secret?.secretName]));
    for (const e of endpoints.filter((x) => x.tlsSecret !== undefined)) {
      const path = `/var/run/secrets/dockbind/docker-endpoints/${e.node}`;
      assert.ok(
        epArgs.some((a) => a.includes(`node=${e.node},`) && a.includes(`cert-path=${path}`)),
        `${e.node} cert-path`,
      );
      assert.equal(secretOf.get(mountOf.get(path) ?? ""), e.tlsSecret, `${e.node}: secret mounted at its cert-path`);
    }
    // The controller's own parser accepts exactly these args (cert files stand in for the mounted secrets).
    const certs = mkdtempSync(join(tmpdir(), "dockbind-chart-certs-"));
    try {
      for (const e of endpoints) {
        mkdirSync(join(certs, e.node));
        for (const f of ["ca.pem", "cert.pem", "key.pem"]) writeFileSync(join(certs, e.node, f), `${e.node} ${f}`);
      }
      const argv = epArgs.map((a) => a.replace("/var/run/secrets/dockbind/docker-endpoints", certs));
      const config = loadConfig(["--docker-only", "--bindings", "/tmp", ...argv.flatMap((a) => a.split(/=(.*)/s).slice(0, 2))], {});
      assert.deepEqual(
        config.dockerEndpoints.map((e) => [e.node, e.host, e.hostIP, e.tls?.verify, e.tls?.ca]),
        [
          ["docker-1", "tcp://192.0.2.11:2376", "192.0.2.11", true, "docker-1 ca.pem"],
          ["docker-2", "tcp://docker-2.lan:2376", "192.0.2.12", false, "docker-2 ca.pem"],
          ["local", "unix:///var/run/docker.sock", "127.0.0.1", undefined, undefined],
        ],
      );
    } finally {
      rmSync(certs, { recursive: true, force: true });
    }
    const noNode = await template(`json:docker.endpoints=[{"host":"unix:///x.sock"}]`);
    assert.notEqual(noNode.code, 0);
    assert.match(noNode.stderr, /missing property 'node'/);
  });

  it("loadBalancer.tlsSecrets mounts each kubernetes.io/tls Secret under --tls-dir", async () => {
    const { code, objects, stderr } = await template(`json:loadBalancer.tlsSecrets=["web-tls","api-tls"]`);
    assert.equal(code, 0, stderr);
    type Pod = {
      containers: { args: string[]; volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[] }[];
      volumes: { name: string; secret?: { secretName: string; defaultMode?: number } }[];
    };
    const pod = (objects.find((o) => o.kind === "Deployment") as { spec: { template: { spec: Pod } } } | undefined)?.spec.template.spec;
    const c = pod?.containers[0];
    assert.ok(pod !== undefined && c !== undefined);
    assert.ok(c.args.includes("--tls-dir=/var/run/secrets/dockbind/tls"));
    const secretOf = new Map(pod.volumes.map((v) => [v.name, v.secret]));
    for (const name of ["web-tls", "api-tls"]) {
      const mount: Pod["containers"][number]["volumeMounts"][number] | undefined = c.volumeMounts.find(
        (m) => m.mountPath === `/var/run/secrets/dockbind/tls/${name}`,
      );
      assert.ok(mount !== undefined, `${name} mounted`);
      assert.equal(mount.readOnly, true, `${name} mounted read-only`);
      assert.deepEqual(secretOf.get(mount.name), { secretName: name, defaultMode: 0o440 });
    }
    const none = (await template()).objects.find((o) => o.kind === "Deployment") as { spec: { template: { spec: Pod } } } | undefined;
    assert.ok(!(none?.spec.template.spec.containers[0]?.args ?? []).some((a) => a.startsWith("--tls-dir")), "no --tls-dir without tlsSecrets");
    const bad = await template(`json:loadBalancer.tlsSecrets=["Bad_Name"]`);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /tlsSecrets/);
  });

  it("rejects bad values: schema violations and several replicas without leader election", async () => {
    const bad = await template("replicaCount=-1");
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /replicaCount/);
    const typo = await template("consul.adress=x");
    assert.notEqual(typo.code, 0);
    assert.match(typo.stderr, /adress/);
    const writers = await template("leaderElection.enabled=false");
    assert.notEqual(writers.code, 0);
    assert.match(writers.stderr, /needs leaderElection\.enabled/);
    assert.equal((await template("leaderElection.enabled=false", "replicaCount=1")).code, 0);
  });
});
