/**
 * TCP and UDP streams (`loadBalancer.protocol: tcp|udp`) against real dockerd,
 * Consul, an nginx with the stream module (stream.d/ included at top level,
 * outside `http {}`) and a real haproxy (`mode tcp`). Echo backends
 * (support/echo.ts) answer `<name> <line>`, so every connection shows which
 * backend served it. Tests run in order and share one world.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { LbError } from "../../src/actuators/lb/errors.js";
import { NginxDriver } from "../../src/actuators/lb/nginxDriver.js";
import { stopContainer } from "../support/docker.js";
import { ECHO_PORT, runTcpEcho, runUdpEcho, tcpEcho, udpEcho, type EchoBackend } from "../support/echo.js";
import { run } from "../support/exec.js";
import { startHaproxy, type HaproxyHandle } from "../support/haproxy.js";
import { controllerStatus, waitForCondition } from "../support/status.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { startWorld, type World } from "../support/world.js";
import { controllerCommand } from "../support/controller.js";

const REPO = join(import.meta.dirname, "..", "..");
let world: World;
let haproxy: HaproxyHandle;
let streamDir: string;
let tcpPort: number;
let udpPort: number;
let hxPort: number;
const tcpBackends: EchoBackend[] = [];
const udpBackends: EchoBackend[] = [];

function binding(name: string, protocol: "tcp" | "udp", lb: string): string {
  return `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata:
  name: ${name}
spec:
  service:
    name: st-${name}
  backends:
    selector:
      matchLabels: {app: st-${name}}
    port: ${ECHO_PORT}
    protocol: ${protocol}
  healthCheck:
${protocol === "tcp" ? "    type: tcp\n    interval: 1s\n    timeout: 1s\n" : "    type: none\n"}  loadBalancer:
${lb}`;
}

const tcpNginx = (): string => binding("tcp-echo", "tcp", `    protocol: tcp\n    listen: {port: ${tcpPort}}\n    output: tcp-echo.conf\n`);
const udpNginx = (): string => binding("udp-echo", "udp", `    protocol: udp\n    listen: {port: ${udpPort}}\n    output: udp-echo.conf\n`);
const tcpHaproxy = (): string => binding("tcp-echo", "tcp", `    kind: haproxy\n    protocol: tcp\n    listen: {port: ${hxPort}}\n    output: tcp-echo.cfg\n`);

function streamFile(name: string): string | undefined {
  try {
    return readFileSync(join(streamDir, name), "utf8");
  } catch {
    return undefined;
  }
}

async function passing(service: string): Promise<number> {
  return (await world.health(service)).filter((e) => e.status === "passing").length;
}

/** `n` connections (TCP) or sessions from fresh source ports (UDP), in sequence: the backend names that answered. */
async function sample(protocol: "tcp" | "udp", port: number, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const reply = await (protocol === "tcp" ? tcpEcho : udpEcho)(port, `m${i}`).catch((err: unknown) => `FAILED ${String(err)}`);
    out.push(reply.replace(/ m\d+$/, ""));
  }
  return out;
}

/** Waits until `n` samples are answered by exactly the backends `want` (round-robin reaches each). */
async function servedSet(protocol: "tcp" | "udp", port: number, want: readonly EchoBackend[]): Promise<void> {
  const expected = want
    .map((b) => b.name)
    .sort()
    .join(",");
  await waitFor(async () => ([...new Set(await sample(protocol, port, want.length * 2))].sort().join(",") === expected ? true : undefined), {
    timeoutMs: 30_000,
    what: `${protocol} on ${port} served by exactly [${expected}]`,
  });
}

/**
 * Once no reload is in flight, 2×|want| new connections hit each backend exactly twice and nothing else.
 * An old nginx worker lives until its UDP sessions time out (proxy_timeout 10s): settling may take that long.
 */
async function assertRoundRobin(protocol: "tcp" | "udp", port: number, want: readonly EchoBackend[], settled: () => Promise<void>): Promise<void> {
  await settled();
  const got = await sample(protocol, port, want.length * 2);
  for (const b of want) assert.equal(got.filter((x) => x === b.name).length, 2, `${protocol} round-robin share of ${b.name}: ${got.join(", ")}`);
  assert.equal(got.length, want.length * 2);
}

