import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, it } from "node:test";
import { FileBindingSource } from "../../src/sources/files/fileBindingSource.js";
import { parseBindingFile } from "../../src/sources/files/parseBindingFile.js";
import type { BindingProblem } from "../../src/ports/bindingStore.js";
import { silentLogger } from "../../src/runtime/logger.js";

interface Opts {
  readonly port?: number;
  readonly namespace?: string;
  readonly output?: string;
  readonly listenPort?: number;
  readonly serverName?: string;
}

function binding(name: string, o: Opts = {}): string {
  const lines = [
    "apiVersion: dockbind.io/v1alpha1",
    "kind: ServiceBinding",
    "metadata:",
    `  name: ${name}`,
    ...(o.namespace !== undefined ? [`  namespace: ${o.namespace}`] : []),
    "spec:",
    "  service:",
    `    name: ${name}`,
    "  backends:",
    "    selector:",
    "      matchLabels:",
    `        app: ${name}`,
    `    port: ${o.port ?? 8080}`,
  ];
  if (o.output !== undefined) {
    lines.push("  loadBalancer:", "    listen:", `      port: ${o.listenPort ?? 80}`, `    output: ${o.output}`);
    if (o.serverName !== undefined) lines.push(`    serverName: ${o.serverName}`);
  }
  return lines.join("\n");
}

let dir = "";
let changes: string[][] = [];
let source: FileBindingSource;

function write(name: string, ...docs: string[]): void {
  writeFileSync(join(dir, name), `${docs.join("\n---\n")}\n`);
}

function problemsFor(key: string): BindingProblem[] {
  return source.problems().filter((p) => p.key === key);
}

/** The single problem reported for `key`. */
function onlyProblemFor(key: string): BindingProblem {
  const found = problemsFor(key);
  assert.equal(found.length, 1, JSON.stringify(source.problems()));
  const p = found[0];
  assert.ok(p !== undefined);
  return p;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "dockbind-bindings-"));
  changes = [];
  source = new FileBindingSource({ dir, logger: silentLogger(), onChange: (keys) => changes.push([...keys].sort()) });
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("FileBindingSource: loading", () => {
  it("is not synced before the first scan", () => {
    assert.equal(source.synced(), false);
  });

  it("loads valid files and reports every key as changed once", async () => {
    write("a.yaml", binding("web"), binding("api", { namespace: "shop" }));
    write("b.yml", binding("db"));
    await source.rescan();
    assert.equal(source.synced(), true);
    assert.equal(source.get("default/web")?.spec.backends.port, 8080);
    assert.equal(source.get("shop/api")?.metadata.namespace, "shop");
    assert.ok(source.get("default/db") !== undefined);
    assert.equal(source.list().length, 3);
    assert.deepEqual(source.problems(), []);
    assert.deepEqual(changes, [["default/db", "default/web", "shop/api"]]);
  });

  it("loads .json files and ignores other and hidden files", async () => {
    writeFileSync(
      join(dir, "c.json"),
      JSON.stringify({
        apiVersion: "dockbind.io/v1alpha1",
        kind: "ServiceBinding",
        metadata: { name: "json" },
        spec: { service: { name: "json" }, backends: { selector: { matchLabels: { app: "json" } }, port: 1 } },
      }),
    );
    write("notes.txt", binding("txt"));
    write(".hidden.yaml", binding("hidden"));
    write("backup.yaml~", binding("tilde"));
    await source.rescan();
    assert.deepEqual(
      source.list().map((b) => b.metadata.name),
      ["json"],
    );
  });

  it("an empty directory is synced with no bindings and no onChange", async () => {
    await source.rescan();
    assert.equal(source.synced(), true);
    assert.deepEqual(source.list(), []);
    assert.deepEqual(changes, []);
  });

  it("a missing directory does not reject and stays unsynced", async () => {
    rmSync(dir, { recursive: true, force: true });
    await source.rescan();
    assert.equal(source.synced(), false);
  });

  it("a rescan without changes calls onChange with nothing", async () => {
    write("a.yaml", binding("web"));
    await source.rescan();
    await source.rescan();
    assert.equal(changes.length, 1);
  });

  it("parses only files whose text changed; a rescan of unchanged files parses nothing", async () => {
    const parsed: string[] = [];
    const counting = new FileBindingSource({
      dir,
      logger: silentLogger(),
      onChange: (keys) => changes.push([...keys].sort()),
      parseFile: (text) => {
        parsed.push(/name: (\S+)/.exec(text)?.[1] ?? "?");
        return parseBindingFile(text);
      },
    });
    write("a.yaml", binding("web"));
    write("b.yaml", binding("api"));
    await counting.rescan();
    assert.deepEqual(parsed.sort(), ["api", "web"]);
    parsed.length = 0;
    await counting.rescan();
    assert.deepEqual(parsed, [], "unchanged files are not parsed again");
    write("b.yaml", binding("api", { port: 9090 }));
    await counting.rescan();
    assert.deepEqual(parsed, ["api"]);
    assert.equal(counting.get("default/api")?.spec.backends.port, 9090);
    assert.equal(counting.get("default/web")?.spec.backends.port, 8080, "the unchanged file's binding is kept");
    unlinkSync(join(dir, "a.yaml"));
    await counting.rescan();
    assert.equal(counting.get("default/web"), undefined, "a deleted file is noticed although nothing was parsed");
    assert.deepEqual(changes.at(-1), ["default/web"]);
  });
});

