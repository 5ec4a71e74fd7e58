/**
 * Weights and canary splits on real dockerd, Consul, nginx and haproxy.
 *
 * - Split: 1 canary + 3 stable containers, `loadBalancer.split` 10/90, rendered by an nginx binding
 *   and a haproxy binding over the same containers: over 2,000 requests through each, the canary
 *   answers 10 ± 2 %; `docker stop` of the canary under load → 100 % stable, no failed request.
 * - Per instance: `dockbind.io/weight=3` next to weight 1 → Consul Weights.Passing 3, `weight=3` in
 *   nginx, ~75 % of the requests; a hostile weight label (`1e9`) keeps its container out, with
 *   the label named in the status.
 *
 * The canaries drain as a real service does (they keep serving 2 s after SIGTERM, see "Graceful
 * drain" in the README): a request cut by a container that dies at once is not a split matter.
 *
 * Each backend's page body is its NAME env value, which tells the backends apart. Tests run in
 * order and share one world.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runBackend, stopContainer, type Backend } from "../support/docker.js";
import { run } from "../support/exec.js";
import { startHaproxy, type HaproxyHandle } from "../support/haproxy.js";
import { httpGet } from "../support/http.js";
import { controllerStatus } from "../support/status.js";
import { cleanupAll } from "../support/teardown.js";
import { startLoad } from "../support/traffic.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";
import { controllerCommand } from "../support/controller.js";

const APP = "tsplit";
let world: World;
let haproxy: HaproxyHandle;
let nginxPort: number;
let haproxyPort: number;
let weightPort: number;
const canaries: Backend[] = [];

const SPLIT = `    split:
      - selector: {matchLabels: {track: canary}}
        percent: 10
      - selector: {matchLabels: {track: stable}}
        percent: 90
`;

/** One binding per load balancer, each over its own 1 canary + 3 stable containers (a container port belongs to one binding). */
function splitBinding(name: string, kind: "nginx" | "haproxy", port: number): string {
  return bindingYaml({
    name,
    service: `${APP}-${kind}`,
    app: `${APP}-${kind}`,
    extraSpec: `  loadBalancer:
    kind: ${kind}
    listen: {port: ${port}}
    output: ${name}.${kind === "nginx" ? "conf" : "cfg"}
${SPLIT}`,
  });
}

function haproxyCfg(name: string): string {
  try {
    return readFileSync(join(haproxy.confDir, name), "utf8");
  } catch {
    return "";
  }
}

/** Page bodies of `n` sequential GETs through `lb` (non-200 answers as `HTTP <code>`). */
async function sample(lb: Pick<HaproxyHandle, "get">, port: number, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await lb.get(port).catch((err: unknown) => ({ status: 0, body: String(err) }));
    out.push(r.status === 200 ? r.body : `HTTP ${r.status}`);
  }
  return out;
}

function canaryPercent(bodies: readonly string[]): number {
  return (bodies.filter((b) => b === "canary").length / bodies.length) * 100;
}

