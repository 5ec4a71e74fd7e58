/**
 * P3 as specified: N containers (100) appearing within 2 s. The
 * real dockerd of this machine needs ~20 s to start 100 containers, so this
 * variant replays exactly that input through the simulated Docker API
 * (bench/lib/fakeDocker.ts): N `start` events spread evenly over the window,
 * the list and re-reads answering accordingly. Everything downstream is real:
 * each contender has its own Consul dev agent (behind a counting proxy) and
 * its own nginx master; backends are real HTTP servers on loopback addresses
 * (127.0.1.x, one per simulated container), so Consul's HTTP checks pass for
 * real and nginx proxies to them. Reloads are counted from each nginx's own
 * log ("reconfiguring"), Consul writes at the proxies.
 */
import { createServer, type Server } from "node:http";
import { randomBytes } from "node:crypto";
import { delay, freePort, waitFor } from "../../test/support/wait.js";
import { startWorld } from "../../test/support/world.js";
import { anchorBinary } from "./anchors.js";
import { anchorContender, counters, diff, dockbindContender, instanceCount, renderedServers, type Contender, type Counters, type Phase } from "./contender.js";
import { startFakeDocker, type FakeContainer } from "./fakeDocker.js";

/** The simulated containers' network (fakeDocker.ts lists every container on it). */
const SIM_NETWORK = "bench-sim";

export interface P3SimResult {
  readonly n: number;
  /** First to last `start` event, ms. */
  readonly startWindowMs: number;
  readonly perContender: Map<string, Counters & { convergeMs: number }>;
  readonly contenders: readonly string[];
}

function backend(ip: string, port: number, name: string): Promise<Server> {
  const server = createServer((req, res) => {
    const body = req.url?.startsWith("/health") === true ? "ok" : name;
    res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": Buffer.byteLength(body), Connection: "close" });
    res.end(body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, ip, () => {
      resolve(server);
    });
  });
}

export async function runP3Sim(log: (s: string) => void, n: number, windowMs: number): Promise<P3SimResult> {
  const port = await freePort();
  const tag = `${process.pid}-p3sim`;
  const phase: Phase = { service: "bench-burst-sim", selector: tag, listenPort: await freePort(), interval: "1s", backendPort: port };
  const containers = new Map<string, FakeContainer>();
  const servers: Server[] = [];
  const ids: string[] = [];
  const contenders: Contender[] = [];
  const fake = await startFakeDocker(containers);
  try {
    for (let i = 0; i < n; i++) {
      const ip = `127.0.1.${i + 1}`;
      const name = `sim-burst-${i}`;
      servers.push(await backend(ip, port, name));
      const id = randomBytes(32).toString("hex");
      ids.push(id);
      containers.set(id, { id, name, labels: { "dockbind-bench": tag }, env: [], ip, running: false });
    }
    const extra = ["--docker-host", fake.url];
    contenders.push(await dockbindContender(await startWorld(`bench-sim-dockbind-${process.pid}`), [phase], SIM_NETWORK, extra));
    // A registrator binary would watch the real dockerd, not the simulated one: the anchor here is dockbind-reg + consul-template.
    if (anchorBinary("registrator").path === undefined) {
      const a = await anchorContender(await startWorld(`bench-sim-anchor-${process.pid}`), [phase], SIM_NETWORK, extra);
      if (a !== undefined) contenders.push(a);
    }
    await delay(3000); // first renders (503 blocks) and reloads before counting
    const before = new Map(await Promise.all(contenders.map(async (c) => [c.name, await counters(c)] as const)));
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const due = t0 + (n === 1 ? 0 : (i * windowMs) / (n - 1));
      const wait = due - performance.now();
      if (wait > 0) await delay(wait);
      fake.emit(ids[i] ?? "", "start");
    }
    const startWindowMs = performance.now() - t0;
    log(`P3-sim: ${n} simulated containers started in ${startWindowMs.toFixed(0)} ms (events over the simulated Docker API)`);
    const per = new Map<string, Counters & { convergeMs: number }>();
    await Promise.all(
      contenders.map(async (c) => {
        await waitFor(async () => (renderedServers(c, phase) === n && (await instanceCount(c, phase.service, true)) === n ? true : undefined), {
          timeoutMs: 120_000,
          intervalMs: 100,
          what: `${c.name}: ${n} simulated backends passing and rendered`,
        });
        const convergeMs = performance.now() - t0;
        await delay(5000); // trailing paced reloads land before counting
        const b = before.get(c.name);
        if (b !== undefined) per.set(c.name, { ...diff(b, await counters(c)), convergeMs });
        const r = await c.world.nginx.get(c.listenPort(phase)).catch(() => undefined);
        log(`P3-sim: ${c.name} converged after ${convergeMs.toFixed(0)} ms; a request through its nginx: HTTP ${r?.status ?? 0} ${r?.body ?? ""}`);
      }),
    );
    return { n, startWindowMs, perContender: per, contenders: contenders.map((c) => c.name) };
  } finally {
    for (const c of contenders) {
      await c.stop();
      await c.world.proxy.close(); // its listener would keep the bench process alive
    }
    await fake.close();
    for (const s of servers) s.close();
  }
}