describe("FileBindingSource: bad input affects only itself", () => {
  it("an edit to an invalid version keeps the last good binding and names file, document and field", async () => {
    write("a.yaml", binding("web"), binding("api"));
    await source.rescan();
    changes = [];
    write("a.yaml", binding("web"), binding("api", { port: 0 }));
    await source.rescan();
    assert.equal(source.get("default/api")?.spec.backends.port, 8080, "last good version kept");
    assert.ok(source.get("default/web") !== undefined);
    assert.deepEqual(changes, [], "nothing changed for consumers");
    const problem = onlyProblemFor("default/api");
    assert.equal(problem.source, join(dir, "a.yaml"));
    assert.equal(problem.document, 2);
    assert.equal(problem.field, "spec.backends.port");
  });

  it("fixing the document replaces the kept version and clears the problem", async () => {
    write("a.yaml", binding("web"));
    await source.rescan();
    write("a.yaml", binding("web", { port: 0 }));
    await source.rescan();
    changes = [];
    write("a.yaml", binding("web", { port: 9090 }));
    await source.rescan();
    assert.equal(source.get("default/web")?.spec.backends.port, 9090);
    assert.deepEqual(source.problems(), []);
    assert.deepEqual(changes, [["default/web"]]);
  });

  it("a new binding that is invalid from the start is simply absent", async () => {
    write("a.yaml", binding("web", { port: 0 }));
    await source.rescan();
    assert.equal(source.get("default/web"), undefined);
    assert.equal(problemsFor("default/web").length, 1);
    assert.deepEqual(changes, []);
  });

  it("breaking the YAML syntax keeps all of that file's bindings", async () => {
    write("a.yaml", binding("web"), binding("api"));
    write("b.yaml", binding("db"));
    await source.rescan();
    changes = [];
    writeFileSync(join(dir, "a.yaml"), `${binding("web")}\n---\nspec: [unclosed\n`);
    write("b.yaml", binding("db", { port: 5432 }));
    await source.rescan();
    assert.ok(source.get("default/web") !== undefined);
    assert.ok(source.get("default/api") !== undefined, "even the document that disappeared behind the syntax error");
    assert.equal(source.get("default/db")?.spec.backends.port, 5432, "other files still update");
    assert.deepEqual(changes, [["default/db"]]);
    const problems = source.problems();
    assert.ok(
      problems.some((p) => p.source === join(dir, "a.yaml") && p.field === "(yaml)"),
      JSON.stringify(problems),
    );
  });

  it("a YAML alias bomb in one file does not block the other files", async () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]", "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]", "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]"];
    writeFileSync(join(dir, "a.yaml"), `${bomb.join("\n")}\n`);
    write("b.yaml", binding("web"));
    await source.rescan();
    assert.equal(source.synced(), true);
    assert.ok(source.get("default/web") !== undefined);
    assert.ok(source.problems().some((p) => p.source === join(dir, "a.yaml") && p.field === "(yaml)"));
  });

  it("an unreadable entry (a directory named *.yaml) is reported and the rest loads", async () => {
    mkdirSync(join(dir, "sub.yaml"));
    write("a.yaml", binding("web"));
    await source.rescan();
    assert.ok(source.get("default/web") !== undefined);
    assert.ok(source.problems().some((p) => p.source === join(dir, "sub.yaml") && p.field === "(file)"));
  });

  it("deleting the file removes its bindings", async () => {
    write("a.yaml", binding("web"), binding("api"));
    write("b.yaml", binding("db"));
    await source.rescan();
    changes = [];
    unlinkSync(join(dir, "a.yaml"));
    await source.rescan();
    assert.equal(source.get("default/web"), undefined);
    assert.equal(source.get("default/api"), undefined);
    assert.ok(source.get("default/db") !== undefined);
    assert.deepEqual(changes, [["default/api", "default/web"]]);
  });

  it("removing a document removes only that binding", async () => {
    write("a.yaml", binding("web"), binding("api"));
    await source.rescan();
    changes = [];
    write("a.yaml", binding("web"));
    await source.rescan();
    assert.equal(source.get("default/api"), undefined);
    assert.deepEqual(changes, [["default/api"]]);
  });

  it("deleting a file whose document was invalid removes the kept binding too", async () => {
    write("a.yaml", binding("web"));
    await source.rescan();
    write("a.yaml", binding("web", { port: 0 }));
    await source.rescan();
    changes = [];
    unlinkSync(join(dir, "a.yaml"));
    await source.rescan();
    assert.equal(source.get("default/web"), undefined);
    assert.deepEqual(source.problems(), []);
    assert.deepEqual(changes, [["default/web"]]);
  });
});

