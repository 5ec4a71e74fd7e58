import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";
import { createConsulClient } from "../../src/clients/consul/client.js";
import { ConsulError } from "../../src/clients/consul/types.js";
import { consulUrls } from "../../src/config/config.js";
import { freePort } from "../support/wait.js";

interface FakeAgent {
  readonly url: string;
  readonly seen: string[];
  status: number;
  close(): Promise<void>;
}

/** A loopback HTTP server answering the few Consul endpoints the wrapper calls. */
async function fakeAgent(name: string, index: string): Promise<FakeAgent> {
  const seen: string[] = [];
  const agent = { status: 200 };
  const server: Server = createServer((req: IncomingMessage, res) => {
    seen.push(`${req.method ?? ""} ${req.url ?? ""} token=${String(req.headers["x-consul-token"])}`);
    res.setHeader("x-consul-index", index);
    res.statusCode = agent.status;
    if (agent.status !== 200) {
      res.setHeader("content-type", "text/plain"); // as Consul: "Permission denied", "No cluster leader"
      return res.end(agent.status === 403 ? "Permission denied" : "No cluster leader");
    }
    res.setHeader("content-type", "application/json");
    if (req.url?.startsWith("/v1/agent/services") === true)
      return res.end(JSON.stringify({ [`${name}-svc`]: { ID: `${name}-svc`, Service: "web", Port: 80, Meta: { dockbind_node: "n1" } } }));
    if (req.url?.startsWith("/v1/health/service/") === true)
      return res.end(JSON.stringify([{ Node: { Node: name, Address: "10.0.0.1" }, Service: { ID: `${name}-svc`, Port: 80 }, Checks: [] }]));
    if (req.url?.startsWith("/v1/status/leader") === true) return res.end(JSON.stringify("10.0.0.1:8300"));
    return res.end("{}");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return Object.assign(agent, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => {
          r();
        });
      }),
  });
}

const agents: FakeAgent[] = [];
after(async () => {
  await Promise.all(agents.map((a) => a.close()));
});

test("a refused connection fails over to the next agent, sticks there and reports it", async () => {
  const dead = `http://127.0.0.1:${await freePort()}`;
  const live = await fakeAgent("b", "7");
  agents.push(live);
  const moves: string[] = [];
  const c = createConsulClient({ url: dead, urls: [dead, live.url], token: "s3cr3t-token", onFailover: (from, to) => moves.push(`${from} -> ${to}`) });
  const services = await c.listAgentServices();
  assert.deepEqual(
    services.map((s) => s.id),
    ["b-svc"],
  );
  assert.deepEqual(moves, [`${dead} -> ${live.url}`]);
  assert.equal(c.currentAgent(), live.url);
  assert.equal(await c.leader(), "10.0.0.1:8300");
  assert.equal(moves.length, 1, "sticky: no second failover");
  assert.ok(
    live.seen.every((l) => l.endsWith("token=s3cr3t-token")),
    "X-Consul-Token on every request",
  );
});

test("4xx (ACL denied) never fails over; it is ConsulRejected", async () => {
  const a = await fakeAgent("a", "1");
  const b = await fakeAgent("b", "1");
  agents.push(a, b);
  a.status = 403;
  const c = createConsulClient({ url: a.url, urls: [a.url, b.url] });
  await assert.rejects(c.listAgentServices(), (e: unknown) => e instanceof ConsulError && e.reason === "ConsulRejected");
  assert.equal(b.seen.length, 0);
  assert.equal(c.currentAgent(), a.url);
});

