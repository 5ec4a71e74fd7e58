/**
 * A real Prometheus server (Debian `prometheus`, test/bed/install.sh) for
 * integration tests: loopback only, its own port, config and TSDB directory
 * under the bed root, scraping the given targets every second. Tracked by
 * procs.ts (killed when the test process exits).
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { httpGet } from "./http.js";
import { ensureBedRoot, startManaged, type ManagedProcess } from "./procs.js";
import { freePort, waitFor } from "./wait.js";

export interface PromSample {
  readonly metric: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface PrometheusHandle {
  readonly url: string;
  readonly proc: ManagedProcess;
  readonly dir: string;
  /** Instant query through /api/v1/query; rejects unless Prometheus answers status "success" with a vector. */
  query(expr: string): Promise<PromSample[]>;
  /** Polls `expr` until `pred` holds for its samples; resolves with them. */
  waitForQuery(expr: string, pred: (samples: PromSample[]) => boolean, what: string, timeoutMs?: number): Promise<PromSample[]>;
  stop(): Promise<void>;
}

interface QueryAnswer {
  readonly status: string;
  readonly error?: string;
  readonly data?: { readonly resultType: string; readonly result: { readonly metric: Record<string, string>; readonly value: [number, string] }[] };
}

/** Starts Prometheus scraping `targets` (`host:port`) as job `dockbind`; resolves once /-/ready answers 200. */
export async function startPrometheus(targets: readonly string[]): Promise<PrometheusHandle> {
  const dir = mkdtempSync(join(ensureBedRoot(), "prometheus-"));
  const data = join(dir, "data");
  mkdirSync(data);
  const config = join(dir, "prometheus.yml");
  writeFileSync(
    config,
    `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: dockbind
    static_configs:
      - targets: [${targets.map((t) => JSON.stringify(t)).join(", ")}]
`,
  );
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const proc = startManaged(
    "prometheus",
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${data}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--storage.tsdb.retention.time=1h",
      "--log.level=warn",
    ],
    join(dir, "prometheus.log"),
  );
  const died = new AbortController();
  void proc.exited.then(() => {
    died.abort(new Error(`prometheus exited early, see ${join(dir, "prometheus.log")}`));
  });
  try {
    await waitFor(async () => (await httpGet(`${url}/-/ready`, 1000)).status === 200 || undefined, {
      timeoutMs: 30_000,
      what: `prometheus ready on ${url}`,
      signal: died.signal,
    });
  } catch (err) {
    await proc.stop("SIGKILL");
    throw err;
  }
  const query = async (expr: string): Promise<PromSample[]> => {
    const res = await httpGet(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = JSON.parse(res.body) as QueryAnswer;
    if (body.status !== "success" || body.data?.resultType !== "vector") throw new Error(`query ${expr}: ${body.error ?? res.body.slice(0, 300)}`);
    return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  };
  return {
    url,
    proc,
    dir,
    query,
    waitForQuery: (expr, pred, what, timeoutMs = 30_000) =>
      waitFor(
        async () => {
          const samples = await query(expr);
          return pred(samples) ? samples : undefined;
        },
        { timeoutMs, intervalMs: 500, what: `${what} (${expr})` },
      ),
    stop: async () => {
      await proc.stop("SIGTERM", 10_000);
    },
  };
}
