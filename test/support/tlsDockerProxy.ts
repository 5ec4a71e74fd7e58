/**
 * A Docker "tcp+TLS" endpoint for tests: a TLS server on 127.0.0.1 that
 * requires a client certificate signed by a test CA and pipes each
 * connection to the real Docker socket, like `dockerd --tlsverify -H tcp://…`.
 * Certificates are made with openssl in the layout DOCKER_CERT_PATH expects.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { createConnection, type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import { createServer, type Server } from "node:tls";
import { run } from "./exec.js";
import { ensureBedRoot } from "./procs.js";
import { splice } from "./splice.js";

export interface TlsDockerEndpoint {
  /** tcp://127.0.0.1:PORT */
  readonly host: string;
  /** Directory with the CLIENT's ca.pem, cert.pem, key.pem (DOCKER_CERT_PATH). */
  readonly certPath: string;
  /** Connections whose client certificate verified / was refused. */
  readonly stats: { authorized: number; refused: number };
  /** Network cut: stops listening and destroys open connections (the port stays reserved for resume()). */
  pause(): Promise<void>;
  /** Listens again on the same port. */
  resume(): Promise<void>;
  close(): Promise<void>;
}

async function openssl(dir: string, args: readonly string[]): Promise<void> {
  await run("openssl", args, { cwd: dir, check: true });
}

/** CA, a server cert for IP 127.0.0.1 and a client cert, all in `dir`. */
async function makeCerts(dir: string): Promise<void> {
  await openssl(dir, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    "ca-key.pem",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=dockbind-test-ca",
  ]);
  for (const [name, subject, ext] of [
    ["server", "/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"],
    ["client", "/CN=dockbind-controller", "extendedKeyUsage=clientAuth\n"],
  ] as const) {
    await openssl(dir, ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}-key.pem`, "-out", `${name}.csr`, "-subj", subject]);
    await run("bash", ["-c", `printf '${ext}' > ${name}.ext`], { cwd: dir, check: true });
    await openssl(dir, [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca-key.pem",
      "-CAcreateserial",
      "-out",
      `${name}.pem`,
      "-days",
      "2",
      "-extfile",
      `${name}.ext`,
    ]);
  }
  // DOCKER_CERT_PATH layout for the client.
  await run("bash", ["-c", "cp client.pem cert.pem && cp client-key.pem key.pem"], { cwd: dir, check: true });
}

export async function startTlsDockerEndpoint(socket = "/var/run/docker.sock"): Promise<TlsDockerEndpoint> {
  const dir = mkdtempSync(join(ensureBedRoot(), "docker-tls-"));
  await makeCerts(dir);
  const stats = { authorized: 0, refused: 0 };
  const open = new Set<Socket>();
  const server: Server = createServer(
    {
      key: readFileSync(join(dir, "server-key.pem")),
      cert: readFileSync(join(dir, "server.pem")),
      ca: readFileSync(join(dir, "ca.pem")),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (client) => {
      stats.authorized++;
      splice(client, createConnection(socket), open);
    },
  );
  server.on("tlsClientError", () => {
    stats.refused++;
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  // Destroys open (keep-alive) connections first: server.close() alone waits for them forever.
  const close = (): Promise<void> =>
    new Promise<void>((resolve) => {
      if (!server.listening) {
        resolve();
        return;
      }
      server.close(() => {
        resolve();
      });
      for (const s of open) s.destroy();
      open.clear();
    });
  return {
    host: `tcp://127.0.0.1:${port}`,
    certPath: dir,
    stats,
    pause: close,
    resume: () => new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve)),
    close,
  };
}
