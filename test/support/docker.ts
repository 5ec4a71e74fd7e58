/**
 * Backend containers for integration tests, through the docker CLI.
 *
 * Every container and network created here carries the label
 * `dockbind-test=1` (and `dockbind-test.pid=<test process pid>`), which is
 * what the removal helpers and test/bed/teardown.sh select on. Ports are only
 * ever published on 127.0.0.1.
 */
import { run } from "./exec.js";
import { httpGet } from "./http.js";
import { ensureBackendImage } from "./image.js";
import { waitFor } from "./wait.js";

export const TEST_LABEL = "dockbind-test";
export const PID_LABEL = "dockbind-test.pid";

export interface BackendOptions {
  readonly name: string;
  readonly labels?: Readonly<Record<string, string>>;
  /** NAME (body of GET /), PORT (listen port, default 80), FAIL_HEALTH=1 (GET /health/ -> 404). */
  readonly env?: Readonly<Record<string, string>>;
  /** 'published' (default): -p 127.0.0.1:<hostPort or random>:<PORT>; 'none': only exposed. */
  readonly publish?: "published" | "none";
  readonly hostPort?: number;
  /** Docker network to attach to (`--network`). */
  readonly network?: string;
  /** Another engine (unix://… of test/support/extraDockerd.ts); default: the shared dockerd. */
  readonly dockerHost?: string;
  /** More `docker run` options, before the image (e.g. `--health-cmd`). */
  readonly runArgs?: readonly string[];
}

export interface Backend {
  readonly id: string;
  /** Host port on 127.0.0.1, when published. */
  readonly hostPort?: number;
}

/**
 * `docker run -d` of the backend image. When published, resolves only once
 * GET / on 127.0.0.1:hostPort answers 200 (so tests need not poll for it).
 */
export async function runBackend(opts: BackendOptions): Promise<Backend> {
  const image = await ensureBackendImage();
  const port = Number(opts.env?.PORT ?? "80");
  const args = ["run", "-d", "--name", opts.name, "--label", `${TEST_LABEL}=1`, "--label", `${PID_LABEL}=${process.pid}`];
  for (const [k, v] of Object.entries(opts.labels ?? {})) args.push("--label", `${k}=${v}`);
  for (const [k, v] of Object.entries(opts.env ?? {})) args.push("--env", `${k}=${v}`);
  const published = (opts.publish ?? "published") === "published";
  if (published) args.push("--publish", `127.0.0.1:${opts.hostPort ?? 0}:${port}`);
  if (opts.network !== undefined) args.push("--network", opts.network);
  args.push(...(opts.runArgs ?? []), image);
  const env = opts.dockerHost !== undefined ? { env: { DOCKER_HOST: opts.dockerHost } } : {};
  const id = (await run("docker", args, { check: true, ...env })).stdout.trim();
  if (!published) return { id };
  const out = (await run("docker", ["port", id, `${port}/tcp`], { check: true, ...env })).stdout;
  const m = /^127\.0\.0\.1:(\d+)$/m.exec(out);
  if (m?.[1] === undefined) throw new Error(`docker port ${id}: no 127.0.0.1 binding in ${JSON.stringify(out)}`);
  const hostPort = Number(m[1]);
  await waitFor(async () => (await httpGet(`http://127.0.0.1:${hostPort}/`, 1_000)).status === 200 || undefined, {
    timeoutMs: 10_000,
    what: `backend ${opts.name} on 127.0.0.1:${hostPort}`,
  });
  return { id, hostPort };
}

/** `docker stop` (the backend exits on SIGTERM at once). */
export async function stopContainer(id: string): Promise<void> {
  await run("docker", ["stop", id], { check: true });
}

/** `docker rm -f`; a container that is already gone is not an error. */
export async function removeContainer(id: string): Promise<void> {
  const r = await run("docker", ["rm", "-f", id]);
  if (r.code !== 0 && !/No such container/i.test(r.stderr)) throw new Error(`docker rm -f ${id}: ${r.stderr.trim()}`);
}

/** IP of a container on `network` (default: the first network it is on). */
export async function containerIp(id: string, network?: string): Promise<string> {
  const fmt =
    network === undefined
      ? "{{range .NetworkSettings.Networks}}{{.IPAddress}}\n{{end}}"
      : `{{with index .NetworkSettings.Networks "${network}"}}{{.IPAddress}}{{end}}`;
  const ip = (await run("docker", ["inspect", "-f", fmt, id], { check: true })).stdout.trim().split("\n")[0] ?? "";
  if (ip === "") throw new Error(`container ${id} has no IP${network === undefined ? "" : ` on ${network}`}`);
  return ip;
}

/** `docker network create` a bridge network labelled for cleanup. */
export async function createTestNetwork(name: string): Promise<void> {
  await run("docker", ["network", "create", "--label", `${TEST_LABEL}=1`, "--label", `${PID_LABEL}=${process.pid}`, name], { check: true });
}

export interface RemoveScope {
  /** Only what this test process created (default: everything labelled dockbind-test=1). */
  readonly onlyThisProcess?: boolean;
}

/** `docker rm -f` every test container, then removes test networks. */
export async function removeTestContainers(scope: RemoveScope = {}): Promise<void> {
  const filter = scope.onlyThisProcess === true ? `label=${PID_LABEL}=${process.pid}` : `label=${TEST_LABEL}=1`;
  const ids = (await run("docker", ["ps", "-aq", "--filter", filter], { check: true })).stdout.split("\n").filter(Boolean);
  if (ids.length > 0) await run("docker", ["rm", "-f", ...ids], { check: true });
  const nets = (await run("docker", ["network", "ls", "-q", "--filter", filter], { check: true })).stdout.split("\n").filter(Boolean);
  if (nets.length > 0) await run("docker", ["network", "rm", ...nets], { check: true });
}
