/**
 * A real Kubernetes control plane for integration tests: etcd
 * (Debian etcd-server) + kube-apiserver (built from Go modules by
 * test/bed/k8s/build.sh, cached outside the repo), both on loopback with fresh
 * ports, plus kubectl (/usr/bin/kubectl) and helm (built likewise).
 *
 * - TLS: a throwaway CA (openssl) signs the serving cert (127.0.0.1, localhost,
 *   kubernetes.default.svc).
 * - AuthN: a static token file with one admin (group system:masters) for the
 *   test itself; ServiceAccount tokens (TokenRequest API) are signed with a
 *   generated key, so `kubectl create token` works.
 * - AuthZ: RBAC only, so the chart's ClusterRole is really what the
 *   controller gets.
 * - Audit: every write (create/update/patch/delete) and every request of a
 *   ServiceAccount is logged with user, user agent and response code
 *   (audit.log), to prove who wrote what and that nothing was denied.
 * Processes are tracked by procs.ts (killed when the test process exits);
 * command lines contain /tmp/dockbind-testbed/ (teardown.sh).
 */
import { randomBytes } from "node:crypto";
import { request as httpsRequest } from "node:https";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run, type RunResult } from "./exec.js";
import { httpGet } from "./http.js";
import { ensureBedRoot, startManaged, type ManagedProcess } from "./procs.js";
import { freePort, waitFor } from "./wait.js";
import { controllerCommand, readJsonLog, type LogLine } from "./controller.js";

const REPO = join(import.meta.dirname, "..", "..");
/** Same default as test/bed/k8s/build.sh. */
export const K8S_CACHE = process.env.DOCKBIND_K8S_CACHE ?? "/var/cache/dockbind-testbed/k8s";
export const KUBE_APISERVER = join(K8S_CACHE, "bin", "kube-apiserver");
export const HELM = join(K8S_CACHE, "bin", "helm");
export const KUBECTL = process.env.KUBECTL ?? "kubectl";

let building: Promise<void> | undefined;

/** Builds (first time: minutes) or finds the cached kube-apiserver and helm. */
export function ensureK8sBinaries(): Promise<void> {
  building ??= (async () => {
    if (existsSync(KUBE_APISERVER) && existsSync(HELM)) return;
    await run("bash", [join(REPO, "test/bed/k8s/build.sh")], { check: true, timeoutMs: 30 * 60_000 });
  })();
  return building;
}

export interface AuditEvent {
  readonly verb: string;
  readonly requestURI: string;
  readonly userAgent?: string;
  readonly user: { readonly username: string; readonly extra?: Readonly<Record<string, readonly string[]>> };
  readonly objectRef?: {
    readonly resource?: string;
    readonly namespace?: string;
    readonly name?: string;
    readonly subresource?: string;
    readonly apiGroup?: string;
  };
  readonly responseStatus?: { readonly code?: number };
  /** When the API server began handling the request (RFC 3339, microseconds). */
  readonly requestReceivedTimestamp?: string;
  readonly stageTimestamp: string;
}

export interface KubeHandle {
  readonly dir: string;
  /** https://127.0.0.1:PORT */
  readonly server: string;
  readonly caFile: string;
  /** Admin kubeconfig (system:masters). */
  readonly kubeconfig: string;
  readonly auditLog: string;
  readonly logFile: string;
  /**
   * GET of an API path as the admin, straight over HTTPS (no kubectl process: polls of status and leases
   * run every 100 ms). `status` 0: no HTTP answer (connection refused, reset, timeout).
   */
  get(path: string): Promise<{ readonly status: number; readonly body: string }>;
  /** kubectl with the admin kubeconfig; rejects on a non-zero exit unless `check: false`. */
  kubectl(args: readonly string[], opts?: { input?: string; check?: boolean; kubeconfig?: string }): Promise<RunResult>;
  /** helm with the admin kubeconfig. */
  helm(args: readonly string[], opts?: { check?: boolean }): Promise<RunResult>;
  /** `kubectl create token SA -n NS` written into a kubeconfig file; returns its path. */
  serviceAccountKubeconfig(namespace: string, serviceAccount: string, name: string): Promise<string>;
  /** Parsed audit events so far. */
  audit(): AuditEvent[];
  /** SIGTERM the apiserver (etcd keeps running). Graceful shutdown takes ~10 s. */
  stopApiserver(): Promise<void>;
  /** SIGKILL the apiserver (a crash; etcd keeps running). */
  killApiserver(): Promise<void>;
  /** Starts the apiserver again on the same port/etcd; resolves when /readyz is ok. */
  startApiserver(): Promise<void>;
  stop(): Promise<void>;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  await run("openssl", args, { cwd, check: true });
}

