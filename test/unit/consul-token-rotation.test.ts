import assert from "node:assert/strict";
import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createConsulClient } from "../../src/clients/consul/client.js";
import { RevokedTokenGate } from "../../src/clients/consul/tokenGate.js";
import { ConsulError } from "../../src/clients/consul/types.js";
import { ConsulTokenFile, tokenFromText } from "../../src/config/consulToken.js";
import { RecentErrors } from "../../src/observability/recentErrors.js";
import { createLogger, silentLogger } from "../../src/runtime/logger.js";
import { waitFor } from "../support/wait.js";

/** A loopback agent that knows a set of tokens: others get 403 "ACL not found", as Consul answers a revoked token. */
async function aclAgent(valid: Set<string>): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    const token = String(req.headers["x-consul-token"]);
    seen.push(token);
    res.setHeader("x-consul-index", "5");
    if (!valid.has(token)) {
      res.statusCode = 403;
      res.setHeader("content-type", "text/plain");
      return res.end("ACL not found");
    }
    res.setHeader("content-type", "application/json");
    return res.end(JSON.stringify({}));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => {
          r();
        });
      }),
  };
}

const closers: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(closers.map((c) => c()));
});

describe("RevokedTokenGate", () => {
  it("holds a token Consul does not know for a doubling backoff, then lets one probe through; never holds another token", () => {
    let now = 0;
    const gate = new RevokedTokenGate({ baseMs: 500, maxMs: 4_000 }, () => now);
    assert.equal(gate.admit("a"), 0);
    gate.answered("a", "unknown-token");
    assert.equal(gate.admit("a"), 500);
    assert.equal(gate.admit("b"), 0, "a new token is sent at once");
    assert.equal(gate.admit(undefined), 0);
    now = 500;
    assert.equal(gate.admit("a"), 0, "one probe once the backoff is over");
    assert.ok(gate.admit("a") > 0, "the others wait for the probe's answer");
    gate.answered("a", "no-verdict");
    assert.equal(gate.admit("a"), 0, "an answer that proves nothing lets the next call probe");
    gate.answered("a", "unknown-token");
    assert.equal(gate.admit("a"), 1_000, "doubled");
    for (let i = 0; i < 5; i++) gate.answered("a", "unknown-token");
    assert.equal(gate.admit("a"), 4_000, "capped");
    gate.answered("a", "valid");
    assert.equal(gate.admit("a"), 0, "an answer proving the token valid opens the gate");
    gate.answered("b", "unknown-token");
    gate.answered("a", "valid");
    assert.equal(gate.admit("b"), 500, "an answer to another token does not open it");
  });
});

describe("token read per request", () => {
  it("uses the source's current token on the next request, and a revoked token is not hammered", async () => {
    const valid = new Set(["token-a"]);
    const agent = await aclAgent(valid);
    closers.push(() => agent.close());
    let current = "token-a";
    let forbidden = 0;
    const c = createConsulClient({
      url: agent.url,
      token: {
        current: () => current,
        forbidden: () => {
          forbidden++;
        },
      },
    });
    await c.listAgentServices();
    valid.add("token-b");
    current = "token-b";
    await c.listAgentServices();
    assert.deepEqual(agent.seen, ["token-a", "token-b"]);

    valid.delete("token-b"); // revoked before the file changed
    for (let i = 0; i < 20; i++) {
      await assert.rejects(
        c.listAgentServices(),
        (err: unknown) => err instanceof ConsulError && err.reason === "ConsulRejected" && /ACL not found/.test(err.message),
      );
    }
    assert.equal(agent.seen.filter((t) => t === "token-b").length, 2, "one 403, then held locally: 20 calls, 1 sent");
    assert.equal(forbidden, 1, "the token source is told about the 403");
    valid.add("token-c");
    current = "token-c";
    await c.listAgentServices();
    assert.equal(agent.seen.at(-1), "token-c", "a new token is sent at once");
  });
});

describe("ConsulTokenFile", () => {
  it("follows the file: a rewritten or renamed-over file is the new token, an empty or missing one keeps the current", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-token-"));
    const path = join(dir, "token");
    writeFileSync(path, "first-token\n");
    const holder = new ConsulTokenFile({ path, initial: tokenFromText(path, "first-token\n"), logger: silentLogger(), pollIntervalMs: 60_000, debounceMs: 10 });
    let changes = 0;
    const off = holder.onChange(() => {
      changes++;
    });
    const abort = new AbortController();
    const running = holder.run(abort.signal);
    try {
      assert.equal(holder.current(), "first-token");
      writeFileSync(path, "second-token\n");
      await waitFor(() => (holder.current() === "second-token" ? true : undefined), { timeoutMs: 5_000, intervalMs: 10, what: "rewrite seen by the watch" });
      writeFileSync(join(dir, ".token.new"), "third-token");
      renameSync(join(dir, ".token.new"), path);
      await waitFor(() => (holder.current() === "third-token" ? true : undefined), { timeoutMs: 5_000, intervalMs: 10, what: "rename-over seen by the watch" });
      assert.equal(changes, 2);
      writeFileSync(path, "  \n");
      await holder.reread();
      assert.equal(holder.current(), "third-token", "an empty file keeps the token");
      off();
      writeFileSync(path, "fourth-token");
      holder.forbidden();
      await waitFor(() => (holder.current() === "fourth-token" ? true : undefined), { timeoutMs: 5_000, intervalMs: 10, what: "re-read on a 403 notice" });
      assert.equal(changes, 2, "a removed listener is not called");
    } finally {
      abort.abort();
      await running;
    }
  });

  it("a token read from the file is scrubbed from log lines before it is used", async () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-token-"));
    const path = join(dir, "token");
    writeFileSync(path, "rotated-secret-1");
    const holder = new ConsulTokenFile({ path, initial: "initial-secret-0", logger: silentLogger() });
    writeFileSync(path, "rotated-secret-2");
    await holder.reread();
    assert.equal(holder.current(), "rotated-secret-2");
    const logger = createLogger({ level: "info", format: "json" });
    logger.transports.forEach((tr) => (tr.silent = true));
    const ring = new RecentErrors(5);
    ring.captureLogs(logger);
    logger.warn("request with rotated-secret-2 and initial-secret-0 failed");
    await new Promise((r) => setImmediate(r));
    assert.equal(ring.list()[0]?.message, "request with [REDACTED] and [REDACTED] failed");
  });

  it("tokenFromText trims and refuses an empty file", () => {
    assert.equal(tokenFromText("f", " abc \n"), "abc");
    assert.throws(() => tokenFromText("f", "\n"), /is empty/);
  });
});