describe("FileBindingSource: conflicts", () => {
  it("the same binding name in two files: the later file's one is rejected", async () => {
    write("a.yaml", binding("web", { port: 1111 }));
    write("b.yaml", binding("web", { port: 2222 }));
    await source.rescan();
    assert.equal(source.get("default/web")?.spec.backends.port, 1111);
    const problem = onlyProblemFor("default/web");
    assert.equal(problem.source, join(dir, "b.yaml"));
    assert.equal(problem.document, 1);
    assert.match(problem.message, /already defined in .*a\.yaml/);
  });

  it("the same binding name twice in one file: the later document is rejected", async () => {
    write("a.yaml", binding("web", { port: 1111 }), binding("web", { port: 2222 }));
    await source.rescan();
    assert.equal(source.get("default/web")?.spec.backends.port, 1111);
    assert.equal(problemsFor("default/web")[0]?.document, 2);
  });

  it("the same name in different namespaces is not a conflict", async () => {
    // Different ports: the same selector and port in both would claim one container port twice.
    write("a.yaml", binding("web", { namespace: "a" }), binding("web", { namespace: "b", port: 2222 }));
    await source.rescan();
    assert.equal(source.list().length, 2);
    assert.deepEqual(source.problems(), []);
  });

  it("two bindings with the same loadBalancer.output: the pre-existing one wins", async () => {
    write("z.yaml", binding("zeta", { output: "shared.conf", listenPort: 8001 }));
    await source.rescan();
    changes = [];
    // "alpha" sorts first by file and by key: only being pre-existing makes zeta win.
    write("a.yaml", binding("alpha", { output: "shared.conf", listenPort: 8002 }));
    await source.rescan();
    assert.ok(source.get("default/zeta") !== undefined);
    assert.equal(source.get("default/alpha"), undefined);
    assert.deepEqual(changes, [], "the existing binding is untouched and the new one never appeared");
    const problem = onlyProblemFor("default/alpha");
    assert.equal(problem.field, "spec.loadBalancer.output");
    assert.equal(problem.source, join(dir, "a.yaml"));
    assert.match(problem.message, /default\/zeta/);
  });

  it("same output in the first scan: key order decides", async () => {
    write("a.yaml", binding("beta", { output: "shared.conf", listenPort: 8001 }));
    write("b.yaml", binding("alpha", { output: "shared.conf", listenPort: 8002 }));
    await source.rescan();
    assert.ok(source.get("default/alpha") !== undefined);
    assert.equal(source.get("default/beta"), undefined);
  });

  it("the same listen socket conflicts unless serverName is set", async () => {
    write("a.yaml", binding("one", { output: "one.conf", listenPort: 8080 }));
    await source.rescan();
    write("b.yaml", binding("two", { output: "two.conf", listenPort: 8080 }));
    await source.rescan();
    assert.equal(source.get("default/two"), undefined);
    assert.equal(problemsFor("default/two")[0]?.field, "spec.loadBalancer.listen");
    write("b.yaml", binding("two", { output: "two.conf", listenPort: 8080, serverName: "two.example.com" }));
    await source.rescan();
    assert.ok(source.get("default/two") !== undefined);
    assert.deepEqual(source.problems(), []);
  });

  it("once the conflict is resolved the rejected binding appears", async () => {
    write("z.yaml", binding("zeta", { output: "shared.conf", listenPort: 8001 }));
    await source.rescan();
    write("a.yaml", binding("alpha", { output: "shared.conf", listenPort: 8002 }));
    await source.rescan();
    assert.equal(source.get("default/alpha"), undefined);
    changes = [];
    write("a.yaml", binding("alpha", { output: "alpha.conf", listenPort: 8002 }));
    await source.rescan();
    assert.ok(source.get("default/alpha") !== undefined);
    assert.deepEqual(changes, [["default/alpha"]]);
  });
});

