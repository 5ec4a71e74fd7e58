/**
 * Docker API access for the fault suites, without the docker CLI (one
 * process per call is too slow to poll or to start 200 containers):
 * - dockerApi(): one HTTP request to the Engine API over a unix socket or TCP;
 * - startReadOnlyDockerProxy(): an nginx in front of the Docker socket that
 *   allows only GET/HEAD (which covers the /events stream) and answers 403 to
 *   everything else: the read-only Docker access dockbind is documented to
 *   work with (README "Security").
 */
import { request } from "node:http";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ensureBedRoot, startManaged, type ManagedProcess } from "./procs.js";
import { freePort, waitFor } from "./wait.js";

export type DockerEndpoint = { readonly socketPath: string } | { readonly host: string; readonly port: number };

export const DOCKER_SOCKET: DockerEndpoint = { socketPath: "/var/run/docker.sock" };

export interface DockerResponse {
  readonly status: number;
  readonly body: string;
}

/** One Engine API call; `body` is sent as JSON. Rejects only on transport errors. */
export function dockerApi(endpoint: DockerEndpoint, method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<DockerResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        ...endpoint,
        method,
        path,
        agent: false,
        headers: {
          connection: "close",
          ...(payload !== undefined ? { "content-type": "application/json", "content-length": Buffer.byteLength(payload) } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") });
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(payload);
  });
}

export interface ApiContainerOptions {
  readonly name: string;
  readonly image: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly env?: Readonly<Record<string, string>>;
  /** Publish container port 80 on 127.0.0.1 (random host port). Default true. */
  readonly publish?: boolean;
  /** The host port to publish on instead of the engine's pick (a private engine's pick may be one the shared engine holds). */
  readonly hostPort?: number;
}

/** create + start through the API (labels must include the test cleanup labels). Returns the id. */
export async function apiRunContainer(o: ApiContainerOptions, endpoint: DockerEndpoint = DOCKER_SOCKET): Promise<string> {
  const publish = o.publish ?? true;
  const created = await dockerApi(endpoint, "POST", `/containers/create?name=${encodeURIComponent(o.name)}`, {
    Image: o.image,
    Labels: o.labels,
    Env: Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`),
    ExposedPorts: { "80/tcp": {} },
    HostConfig: publish ? { PortBindings: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: o.hostPort !== undefined ? String(o.hostPort) : "" }] } } : {},
  });
  if (created.status !== 201) throw new Error(`create ${o.name}: HTTP ${created.status} ${created.body}`);
  const id = (JSON.parse(created.body) as { Id: string }).Id;
  const started = await dockerApi(endpoint, "POST", `/containers/${id}/start`);
  if (started.status !== 204 && started.status !== 304) throw new Error(`start ${o.name}: HTTP ${started.status} ${started.body}`);
  return id;
}

/** Force-removes a container through the API; a missing one is fine. */
export async function apiRemoveContainer(id: string, endpoint: DockerEndpoint = DOCKER_SOCKET): Promise<void> {
  const r = await dockerApi(endpoint, "DELETE", `/containers/${id}?force=true`);
  if (r.status !== 204 && r.status !== 404) throw new Error(`remove ${id}: HTTP ${r.status} ${r.body}`);
}

/** Running containers matching a label filter (`k=v`) -> host port published for container port 80 (0 if none). */
export async function apiRunningPorts(label: string, endpoint: DockerEndpoint = DOCKER_SOCKET): Promise<Map<string, number>> {
  const filters = encodeURIComponent(JSON.stringify({ label: [label], status: ["running"] }));
  const r = await dockerApi(endpoint, "GET", `/containers/json?filters=${filters}`);
  if (r.status !== 200) throw new Error(`list: HTTP ${r.status} ${r.body}`);
  const list = JSON.parse(r.body) as { Id: string; Ports: { PrivatePort: number; PublicPort?: number }[] }[];
  return new Map(list.map((c) => [c.Id, c.Ports.find((p) => p.PrivatePort === 80 && p.PublicPort !== undefined)?.PublicPort ?? 0]));
}

export interface ReadOnlyDockerProxy {
  readonly endpoint: DockerEndpoint;
  /** `tcp://127.0.0.1:PORT`, for --docker-host. */
  readonly dockerHost: string;
  /** nginx access log: `METHOD URI STATUS` per request. */
  readonly accessLog: string;
  readonly proc: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * nginx on 127.0.0.1:<free port> proxying to the Docker socket, GET/HEAD only.
 * Workers run as root because the socket is root:docker 0660 (test bed only;
 * in production run them as a user in the `docker` group).
 */
export async function startReadOnlyDockerProxy(socket = "/var/run/docker.sock"): Promise<ReadOnlyDockerProxy> {
  const prefix = mkdtempSync(join(ensureBedRoot(), "docker-ro-"));
  const temp = join(prefix, "temp");
  mkdirSync(temp);
  const port = await freePort();
  const accessLog = join(prefix, "access.log");
  const conf = join(prefix, "nginx.conf");
  writeFileSync(
    conf,
    `# read-only Docker API proxy (test/support/dockerProxy.ts)
daemon off;
user root;
worker_processes 1;
pid ${join(prefix, "nginx.pid")};
error_log ${join(prefix, "error.log")} notice;
events { worker_connections 256; }
http {
  log_format ro '$request_method $request_uri $status';
  access_log ${accessLog} ro;
  client_body_temp_path ${temp}/client_body;
  proxy_temp_path ${temp}/proxy;
  fastcgi_temp_path ${temp}/fastcgi;
  uwsgi_temp_path ${temp}/uwsgi;
  scgi_temp_path ${temp}/scgi;
  server {
    listen 127.0.0.1:${port};
    location / {
      limit_except GET { deny all; }        # GET and HEAD only: everything that changes state is 403
      proxy_pass http://unix:${socket}:;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;                  # /events is a never-ending chunked stream
      proxy_read_timeout 24h;
    }
  }
}
`,
  );
  const proc = startManaged("nginx", ["-p", prefix, "-c", conf], join(prefix, "stderr.log"));
  const endpoint = { host: "127.0.0.1", port };
  await waitFor(async () => (await dockerApi(endpoint, "GET", "/_ping", undefined, 1_000)).status === 200 || undefined, {
    timeoutMs: 10_000,
    what: `read-only docker proxy on 127.0.0.1:${port}`,
  });
  return {
    endpoint,
    dockerHost: `tcp://127.0.0.1:${port}`,
    accessLog,
    proc,
    stop: async () => {
      await proc.stop("SIGTERM", 5_000);
    },
  };
}
