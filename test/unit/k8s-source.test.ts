/**
 * Kubernetes binding source and informer against a scripted in-memory API
 * (list + watch sessions): resume after a watch ends, re-list on 410 Gone
 * (as HTTP status and as ERROR event) with the missed deletion delivered,
 * backoff on errors; validation with the shared validateBinding, last valid
 * version kept, deleting objects absent, finalizer gating, LB conflicts.
 * The real API server is exercised by test/integration/k8s-*.test.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { KubeApiError, type KubeClient, type KubeObject, type RequestOpts, type WatchEvent, type WatchOpts } from "../../src/clients/kubernetes/kubeClient.js";
import { silentLogger } from "../../src/runtime/logger.js";
import { Informer } from "../../src/sources/kubernetes/informer.js";
import { FINALIZER, KubeBindingSource } from "../../src/sources/kubernetes/kubeBindingSource.js";

type Session = { events: WatchEvent[]; end: "close" | "hang" | Error };

class FakeApi implements KubeClient {
  readonly server = "fake";
  objects = new Map<string, KubeObject>();
  rv = 10;
  readonly sessions: Session[] = [];
  readonly watchRvs: string[] = [];
  lists = 0;

  put(o: KubeObject): KubeObject {
    const obj = { ...o, metadata: { ...o.metadata, resourceVersion: String(++this.rv) } };
    this.objects.set(`${obj.metadata.namespace ?? ""}/${obj.metadata.name}`, obj);
    return obj;
  }

  request<T>(method: string, path: string, opts?: RequestOpts): Promise<T> {
    assert.equal(opts?.body, undefined);
    assert.equal(method, "GET", path);
    this.lists++;
    return Promise.resolve({ items: [...this.objects.values()], metadata: { resourceVersion: String(this.rv) } } as T);
  }

  async watch(_path: string, onEvent: (ev: WatchEvent) => void, opts: WatchOpts): Promise<void> {
    this.watchRvs.push(String(opts.query?.resourceVersion ?? ""));
    const s = this.sessions.shift() ?? { events: [], end: "hang" };
    await new Promise((r) => setTimeout(r, 5));
    for (const ev of s.events) onEvent(ev);
    if (s.end === "close") return;
    if (s.end instanceof Error) throw s.end;
    if (opts.signal.aborted) return;
    await new Promise<void>((resolve) => {
      opts.signal.addEventListener("abort", () => {
        resolve();
      });
    });
  }
}

function sb(name: string, spec: Record<string, unknown>, meta: Partial<KubeObject["metadata"]> = {}): KubeObject {
  return {
    apiVersion: "dockbind.io/v1alpha1",
    kind: "ServiceBinding",
    metadata: { name, namespace: "default", generation: 1, finalizers: [FINALIZER], ...meta },
    spec,
  };
}

const spec = (port = 80, output?: string): Record<string, unknown> => ({
  service: { name: "web" },
  backends: { selector: { matchLabels: { app: "web" } }, port },
  ...(output !== undefined ? { loadBalancer: { listen: { port: 8080 }, output } } : {}),
});

const tick = (ms = 30): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(pred: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !pred(); i++) await tick(10);
  assert.ok(pred(), what);
}

describe("Informer", () => {
  it("resumes an ended watch from the last resourceVersion and re-lists on 410 (event or status), delivering missed deletions", async () => {
    const api = new FakeApi();
    const a = api.put(sb("a", spec()));
    const events: string[] = [];
    const inf = new Informer({
      client: api,
      path: "/x",
      logger: silentLogger(),
      backoff: { baseMs: 5, maxMs: 20 },
      onEvent: (type, o) => events.push(`${type} ${o.metadata.name}`),
    });
    // c arrives through the watch (resourceVersion 13), never through a list.
    const c = sb("c", spec(), { resourceVersion: "13" });
    api.sessions.push(
      { events: [{ type: "ADDED", object: c }], end: "close" },
      { events: [{ type: "BOOKMARK", object: { metadata: { name: "", resourceVersion: "99" } } }], end: new Error("ECONNRESET") },
      { events: [{ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired", message: "too old" } }], end: "close" },
      { events: [], end: new KubeApiError(410, "Expired", "gone") },
    );
    const stop = new AbortController();
    const run = inf.run(stop.signal);
    await until(() => api.lists >= 1 && inf.synced(), "synced");
    // While "disconnected": a is deleted, d created.
    api.objects.delete("default/a");
    api.put(sb("d", spec()));
    await until(() => api.lists >= 3, "re-listed twice (ERROR event, then HTTP 410)");
    await until(() => api.watchRvs.length >= 5, "watching again");
    stop.abort();
    await run;
    assert.equal(api.watchRvs[0], "11"); // the list's resourceVersion
    assert.equal(api.watchRvs[1], "13"); // resumed after c's ADDED
    assert.equal(api.watchRvs[2], "99"); // resumed after the bookmark, despite the connection error
    assert.deepEqual(events.slice(0, 2), [`ADDED a`, `ADDED c`]);
    assert.ok(events.includes("DELETED a"), `missed deletion delivered by the re-list: ${events.join(", ")}`);
    assert.ok(events.includes("ADDED d"));
    assert.equal(inf.get("default/a"), undefined);
    assert.ok(inf.get("default/d"));
    assert.equal(a.metadata.resourceVersion, "11");
  });

  it("aborts a watch silent past its timeout + grace (stalled), reports it, resumes from the last resourceVersion without a re-list; a watch that keeps talking is not stalled", async () => {
    const api = new FakeApi();
    api.put(sb("a", spec()));
    const events: string[] = [];
    const stalls: number[] = [];
    const inf = new Informer({
      client: api,
      path: "/x",
      logger: silentLogger(),
      backoff: { baseMs: 5, maxMs: 20 },
      watchTimeoutSeconds: 0.1,
      stallGraceSeconds: 0.1, // idle deadline 200 ms
      onStall: (idleMs) => stalls.push(idleMs),
      onEvent: (type, o) => events.push(`${type} ${o.metadata.name}`),
    });
    const b = sb("b", spec(), { resourceVersion: "12" });
    // 1: silent and never ending (a stalled connection); 2: delivers b, then hangs too.
    api.sessions.push({ events: [], end: "hang" }, { events: [{ type: "ADDED", object: b }], end: "hang" });
    const stop = new AbortController();
    const run = inf.run(stop.signal);
    await until(() => stalls.length >= 2 && api.watchRvs.length >= 3, "two stalls detected, watching a third time");
    stop.abort();
    await run;
    assert.deepEqual(stalls.slice(0, 2), [200, 200]);
    assert.deepEqual(api.watchRvs.slice(0, 3), ["11", "11", "12"], "resumed from the last resourceVersion each time");
    assert.equal(api.lists, 1, "a stall re-watches; it does not re-list");
    assert.deepEqual(events, ["ADDED a", "ADDED b"]);
    assert.ok(inf.get("default/a"), "the cache is kept through the stall");
  });
});

describe("KubeBindingSource", () => {
  async function started(api: FakeApi): Promise<{ src: KubeBindingSource; changes: string[][]; stop: () => Promise<void> }> {
    const changes: string[][] = [];
    const src = new KubeBindingSource({ client: api, logger: silentLogger(), namespaces: [], onChange: (k) => changes.push([...k]) });
    const ctl = new AbortController();
    const run = src.run(ctl.signal);
    await until(() => src.synced(), "synced");
    return {
      src,
      changes,
      stop: async () => {
        ctl.abort();
        await run;
      },
    };
  }

  it("hands valid bindings with the finalizer to reconcilers (with generation); gates those without it", async () => {
    const api = new FakeApi();
    api.put(sb("with", spec()));
    api.put(sb("without", spec(), { finalizers: [] }));
    const { src, changes, stop } = await started(api);
    assert.equal(src.get("default/with")?.metadata.generation, 1);
    assert.equal(src.get("default/with")?.spec.backends.protocol, "tcp", "schema defaults applied");
    assert.equal(src.get("default/without"), undefined);
    assert.equal(src.needsFinalizer("default/without"), true);
    assert.equal(src.needsFinalizer("default/with"), false);
    assert.deepEqual(changes, [["default/with"]]);
    await stop();
  });

  it("an invalid edit keeps the last valid version and reports the field; other bindings unaffected", async () => {
    const api = new FakeApi();
    api.put(sb("web", spec(80)));
    api.put(sb("other", { ...spec(81), service: { name: "other" } }));
    const bad = api.put(sb("web", spec(70000), { generation: 2 }));
    api.sessions.push({ events: [{ type: "MODIFIED", object: bad }], end: "hang" });
    // The first list already returns the bad version: re-create the scenario with a valid one first.
    api.objects.set("default/web", { ...bad, spec: spec(80), metadata: { ...bad.metadata, generation: 1, resourceVersion: "5" } });
    const { src, stop } = await started(api);
    await until(() => src.problemsOf("default/web").length > 0, "problem reported");
    assert.equal(src.get("default/web")?.spec.backends.port, 80, "last valid version kept");
    assert.equal(src.get("default/web")?.metadata.generation, 1);
    assert.equal(src.problemsOf("default/web")[0]?.field, "spec.backends.port");
    assert.deepEqual(src.problemsOf("default/other"), []);
    assert.ok(src.get("default/other"));
    await stop();
  });

  it("a deleting object is absent for reconcilers and its key is reported; conflicts reject the newcomer", async () => {
    const api = new FakeApi();
    api.put(sb("first", spec(80, "same.conf")));
    const second = sb("second", { ...spec(80, "same.conf"), service: { name: "second" } }, { resourceVersion: "50" });
    api.sessions.push({ events: [{ type: "ADDED", object: second }], end: "hang" });
    const one = await started(api);
    await until(() => one.src.problemsOf("default/second").length > 0, "conflict reported");
    assert.match(one.src.problemsOf("default/second")[0]?.message ?? "", /already used by binding default\/first/);
    assert.equal(one.src.get("default/second"), undefined);
    assert.ok(one.src.get("default/first"), "the binding that was there first keeps its output");
    await one.stop();
    // A restart finds first being deleted: absent, its key reported; second (no conflict left) appears.
    api.put(sb("first", spec(80, "same.conf"), { deletionTimestamp: "2026-01-01T00:00:00Z" }));
    api.put(second);
    const two = await started(api);
    assert.equal(two.src.get("default/first"), undefined);
    assert.ok(two.src.get("default/second"));
    assert.ok(two.changes.flat().includes("default/first"), "deleting key reported so its registrations get cleaned");
    await two.stop();
  });
});

/** An API that serves namespaced collections by path, and records every path read. */
class NamespacedApi implements KubeClient {
  readonly server = "fake";
  readonly paths: string[] = [];
  /** Per namespace, how many more lists fail with 403 (missing RBAC). */
  readonly forbidden = new Map<string, number>();

