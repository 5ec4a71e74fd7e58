/**
 * A real 3-server Consul cluster on loopback addresses 127.0.0.2-4 (non-dev
 * agents, own data dirs), with ACLs (default deny) and TLS (HTTPS only, client
 * certificates required), for the Consul cluster tests.
 *
 * - Certificates: `consul tls ca create`, one `consul tls cert create -server`
 *   per server (with its IP as SAN) and one `-client` cert for callers.
 * - ACL: `acl.tokens.master` (Consul 1.8.7 syntax) is a fresh UUID, also used
 *   as the agents' own token; `api()` calls use it unless told otherwise.
 * - Every server uses the same port numbers on its own IP; HTTP is off, HTTPS
 *   on `ports.https`. raft_multiplier 1 keeps elections around a second.
 * Processes are tracked by procs.ts (killed when the test process exits).
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { run } from "./exec.js";
import { ensureBedRoot, startManaged, type ManagedProcess } from "./procs.js";
import { freePort, waitFor } from "./wait.js";

export interface ClusterServer {
  readonly name: string;
  readonly ip: string;
  /** `https://IP:PORT`. */
  readonly url: string;
  readonly logFile: string;
  alive(): boolean;
  /** SIGKILL (a crash), resolves once it has exited. */
  kill(): Promise<void>;
}

export interface ApiResponse {
  readonly status: number;
  readonly body: string;
}

/**
 * Controller flags for this cluster: the token file, its CA and client certificate, and the fast
 * resync and render wait the cluster tests use.
 */
export function clusterControllerArgs(cluster: Pick<ConsulCluster, "caFile" | "clientCertFile" | "clientKeyFile">, tokenFile: string): string[] {
  return [
    ...["--consul-token-file", tokenFile, "--consul-cacert", cluster.caFile],
    ...["--consul-client-cert", cluster.clientCertFile, "--consul-client-key", cluster.clientKeyFile],
    ...["--resync", "2s", "--wait-min", "50ms", "--wait-max", "500ms"],
  ];
}

export interface ConsulCluster {
  readonly dir: string;
  readonly servers: readonly ClusterServer[];
  readonly masterToken: string;
  readonly caFile: string;
  readonly clientCertFile: string;
  readonly clientKeyFile: string;
  /** HTTPS request to a server (default: the first alive one) with the master token (or `token`; "" = none). */
  api(method: string, path: string, opts?: { body?: unknown; token?: string; server?: ClusterServer }): Promise<ApiResponse>;
  /** The server that is raft leader now (per a live server's /v1/status/leader). */
  leader(): Promise<ClusterServer>;
  /** Creates a policy and a token with that policy; resolves with the token's SecretID. */
  createToken(name: string, rules: string): Promise<string>;
}

const IPS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"] as const;