describe("FileBindingSource: onChange", () => {
  it("receives exactly the keys that appeared, changed or vanished", async () => {
    write("a.yaml", binding("keep"), binding("edit"), binding("gone"));
    await source.rescan();
    changes = [];
    write("a.yaml", binding("keep"), binding("edit", { port: 9999 }), binding("new"));
    await source.rescan();
    assert.deepEqual(changes, [["default/edit", "default/gone", "default/new"]]);
  });

  it("moving a binding to another file unchanged is not a change", async () => {
    write("a.yaml", binding("web"));
    await source.rescan();
    changes = [];
    unlinkSync(join(dir, "a.yaml"));
    write("b.yaml", binding("web"));
    await source.rescan();
    assert.ok(source.get("default/web") !== undefined);
    assert.deepEqual(changes, []);
  });
});

describe("FileBindingSource: transient file states and the delete delay", () => {
  let now = 1_000_000;
  let mass: [number, number][] = [];
  const delayed = (deleteDelayMs: number): FileBindingSource =>
    new FileBindingSource({
      dir,
      logger: silentLogger(),
      onChange: (keys) => changes.push([...keys].sort()),
      deleteDelayMs,
      now: () => now,
      onMassDeletion: (deleting, total) => mass.push([deleting, total]),
    });
  /** A source with a 10 s delay that loaded web (a.yaml), api (b.yaml) and db (c.yaml); `changes` reset. */
  const threeFilesLoaded = async (): Promise<FileBindingSource> => {
    const s = delayed(10_000);
    write("a.yaml", binding("web"));
    write("b.yaml", binding("api"));
    write("c.yaml", binding("db"));
    await s.rescan();
    changes = [];
    return s;
  };
  beforeEach(() => {
    now = 1_000_000;
    mass = [];
  });

  it("a file truncated to zero bytes or whitespace keeps its bindings, reports why, and changes nothing (even with no delay)", async () => {
    const s = delayed(0);
    write("a.yaml", binding("web"), binding("api"));
    await s.rescan();
    changes = [];
    for (const text of ["", "\n  \n"]) {
      writeFileSync(join(dir, "a.yaml"), text);
      await s.rescan();
      assert.deepEqual(
        s
          .list()
          .map((b) => b.metadata.name)
          .sort(),
        ["api", "web"],
      );
      assert.match(
        s
          .problems()
          .map((p) => `${p.field}: ${p.message}`)
          .join("\n"),
        /\(file\): file is empty/,
      );
      assert.deepEqual(s.deletions(), []);
    }
    write("a.yaml", binding("web"), binding("api"));
    await s.rescan();
    assert.deepEqual(s.problems(), []);
    assert.deepEqual(changes, []);
  });

  it("a file cut off mid-document keeps every binding it had (the missing one and the invalid one)", async () => {
    const s = delayed(0);
    write("a.yaml", binding("web"), binding("api", { port: 81 }));
    await s.rescan();
    changes = [];
    const full = `${binding("web")}\n---\n${binding("api", { port: 81 })}\n`;
    writeFileSync(join(dir, "a.yaml"), full.slice(0, full.indexOf("name: api") + 5));
    await s.rescan();
    assert.equal(s.get("default/web")?.spec.backends.port, 8080);
    assert.equal(s.get("default/api")?.spec.backends.port, 81);
    assert.ok(s.problems().length > 0);
    assert.deepEqual(changes, []);
  });

  it("a removed file is deleted only after the delay, listed in deletions() meanwhile", async () => {
    const s = await threeFilesLoaded();
    unlinkSync(join(dir, "a.yaml"));
    await s.rescan();
    assert.ok(s.get("default/web") !== undefined, "still served during the delay");
    assert.deepEqual(
      s.deletions().map((d) => [d.key, d.deleteAt - d.since, d.mass]),
      [["default/web", 10_000, false]],
    );
    assert.deepEqual(changes, []);
    now += 9_999;
    await s.rescan();
    assert.ok(s.get("default/web") !== undefined);
    now += 1;
    await s.rescan();
    assert.equal(s.get("default/web"), undefined);
    assert.deepEqual(s.deletions(), []);
    assert.deepEqual(changes, [["default/web"]]);
    assert.deepEqual(mass, [], "1 of 3 is not a mass deletion");
  });

  it("a file (or document) back within the delay cancels the deletion: no change at all", async () => {
    const s = delayed(10_000);
    write("a.yaml", binding("web"), binding("api"));
    await s.rescan();
    changes = [];
    write("a.yaml", binding("web"));
    await s.rescan();
    assert.deepEqual(
      s.deletions().map((d) => d.key),
      ["default/api"],
    );
    now += 5_000;
    unlinkSync(join(dir, "a.yaml"));
    await s.rescan();
    assert.deepEqual(
      s
        .deletions()
        .map((d) => [d.key, d.deleteAt - now])
        .sort(),
      [
        ["default/api", 5_000],
        ["default/web", 10_000],
      ],
    );
    now += 4_000;
    write("a.yaml", binding("web"), binding("api"));
    await s.rescan();
    assert.deepEqual(s.deletions(), []);
    now += 60_000;
    await s.rescan();
    assert.equal(s.list().length, 2);
    assert.deepEqual(changes, []);
  });

  it("a scan deleting more than half of the bindings is reported once, and held like any deletion", async () => {
    const s = await threeFilesLoaded();
    unlinkSync(join(dir, "a.yaml"));
    unlinkSync(join(dir, "b.yaml"));
    await s.rescan();
    await s.rescan();
    assert.deepEqual(mass, [[2, 3]]);
    assert.ok(s.deletions().every((d) => d.mass));
    assert.equal(s.list().length, 3);
    now += 10_000;
    await s.rescan();
    assert.deepEqual(changes, [["default/api", "default/web"]]);
    assert.equal(s.list().length, 1);
  });

  it("a delay of 0 deletes at once", async () => {
    const s = delayed(0);
    write("a.yaml", binding("web"));
    await s.rescan();
    changes = [];
    unlinkSync(join(dir, "a.yaml"));
    await s.rescan();
    assert.deepEqual(s.list(), []);
    assert.deepEqual(changes, [["default/web"]]);
    assert.deepEqual(mass, [[1, 1]], "deleting the only binding is deleting all of them");
  });

  it("deletes by itself when the delay runs out (its own timer, no other event)", async () => {
    const s = new FileBindingSource({
      dir,
      logger: silentLogger(),
      onChange: (keys) => changes.push([...keys].sort()),
      deleteDelayMs: 150,
      pollIntervalMs: 60_000,
    });
    write("a.yaml", binding("web"));
    write("b.yaml", binding("api"));
    const stop = new AbortController();
    const running = s.run(stop.signal);
    await s.rescan();
    changes = [];
    unlinkSync(join(dir, "a.yaml"));
    await s.rescan();
    assert.ok(s.get("default/web") !== undefined);
    const deadline = Date.now() + 5_000;
    while (s.get("default/web") !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    stop.abort();
    await running;
    assert.equal(s.get("default/web"), undefined);
    assert.deepEqual(changes, [["default/web"]]);
  });
});