async function makePki(dir: string): Promise<void> {
  await openssl(
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "30", "-subj", "/CN=dockbind-testbed-ca"],
    dir,
  );
  await openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=kube-apiserver"], dir);
  writeFileSync(
    join(dir, "server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.crt",
      "-days",
      "30",
      "-extfile",
      "server.ext",
    ],
    dir,
  );
  await openssl(["genrsa", "-out", "sa.key", "2048"], dir);
  await openssl(["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
}

/** Every request of a ServiceAccount (to prove what the controller did and that nothing was denied), every write of anyone. */
const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts"]
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
`;

export function kubeconfigText(server: string, caFile: string, token: string, user = "admin"): string {
  return `apiVersion: v1
kind: Config
clusters:
- name: testbed
  cluster: {server: "${server}", certificate-authority: "${caFile}"}
users:
- name: ${user}
  user: {token: "${token}"}
contexts:
- name: testbed
  context: {cluster: testbed, user: ${user}, namespace: default}
current-context: testbed
`;
}

/** Starts etcd + kube-apiserver; resolves when the API server is ready (~3 s). */
export async function startKube(): Promise<KubeHandle> {
  await ensureK8sBinaries();
  const dir = join(ensureBedRoot(), `k8s-${randomBytes(4).toString("hex")}`);
  mkdirSync(dir, { recursive: true });
  await makePki(dir);
  const adminToken = randomBytes(16).toString("hex");
  writeFileSync(join(dir, "tokens.csv"), `${adminToken},admin,admin,"system:masters"\n`);
  writeFileSync(join(dir, "audit-policy.yaml"), AUDIT_POLICY);
  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcd = startManaged(
    "etcd",
    [
      "--name",
      "testbed",
      "--data-dir",
      join(dir, "etcd"),
      "--listen-client-urls",
      `http://127.0.0.1:${etcdClient}`,
      "--advertise-client-urls",
      `http://127.0.0.1:${etcdClient}`,
      "--listen-peer-urls",
      `http://127.0.0.1:${etcdPeer}`,
      "--initial-advertise-peer-urls",
      `http://127.0.0.1:${etcdPeer}`,
      "--initial-cluster",
      `testbed=http://127.0.0.1:${etcdPeer}`,
      "--log-level",
      "warn",
    ],
    join(dir, "etcd.log"),
  );
  await waitFor(async () => (await httpGet(`http://127.0.0.1:${etcdClient}/health`, 1000)).status === 200 || undefined, {
    timeoutMs: 20_000,
    what: `etcd on 127.0.0.1:${etcdClient} (log ${join(dir, "etcd.log")})`,
  });
  const server = `https://127.0.0.1:${apiPort}`;
  const caFile = join(dir, "ca.crt");
  const kubeconfig = join(dir, "admin.kubeconfig");
  writeFileSync(kubeconfig, kubeconfigText(server, caFile, adminToken));
  const logFile = join(dir, "kube-apiserver.log");
  const auditLog = join(dir, "audit.log");
  const apiArgs = [
    `--etcd-servers=http://127.0.0.1:${etcdClient}`,
    "--bind-address=127.0.0.1",
    "--advertise-address=127.0.0.1",
    `--secure-port=${apiPort}`,
    `--tls-cert-file=${join(dir, "server.crt")}`,
    `--tls-private-key-file=${join(dir, "server.key")}`,
    `--client-ca-file=${caFile}`,
    `--token-auth-file=${join(dir, "tokens.csv")}`,
    "--authorization-mode=RBAC",
    "--service-account-issuer=https://kubernetes.default.svc",
    `--service-account-key-file=${join(dir, "sa.pub")}`,
    `--service-account-signing-key-file=${join(dir, "sa.key")}`,
    "--service-cluster-ip-range=10.96.0.0/24",
    `--audit-log-path=${auditLog}`,
    `--audit-policy-file=${join(dir, "audit-policy.yaml")}`,
    "--profiling=false",
    "--enable-priority-and-fairness=false",
  ];
  let api: ManagedProcess | undefined;
  const kubectl = async (args: readonly string[], opts: { input?: string; check?: boolean; kubeconfig?: string } = {}): Promise<RunResult> =>
    run(KUBECTL, ["--kubeconfig", opts.kubeconfig ?? kubeconfig, ...args], {
      check: opts.check ?? true,
      timeoutMs: 60_000,
      ...(opts.input !== undefined ? { input: opts.input } : {}),
    });
  const ca = readFileSync(caFile);
  const get = (path: string): Promise<{ readonly status: number; readonly body: string }> =>
    new Promise((resolve) => {
      // agent: false: one connection per call, so nothing is reused across API server restarts.
      const req = httpsRequest(`${server}${path}`, { ca, agent: false, timeout: 10_000, headers: { authorization: `Bearer ${adminToken}` } }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => {
          resolve({ status: res.statusCode ?? 0, body });
        });
        res.on("error", () => {
          resolve({ status: 0, body });
        });
      });
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", () => {
        resolve({ status: 0, body: "" });
      });
      req.end();
    });
  const startApiserver = async (): Promise<void> => {
    const proc = startManaged(KUBE_APISERVER, apiArgs, logFile);
    api = proc;
    const died = new AbortController();
    void proc.exited.then((info) => {
      died.abort(new Error(`kube-apiserver exited (code ${String(info.code)}), see ${logFile}`));
    });
    await waitFor(async () => (await get("/readyz")).status === 200 || undefined, {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: `kube-apiserver ready on ${server} (log ${logFile})`,
      signal: died.signal,
    });
  };
  await startApiserver();
  const handle: KubeHandle = {
    dir,
    server,
    caFile,
    kubeconfig,
    auditLog,
    logFile,
    get,
    kubectl,
    helm: (args, opts = {}) => run(HELM, ["--kubeconfig", kubeconfig, ...args], { check: opts.check ?? true, timeoutMs: 120_000 }),
    async serviceAccountKubeconfig(namespace, serviceAccount, name) {
      const token = (await kubectl(["create", "token", serviceAccount, "-n", namespace, "--duration", "1h"])).stdout.trim();
      const file = join(dir, `${name}.kubeconfig`);
      writeFileSync(file, kubeconfigText(server, caFile, token, name));
      return file;
    },
    audit() {
      let text = "";
      try {
        text = readFileSync(auditLog, "utf8");
      } catch {
        return [];
      }
      return text.split("\n").flatMap((line) => {
        if (line.trim() === "") return [];
        try {
          return [JSON.parse(line) as AuditEvent];
        } catch {
          return [];
        }
      });
    },
    async stopApiserver() {
      await api?.stop("SIGTERM", 15_000);
    },
    async killApiserver() {
      await api?.stop("SIGKILL");
    },
    startApiserver,
    async stop() {
      await api?.stop("SIGTERM", 10_000);
      await etcd.stop("SIGTERM", 10_000);
    },
  };
  return handle;
}

