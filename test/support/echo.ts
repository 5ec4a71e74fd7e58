/**
 * Echo backends for the TCP/UDP stream tests. Each answers one line per
 * connection (TCP) or datagram (UDP) with `<NAME> <what it received>`, so a
 * client sees which backend served it.
 *   - TCP: the backend image (image.ts) running busybox `nc -ll -p 9000 -e`.
 *   - UDP: busybox-static's nc has no UDP mode, so a 30-line static C echo
 *     server (UDP_ECHO_C) is compiled with the test bed's `cc -static` and
 *     imported as its own image (`docker import`, no registry).
 * Containers carry the test labels (docker.ts), so teardown removes them.
 */
import { createHash } from "node:crypto";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { ensureDockerd } from "./dockerd.js";
import { PID_LABEL, TEST_LABEL } from "./docker.js";
import { run } from "./exec.js";
import { ensureBackendImage } from "./image.js";
import { ensureBedRoot } from "./procs.js";
import { waitFor } from "./wait.js";

/** Container port both echo servers listen on. */
export const ECHO_PORT = 9000;

const UDP_ECHO_C = `#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
/* PID 1 gets no default SIGTERM action: exit explicitly so docker stop is immediate. */
static void stop(int sig) { (void)sig; _exit(0); }
int main(int argc, char **argv) {
  if (argc != 3) { fprintf(stderr, "usage: udp-echo PORT NAME\\n"); return 2; }
  signal(SIGTERM, stop);
  signal(SIGINT, stop);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(argv[1]));
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("udp-echo: bind"); return 1; }
  char in[1024], out[1400];
  for (;;) {
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    ssize_t n = recvfrom(fd, in, sizeof in - 1, 0, (struct sockaddr *)&peer, &len);
    if (n < 0) continue;
    in[n] = 0;
    int m = snprintf(out, sizeof out, "%s %s", argv[2], in);
    if (m > 0) sendto(fd, out, (size_t)m, 0, (struct sockaddr *)&peer, len);
  }
}
`;

const UDP_IMAGE = `local/dockbind-udp-echo:${createHash("sha256").update(UDP_ECHO_C).digest("hex").slice(0, 12)}`;

let udpImage: Promise<string> | undefined;

/** Builds the UDP echo image once (tag = hash of the source). */
export function ensureUdpEchoImage(): Promise<string> {
  udpImage ??= buildUdpImage().catch((err: unknown) => {
    udpImage = undefined;
    throw err;
  });
  return udpImage;
}

async function buildUdpImage(): Promise<string> {
  await ensureDockerd();
  if ((await run("docker", ["image", "inspect", UDP_IMAGE])).code === 0) return UDP_IMAGE;
  const root = mkdtempSync(join(ensureBedRoot(), "udp-echo-"));
  try {
    writeFileSync(join(root, "udp-echo.c"), UDP_ECHO_C);
    await run("cc", ["-static", "-O2", "-o", join(root, "udp-echo"), join(root, "udp-echo.c")], { check: true });
    await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", root, "-cf", join(root, "rootfs.tar"), "udp-echo"], { check: true });
    await run("docker", ["import", "-c", `CMD ["/udp-echo","${ECHO_PORT}","udp-echo"]`, join(root, "rootfs.tar"), UDP_IMAGE], { check: true });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return UDP_IMAGE;
}

export interface EchoBackend {
  readonly id: string;
  readonly name: string;
  /** The published port on 127.0.0.1. */
  readonly hostPort: number;
}

async function runEcho(
  name: string,
  labels: Readonly<Record<string, string>>,
  protocol: "tcp" | "udp",
  image: string,
  command: readonly string[],
): Promise<EchoBackend> {
  const args = ["run", "-d", "--name", `${name}-${process.pid}`, "--label", `${TEST_LABEL}=1`, "--label", `${PID_LABEL}=${process.pid}`];
  for (const [k, v] of Object.entries(labels)) args.push("--label", `${k}=${v}`);
  args.push("--env", `NAME=${name}`, "--publish", `127.0.0.1:0:${ECHO_PORT}/${protocol}`, image, ...command);
  const id = (await run("docker", args, { check: true })).stdout.trim();
  const out = (await run("docker", ["port", id, `${ECHO_PORT}/${protocol}`], { check: true })).stdout;
  const m = /^127\.0\.0\.1:(\d+)$/m.exec(out);
  if (m?.[1] === undefined) throw new Error(`docker port ${id}: no 127.0.0.1 binding in ${JSON.stringify(out)}`);
  const hostPort = Number(m[1]);
  const ask = protocol === "tcp" ? tcpEcho : udpEcho;
  await waitFor(async () => ((await ask(hostPort, "ping", 500).catch(() => "")) === `${name} ping` ? true : undefined), {
    timeoutMs: 10_000,
    what: `${protocol} echo ${name} on 127.0.0.1:${hostPort}`,
  });
  return { id, name, hostPort };
}

/** A TCP echo container (busybox nc; the shell traps SIGTERM so docker stop is immediate). */
export async function runTcpEcho(name: string, labels: Readonly<Record<string, string>>): Promise<EchoBackend> {
  const script = `trap 'exit 0' TERM INT; nc -ll -p ${ECHO_PORT} -e sh -c 'read l; echo "$NAME $l"' & wait`;
  return runEcho(name, labels, "tcp", await ensureBackendImage(), ["/bin/sh", "-c", script]);
}

/** A UDP echo container. */
export async function runUdpEcho(name: string, labels: Readonly<Record<string, string>>): Promise<EchoBackend> {
  return runEcho(name, labels, "udp", await ensureUdpEchoImage(), ["/udp-echo", String(ECHO_PORT), name]);
}

/** One TCP connection: sends `line`, resolves with the reply's first line (trimmed). */
export function tcpEcho(port: number, line: string, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    let data = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`tcp echo on ${port}: no reply in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(`${line}\n`));
    socket.on("data", (chunk: string) => {
      data += chunk;
      if (data.includes("\n")) socket.end();
    });
    socket.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(data.split("\n")[0]?.trim() ?? "");
    });
  });
}

/** One datagram from a fresh socket (a new source port: a new nginx UDP session); resolves with the reply. */
export function udpEcho(port: number, line: string, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createSocket("udp4");
    const timer = setTimeout(() => {
      socket.close();
      reject(new Error(`udp echo on ${port}: no reply in ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on("message", (msg) => {
      clearTimeout(timer);
      socket.close();
      resolve(msg.toString("utf8").trim());
    });
    socket.on("error", (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    });
    socket.send(line, port, "127.0.0.1");
  });
}
