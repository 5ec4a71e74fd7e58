/**
 * loadBalancer.tls against real programs: a CA made with openssl, two bindings
 * (nginx and haproxy, two backends each) terminating TLS with a certificate it
 * signed, reached with `curl --cacert` and Node's https (CA-verified). Then a
 * renewed certificate under 20 req/s per load balancer (0 failed requests, the
 * new serial served; the rotation time is printed), a mismatched pair (last
 * good kept, Degraded TlsKeyMismatch in /api/status) and its fix (recovers).
 *
 * The pair lives in a directory the binding names through a symlink
 * (`web -> gen-N`), swapped atomically as a Kubernetes Secret volume swaps
 * its `..data` link: cert and key change together.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { TLSSocket } from "node:tls";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runBackend } from "../support/docker.js";
import { startHaproxy, type HaproxyHandle } from "../support/haproxy.js";
import { controllerGet } from "../support/controllerHttp.js";
import { cleanupAll } from "../support/teardown.js";
import { startLoad } from "../support/traffic.js";
import { freePort, waitFor } from "../support/wait.js";
import { controllerStatus, waitForCondition } from "../support/status.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

let world: World;
let haproxy: HaproxyHandle;
let tlsDir: string;
let caFile: string;
let ngxPort: number;
let hxPort: number;
let redirectPort: number;

function openssl(args: readonly string[]): void {
  execFileSync("openssl", args, { cwd: tlsDir, stdio: ["ignore", "ignore", "pipe"] });
}

/** A P-256 key (`<dir>/tls.key`) and a certificate for localhost + 127.0.0.1 signed by the test CA with `serial` (`<dir>/tls.crt`). */
function issue(dir: string, serial: number): void {
  mkdirSync(join(tlsDir, dir), { recursive: true });
  openssl([
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    `${dir}/tls.key`,
    "-out",
    `${dir}/tls.csr`,
    "-subj",
    "/CN=localhost",
  ]);
  writeFileSync(join(tlsDir, dir, "ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  openssl([
    "x509",
    "-req",
    "-in",
    `${dir}/tls.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-set_serial",
    String(serial),
    "-days",
    "2",
    "-extfile",
    `${dir}/ext.cnf`,
    "-out",
    `${dir}/tls.crt`,
  ]);
}

/** Points `web` at `dir` atomically (new symlink, then rename over the old one). */
function activate(dir: string): void {
  const tmp = join(tlsDir, `.web.${dir}`);
  symlinkSync(dir, tmp);
  renameSync(tmp, join(tlsDir, "web"));
}

/** Binding `name` of service `tls-<name>`, selecting containers labelled app=tls-<name> (a container port belongs to one binding). */
function binding(name: string, kind: "nginx" | "haproxy", port: number, redirect?: number): string {
  return bindingYaml({
    name,
    service: `tls-${name}`,
    app: `tls-${name}`,
    extraSpec: `  loadBalancer:
    kind: ${kind}
    listen: {port: ${port}}
    output: ${name}.${kind === "nginx" ? "conf" : "cfg"}
    tls:
      certificate: web/tls.crt
      key: web/tls.key
${redirect !== undefined ? `      redirectHttp: {port: ${redirect}}\n` : ""}`,
  });
}

interface HttpsAnswer {
  readonly status: number;
  readonly body: string;
  /** Serial of the certificate served, upper-case hex as Node reports it. */
  readonly serial: string;
}

/** GET https://localhost:port/ (connected to 127.0.0.1), verified against the test CA, no keep-alive. */
function httpsGet(port: number): Promise<HttpsAnswer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", servername: "localhost", port, path: "/", ca: readFileSync(caFile), agent: false, timeout: 5_000, headers: { host: "localhost" } },
      (res) => {
        const serial = res.socket instanceof TLSSocket ? res.socket.getPeerCertificate().serialNumber : "";
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8").trim(), serial });
        });
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

const hex = (n: number): string => n.toString(16).toUpperCase().padStart(4, "0");

async function servesSerial(port: number, serial: number, timeoutMs = 30_000): Promise<void> {
  await waitFor(async () => ((await httpsGet(port).catch(() => undefined))?.serial === hex(serial) ? true : undefined), {
    timeoutMs,
    intervalMs: 50,
    what: `serial ${hex(serial)} served on ${port}`,
  });
}

function storeFiles(dir: string): string[] {
  return readdirSync(join(dir, ".dockbind-tls")).filter((n) => !n.startsWith("."));
}

before(async () => {
  [world, haproxy] = await Promise.all([startWorld("tlsrot"), startHaproxy()]);
  [ngxPort, hxPort, redirectPort] = await Promise.all([freePort(), freePort(), freePort()]);
  tlsDir = join(world.bindingsDir, "..", `${world.bindingsDir.split("/").at(-1) ?? "x"}-tls`);
  mkdirSync(tlsDir);
  caFile = join(tlsDir, "ca.crt");
  openssl([
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "2",
    "-subj",
    "/CN=dockbind test CA",
  ]);
  issue("gen-1", 0x1001);
  activate("gen-1");
  for (const name of ["web", "webx"]) {
    for (let i = 1; i <= 2; i++) await runBackend({ name: `tls-${name}-${i}-${process.pid}`, labels: { app: `tls-${name}` }, env: { NAME: `tls-${i}` } });
  }
  world.writeFile("web.yaml", binding("web", "nginx", ngxPort, redirectPort));
  world.writeFile("webx.yaml", binding("webx", "haproxy", hxPort));
  await world.startController([...haproxy.controllerArgs, "--tls-dir", tlsDir]);
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("TLS termination and certificate rotation", () => {
  it("serves HTTPS verified against the test CA through nginx and haproxy (curl --cacert)", async () => {
    for (const port of [ngxPort, hxPort]) {
      await servesSerial(port, 0x1001);
      // Converged: both backends rendered (round-robin answers both pages, nothing else).
      await waitFor(
        async () => {
          const bodies = new Set<string>();
          for (let i = 0; i < 6; i++) bodies.add((await httpsGet(port)).body);
          return [...bodies].sort().join(",") === "tls-1,tls-2" ? true : undefined;
        },
        { timeoutMs: 30_000, intervalMs: 200, what: `both backend pages on ${port}` },
      );
      const out = execFileSync("curl", ["-sS", "--cacert", caFile, "--resolve", `localhost:${port}:127.0.0.1`, `https://localhost:${port}/`], {
        encoding: "utf8",
      });
      assert.match(out, /^tls-[12]/, `curl through ${port}`);
    }
    const redirect = execFileSync("curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", `http://127.0.0.1:${redirectPort}/a?b=1`], {
      encoding: "utf8",
    });
    assert.equal(redirect, `308 https://127.0.0.1:${ngxPort}/a?b=1`);
  });

  it("keeps key material in 0600 managed copies only: never in generated config, log, status or metrics", async () => {
    const keyBody = readFileSync(join(tlsDir, "gen-1", "tls.key"), "utf8").split("\n")[1] ?? "";
    assert.ok(keyBody.length > 20);
    for (const dir of [world.nginx.confDir, haproxy.confDir]) {
      const files = storeFiles(dir);
      assert.equal(files.length, 1, `one managed pair in ${dir}: ${files.join(",")}`);
      assert.equal(statSync(join(dir, ".dockbind-tls", files[0] ?? "")).mode & 0o777, 0o600);
      assert.equal(statSync(join(dir, ".dockbind-tls")).mode & 0o777, 0o700);
    }
    const controller = world.controller;
    assert.ok(controller);
    const status = JSON.stringify(await controllerStatus(controller));
    assert.match(status, /TLS certificate serial 1001/);
    assert.match(
      (await controllerGet(controller, "/")).body,
      /TLS certificate serial 1001 \(CN=localhost\) valid until 20\d\d-/,
      "status page shows the certificate",
    );
    const exposed: [string, string][] = [
      ["nginx config", world.lbFile("web.conf") ?? ""],
      ["haproxy config", readFileSync(join(haproxy.confDir, "webx.cfg"), "utf8")],
      ["log", readFileSync(controller.logFile, "utf8")],
      ["status", status],
      ["metrics", (await controllerGet(controller, "/metrics")).body],
    ];
    for (const [what, text] of exposed) {
      assert.ok(!text.includes(keyBody), `key material in ${what}`);
      assert.ok(!text.includes("PRIVATE KEY"), `a PEM key in ${what}`);
    }
  });

  it("rotates to a renewed certificate under 20 req/s per load balancer: 0 failed requests, new serial served", async () => {
    issue("gen-2", 0x1002);
    const https = { get: (port: number) => httpsGet(port) };
    const loads = [startLoad(https, ngxPort), startLoad(https, hxPort)];
    await new Promise((r) => setTimeout(r, 1_000)); // traffic flowing before the swap
    const t0 = performance.now();
    activate("gen-2");
    const times = await Promise.all(
      [ngxPort, hxPort].map(async (port) => {
        await servesSerial(port, 0x1002);
        return performance.now() - t0;
      }),
    );
    await new Promise((r) => setTimeout(r, 1_000)); // and after it
    const [ngx, hx] = await Promise.all(loads.map((l) => l.stop()));
    assert.ok(ngx !== undefined && hx !== undefined);
    console.log(`# rotation: new serial served by nginx after ${(times[0] ?? 0).toFixed(0)} ms, haproxy after ${(times[1] ?? 0).toFixed(0)} ms`);
    console.log(`# requests: nginx ${ngx.sent} sent / ${ngx.failed} failed, haproxy ${hx.sent} sent / ${hx.failed} failed`);
    assert.deepEqual(ngx.failures, [], "nginx failures");
    assert.deepEqual(hx.failures, [], "haproxy failures");
    assert.ok(ngx.sent >= 20 && hx.sent >= 20, "traffic actually flowed");
    // The old managed pair goes once no live config names it.
    for (const dir of [world.nginx.confDir, haproxy.confDir]) {
      await waitFor(() => (storeFiles(dir).length === 1 ? true : undefined), { timeoutMs: 10_000, what: `old pair pruned in ${dir}` });
    }
  });

  it("a mismatched pair keeps the last good config, marks Degraded (TlsKeyMismatch), and recovers when fixed", async () => {
    const controller = world.controller;
    assert.ok(controller);
    issue("gen-3", 0x1003);
    mkdirSync(join(tlsDir, "bad"));
    writeFileSync(join(tlsDir, "bad", "tls.crt"), readFileSync(join(tlsDir, "gen-3", "tls.crt")));
    writeFileSync(join(tlsDir, "bad", "tls.key"), readFileSync(join(tlsDir, "gen-2", "tls.key")));
    const before = { ngx: world.lbFile("web.conf"), hx: readFileSync(join(haproxy.confDir, "webx.cfg"), "utf8") };
    activate("bad");
    for (const key of ["default/web", "default/webx"]) {
      const c = await waitForCondition(
        controller,
        key,
        "Degraded",
        (x) => x.status === "True" && x.reason === "TlsKeyMismatch",
        `${key} Degraded (TlsKeyMismatch)`,
      );
      assert.match(c.message, /last good config kept: \/\S+\/web\/tls\.key is not the private key of \/\S+\/web\/tls\.crt \(serial 1003\)$/);
    }
    const page = (await controllerGet(controller, "/")).body;
    assert.match(page, /Degraded: last good config kept: \S+\/web\/tls\.key is not the private key of/, "status page shows why");
    assert.ok(!page.includes("PRIVATE KEY"));
    assert.equal(world.lbFile("web.conf"), before.ngx, "nginx config kept byte for byte");
    assert.equal(readFileSync(join(haproxy.confDir, "webx.cfg"), "utf8"), before.hx, "haproxy config kept byte for byte");
    for (const port of [ngxPort, hxPort]) {
      const r = await httpsGet(port);
      assert.equal(r.serial, hex(0x1002), `last good certificate still served on ${port}`);
      assert.equal(r.status, 200);
    }
    const t0 = performance.now();
    activate("gen-3");
    for (const key of ["default/web", "default/webx"]) {
      await waitForCondition(controller, key, "Degraded", (x) => x.status === "False", `${key} recovered`);
    }
    await Promise.all([servesSerial(ngxPort, 0x1003), servesSerial(hxPort, 0x1003)]);
    console.log(`# recovery after the pair was fixed: ${(performance.now() - t0).toFixed(0)} ms`);
  });
});