before(async () => {
  [world, haproxy] = await Promise.all([startWorld("tsplit"), startHaproxy()]);
  [nginxPort, haproxyPort, weightPort] = await Promise.all([freePort(), freePort(), freePort()]);
  world.writeFile("split-n.yaml", splitBinding("split-n", "nginx", nginxPort));
  world.writeFile("split-h.yaml", splitBinding("split-h", "haproxy", haproxyPort));
  await world.startController([...haproxy.controllerArgs]);
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("canary split 10/90 through nginx and haproxy", () => {
  it("gives the one canary 10 ± 2 % of 2,000 requests next to three stable instances, in nginx and in haproxy", async () => {
    for (const kind of ["nginx", "haproxy"]) {
      const app = `${APP}-${kind}`;
      canaries.push(
        await runBackend({ name: `tsplit-${kind}-canary-${process.pid}`, labels: { app, track: "canary" }, env: { NAME: "canary", DRAIN_SECONDS: "2" } }),
      );
      for (let i = 1; i <= 3; i++) {
        await runBackend({ name: `tsplit-${kind}-stable-${i}-${process.pid}`, labels: { app, track: "stable" }, env: { NAME: `stable-${i}` } });
      }
    }
    // Canary share 10 / 1 server, stable 90 / 3 servers = 30 each: weights 85 and 256 (haproxy's scale).
    await waitFor(
      () => ((world.lbFile("split-n.conf")?.match(/ weight=256;/g) ?? []).length === 3 && / weight=85;/.test(world.lbFile("split-n.conf") ?? "")) || undefined,
      {
        timeoutMs: 30_000,
        what: "nginx upstream with 3 stable servers at weight 256 and the canary at 85",
      },
    );
    await waitFor(() => ((haproxyCfg("split-h.cfg").match(/ weight 256 /g) ?? []).length === 3 && / weight 85 /.test(haproxyCfg("split-h.cfg"))) || undefined, {
      timeoutMs: 30_000,
      what: "haproxy backend with 3 stable servers at weight 256 and the canary at 85",
    });
    const meta = (await world.health(`${APP}-nginx`)).map((e) => e.meta.dockbind_split).sort();
    assert.deepEqual(meta, ["0", "1", "1", "1"], "split group travels as service meta");
    await Promise.all([world.nginx.settled(), haproxy.settled()]);

    for (const [name, lb, port] of [
      ["nginx", world.nginx, nginxPort],
      ["haproxy", haproxy, haproxyPort],
    ] as const) {
      const bodies = await sample(lb, port, 2000);
      const pct = canaryPercent(bodies);
      console.log(`# ${name}: canary answered ${pct.toFixed(2)} % of ${bodies.length} requests`);
      assert.deepEqual(
        bodies.filter((b) => b.startsWith("HTTP ")),
        [],
        `${name}: failed requests`,
      );
      assert.ok(pct >= 8 && pct <= 12, `${name}: canary share ${pct.toFixed(2)} % not within 10 ± 2 %`);
      for (let i = 1; i <= 3; i++) assert.ok(bodies.includes(`stable-${i}`), `${name}: stable-${i} served`);
    }

    const status = await controllerStatus(world.controller ?? assert.fail("controller"));
    const view = status.bindings.find((b) => b.key === "default/split-n");
    assert.deepEqual(
      view?.loadBalancer?.split?.map((g) => [g.selector, g.percent, g.servers, g.share]),
      [
        ["track=canary", 10, 1, 10],
        ["track=stable", 90, 3, 90],
      ],
    );
    const canaryRow = view.backends.find((b) => b.containerName.startsWith("tsplit-nginx-canary"));
    assert.equal(canaryRow?.group, 0);
    assert.equal(canaryRow.share, 10);
  });

  it("controller plan shows each split group's declared and current share and each server's weight (no changes once converged)", async () => {
    const r = await run(
      process.execPath,
      [
        ...controllerCommand(),
        "plan",
        "-f",
        world.bindingsDir,
        "--consul-addr",
        world.proxy.addr,
        "--node",
        world.node,
        "--lb-output-dir",
        world.nginx.confDir,
        ...haproxy.controllerArgs,
      ],
      { timeoutMs: 60_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /No changes/);
    for (const file of ["split-n.conf", "split-h.cfg"]) {
      const section = r.stdout.slice(r.stdout.indexOf(file));
      assert.match(section, /split group 0 \(track=canary\): 10% declared, 10% now over 1 server\(s\)/, file);
      assert.match(section, /split group 1 \(track=stable\): 90% declared, 90% now over 3 server\(s\)/, file);
      assert.match(section, /server 127\.0\.0\.1:\d+ weight 85: 10% of requests \(split group 0\)/, file);
    }
  });

  it("stopping the canary under load sends 100 % to stable with no failed request", async () => {
    const loads = [startLoad(world.nginx, nginxPort, { intervalMs: 20 }), startLoad(haproxy, haproxyPort, { intervalMs: 20 })];
    try {
      await Promise.all(canaries.map((c) => stopContainer(c.id)));
      await waitFor(() => (!/ weight=85;/.test(world.lbFile("split-n.conf") ?? "") && !/ weight 85 /.test(haproxyCfg("split-h.cfg"))) || undefined, {
        timeoutMs: 30_000,
        what: "canary gone from nginx and haproxy",
      });
      await Promise.all([world.nginx.settled(), haproxy.settled()]);
    } finally {
      const [n, h] = await Promise.all(loads.map((l) => l.stop()));
      console.log(`# stop canary under load: nginx ${n?.sent} requests ${n?.failed} failed, haproxy ${h?.sent} requests ${h?.failed} failed`);
      assert.deepEqual(n?.failures, [], "nginx failed requests");
      assert.deepEqual(h?.failures, [], "haproxy failed requests");
    }
    // The stable group alone: its 90 % is all there is; equal weights are not written.
    assert.doesNotMatch(world.lbFile("split-n.conf") ?? "", / weight=/);
    for (const [lb, port] of [
      [world.nginx, nginxPort],
      [haproxy, haproxyPort],
    ] as const) {
      const bodies = await sample(lb, port, 300);
      assert.deepEqual([...new Set(bodies)].sort(), ["stable-1", "stable-2", "stable-3"]);
    }
  });
});

describe("per-instance weight", () => {
  it("dockbind.io/weight=3 is Consul Weights.Passing 3 and nginx weight=3 (~75 % next to weight 1); a hostile weight keeps its container out", async () => {
    world.writeFile("weighted.yaml", bindingYaml({ name: "weighted", service: "tweight", app: "tweight", listenPort: weightPort }));
    await runBackend({ name: `tweight-light-${process.pid}`, labels: { app: "tweight" }, env: { NAME: "light" } });
    await runBackend({ name: `tweight-heavy-${process.pid}`, labels: { app: "tweight", "dockbind.io/weight": "3" }, env: { NAME: "heavy" } });
    const hostile = await runBackend({
      name: `tweight-hostile-${process.pid}`,
      labels: { app: "tweight", "dockbind.io/weight": "1e9" },
      env: { NAME: "hostile" },
    });
    await waitFor(
      () =>
        ((world.lbFile("weighted.conf")?.match(/^ {4}server /gm) ?? []).length === 2 && / weight=3;/.test(world.lbFile("weighted.conf") ?? "")) || undefined,
      {
        timeoutMs: 30_000,
        what: "nginx upstream with 2 servers, one at weight=3",
      },
    );
    const res = await httpGet(`${world.consul.url}/v1/health/service/tweight`);
    const weights = (JSON.parse(res.body) as { Service: { Port: number; Weights: { Passing: number; Warning: number } } }[])
      .map((e) => `${e.Service.Weights.Passing}/${e.Service.Weights.Warning}`)
      .sort();
    assert.deepEqual(weights, ["1/1", "3/1"], "Consul Weights of the two registered instances");
    assert.doesNotMatch(world.lbFile("weighted.conf") ?? "", new RegExp(`:${hostile.hostPort ?? -1}\\b`));

    await world.nginx.settled();
    const bodies = await world.sample(weightPort, 400);
    const heavy = (bodies.filter((b) => b === "heavy").length / bodies.length) * 100;
    console.log(`# weight 3 vs 1: heavy answered ${heavy.toFixed(2)} % of ${bodies.length} requests`);
    assert.ok(heavy >= 70 && heavy <= 80, `weight-3 share ${heavy.toFixed(2)} % not within 75 ± 5 %`);
    assert.ok(!bodies.includes("hostile"));

    const status = await controllerStatus(world.controller ?? assert.fail("controller"));
    const rows = status.bindings.find((b) => b.key === "default/weighted")?.backends ?? [];
    assert.equal(rows.find((b) => b.containerName.startsWith("tweight-heavy"))?.weight, 3);
    assert.equal(rows.find((b) => b.containerName.startsWith("tweight-heavy"))?.share, 75);
    const skipped = rows.find((b) => b.containerName.startsWith("tweight-hostile"));
    assert.equal(skipped?.health, "skipped");
    assert.match(skipped.reason ?? "", /label dockbind\.io\/weight: "1e9" is not an integer in 1\.\.100/);
  });
});
