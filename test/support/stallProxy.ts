/**
 * A loopback proxy (TCP port or Unix socket) that forwards byte for byte
 * until told to stall some of its connections: a stalled connection forwards
 * nothing more in either direction, and both of its sockets stay open (the
 * server's close is not passed on either), so the client sees a live
 * connection that has gone silent: the silent watch stall. Connections made
 * after a stall are forwarded normally, like a middlebox that lost the state
 * of the flows it had.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { rmSync } from "node:fs";

export type StallTarget = { readonly port: number; readonly host?: string } | { readonly path: string };

/** What a test may know of a connection to decide whether to stall it. */
export interface ConnectionView {
  /** The first bytes the client sent (plaintext protocols: the request line), latin1. */
  readonly head: string;
  /** Milliseconds since the client last sent anything. */
  readonly clientQuietMs: number;
  /**
   * The server sent data while the client had been quiet for UNSOLICITED_MS:
   * a streaming response (a watch), not the answer to a request (a pooled
   * keep-alive socket, a Lease renewal). Works through TLS.
   */
  readonly streaming: boolean;
  readonly stalled: boolean;
}

export interface StallProxy {
  /** `127.0.0.1:PORT`, or the socket path. */
  readonly address: string;
  /** Stalls the open, not yet stalled connections `match` selects; returns how many. */
  stall(match: (c: ConnectionView) => boolean): number;
  /** Open connections now. */
  connections(): readonly ConnectionView[];
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

interface Conn {
  readonly client: Socket;
  readonly upstream: Socket;
  head: string;
  lastClientData: number;
  streaming: boolean;
  stalled: boolean;
}

const HEAD_BYTES = 512;
const UNSOLICITED_MS = 1_000;

function relay(client: Socket, target: StallTarget, open: Set<Conn>): void {
  const upstream = "path" in target ? createConnection(target.path) : createConnection(target.port, target.host ?? "127.0.0.1");
  const c: Conn = { client, upstream, head: "", lastClientData: Date.now(), streaming: false, stalled: false };
  open.add(c);
  const drop = (): void => {
    open.delete(c);
    client.destroy();
    upstream.destroy();
  };
  client.on("data", (d: Buffer) => {
    if (c.stalled) return;
    c.lastClientData = Date.now();
    if (c.head.length < HEAD_BYTES) c.head += d.toString("latin1", 0, Math.min(d.length, HEAD_BYTES - c.head.length));
    upstream.write(d);
  });
  upstream.on("data", (d: Buffer) => {
    if (c.stalled) return;
    if (Date.now() - c.lastClientData >= UNSOLICITED_MS) c.streaming = true;
    client.write(d);
  });
  // The client going away ends both; the server going away ends both unless stalled (then the client must not learn).
  client.on("error", drop).on("close", drop);
  upstream.on("error", () => {
    if (!c.stalled) drop();
  });
  upstream.on("close", () => {
    if (!c.stalled) drop();
  });
}

export async function startStallProxy(target: StallTarget, listen: { readonly path: string } | "tcp" = "tcp"): Promise<StallProxy> {
  const open = new Set<Conn>();
  const server: Server = createServer((client) => {
    relay(client, target, open);
  });
  if (listen !== "tcp") rmSync(listen.path, { force: true });
  await new Promise<void>((resolve) => {
    if (listen === "tcp") server.listen(0, "127.0.0.1", resolve);
    else server.listen(listen.path, resolve);
  });
  const addr = server.address();
  const address = listen !== "tcp" ? listen.path : typeof addr === "object" && addr !== null ? `127.0.0.1:${addr.port}` : "";
  const view = (c: Conn): ConnectionView => ({ head: c.head, clientQuietMs: Date.now() - c.lastClientData, streaming: c.streaming, stalled: c.stalled });
  return {
    address,
    stall(match) {
      let n = 0;
      for (const c of open) {
        if (c.stalled || !match(view(c))) continue;
        c.stalled = true;
        n++;
      }
      return n;
    },
    connections: () => [...open].map(view),
    async close() {
      for (const c of open) {
        c.client.destroy();
        c.upstream.destroy();
      }
      open.clear();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
      if (listen !== "tcp") rmSync(listen.path, { force: true });
    },
  };
}
