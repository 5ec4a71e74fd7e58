/**
 * DockerWatcher against the simulated Docker API of the bench (loopback
 * HTTP, the real dockerode client): the streamed list builds the same cache
 * as the engine's list, unchanged containers keep their cached objects, and
 * list-found changes are left to onResync while vanished containers are
 * reported one by one.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, it } from "node:test";
import Docker from "dockerode";
import { startFakeDocker, type FakeContainer, type FakeDocker } from "../../bench/lib/fakeDocker.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { DockerWatcher, STALL_GRACE_MS, type DockerWatcherOptions } from "../../src/sources/docker/dockerWatcher.js";
import { waitFor } from "../support/wait.js";
import type { ContainerChange } from "../../src/ports/containerStore.js";

const N = 400; // ~500 KB of list: many chunks, entries cut across them

function container(i: number): FakeContainer {
  const id = randomBytes(32).toString("hex");
  return {
    id,
    name: `c_${i}`,
    // Quotes, backslashes and brackets in values: the stream splitter must not be fooled.
    labels: { app: `app-${i % 7}`, odd: 'say "hi" \\ ] }', n: String(i) },
    env: [],
    ip: `10.1.${Math.floor(i / 250)}.${(i % 250) + 2}`,
    running: true,
  };
}

let fake: FakeDocker;
let docker: Docker;
const containers = new Map<string, FakeContainer>();

before(async () => {
  for (let i = 0; i < N; i++) {
    const c = container(i);
    containers.set(c.id, c);
  }
  fake = await startFakeDocker(containers);
  const url = new URL(fake.url.replace("tcp:", "http:"));
  docker = new Docker({ host: url.hostname, port: Number(url.port), protocol: "http" });
});

after(async () => {
  await fake.close();
});

/** A watcher of the simulated engine; `over` sets the interval and whatever else a test observes. */
function watcher(over: Partial<DockerWatcherOptions> & Pick<DockerWatcherOptions, "resyncIntervalMs">): DockerWatcher {
  return new DockerWatcher({
    docker,
    logger: silentLogger(),
    backoff: { baseMs: 10, maxMs: 100 },
    onChange: () => undefined,
    onResync: () => undefined,
    ...over,
  });
}

