/**
 * `cleanupAll()` for `after()` hooks: stops every consul agent and nginx
 * master this test process started and removes the containers/networks it
 * created. The shared dockerd (and the backend image) are left in place.
 * Never throws on a partial failure before trying everything; rethrows the first error.
 */
import { removeTestContainers } from "./docker.js";
import { dockerReady } from "./dockerd.js";
import { liveProcesses } from "./procs.js";

export async function cleanupAll(): Promise<void> {
  const results = await Promise.allSettled([
    ...liveProcesses().map((p) => p.stop("SIGTERM", 10_000)),
    (async () => {
      if (await dockerReady()) await removeTestContainers({ onlyThisProcess: true });
    })(),
  ]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
}