/** The CRD generated by `make crds`. */
export const CRD_FILE = join(REPO, "crds", "servicebindings.dockbind.io.yaml");

/** kubectl apply -f crds/ and wait until the CRD is Established. */
export async function installCrd(kube: KubeHandle): Promise<void> {
  await kube.kubectl(["apply", "-f", CRD_FILE]);
  await kube.kubectl(["wait", "--for", "condition=Established", "crd/servicebindings.dockbind.io", "--timeout=30s"]);
}

export type { LogLine } from "./controller.js";

export interface K8sControllerOptions {
  readonly kubeconfig: string;
  readonly consulAddr: string;
  readonly outputDir: string;
  /** nginx `-p PREFIX -c CONF` args (NginxHandle.nginxArgs). */
  readonly nginxArgs: readonly string[];
  readonly node: string;
  readonly identity: string;
  readonly leaseNamespace?: string;
  readonly extraArgs?: readonly string[];
  readonly logName?: string;
}

export interface K8sController {
  readonly proc: ManagedProcess;
  readonly logFile: string;
  logs(): LogLine[];
  waitForLog(pred: (l: LogLine) => boolean, what: string, timeoutMs?: number): Promise<LogLine>;
  /** SIGTERM and wait (graceful: releases the lease). */
  stop(): Promise<void>;
  /** SIGKILL (a crash: the lease is not released). */
  kill(): Promise<void>;
}

