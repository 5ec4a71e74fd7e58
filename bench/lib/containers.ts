/**
 * Bench containers through the Docker API (dockerode), with bounded
 * concurrency. Every container and network carries `dockbind-test=1` and
 * `dockbind-test.pid=<this pid>` (what test/support/teardown.ts and
 * test/bed/teardown.sh remove). Nothing is published: backends are reached on
 * a bridge network this bench creates.
 */
import Docker from "dockerode";
import { BACKEND_IMAGE } from "../../test/support/image.js";
import { TEST_LABEL } from "../../test/support/docker.js";

export const docker = new Docker({ socketPath: "/var/run/docker.sock" });

const PID_LABEL = "dockbind-test.pid";

export function benchLabels(extra: Readonly<Record<string, string>> = {}): Record<string, string> {
  return { [TEST_LABEL]: "1", [PID_LABEL]: String(process.pid), ...extra };
}

export async function createNetwork(name: string): Promise<void> {
  await docker.createNetwork({ Name: name, Driver: "bridge", Labels: benchLabels() });
}

export interface BackendSpec {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly env: Readonly<Record<string, string>>;
  readonly network: string;
}

/** `docker create` (not started). Resolves with the container id. */
export async function createBackend(s: BackendSpec): Promise<string> {
  const c = await docker.createContainer({
    name: s.name,
    Image: BACKEND_IMAGE,
    Labels: benchLabels(s.labels),
    Env: Object.entries(s.env).map(([k, v]) => `${k}=${v}`),
    HostConfig: { NetworkMode: s.network },
  });
  return c.id;
}

export async function startContainer(id: string): Promise<void> {
  await docker.getContainer(id).start();
}

export async function removeContainer(id: string): Promise<void> {
  try {
    await docker.getContainer(id).remove({ force: true });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}

/** Runs `fn` over `items` with at most `limit` calls in flight; rejects on the first failure after all settle. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let firstErr: unknown;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) {
      try {
        await fn(items[i] as T, i);
      } catch (err) {
        firstErr ??= err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (firstErr instanceof Error) throw firstErr;
  if (firstErr !== undefined) throw new Error(JSON.stringify(firstErr));
}

/** Removes every container and network this process created (label dockbind-test.pid). */
export async function removeBenchContainers(): Promise<void> {
  const filters = { label: [`${PID_LABEL}=${process.pid}`] };
  const cs = await docker.listContainers({ all: true, filters });
  await pool(cs, 8, (c) => removeContainer(c.Id));
  for (const n of await docker.listNetworks({ filters }))
    await docker
      .getNetwork(n.Id)
      .remove()
      .catch(() => undefined);
}