  constructor(
    readonly objects: readonly KubeObject[],
    /** Objects a misbehaving server slips into every namespaced list. */
    readonly extra: readonly KubeObject[] = [],
  ) {}

  request<T>(method: string, path: string): Promise<T> {
    assert.equal(method, "GET", path);
    this.paths.push(path);
    const ns = /^\/apis\/dockbind\.io\/v1alpha1\/namespaces\/([^/]+)\/servicebindings$/.exec(path)?.[1];
    if (ns === undefined) return Promise.reject(new KubeApiError(403, "Forbidden", `cluster-wide ${path} is forbidden`));
    const left = this.forbidden.get(ns) ?? 0;
    if (left > 0) {
      this.forbidden.set(ns, left - 1);
      return Promise.reject(new KubeApiError(403, "Forbidden", `${path} is forbidden`));
    }
    const items = [...this.objects.filter((o) => o.metadata.namespace === ns), ...this.extra];
    return Promise.resolve({ items, metadata: { resourceVersion: "7" } } as T);
  }

  async watch(path: string, _onEvent: (ev: WatchEvent) => void, opts: WatchOpts): Promise<void> {
    this.paths.push(`watch ${path}`);
    if (opts.signal.aborted) return;
    await new Promise<void>((resolve) => {
      opts.signal.addEventListener("abort", () => {
        resolve();
      });
    });
  }
}