/** Runs `src/cli/main.ts` in Kubernetes mode (no --docker-only). Does not wait for leadership. */
export function startK8sController(o: K8sControllerOptions): K8sController {
  const logFile = join(ensureBedRoot(), o.logName ?? `controller-k8s-${o.identity}-${process.pid}.log`);
  let offset = 0;
  try {
    offset = readFileSync(logFile).length;
  } catch {
    offset = 0;
  }
  const prefix = o.nginxArgs[o.nginxArgs.indexOf("-p") + 1] ?? "";
  const conf = o.nginxArgs[o.nginxArgs.indexOf("-c") + 1] ?? "";
  const args = [
    ...controllerCommand(),
    "--kubeconfig",
    o.kubeconfig,
    "--consul-addr",
    o.consulAddr,
    "--lb-output-dir",
    o.outputDir,
    "--nginx-prefix",
    prefix,
    "--nginx-conf",
    conf,
    "--node",
    o.node,
    "--leader-identity",
    o.identity,
    "--lease-namespace",
    o.leaseNamespace ?? "default",
    "--metrics-addr",
    "off",
    "--log-format",
    "json",
    "--log-level",
    "debug",
    "--resync",
    "2s",
    "--wait-min",
    "50ms",
    "--wait-max",
    "500ms",
    ...(o.extraArgs ?? []),
  ];
  const proc = startManaged(process.execPath, args, logFile);
  const logs = (): LogLine[] => readJsonLog(logFile, offset);
  return {
    proc,
    logFile,
    logs,
    waitForLog: (pred, what, timeoutMs = 30_000) =>
      waitFor(
        () => {
          const hit = logs().find(pred);
          if (hit !== undefined) return hit;
          if (!proc.alive()) throw new Error(`controller exited; log: ${logFile}`);
          return undefined;
        },
        { timeoutMs, what: `${what} (log ${logFile})` },
      ),
    stop: async () => {
      await proc.stop("SIGTERM", 15_000);
    },
    kill: async () => {
      await proc.stop("SIGKILL");
    },
  };
}

export interface LeaseView {
  readonly holder: string;
  readonly transitions: number;
  readonly renewTime: string;
}

/** The Lease as the API server has it (undefined when it does not exist). */
export async function getLease(kube: KubeHandle, namespace: string, name = "dockbind-controller"): Promise<LeaseView | undefined> {
  const r = await kube.get(`/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name}`);
  if (r.status !== 200) return undefined;
  const lease = JSON.parse(r.body) as { spec?: { holderIdentity?: string; leaseTransitions?: number; renewTime?: string } };
  return { holder: lease.spec?.holderIdentity ?? "", transitions: lease.spec?.leaseTransitions ?? 0, renewTime: lease.spec?.renewTime ?? "" };
}

export interface BindingStatusView {
  readonly generation: number;
  readonly finalizers: readonly string[];
  readonly deletionTimestamp?: string;
  readonly observedGeneration?: number;
  readonly conditions: readonly { type: string; status: string; reason: string; message: string; lastTransitionTime: string; observedGeneration?: number }[];
  readonly backends?: { desired: number; registered: number; passing: number };
}

/** The ServiceBinding as the API server has it (`kubectl get sb NAME -o json`), reduced; undefined when it does not exist. */
export async function getBinding(kube: KubeHandle, name: string, namespace = "default"): Promise<BindingStatusView | undefined> {
  const r = await kube.get(`/apis/dockbind.io/v1alpha1/namespaces/${namespace}/servicebindings/${name}`);
  if (r.status === 404) return undefined;
  if (r.status !== 200) throw new Error(`GET servicebinding ${namespace}/${name}: HTTP ${r.status} ${r.body.slice(0, 300)}`);
  const o = JSON.parse(r.body) as {
    metadata: { generation: number; finalizers?: string[]; deletionTimestamp?: string };
    status?: { observedGeneration?: number; conditions?: BindingStatusView["conditions"]; backends?: BindingStatusView["backends"] };
  };
  return {
    generation: o.metadata.generation,
    finalizers: o.metadata.finalizers ?? [],
    ...(o.metadata.deletionTimestamp !== undefined ? { deletionTimestamp: o.metadata.deletionTimestamp } : {}),
    ...(o.status?.observedGeneration !== undefined ? { observedGeneration: o.status.observedGeneration } : {}),
    conditions: o.status?.conditions ?? [],
    ...(o.status?.backends !== undefined ? { backends: o.status.backends } : {}),
  };
}

export function condition(b: BindingStatusView | undefined, type: string): BindingStatusView["conditions"][number] | undefined {
  return b?.conditions.find((c) => c.type === type);
}
