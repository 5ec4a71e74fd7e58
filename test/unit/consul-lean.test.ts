/**
 * lean.ts against a local HTTP server: the wire request (path, query, token header, JSON body), the
 * answer (headers, decoded body) and failures shaped as errors.ts expects (statusCode when Consul
 * answered, none otherwise), timeouts and cancellation.
 */
import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import { Agent, createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { after, before, describe, it } from "node:test";
import { leanCalls } from "../../src/clients/consul/lean.js";
import { httpStatus, shouldFailOver, toError } from "../../src/clients/consul/errors.js";

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly token: string | undefined;
  readonly contentType: string | undefined;
  readonly body: string;
}

let server: Server;
let base: URL;
const seen: Seen[] = [];
let answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
const agent = new Agent({ keepAlive: true });
let token: string | undefined = "t0k3n";
const lean = (): ReturnType<typeof leanCalls> => leanCalls(base, agent, { current: () => token });

/** What `p` rejected with; fails the test when it resolved. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => assert.fail("expected the call to reject"),
    (e: unknown) => e,
  );
}

before(async () => {
  server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        token: req.headers["x-consul-token"] as string | undefined,
        contentType: req.headers["content-type"],
        body,
      });
      answer(req, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  assert.ok(addr !== null && typeof addr === "object");
  base = new URL(`http://127.0.0.1:${String(addr.port)}`);
});

after(() => {
  agent.destroy();
  server.closeAllConnections();
  server.close();
});

describe("lean Consul calls", () => {
  it("PUT sends the body as JSON with the token read per request", async () => {
    seen.length = 0;
    answer = (_req, res) => res.end();
    await lean().put("agent.service.register", "/agent/service/register", { ID: "a", Weights: { Passing: 3, Warning: 1 } }, 2_000);
    token = undefined;
    await lean().put("agent.service.register", "/agent/service/register", { ID: "b" }, 2_000);
    token = "t0k3n";
    assert.deepEqual(
      seen.map((s) => [s.method, s.url, s.token, s.contentType, s.body]),
      [
        ["PUT", "/v1/agent/service/register", "t0k3n", "application/json", '{"ID":"a","Weights":{"Passing":3,"Warning":1}}'],
        ["PUT", "/v1/agent/service/register", undefined, "application/json", '{"ID":"b"}'],
      ],
    );
  });

  it("GET encodes path and query and answers headers and the decoded JSON body", async () => {
    seen.length = 0;
    answer = (_req, res) => {
      res.setHeader("content-type", "application/json");
      res.setHeader("x-consul-index", "42");
      res.end('[{"Service":{"ID":"x"}}]');
    };
    const [response, body] = await lean().get(
      "health.service",
      `/health/service/${encodeURIComponent("a b/c")}`,
      { dc: "dc2", stale: "1", index: "7", wait: "60s" },
      2_000,
    );
    assert.equal(seen[0]?.url, "/v1/health/service/a%20b%2Fc?dc=dc2&stale=1&index=7&wait=60s");
    assert.equal(response.headers["x-consul-index"], "42");
    assert.deepEqual(body, [{ Service: { ID: "x" } }]);
  });

  it("a non-2xx answer rejects with its status: short plain text as the message, else the status text", async () => {
    answer = (_req, res) => {
      res.statusCode = 403;
      res.setHeader("content-type", "text/plain");
      res.end("ACL not found");
    };
    const denied = await rejection(lean().put("agent.service.register", "/agent/service/register", {}, 2_000));
    assert.equal(httpStatus(denied), 403);
    assert.equal(shouldFailOver(denied), false);
    assert.equal(toError(denied, "register x").message, "register x: HTTP 403: consul: agent.service.register: ACL not found");
    assert.equal(toError(denied, "register x").reason, "ConsulRejected");

    answer = (_req, res) => {
      res.statusCode = 500;
      res.setHeader("content-type", "application/json");
      res.end("{}");
    };
    const failed = await rejection(lean().get("health.service", "/health/service/x", {}, 2_000));
    assert.equal(httpStatus(failed), 500);
    assert.equal(shouldFailOver(failed), true);
    assert.match((failed as Error).message, /^consul: health\.service: internal server error$/);
  });

  it("no answer (refused, timeout) rejects without a status, so the call may fail over", async () => {
    const dead = leanCalls(new URL("http://127.0.0.1:1"), agent, { current: () => undefined });
    const refused = await rejection(dead.put("agent.service.register", "/agent/service/register", {}, 2_000));
    assert.equal(httpStatus(refused), undefined);
    assert.equal(shouldFailOver(refused), true);
    assert.match((refused as Error).message, /^consul: agent\.service\.register: .*ECONNREFUSED/);

    answer = () => undefined; // never answers
    const started = performance.now();
    const timedOut = await rejection(lean().get("health.service", "/health/service/x", {}, 200));
    assert.equal(httpStatus(timedOut), undefined);
    assert.equal((timedOut as Error).message, "consul: health.service: request timed out (200ms)");
    assert.ok(performance.now() - started < 2_000, "the timeout ended the request");
  });

  it("a cancel on ctx ends a pending request", async () => {
    let arrived: () => void = () => undefined;
    const atServer = new Promise<void>((r) => (arrived = r));
    answer = () => {
      arrived(); // a blocking query that does not end by itself
    };
    const ctx = new EventEmitter();
    const pending = rejection(lean().get("health.service", "/health/service/x", { index: "9", wait: "60s" }, 60_000, ctx));
    await atServer;
    ctx.emit("cancel");
    const err = await pending;
    assert.equal((err as Error).message, "consul: health.service: request aborted");
    assert.equal(ctx.listenerCount("cancel"), 0, "the cancel listener is removed once settled");
  });
});