test("a blocking query resumes on the new agent without the old index; then blocks with the new agent's index", async () => {
  const a = await fakeAgent("a", "100");
  const b = await fakeAgent("b", "5");
  agents.push(a, b);
  const c = createConsulClient({ url: a.url, urls: [a.url, b.url] });
  const first = await c.healthService({ service: "web", waitMs: 1000 });
  assert.equal(first.index, "100");
  a.status = 500; // e.g. "No cluster leader"
  const second = await c.healthService({ service: "web", index: first.index, waitMs: 1000 });
  assert.equal(second.index, "5");
  assert.deepEqual(
    second.instances.map((i) => i.node),
    ["b"],
  );
  const onB = b.seen.filter((l) => l.includes("/v1/health/service/web"));
  assert.ok(onB[0]?.includes("stale") === true && !onB[0].includes("index="), `first read on b is non-blocking: ${onB[0] ?? ""}`);
  await c.healthService({ service: "web", index: second.index, waitMs: 1000 });
  assert.match(b.seen.at(-1) ?? "", /index=5/);
});

test("all agents down => one ConsulUnavailable error naming the count, and onUnreachable", async () => {
  const urls = [`http://127.0.0.1:${await freePort()}`, `http://127.0.0.1:${await freePort()}`];
  const unreachable: string[] = [];
  const c = createConsulClient({ url: urls[0] ?? "", urls, onUnreachable: (e) => unreachable.push(e) });
  await assert.rejects(c.listAgentServices(), (e: unknown) => e instanceof ConsulError && e.reason === "ConsulUnavailable" && /all 2 agents/.test(e.message));
  assert.equal(unreachable.length, 1);
  assert.match(unreachable[0] ?? "", /all 2 agents/);
});

test("a 5xx from every agent is an answer: the call rejects without onUnreachable (another datacenter's servers down)", async () => {
  const a = await fakeAgent("a", "1");
  const b = await fakeAgent("b", "1");
  agents.push(a, b);
  a.status = 500;
  b.status = 500;
  const unreachable: string[] = [];
  const c = createConsulClient({ url: a.url, urls: [a.url, b.url], onUnreachable: (e) => unreachable.push(e) });
  await assert.rejects(
    c.healthService({ service: "web", dc: "dc2", waitMs: 1000 }),
    (e: unknown) => e instanceof ConsulError && e.reason === "ConsulUnavailable",
  );
  assert.ok(
    b.seen.some((l) => l.includes("dc=dc2")),
    "tried on the other agent too",
  );
  assert.equal(unreachable.length, 0, unreachable.join("; "));
  // One agent without an answer and the other with a 5xx: an agent answered, so still no onUnreachable.
  const dead = `http://127.0.0.1:${await freePort()}`;
  const mixed = createConsulClient({ url: dead, urls: [dead, b.url], onUnreachable: (e) => unreachable.push(e) });
  await assert.rejects(mixed.healthService({ service: "web", dc: "dc2", waitMs: 1000 }));
  assert.equal(unreachable.length, 0, unreachable.join("; "));
});

test("sweepOtherAgents deregisters owned copies through the other agents only", async () => {
  const a = await fakeAgent("a", "1");
  const b = await fakeAgent("b", "1");
  agents.push(a, b);
  const c = createConsulClient({ url: a.url, urls: [a.url, b.url] });
  const removed = await c.sweepOtherAgents((s) => s.meta.dockbind_node === "n1");
  assert.deepEqual(removed, ["b-svc"]);
  assert.ok(b.seen.some((l) => l.startsWith("PUT /v1/agent/service/deregister/b-svc")));
  assert.ok(!a.seen.some((l) => l.includes("deregister")));
});

test("consulUrls: repeated and comma-separated --consul-addr, deduplicated; CONSUL_HTTP_ADDR stays single", () => {
  assert.deepEqual(consulUrls(["127.0.0.2:8501,127.0.0.3:8501", "https://127.0.0.4:8501", "127.0.0.2:8501"], { CONSUL_HTTP_SSL: "true" }), [
    "https://127.0.0.2:8501",
    "https://127.0.0.3:8501",
    "https://127.0.0.4:8501",
  ]);
  assert.deepEqual(consulUrls(undefined, { CONSUL_HTTP_ADDR: "10.0.0.1:8500" }), ["http://10.0.0.1:8500"]);
  assert.deepEqual(consulUrls(undefined, {}), ["http://127.0.0.1:8500"]);
});
