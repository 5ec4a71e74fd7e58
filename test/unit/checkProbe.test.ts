/** Issue #6 P2: probeCheck runs a Consul-style HTTP/TCP check once, against real sockets on loopback. */
import assert from "node:assert/strict";
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createTcpServer, type AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { probeCheck } from "../../src/actuators/probe/checkProbe.js";

let http: Server;
let base: string;
let hang: Server;
let hangAddr: string;

before(async () => {
  http = createHttpServer((req, res) => {
    if (req.url === "/ok") res.writeHead(200).end("ok");
    else if (req.url === "/moved") res.writeHead(302, { location: "/ok" }).end();
    else if (req.url === "/busy") res.writeHead(429).end();
    else if (req.url === "/ua") res.writeHead(String(req.headers["user-agent"]).startsWith("Consul Health Check") ? 200 : 400).end();
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  // Accepts connections, never answers: an HTTP check must time out.
  hang = createHttpServer(() => undefined);
  await new Promise<void>((r) => hang.listen(0, "127.0.0.1", r));
  hangAddr = `127.0.0.1:${(hang.address() as AddressInfo).port}`;
});

after(async () => {
  hang.closeAllConnections();
  await Promise.all([new Promise((r) => http.close(r)), new Promise((r) => hang.close(r))]);
});

async function closedPort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise((r) => s.close(r));
  return port;
}

describe("probeCheck", () => {
  it("HTTP: 2xx passes, redirects are followed, 404 and 429 do not pass", async () => {
    assert.equal(await probeCheck({ http: `${base}/ok`, timeout: "1s" }), true);
    assert.equal(await probeCheck({ http: `${base}/moved`, timeout: "1s" }), true);
    assert.equal(await probeCheck({ http: `${base}/missing`, timeout: "1s" }), false);
    assert.equal(await probeCheck({ http: `${base}/busy`, timeout: "1s" }), false, "429 is Consul's warning, not passing");
    assert.equal(await probeCheck({ http: `${base}/ua`, timeout: "1s" }), true, "sends a Consul-style user agent");
  });

  it("HTTP: refused and timed-out requests do not pass, within the check's timeout", async () => {
    assert.equal(await probeCheck({ http: `http://127.0.0.1:${await closedPort()}/`, timeout: "1s" }), false);
    const t0 = performance.now();
    assert.equal(await probeCheck({ http: `http://${hangAddr}/`, timeout: "200ms" }), false);
    const took = performance.now() - t0;
    assert.ok(took >= 150 && took < 2_000, `gave up after the timeout (${took.toFixed(0)} ms)`);
  });

  it("TCP: an accepted connection passes, a refused one does not; IPv6 literal form is understood", async () => {
    assert.equal(await probeCheck({ tcp: hangAddr, timeout: "1s" }), true);
    assert.equal(await probeCheck({ tcp: `127.0.0.1:${await closedPort()}`, timeout: "1s" }), false);
    assert.equal(await probeCheck({ tcp: `[::1]:${await closedPort()}`, timeout: "1s" }), false);
    assert.equal(await probeCheck({ tcp: "not-an-address", timeout: "1s" }), false);
  });

  it("a TTL check (or none) is never probed as passing", async () => {
    assert.equal(await probeCheck({ ttl: "30s" }), false);
  });
});
