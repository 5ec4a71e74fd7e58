/**
 * Issue #4 item 6, graceful drain, on real dockerd/Consul/nginx: three
 * backends behind nginx under a steady request loop; `docker stop` of one of
 * them (it keeps serving DRAIN_SECONDS after SIGTERM, like a real server
 * finishing its requests). The controller sees the `kill` event before `die`,
 * deregisters the instance and nginx drops it while it still answers:
 * zero failed requests, and the instance left Consul before the container died.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { runBackend, type Backend } from "../support/docker.js";
import { run } from "../support/exec.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

let world: World;
let port: number;

before(async () => {
  world = await startWorld("drain");
  port = await freePort();
  world.writeFile("drain.yaml", bindingYaml({ name: "drain", service: "drain-web", app: "drain-web", listenPort: port }));
  await world.startController(["--drain-delay", "15s"]);
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
});

interface Sample {
  readonly at: number;
  readonly status: number;
  readonly body: string;
}

/** `rate` GETs per second through nginx for `durationMs`, each request on its own (bounded: rate * duration). */
async function load(rate: number, durationMs: number): Promise<Sample[]> {
  const total = Math.round((rate * durationMs) / 1000);
  const start = Date.now();
  const pending: Promise<Sample>[] = [];
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
    pending.push(
      world.nginx.get(port).then(
        (r) => ({ at: Date.now(), status: r.status, body: r.body }),
        (err: unknown) => ({ at: Date.now(), status: 0, body: String(err) }),
      ),
    );
  }
  return Promise.all(pending);
}

describe("graceful drain", () => {
  it("docker stop of one of 3 backends under steady load through nginx: zero failed requests, out of Consul before it died", async () => {
    const backends: Backend[] = [];
    for (const n of [1, 2, 3]) {
      backends.push(await runBackend({ name: `drain-${n}`, labels: { app: "drain-web" }, env: { NAME: `d${n}`, DRAIN_SECONDS: "3" } }));
    }
    const victim = backends[1];
    assert.ok(victim?.hostPort !== undefined);
    await waitFor(async () => ((await world.health("drain-web")).filter((e) => e.status === "passing").length === 3 ? true : undefined), {
      timeoutMs: 30_000,
      what: "3 passing drain-web instances",
    });
    await world.servedExactly(port, ["d1", "d2", "d3"], 20_000);
    await world.nginx.settled();

    // Watch the generated upstream: when does the victim's server line go away?
    let droppedFromLbAt: number | undefined;
    const watcher = setInterval(() => {
      if (droppedFromLbAt === undefined && world.lbFile("drain.conf")?.includes(`:${victim.hostPort}`) === false) droppedFromLbAt = Date.now();
    }, 10);
    try {
      const loop = load(20, 10_000);
      await new Promise((r) => setTimeout(r, 2_000));
      const stopAt = Date.now();
      await run("docker", ["stop", "-t", "6", victim.id], { check: true });
      const samples = await loop;

      const finished = (await run("docker", ["inspect", "-f", "{{.State.FinishedAt}}", victim.id], { check: true })).stdout.trim();
      const diedAt = Date.parse(finished.replace(/(\.\d{3})\d*/, "$1"));
      const dereg = world.controller?.logs().find((l) => l.message === "deregistered" && String(l.serviceId).includes(victim.id.slice(0, 12)));
      assert.ok(dereg, "the victim was deregistered");
      const deregAt = Date.parse(String(dereg.timestamp));
      const failed = samples.filter((s) => s.status !== 200);
      const fromVictimAfterDrop = samples.filter((s) => s.body === "d2" && droppedFromLbAt !== undefined && s.at > droppedFromLbAt + 1_000);
      console.log(
        `drain: ${samples.length} requests, ${failed.length} failed; docker stop -> deregistered ${deregAt - stopAt} ms, ` +
          `-> dropped from nginx config ${droppedFromLbAt === undefined ? "never" : `${droppedFromLbAt - stopAt} ms`}, -> container died ${diedAt - stopAt} ms`,
      );
      assert.equal(samples.length, 200);
      assert.deepEqual(failed, [], "no request failed across docker stop");
      assert.ok(deregAt < diedAt, `deregistered (${String(dereg.timestamp)}) before the container died (${finished})`);
      assert.ok(droppedFromLbAt !== undefined && droppedFromLbAt < diedAt, "dropped from the nginx upstream before the container died");
      assert.deepEqual(fromVictimAfterDrop, [], "nginx stopped sending to the draining backend");
      assert.ok(samples.some((s) => s.body === "d1") && samples.some((s) => s.body === "d3"));
      const left = await world.health("drain-web");
      assert.deepEqual(left.map((e) => e.meta.dockbind_container).sort(), [backends[0]?.id, backends[2]?.id].sort());
    } finally {
      clearInterval(watcher);
    }
  });
});