before(async () => {
  [world, haproxy] = await Promise.all([startWorld("streams", { nginx: { stream: true } }), startHaproxy()]);
  assert.ok(world.nginx.streamDir !== undefined);
  streamDir = world.nginx.streamDir;
  [tcpPort, udpPort, hxPort] = [await freePort(), await freePort(), await freePort()];
  world.writeFile("tcp-echo.yaml", tcpNginx());
  world.writeFile("udp-echo.yaml", udpNginx());
  await world.startController([...haproxy.controllerArgs, "--nginx-stream-dir", streamDir]);
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("TCP and UDP streams through nginx stream {} and haproxy mode tcp", () => {
  it("controller validate accepts the bindings with this nginx (stream module present) and refuses udp with haproxy", async () => {
    const validate = (...files: string[]): ReturnType<typeof run> =>
      run(process.execPath, [...controllerCommand(), "validate", ...files.flatMap((f) => ["-f", f])], { timeoutMs: 60_000 });
    const ok = await validate(join(world.bindingsDir, "tcp-echo.yaml"), join(world.bindingsDir, "udp-echo.yaml"));
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const bad = await validate(join(REPO, "test/fixtures/bad-bindings/30-udp-with-haproxy.yaml"));
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /30-udp-with-haproxy\.yaml \(document 1\): spec\.loadBalancer\.protocol: must be one of "http", "tcp"/);
  });

  it("a live config with stream {} but no stream module loaded fails as StreamModuleMissing (real nginx -t)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-nomod-"));
    try {
      const conf = join(dir, "nginx.conf");
      writeFileSync(conf, `pid ${dir}/nginx.pid;\nerror_log stderr;\nevents {}\nstream {\n  include ${streamDir}/*.conf;\n}\n`);
      const driver = new NginxDriver({ args: ["-p", `${dir}/`, "-c", conf], streamDir });
      await assert.rejects(
        driver.validateLive(),
        (e: unknown) => e instanceof LbError && e.reason === "StreamModuleMissing" && /libnginx-mod-stream/.test(e.message),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("with no backend renders no listener (connections refused), outside the http conf dir", async () => {
    await waitFor(() => (streamFile("tcp-echo.conf")?.includes("not listening") === true ? true : undefined), {
      timeoutMs: 20_000,
      what: "empty tcp stream file",
    });
    await waitFor(() => (streamFile("udp-echo.conf")?.includes("not listening") === true ? true : undefined), {
      timeoutMs: 20_000,
      what: "empty udp stream file",
    });
    assert.equal(existsSync(join(world.nginx.confDir, "tcp-echo.conf")), false, "stream files never go to the http conf dir");
    await assert.rejects(tcpEcho(tcpPort, "x", 1_000), /ECONNREFUSED/);
  });

  it("round-robins new TCP connections and UDP sessions across three echo backends each", async () => {
    for (let i = 1; i <= 3; i++) {
      tcpBackends.push(await runTcpEcho(`st-tcp-${i}`, { app: "st-tcp-echo" }));
      udpBackends.push(await runUdpEcho(`st-udp-${i}`, { app: "st-udp-echo" }));
    }
    await waitFor(async () => ((await passing("st-tcp-echo")) === 3 && (await passing("st-udp-echo")) === 3 ? true : undefined), {
      timeoutMs: 30_000,
      what: "3 + 3 passing instances in Consul",
    });
    await servedSet("tcp", tcpPort, tcpBackends);
    await servedSet("udp", udpPort, udpBackends);
    const tcpConf = streamFile("tcp-echo.conf") ?? "";
    const udpConf = streamFile("udp-echo.conf") ?? "";
    assert.match(tcpConf, new RegExp(`^    listen 127\\.0\\.0\\.1:${tcpPort};$`, "m"));
    assert.match(udpConf, new RegExp(`^    listen 127\\.0\\.0\\.1:${udpPort} udp;$`, "m"));
    assert.equal(udpConf.match(/^ {4}server /gm)?.length, 3);
    await assertRoundRobin("tcp", tcpPort, tcpBackends, () => world.nginx.settled(40_000));
    await assertRoundRobin("udp", udpPort, udpBackends, () => world.nginx.settled(40_000));
    const doc = await controllerStatus(world.controller ?? assert.fail("no controller"));
    const udp = doc.bindings.find((b) => b.key === "default/udp-echo");
    assert.equal(udp?.loadBalancer?.protocol, "udp", "status reports the stream protocol");
  });

  it("a stopped backend gets no new connection: the rest share them evenly and none fails", async () => {
    const [goneTcp, goneUdp] = [tcpBackends.shift(), udpBackends.shift()];
    assert.ok(goneTcp !== undefined && goneUdp !== undefined);
    await Promise.all([stopContainer(goneTcp.id), stopContainer(goneUdp.id)]);
    await waitFor(async () => ((await world.health("st-tcp-echo")).length === 2 && (await world.health("st-udp-echo")).length === 2 ? true : undefined), {
      timeoutMs: 30_000,
      what: "stopped backends deregistered",
    });
    for (const [file, gone] of [
      ["tcp-echo.conf", goneTcp],
      ["udp-echo.conf", goneUdp],
    ] as const) {
      await waitFor(() => (new RegExp(`:${gone.hostPort};`).test(streamFile(file) ?? "x") ? undefined : true), {
        timeoutMs: 20_000,
        what: `${gone.name} gone from ${file}`,
      });
    }
    // A dead upstream still listed would fail (UDP: no reply) or skew the split (TCP: its share passes to the next).
    await assertRoundRobin("tcp", tcpPort, tcpBackends, () => world.nginx.settled(40_000));
    await assertRoundRobin("udp", udpPort, udpBackends, () => world.nginx.settled(40_000));
    const more = [...(await sample("tcp", tcpPort, 10)), ...(await sample("udp", udpPort, 10))];
    assert.deepEqual(
      more.filter((x) => x === goneTcp.name || x === goneUdp.name || x.startsWith("FAILED")),
      [],
      "no connection reached a stopped backend or failed",
    );
  });

  it("haproxy mode tcp: the same TCP binding moves to haproxy and round-robins there", async () => {
    world.writeFile("tcp-echo.yaml", tcpHaproxy());
    const cfgPath = join(haproxy.confDir, "tcp-echo.cfg");
    await waitFor(() => (existsSync(cfgPath) && /^\s+mode tcp$/m.test(readFileSync(cfgPath, "utf8")) ? true : undefined), {
      timeoutMs: 20_000,
      what: "haproxy tcp-echo.cfg in mode tcp",
    });
    await waitFor(() => (streamFile("tcp-echo.conf") === undefined ? true : undefined), { timeoutMs: 20_000, what: "nginx stream file removed" });
    await servedSet("tcp", hxPort, tcpBackends);
    await assertRoundRobin("tcp", hxPort, tcpBackends, () => haproxy.settled());
    assert.equal(readFileSync(cfgPath, "utf8").match(/^\s+server srv_/gm)?.length, 2);
    await waitForCondition(
      world.controller ?? assert.fail("no controller"),
      "default/tcp-echo",
      "Degraded",
      (c) => c.status === "False",
      "tcp-echo not Degraded",
    );
  });
});
