/**
 * The controller's HTTP endpoint (node:http), read-only, on --metrics-addr:
 *   GET /metrics     Prometheus text format (the one registry)
 *   GET /healthz     200 while no worker loop is wedged, else 503 (probes.ts)
 *   GET /readyz      200 when sources are synced and Consul has a leader, else 503
 *   GET /api/status  the status document (statusModel.ts) plus both probe reports, JSON
 *   GET /            the status page (statusPage.ts)
 * Only GET and HEAD are accepted (405 otherwise); unknown paths are 404.
 * Probe bodies list each check (`[+]name ok` / `[-]name reason`), like the
 * Kubernetes API server's ?verbose output.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ListenAddr } from "../../config/config.js";
import { Probes, type ProbeReport } from "../../observability/probes.js";
import { buildStatus } from "../../observability/statusModel.js";
import type { Telemetry } from "../../observability/telemetry.js";
import { errorMessage, type Logger } from "../../runtime/logger.js";
import { renderStatusPage } from "./statusPage.js";

export interface HttpServerOptions {
  readonly listen: ListenAddr;
  readonly telemetry: Telemetry;
  readonly logger: Logger;
  /** See LoopMonitor: a reconcile or stalled queue older than this fails /healthz. */
  readonly wedgeAfterMs: number;
}

export interface HttpServerHandle {
  /** `host:port` actually bound (port 0 resolved). */
  readonly address: string;
  close(): Promise<void>;
}

const SECURITY_HEADERS = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
} as const;
const PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

function send(res: ServerResponse, status: number, contentType: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, "content-type": contentType, "content-length": Buffer.byteLength(body), ...extra });
  res.end(res.req.method === "HEAD" ? undefined : body);
}

function probeText(r: ProbeReport): string {
  const lines = r.checks.map((c) => `[${c.ok ? "+" : "-"}]${c.name} ${c.ok ? "ok" : `failed: ${c.message}`}`);
  return `${lines.join("\n")}\n${r.ok ? "ok" : "failed"}\n`;
}

export function startHttpServer(opts: HttpServerOptions): Promise<HttpServerHandle> {
  const { telemetry, logger } = opts;
  const probes = new Probes(telemetry, { wedgeAfterMs: opts.wedgeAfterMs });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      send(res, 405, "text/plain; charset=utf-8", "method not allowed: this endpoint is read-only\n", { allow: "GET, HEAD" });
      return;
    }
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    switch (path) {
      case "/metrics": {
        const { contentType, body } = await telemetry.metrics.exposition();
        send(res, 200, contentType, body);
        return;
      }
      case "/healthz": {
        const r = probes.live();
        send(res, r.ok ? 200 : 503, "text/plain; charset=utf-8", probeText(r));
        return;
      }
      case "/readyz": {
        const r = await probes.ready();
        send(res, r.ok ? 200 : 503, "text/plain; charset=utf-8", probeText(r));
        return;
      }
      case "/api/status": {
        const doc = { ...buildStatus(telemetry), probes: { live: probes.live(), ready: await probes.ready() } };
        send(res, 200, "application/json; charset=utf-8", `${JSON.stringify(doc, null, 2)}\n`);
        return;
      }
      case "/":
      case "/index.html": {
        const page = renderStatusPage({ status: buildStatus(telemetry), live: probes.live(), ready: await probes.ready() });
        send(res, 200, "text/html; charset=utf-8", page, { "content-security-policy": PAGE_CSP });
        return;
      }
      default:
        send(res, 404, "text/plain; charset=utf-8", "not found: try /, /api/status, /metrics, /healthz or /readyz\n");
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      logger.warn("http request failed", { action: "http", path: req.url, error: errorMessage(err) });
      if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", "internal error\n");
      else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 10_000;
  server.requestTimeout = 15_000;

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host: opts.listen.host, port: opts.listen.port }, () => {
      server.off("error", reject);
      const a = server.address() as AddressInfo;
      const address = a.family === "IPv6" ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
      logger.info("http server listening", { action: "listen", address, endpoints: "/ /api/status /metrics /healthz /readyz" });
      resolve({
        address,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => {
              done();
            });
            server.closeAllConnections();
          }),
      });
    });
  });
}
