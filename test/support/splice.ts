/**
 * Pipes two sockets both ways and tracks them in `open` until either side
 * closes, so a test proxy can cut every live connection at once. Shared by
 * the Unix-socket Docker proxy and the TLS Docker endpoint.
 */
import type { Socket } from "node:net";

export function splice(client: Socket, upstream: Socket, open: Set<Socket>): void {
  open.add(client);
  open.add(upstream);
  client.pipe(upstream).pipe(client);
  const drop = (): void => {
    client.destroy();
    upstream.destroy();
    open.delete(client);
    open.delete(upstream);
  };
  client.on("error", drop).on("close", drop);
  upstream.on("error", drop).on("close", drop);
}
