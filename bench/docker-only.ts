/**
 * Docker-only latency and idle-cost benchmark, on
 * real dockerd, Consul and nginx. Prints figures; it is not a pass/fail test.
 *
 *   BENCH_RUNS=20 BENCH_IDLE_S=60 node --import tsx bench/docker-only.ts
 *
 * L1: `docker run -d` returned -> instance present in Consul's catalog.
 * L2: `docker run -d` returned -> first 200 from nginx with that container's page.
 * Idle: Consul writes (counted by a loopback proxy) and nginx reloads while
 *       4 backends run and nothing changes.
 */
import { run } from "../test/support/exec.js";
import { BACKEND_IMAGE } from "../test/support/image.js";
import { cleanupAll } from "../test/support/teardown.js";
import { freePort, waitFor } from "../test/support/wait.js";
import { bindingYaml, startWorld } from "../test/support/world.js";
import { summary } from "./stats.js";

const RUNS = Number(process.env.BENCH_RUNS ?? "20");
const IDLE_S = Number(process.env.BENCH_IDLE_S ?? "60");
const SERVICE = "bench-web";

async function main(): Promise<void> {
  const world = await startWorld("bench");
  const port = await freePort();
  world.writeFile("bench.yaml", bindingYaml({ name: "bench", service: SERVICE, app: "bench-web", listenPort: port }));
  await world.startController();
  const registered: number[] = [];
  const served: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const name = `bench-${i}`;
    const t0 = performance.now();
    const { stdout } = await run(
      "docker",
      [
        "run",
        "-d",
        "--rm",
        "--label",
        "dockbind-test=1",
        "--label",
        `dockbind-test.pid=${process.pid}`,
        "--label",
        "app=bench-web",
        "--name",
        name,
        "-e",
        `NAME=${name}`,
        "-p",
        "127.0.0.1:0:80",
        BACKEND_IMAGE,
      ],
      { check: true },
    );
    const started = performance.now();
    const id = stdout.trim();
    let tReg: number | undefined;
    await waitFor(
      async () => {
        if (tReg === undefined && (await world.health(SERVICE)).some((e) => e.meta.dockbind_container === id)) tReg = performance.now();
        const r = await world.nginx.get(port).catch(() => undefined);
        return r?.status === 200 && r.body === name ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 5, what: `${name} served` },
    );
    const tServed = performance.now();
    registered.push((tReg ?? tServed) - started);
    served.push(tServed - started);
    process.stdout.write(
      `run ${i + 1}/${RUNS}: docker run ${(started - t0).toFixed(0)} ms, registered +${((tReg ?? tServed) - started).toFixed(0)} ms, served +${(tServed - started).toFixed(0)} ms\n`,
    );
    await run("docker", ["rm", "-f", id], { check: true });
    await waitFor(async () => ((await world.health(SERVICE)).length === 0 ? true : undefined), { timeoutMs: 30_000, intervalMs: 20, what: "deregistered" });
  }
  for (let i = 0; i < 4; i++) {
    await run(
      "docker",
      [
        "run",
        "-d",
        "--rm",
        "--label",
        "dockbind-test=1",
        "--label",
        `dockbind-test.pid=${process.pid}`,
        "--label",
        "app=bench-web",
        "-e",
        `NAME=idle-${i}`,
        "-p",
        "127.0.0.1:0:80",
        BACKEND_IMAGE,
      ],
      { check: true },
    );
  }
  await waitFor(async () => ((await world.health(SERVICE)).filter((e) => e.status === "passing").length === 4 ? true : undefined), {
    timeoutMs: 30_000,
    what: "4 idle backends passing",
  });
  await new Promise((r) => setTimeout(r, 3000)); // let the last render/reload land before counting
  const writes0 = world.proxy.writes().length;
  const reads0 = world.proxy.requests.length - writes0;
  const reloads0 = await world.nginx.reloadCount();
  process.stdout.write(`idle: measuring ${IDLE_S} s with 4 backends (resync every 2 s)...\n`);
  await new Promise((r) => setTimeout(r, IDLE_S * 1000));
  const writes = world.proxy.writes().length - writes0;
  const reads = world.proxy.requests.length - world.proxy.writes().length - reads0;
  const reloads = (await world.nginx.reloadCount()) - reloads0;
  process.stdout.write("\n== dockbind docker-only figures ==\n");
  process.stdout.write(`${summary("L1 docker run -> registered", registered)}\n`);
  process.stdout.write(`${summary("L2 docker run -> served via nginx", served)}\n`);
  process.stdout.write(`idle ${IDLE_S} s: consul writes=${writes}, consul reads=${reads}, nginx reloads=${reloads}\n`);
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
}

await main();