describe("DockerWatcher (simulated Docker API)", () => {
  it("a resync streams the list into the cache; list-found changes go to onResync, vanished ones to onChange", async () => {
    const changes: ContainerChange[] = [];
    let resyncs = 0;
    const w = watcher({ resyncIntervalMs: 60_000, onChange: (c) => changes.push(c), onResync: () => resyncs++ });
    await w.resync();
    assert.equal(resyncs, 1);
    assert.equal(changes.length, 0, "the list's changes are covered by onResync");
    assert.equal(w.list().length, N);
    for (const c of containers.values()) {
      const got = w.get(c.id);
      assert.ok(got !== undefined, c.name);
      assert.deepEqual(got.labels, c.labels);
      assert.deepEqual(got.networks, { "bench-sim": c.ip });
      assert.equal(got.name, c.name);
    }
    assert.equal(w.select({ matchLabels: { app: "app-3" } }).length, [...containers.values()].filter((c) => c.labels.app === "app-3").length);

    const cached = new Map(w.list().map((c) => [c.id, c]));
    await w.resync();
    assert.equal(changes.length, 0);
    assert.ok(
      w.list().every((c) => cached.get(c.id) === c),
      "unchanged containers keep their cached objects",
    );

    const gone = [...containers.values()].slice(0, 3);
    for (const c of gone) c.running = false;
    await w.resync();
    assert.equal(resyncs, 3);
    assert.deepEqual(changes.map((c) => c.id).sort(), gone.map((c) => c.id).sort());
    assert.ok(changes.every((c) => c.before !== undefined && c.after === undefined));
    assert.equal(w.list().length, N - gone.length);
    for (const c of gone) c.running = true;
  });

  it("an event re-reads one container and reports it", async () => {
    const changes: ContainerChange[] = [];
    const w = watcher({ resyncIntervalMs: 60_000, onChange: (c) => changes.push(c) });
    const abort = new AbortController();
    const running = w.run(abort.signal);
    const deadline = Date.now() + 10_000;
    while (!w.synced() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.ok(w.synced());
    const target = [...containers.values()][5];
    assert.ok(target !== undefined);
    fake.emit(target.id, "die");
    while (changes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const [change, ...more] = changes;
    assert.equal(more.length, 0);
    assert.ok(change !== undefined);
    assert.equal(change.id, target.id);
    assert.ok(change.before !== undefined && change.after === undefined);
    assert.equal(w.get(target.id), undefined);
    abort.abort();
    await running;
    target.running = true;
  });

  it("a change the periodic resync sees but the stream never reported marks the stream stalled after the grace: reconnected, counted once; an idle stream is not stalled", async () => {
    const stalls: number[] = [];
    const w = watcher({ resyncIntervalMs: 200, observer: { onStall: () => stalls.push(Date.now()) } });
    const abort = new AbortController();
    const running = w.run(abort.signal);
    const wait = async (pred: () => boolean, ms: number): Promise<void> => {
      const deadline = Date.now() + ms;
      while (!pred() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    };
    await wait(() => w.synced(), 10_000);
    assert.ok(w.synced());
    const streams = fake.hits.events;
    const lists = fake.hits.list;
    await wait(() => fake.hits.list >= lists + 5, 5_000);
    assert.equal(stalls.length, 0, "five resyncs with nothing changed: silence is not a stall");
    const target = [...containers.values()][7];
    assert.ok(target !== undefined);
    target.running = false; // gone without an event: what a stalled stream looks like
    const changedAt = Date.now();
    await wait(() => stalls.length > 0 && fake.hits.events > streams && w.synced(), STALL_GRACE_MS + 5_000);
    assert.equal(stalls.length, 1);
    const detectedMs = (stalls[0] ?? 0) - changedAt;
    assert.ok(detectedMs >= STALL_GRACE_MS && detectedMs <= STALL_GRACE_MS + 1_000, `detected after ${detectedMs} ms`);
    assert.equal(fake.hits.events, streams + 1, "the stream was re-established");
    assert.equal(w.get(target.id), undefined, "the missed change is applied");
    abort.abort();
    await running;
    target.running = true;
  });

  it("a periodic resync waits one interval while the registrar queue still holds work, never two in a row", async () => {
    let busy = true;
    // What each tick did: "deferred" (backlog said busy), "asked" (backlog said drained), "resync" (a resync completed).
    const log: string[] = [];
    const w = watcher({
      resyncIntervalMs: 150,
      onResync: () => log.push("resync"),
      backlog: () => {
        log.push(busy ? "deferred" : "asked");
        return busy;
      },
    });
    const abort = new AbortController();
    const running = w.run(abort.signal);
    const until = (ok: () => boolean, what: string): Promise<boolean> => waitFor(ok, { timeoutMs: 10_000, intervalMs: 10, what });
    try {
      await until(() => w.synced(), "synced");
      const start = log.length;
      await until(() => log.slice(start).filter((e) => e === "deferred").length >= 3, "three deferrals");
      busy = false;
      const drained = log.length;
      await until(() => log.slice(drained).filter((e) => e === "resync").length >= 3, "three resyncs once drained");
      abort.abort();
      await running;
      const busyPhase = log.slice(start, drained).join(",");
      assert.match(busyPhase, /deferred,resync/, busyPhase);
      assert.doesNotMatch(busyPhase, /deferred,deferred|resync,resync/, `while busy a deferral and a resync alternate: ${busyPhase}`);
      const drainedPhase = log.slice(drained).join(",");
      assert.doesNotMatch(drainedPhase, /asked,asked/, `once drained every tick resyncs: ${drainedPhase}`);
    } finally {
      abort.abort();
      await running;
    }
  });

  /** Runs `body` with a running, synced watcher (stopped after); `target` is stopped by the body at will and running again after. */
  async function withWatcher(target: FakeContainer, body: (w: DockerWatcher, changes: ContainerChange[]) => Promise<void>): Promise<void> {
    const changes: ContainerChange[] = [];
    const w = watcher({ resyncIntervalMs: 60_000, onChange: (c) => changes.push(c) });
    const abort = new AbortController();
    const running = w.run(abort.signal);
    try {
      await waitFor(() => w.synced(), { timeoutMs: 10_000, intervalMs: 10, what: "synced" });
      await body(w, changes);
    } finally {
      abort.abort();
      await running;
      target.running = true;
    }
  }

  /** Stops `target` (die event) and waits until the watcher dropped it. */
  async function stop(w: DockerWatcher, target: FakeContainer): Promise<void> {
    target.running = false;
    fake.emit(target.id, "die");
    await waitFor(() => w.get(target.id) === undefined, { timeoutMs: 10_000, intervalMs: 5, what: "stopped" });
  }

  /**
   * Single-container reads (inspects and filtered lists) the watcher sends for `events`, counted
   * once a marker read (a start event of a cached container) was seen and a full list has gone
   * round after it: events are handled in order, so every read of `events` was sent by then.
   */
  async function readsFor(w: DockerWatcher, events: () => void): Promise<number> {
    const marker = [...containers.values()][0];
    assert.ok(marker !== undefined);
    const before = fake.hits.inspect;
    events();
    fake.emit(marker.id, "start");
    await waitFor(() => fake.hits.inspect > before, { timeoutMs: 10_000, intervalMs: 5, what: "marker read" });
    await w.resync();
    return fake.hits.inspect - before - 1;
  }

  it("a network connect reads the container at once with inspect (answered when its start completes): reported before its start event, which is not read again", async () => {
    const target = [...containers.values()][9];
    assert.ok(target !== undefined);
    await withWatcher(target, async (w, changes) => {
      await stop(w, target);
      changes.length = 0;
      const release = fake.holdInspects("release");
      const inspects = fake.hits.inspect;
      fake.emitNetwork(target.id, "connect"); // the container is starting: dockerd answers the inspect once it runs
      await waitFor(() => fake.hits.inspect > inspects, { timeoutMs: 10_000, intervalMs: 5, what: "inspect asked" });
      target.running = true;
      release();
      await waitFor(() => changes.length > 0, { timeoutMs: 10_000, intervalMs: 5, what: "reported" });
      const [change] = changes;
      assert.equal(change?.id, target.id);
      assert.equal(change.before, undefined);
      assert.deepEqual(change.after?.networks, { "bench-sim": target.ip });
      assert.equal(
        await readsFor(w, () => {
          fake.emit(target.id, "start");
        }),
        0,
        "the start event after a connect read that found it running",
      );
      assert.equal(changes.length, 1, "the resync's list view of the container equals the inspected one");
    });
  });

  it("a start event is read when the connect read found the container not running, or when another event came in between", async () => {
    const target = [...containers.values()][10];
    assert.ok(target !== undefined);
    await withWatcher(target, async (w) => {
      await stop(w, target);
      // Answered before the container runs (an engine whose inspect does not wait for the start).
      const early = await readsFor(w, () => {
        fake.emitNetwork(target.id, "connect");
      });
      assert.equal(early, 1);
      target.running = true;
      assert.equal(
        await readsFor(w, () => {
          fake.emit(target.id, "start");
        }),
        1,
      );
      assert.ok(w.get(target.id) !== undefined, "read by its start event");

      await stop(w, target);
      target.running = true;
      const interleaved = await readsFor(w, () => {
        fake.emitNetwork(target.id, "connect");
        fake.emit(target.id, "die"); // an event between the connect and the start
        fake.emit(target.id, "start");
      });
      assert.equal(interleaved, 3, "connect, die and start each read");
      assert.ok(w.get(target.id) !== undefined);
    });
  });

  it("a disconnect reads a cached container and skips one that is neither cached nor being read", async () => {
    const target = [...containers.values()][12];
    assert.ok(target !== undefined);
    await withWatcher(target, async (w) => {
      assert.equal(
        await readsFor(w, () => {
          fake.emitNetwork(target.id, "disconnect");
        }),
        1,
        "running: its addresses may have changed",
      );
      await stop(w, target);
      assert.equal(
        await readsFor(w, () => {
          fake.emitNetwork(target.id, "disconnect");
        }),
        0,
        "stopped and dropped: nothing to read",
      );
    });
  });

  it("a slow read overtaken by a newer one is not applied: the container that died stays gone", async () => {
    const target = [...containers.values()][11];
    assert.ok(target !== undefined);
    await withWatcher(target, async (w) => {
      const release = fake.holdInspects("request");
      const inspects = fake.hits.inspect;
      fake.emitNetwork(target.id, "connect"); // read while running, answered late
      await waitFor(() => fake.hits.inspect > inspects, { timeoutMs: 10_000, intervalMs: 5, what: "inspect asked" });
      await stop(w, target);
      release(); // the stale "running" answer arrives last
      await readsFor(w, () => undefined);
      assert.equal(w.get(target.id), undefined, "the older answer did not bring the container back");
    });
  });
});