describe("KubeBindingSource with watched namespaces", () => {
  const inNs = (ns: string, name: string): KubeObject => {
    const o = sb(name, { ...spec(), service: { name: `${ns}-${name}` } });
    return { ...o, metadata: { ...o.metadata, namespace: ns } };
  };

  it("lists and watches only the watched namespaces, never cluster-wide, and holds nothing from elsewhere", async () => {
    const api = new NamespacedApi([inNs("a", "web"), inNs("b", "web"), inNs("c", "web")], [inNs("c", "leaked")]);
    const changes: string[][] = [];
    const src = new KubeBindingSource({ client: api, logger: silentLogger(), namespaces: ["a", "b"], onChange: (k) => changes.push([...k]) });
    const ctl = new AbortController();
    const run = src.run(ctl.signal);
    await until(() => src.synced() && api.paths.filter((p) => p.startsWith("watch ")).length === 2, "synced and watching");
    ctl.abort();
    await run;
    const base = "/apis/dockbind.io/v1alpha1/namespaces";
    assert.deepEqual([...new Set(api.paths)].sort(), [
      `${base}/a/servicebindings`,
      `${base}/b/servicebindings`,
      `watch ${base}/a/servicebindings`,
      `watch ${base}/b/servicebindings`,
    ]);
    assert.deepEqual(
      src
        .list()
        .map((b) => `${b.metadata.namespace}/${b.metadata.name}`)
        .sort(),
      ["a/web", "b/web"],
    );
    assert.equal(src.object("c/web"), undefined);
    assert.equal(src.object("c/leaked"), undefined, "an object outside the watched namespaces is never stored");
    assert.equal(src.needsFinalizer("c/leaked"), false);
    assert.deepEqual(changes.flat().sort(), ["a/web", "b/web"]);
  });

  it("is synced only once every namespace listed: a namespace denied for a while holds back the whole set", async () => {
    const api = new NamespacedApi([inNs("a", "web"), inNs("b", "web")]);
    api.forbidden.set("b", 1);
    const changes: string[][] = [];
    const src = new KubeBindingSource({ client: api, logger: silentLogger(), namespaces: ["a", "b"], onChange: (k) => changes.push([...k]) });
    const ctl = new AbortController();
    const run = src.run(ctl.signal);
    await until(() => api.paths.includes("watch /apis/dockbind.io/v1alpha1/namespaces/a/servicebindings"), "a synced and watching");
    assert.equal(src.synced(), false, "b has not listed yet");
    assert.deepEqual(changes, [], "nothing reported before every namespace is known");
    for (let i = 0; i < 100 && !src.synced(); i++) await tick(10); // the retry after the 403 comes after ~200 ms
    assert.equal(src.synced(), true);
    ctl.abort();
    await run;
    assert.deepEqual(changes, [["a/web", "b/web"]], "the whole initial state at once");
  });
});
