/**
 * Issue #6 security: the controller runs with a MINIMAL Consul ACL token on an
 * agent with ACLs enabled and default-deny (README "Consul ACL policy"):
 *
 *   service "<each owned service name>" { policy = "write" }   # register/deregister + read its health
 *   node_prefix ""                       { policy = "read" }    # health results name the nodes
 *
 * - a binding whose service is in the policy registers and serves;
 * - a binding whose service is not gets a precise ConsulRejected (403) error and
 *   affects nothing else;
 * - the token (and the master token) never appears in any controller log, nor
 *   in /metrics or /api/status.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { startController, type ControllerHandle } from "../support/controller.js";
import { runBackend } from "../support/docker.js";
import { ensureDockerd } from "../support/dockerd.js";
import { httpGet } from "../support/http.js";
import { ensureBackendImage } from "../support/image.js";
import { startNginx, type NginxHandle } from "../support/nginx.js";
import { ensureBedRoot, startManaged } from "../support/procs.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { waitForCondition } from "../support/status.js";
import { bindingYaml } from "../support/world.js";

const MASTER = randomUUID();
const NODE = "security-acl";
const POLICY = `service "acl-web" { policy = "write" }\nnode_prefix "" { policy = "read" }\n`;
let consulUrl: string;
let token: string;
let nginx: NginxHandle;
let controller: ControllerHandle | undefined;
let bindingsDir: string;

/** A call with the master token, or with none at all (`withToken` ""): Consul's anonymous token. */
async function consulApi(method: string, path: string, body?: unknown, withToken: string = MASTER): Promise<{ status: number; body: string }> {
  const r = await fetch(`${consulUrl}${path}`, {
    method,
    headers: withToken === "" ? {} : { "X-Consul-Token": withToken },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: r.status, body: await r.text() };
}

/** A dev agent with ACLs on, default deny, the master token also used as the agent token. */
async function startAclConsul(): Promise<void> {
  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  const [http, dns, lan, wan, server] = ports.map(String) as [string, string, string, string, string];
  const dir = mkdtempSync(join(ensureBedRoot(), "consul-acl-"));
  const hcl = `acl { enabled = true\n default_policy = "deny"\n enable_token_persistence = false\n tokens { master = "${MASTER}"\n agent = "${MASTER}" } }\n`;
  writeFileSync(join(dir, "acl.hcl"), hcl, { mode: 0o600 });
  mkdirSync(join(dir, "data"));
  startManaged(
    "consul",
    [
      "agent",
      "-dev",
      "-bind",
      "127.0.0.1",
      "-client",
      "127.0.0.1",
      "-advertise",
      "127.0.0.1",
      "-http-port",
      http,
      "-dns-port",
      dns,
      "-serf-lan-port",
      lan,
      "-serf-wan-port",
      wan,
      "-server-port",
      server,
      "-grpc-port",
      "-1",
      "-data-dir",
      join(dir, "data"),
      "-node",
      `consul-${NODE}`,
      "-config-file",
      join(dir, "acl.hcl"),
    ],
    join(dir, "consul.log"),
  );
  consulUrl = `http://127.0.0.1:${http}`;
  // ACL bootstrap in dev mode takes a moment after leadership.
  await waitFor(async () => (await consulApi("GET", "/v1/acl/policies")).status === 200 || undefined, { timeoutMs: 30_000, what: "consul ACL system ready" });
}

before(async () => {
  await ensureDockerd();
  await ensureBackendImage();
  await startAclConsul();
  const policy = await consulApi("PUT", "/v1/acl/policy", { Name: "dockbind-minimal", Rules: POLICY });
  assert.equal(policy.status, 200, policy.body);
  const created = await consulApi("PUT", "/v1/acl/token", { Description: "dockbind controller", Policies: [{ Name: "dockbind-minimal" }] });
  assert.equal(created.status, 200, created.body);
  token = (JSON.parse(created.body) as { SecretID: string }).SecretID;
  nginx = await startNginx();
  bindingsDir = mkdtempSync(join(ensureBedRoot(), "bindings-acl-"));
});

after(async () => {
  await controller?.stop();
  await cleanupAll();
});

function writeBinding(name: string, text: string): void {
  writeFileSync(join(bindingsDir, `.${name}.tmp`), text);
  renameSync(join(bindingsDir, `.${name}.tmp`), join(bindingsDir, name));
}

describe("Consul ACL: minimal policy", () => {
  it("the anonymous token can do nothing (default deny is really on)", async () => {
    const r = await consulApi("PUT", "/v1/agent/service/register", { ID: "x", Name: "acl-web", Port: 1 }, "");
    assert.equal(r.status, 403, r.body);
  });

  it("registers and serves with only service:write on its own service, rejects other services precisely, never logs the token", async () => {
    const port = await freePort();
    const tokenFile = join(bindingsDir, "..", `acl-token-${process.pid}`);
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    writeBinding("web.yaml", bindingYaml({ name: "web", service: "acl-web", app: "acl-web", listenPort: port }));
    controller = await startController({
      bindingsDir,
      consulAddr: consulUrl.replace("http://", ""),
      outputDir: nginx.confDir,
      nginxArgs: nginx.nginxArgs,
      node: NODE,
      extraArgs: ["--consul-token-file", tokenFile, "--resync", "2s", "--wait-min", "50ms", "--wait-max", "500ms", "--log-level", "debug"],
      logName: `controller-${NODE}.log`,
    });
    const c = controller;
    await runBackend({ name: "acl-a", labels: { app: "acl-web" }, env: { NAME: "acl-a" } });
    await runBackend({ name: "acl-b", labels: { app: "acl-web" }, env: { NAME: "acl-b" } });
    await waitFor(
      async () => {
        const seen = new Set<string>();
        for (let i = 0; i < 6; i++) {
          const r = await nginx.get(port).catch(() => ({ status: 0, body: "" }));
          if (r.status === 200) seen.add(r.body);
        }
        return (seen.has("acl-a") && seen.has("acl-b")) || undefined;
      },
      { timeoutMs: 30_000, what: "both backends served through nginx with the minimal token" },
    );

    // A service outside the policy: rejected by Consul, reported precisely, nothing else disturbed.
    writeBinding("other.yaml", bindingYaml({ name: "other", service: "acl-other", app: "acl-web-other" }).replace("port: 80", "port: 8080"));
    await runBackend({ name: "acl-o", labels: { app: "acl-web-other" }, env: { NAME: "acl-o", PORT: "8080" } });
    const rejected = await waitForCondition(
      c,
      "default/other",
      "Registered",
      (x) => x.reason === "ConsulRejected",
      "default/other Registered: ConsulRejected",
      30_000,
    );
    assert.equal(rejected.status, "False");
    assert.match(rejected.message, /403|[Pp]ermission denied/);
    const services = JSON.parse((await consulApi("GET", "/v1/agent/services")).body) as Record<string, { Service: string }>;
    assert.deepEqual([...new Set(Object.values(services).map((s) => s.Service))].sort(), ["acl-web"]);

    // The token never leaks: not in any log line of the controller, not on its HTTP endpoints.
    const listening = c.logs().find((l) => l.message === "http server listening");
    const bodies: string[] = [];
    if (listening !== undefined) {
      for (const path of ["/metrics", "/api/status", "/", "/healthz", "/readyz"])
        bodies.push((await httpGet(`http://${String(listening.address)}${path}`)).body);
    }
    const logText = readFileSync(c.logFile, "utf8");
    assert.ok(logText.length > 0 && c.logs().some((l) => l.level === "debug"), "debug logging was on");
    for (const secret of [token, MASTER]) {
      assert.ok(!logText.includes(secret), "a token appears in the controller log");
      for (const b of bodies) assert.ok(!b.includes(secret), "a token appears on the controller's HTTP endpoints");
    }
  });
});
