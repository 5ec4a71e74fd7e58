/**
 * A counting HTTP proxy on loopback in front of a REAL Consul agent. The
 * controller is pointed at the proxy, so tests can count exactly which
 * requests it sends (writes = PUT/POST/DELETE) while Consul answers them.
 * Long-poll (blocking query) requests stream through untouched.
 */
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ProxiedRequest {
  readonly method: string;
  readonly path: string;
  /** First 4 KiB of the request body of a write (PUT/POST/DELETE); "" for reads. Filled once the body was sent. */
  body: string;
}

export interface ConsulProxy {
  /** `127.0.0.1:PORT`, to pass as --consul-addr. */
  readonly addr: string;
  readonly requests: readonly ProxiedRequest[];
  /** Requests that change state (PUT, POST, DELETE). */
  writes(): readonly ProxiedRequest[];
  close(): Promise<void>;
}

export async function startConsulProxy(target: string): Promise<ConsulProxy> {
  const [host, port] = target.split(":");
  const requests: ProxiedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const entry: ProxiedRequest = { method: req.method ?? "GET", path: req.url ?? "/", body: "" };
    requests.push(entry);
    if (entry.method !== "GET" && entry.method !== "HEAD") {
      req.on("data", (chunk: Buffer) => {
        if (entry.body.length < 4096) entry.body += chunk.toString("utf8").slice(0, 4096 - entry.body.length);
      });
    }
    const upstream = request({ host, port: Number(port), method: req.method, path: req.url, headers: req.headers }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on("error", () => {
      // Consul down: behave like a refused connection would for the client.
      res.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port: proxyPort } = server.address() as AddressInfo;
  return {
    addr: `127.0.0.1:${proxyPort}`,
    requests,
    writes: () => requests.filter((r) => r.method !== "GET" && r.method !== "HEAD"),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
