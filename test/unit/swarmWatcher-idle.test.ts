/**
 * The Swarm watcher's idle cost (src/sources/docker/swarmWatcher.ts): while no
 * binding selects Swarm services it sends nothing and sets no timer shorter
 * than its recheck period; wantedChanged() starts it at once when a binding
 * wants Swarm (mocked timers; a fake engine that is not in swarm mode).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type Dockerode from "dockerode";
import { silentLogger } from "../../src/runtime/logger.js";
import { SwarmWatcher } from "../../src/sources/docker/swarmWatcher.js";

function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

const RECHECK_MS = 300_000;

describe("swarm watcher while nothing wants Swarm", () => {
  it("asks Docker nothing until wantedChanged() reports a binding that wants it, then asks at once", async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout"] });
    let infos = 0;
    let wanted = false;
    let polls = 0;
    const docker = {
      info: () => {
        infos++;
        return Promise.resolve({ Swarm: { LocalNodeState: "inactive" } });
      },
    } as unknown as Dockerode;
    const watcher = new SwarmWatcher({
      docker,
      logger: silentLogger(),
      resyncMs: 2_000,
      recheckMs: RECHECK_MS,
      backoff: { baseMs: 200, maxMs: 60_000 },
      wanted: () => {
        polls++;
        return wanted;
      },
      onChange: () => undefined,
      onAvailability: () => undefined,
    });
    const stop = new AbortController();
    const done = watcher.run(stop.signal);
    t.after(async () => {
      stop.abort();
      await done;
    });
    await flush();
    t.mock.timers.tick(RECHECK_MS - 1);
    await flush();
    assert.equal(infos, 0, "idle: no docker info");
    assert.equal(polls, 1, "idle: one look at wanted() at start, no wake-up at the swarm re-list period");
    watcher.wantedChanged();
    await flush();
    assert.equal(infos, 0, "woken, but nothing wants Swarm yet: still nothing");
    wanted = true;
    watcher.wantedChanged();
    await flush();
    await flush();
    assert.equal(infos, 1, "a binding wants Swarm: asked at once");
    assert.equal(watcher.view().kind, "unavailable", "not in swarm mode: said so");
  });
});
