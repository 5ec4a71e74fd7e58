/**
 * A unix-socket proxy in front of the real Docker socket that a test can cut
 * and restore, to make Docker "unreachable" for one controller without
 * disturbing the shared dockerd other tests use.
 */
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { rmSync } from "node:fs";
import { splice } from "./splice.js";

export interface SocketProxy {
  readonly path: string;
  /** Closes the listener and every open connection (clients see the daemon vanish). */
  cut(): Promise<void>;
  /** Listens again on the same path. */
  restore(): Promise<void>;
}

export async function startSocketProxy(path: string, target = "/var/run/docker.sock"): Promise<SocketProxy> {
  let server: Server | undefined;
  const open = new Set<Socket>();
  const listen = async (): Promise<void> => {
    rmSync(path, { force: true });
    const s = createServer((client) => {
      splice(client, createConnection(target), open);
    });
    await new Promise<void>((resolve) => s.listen(path, resolve));
    server = s;
  };
  await listen();
  return {
    path,
    cut: async () => {
      const s = server;
      server = undefined;
      for (const sock of open) sock.destroy();
      open.clear();
      if (s !== undefined)
        await new Promise<void>((resolve) =>
          s.close(() => {
            resolve();
          }),
        );
      rmSync(path, { force: true });
    },
    restore: listen,
  };
}
