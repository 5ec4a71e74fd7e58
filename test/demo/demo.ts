/**
 * `make demo`: the classic registrator + consul-template + nginx walkthrough,
 * done by dockbind, live on this machine. Sets up what is missing (dockerd,
 * Consul, nginx, a local backend image), starts four containers one by one,
 * shows the round-robin through nginx, and tears everything down on Ctrl-C
 * (SIGINT, SIGTERM or SIGHUP), whether or not anyone still reads stdout.
 */
import { runBackend, stopContainer } from "../support/docker.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

const SERVICE = "my-web-server";
/** The walkthrough's output. Never throws: a closed stdout (`make demo | tee log`, then Ctrl-C) must not stop the teardown. */
const say = (s: string): void => {
  if (process.stdout.writable) process.stdout.write(`${s}\n`);
};
// EPIPE once the reader is gone: nothing more is shown, everything else goes on.
process.stdout.on("error", () => undefined);

async function roundRobin(world: World, port: number, n: number): Promise<void> {
  await world.nginx.settled();
  const bodies = await world.sample(port, n);
  say(`  curl http://127.0.0.1:${port}/ x${n}: ${bodies.join(" | ")}`);
}

async function main(): Promise<void> {
  say("== dockbind demo: Docker -> Consul -> nginx, declaratively ==");
  say("-- test bed: dockerd, Consul dev agent, nginx (own prefix), local backend image");
  const world = await startWorld("demo");
  const stop = async (): Promise<void> => {
    say("\n-- tearing down (controller, containers, Consul, nginx)");
    await world.controller?.stop();
    await world.proxy.close();
    await cleanupAll();
  };
  // Ctrl-C reaches the whole foreground group (make, tee): tear down whatever stdout has become.
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      void stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
  const port = await freePort();
  say(`   Consul UI/API ${world.consul.url}   nginx prefix ${world.nginx.prefix}`);
  const yaml = bindingYaml({ name: "web", service: SERVICE, app: "demo-web", listenPort: port });
  world.writeFile("web.yaml", yaml);
  say(`-- binding ${world.bindingsDir}/web.yaml:\n${yaml.replace(/^/gm, "   ")}`);
  const controller = await world.startController();
  say(`-- controller running (pid ${controller.proc.pid}), logs: ${controller.logFile}`);
  const ids: string[] = [];
  const names = ["docker01:81", "docker01:82", "docker02:83", "docker02:84"];
  for (const [i, name] of names.entries()) {
    say(`\n-- docker run local/dockbind-web:1 (label app=demo-web, page "${name}")`);
    const b = await runBackend({ name: `demo-web-${i + 1}`, labels: { app: "demo-web" }, env: { NAME: name } });
    ids.push(b.id);
    const started = performance.now();
    await waitFor(async () => ((await world.health(SERVICE)).filter((e) => e.status === "passing").length === i + 1 ? true : undefined), {
      timeoutMs: 20_000,
      what: "registered and passing",
    });
    say(`   registered in Consul and passing after ${(performance.now() - started).toFixed(0)} ms: ${world.consul.url}/v1/catalog/service/${SERVICE}`);
    // Served = every answer is one of the pages started so far and each of them answers (a 503 never counts).
    const expected = new Set(names.slice(0, i + 1));
    await waitFor(
      async () => {
        const bodies = await world.sample(port, (i + 1) * 2);
        return bodies.every((b) => expected.has(b)) && new Set(bodies).size === expected.size ? true : undefined;
      },
      { timeoutMs: 20_000, what: "served" },
    );
    await roundRobin(world, port, (i + 1) * 2);
  }
  say(`\n-- generated ${world.nginx.confDir}/web.conf:\n${(world.lbFile("web.conf") ?? "").replace(/^/gm, "   ")}`);
  const first = ids[0];
  if (first !== undefined) {
    say("-- docker stop demo-web-1: leaves Consul and the upstream; nginx keeps serving the rest");
    await stopContainer(first);
    await waitFor(async () => ((await world.health(SERVICE)).length === 3 ? true : undefined), { timeoutMs: 20_000, what: "deregistered" });
    const rest = new Set(names.slice(1));
    await waitFor(async () => ((await world.sample(port, 6)).every((b) => rest.has(b)) ? true : undefined), { timeoutMs: 20_000, what: "out of upstream" });
    await roundRobin(world, port, 6);
  }
  say("\n-- live round-robin every 2 s; try `docker run -d -l app=demo-web -e NAME=mine -p 127.0.0.1::80 local/dockbind-web:1`. Ctrl-C to stop.");
  for (;;) {
    await new Promise((r) => setTimeout(r, 2000));
    await roundRobin(world, port, 6);
  }
}

await main();