export async function startConsulCluster(): Promise<ConsulCluster> {
  const dir = mkdtempSync(join(ensureBedRoot(), "consul-cluster-"));
  const certs = join(dir, "certs");
  mkdirSync(certs);
  await run("consul", ["tls", "ca", "create"], { cwd: certs, check: true });
  for (const ip of IPS) await run("consul", ["tls", "cert", "create", "-server", "-dc", "dc1", "-additional-ipaddress", ip], { cwd: certs, check: true });
  await run("consul", ["tls", "cert", "create", "-client", "-dc", "dc1"], { cwd: certs, check: true });
  const caFile = join(certs, "consul-agent-ca.pem");
  const clientCertFile = join(certs, "dc1-client-consul-0.pem");
  const clientKeyFile = join(certs, "dc1-client-consul-0-key.pem");
  const tls = { ca: readFileSync(caFile, "utf8"), cert: readFileSync(clientCertFile, "utf8"), key: readFileSync(clientKeyFile, "utf8") };
  const masterToken = randomUUID();
  const ports = { https: await freePort(), serfLan: await freePort(), serfWan: await freePort(), server: await freePort() };

  const servers: ClusterServer[] = IPS.map((ip, i) => {
    const name = `srv${i + 1}`;
    const dataDir = join(dir, name);
    mkdirSync(dataDir);
    const cfg = {
      datacenter: "dc1",
      node_name: `dockbind-${name}`,
      data_dir: dataDir,
      server: true,
      bootstrap_expect: 3,
      bind_addr: ip,
      client_addr: ip,
      advertise_addr: ip,
      retry_join: IPS.filter((o) => o !== ip).map((o) => `${o}:${ports.serfLan}`),
      retry_interval: "1s",
      ports: { http: -1, https: ports.https, dns: -1, grpc: -1, serf_lan: ports.serfLan, serf_wan: ports.serfWan, server: ports.server },
      performance: { raft_multiplier: 1 },
      leave_on_terminate: false,
      ui: false,
      log_level: "INFO",
      ca_file: caFile,
      cert_file: join(certs, `dc1-server-consul-${i}.pem`),
      key_file: join(certs, `dc1-server-consul-${i}-key.pem`),
      verify_incoming: false,
      verify_incoming_https: true,
      verify_outgoing: false,
      acl: { enabled: true, default_policy: "deny", down_policy: "extend-cache", tokens: { master: masterToken, agent: masterToken } },
    };
    const cfgFile = join(dataDir, "..", `${name}.json`);
    writeFileSync(cfgFile, JSON.stringify(cfg, null, 2));
    const logFile = join(dir, `${name}.log`);
    const proc: ManagedProcess = startManaged("consul", ["agent", "-config-file", cfgFile], logFile);
    return {
      name,
      ip,
      url: `https://${ip}:${ports.https}`,
      logFile,
      alive: () => proc.alive(),
      kill: async () => {
        proc.kill();
        await proc.exited;
      },
    };
  });

  const api: ConsulCluster["api"] = (method, path, opts = {}) => {
    const server = opts.server ?? servers.find((s) => s.alive());
    if (server === undefined) return Promise.reject(new Error("no live consul server"));
    const token = opts.token ?? masterToken;
    return httpsRequest(`${server.url}${path}`, method, tls, token, opts.body);
  };

  const cluster: ConsulCluster = {
    dir,
    servers,
    masterToken,
    caFile,
    clientCertFile,
    clientKeyFile,
    api,
    leader: async () => {
      const r = await api("GET", "/v1/status/leader");
      const ip = (JSON.parse(r.body) as string).split(":")[0];
      const s = servers.find((x) => x.ip === ip);
      if (s === undefined) throw new Error(`no leader yet (${r.body})`);
      return s;
    },
    createToken: async (name, rules) => {
      const p = await api("PUT", "/v1/acl/policy", { body: { Name: name, Rules: rules } });
      if (p.status !== 200) throw new Error(`create policy ${name}: HTTP ${p.status} ${p.body}`);
      const t = await api("PUT", "/v1/acl/token", { body: { Description: name, Policies: [{ Name: name }] } });
      if (t.status !== 200) throw new Error(`create token ${name}: HTTP ${t.status} ${t.body}`);
      return (JSON.parse(t.body) as { SecretID: string }).SecretID;
    },
  };

  // Ready: a leader, all three servers in raft, ACL bootstrapped (the master token can write) and out of legacy mode.
  await waitFor(
    async () => {
      for (const s of servers) if (!s.alive()) throw new Error(`consul ${s.name} exited, see ${s.logFile}`);
      await cluster.leader();
      const peers = JSON.parse((await api("GET", "/v1/status/peers")).body) as string[];
      if (peers.length !== 3) return undefined;
      const w = await api("PUT", "/v1/kv/dockbind-ready", { body: "1" });
      // Right after bootstrap the ACL system is briefly "in legacy mode" (policy endpoints answer 500).
      const policies = await api("GET", "/v1/acl/policies");
      return (w.status === 200 && policies.status === 200) || undefined;
    },
    { timeoutMs: 45_000, intervalMs: 250, what: `3-server consul cluster ready (logs in ${dir})` },
  );
  return cluster;
}

function httpsRequest(url: string, method: string, tls: { ca: string; cert: string; key: string }, token: string, body: unknown): Promise<ApiResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    const req = request(
      url,
      { method, agent: false, ...tls, headers: { connection: "close", ...(token !== "" ? { "x-consul-token": token } : {}) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
        });
      },
    );
    req.setTimeout(5_000, () => req.destroy(new Error(`${method} ${url}: no answer within 5 s`)));
    req.on("error", reject);
    req.end(payload);
  });
}
