/**
 * Issue #6 security:
 * - the controller works with READ-ONLY Docker access: behind an nginx that
 *   lets only GET/HEAD (and so the /events stream) reach the Docker socket and
 *   answers 403 to everything else, a full register -> serve -> deregister
 *   cycle works, and every request it made was a GET;
 * - generated files: mode and owner configurable (--lb-file-mode,
 *   --lb-file-owner), applied before the atomic rename, never world-writable
 *   (world-writable modes are refused at start-up), every version a reader
 *   can observe is complete.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError, fileMode, fileOwner } from "../../src/config/config.js";
import { controllerArgs, controllerCommand } from "../support/controller.js";
import { removeContainer, runBackend } from "../support/docker.js";
import { dockerApi, startReadOnlyDockerProxy, type ReadOnlyDockerProxy } from "../support/dockerProxy.js";
import { run } from "../support/exec.js";
import { upstreamServers, watchFile } from "../support/fsWatch.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { bindingYaml, startWorld, type World } from "../support/world.js";

let world: World;
let proxy: ReadOnlyDockerProxy;

before(async () => {
  world = await startWorld("security");
  proxy = await startReadOnlyDockerProxy();
});

after(async () => {
  await world.controller?.stop();
  await proxy.stop();
  await world.proxy.close();
  await cleanupAll();
});

describe("read-only Docker access", () => {
  it("the proxy refuses every state-changing call", async () => {
    assert.equal((await dockerApi(proxy.endpoint, "GET", "/containers/json")).status, 200);
    assert.equal((await dockerApi(proxy.endpoint, "POST", "/containers/create", { Image: "local/dockbind-web:1" })).status, 403);
    assert.equal((await dockerApi(proxy.endpoint, "DELETE", "/containers/does-not-matter?force=true")).status, 403);
    assert.equal((await dockerApi(proxy.endpoint, "POST", "/containers/does-not-matter/kill")).status, 403);
    assert.equal((await dockerApi(proxy.endpoint, "PUT", "/containers/does-not-matter/archive?path=/")).status, 403);
  });

  it("registers, serves and deregisters through a GET-only proxy, sending nothing but GETs", async () => {
    const mark = readFileSync(proxy.accessLog, "utf8").length;
    const port = await freePort();
    world.writeFile("ro.yaml", bindingYaml({ name: "ro", service: "sec-ro", app: "sec-ro", listenPort: port }));
    const c = await world.startController(["--docker-host", proxy.dockerHost]);
    const a = await runBackend({ name: "sec-ro-a", labels: { app: "sec-ro" }, env: { NAME: "sec-ro-a" } });
    await runBackend({ name: "sec-ro-b", labels: { app: "sec-ro" }, env: { NAME: "sec-ro-b" } });
    await world.servedExactly(port, ["sec-ro-a", "sec-ro-b"]);
    // The die event reaches the controller through the proxied /events stream.
    await removeContainer(a.id);
    await world.servedExactly(port, ["sec-ro-b"]);
    assert.equal((await world.health("sec-ro")).length, 1);
    await c.stop(); // the access log line of the /events stream is written when it closes
    world.controller = undefined;
    const lines = readFileSync(proxy.accessLog, "utf8").slice(mark).split("\n").filter(Boolean);
    assert.ok(
      lines.some((l) => /^GET \S*\/events\S* /.test(l)),
      `the events stream went through the proxy: ${lines.slice(0, 5).join(" | ")}`,
    );
    const bad = lines.filter((l) => !/^(GET|HEAD) /.test(l) || / 403$/.test(l));
    assert.deepEqual(bad, [], "the controller only ever sent GET requests to Docker");
    world.removeFile("ro.yaml");
  });
});

describe("generated files: mode, owner, atomicity", () => {
  it("refuses world-writable or malformed --lb-file-mode and malformed --lb-file-owner at start-up (exit 2)", async () => {
    const base = controllerArgs({
      bindingsDir: world.bindingsDir,
      consulAddr: world.proxy.addr,
      outputDir: world.nginx.confDir,
      nginxArgs: world.nginx.nginxArgs,
      node: "security-flags",
    });
    for (const v of ["0777", "0642", "666", "rw-r--r--", "0o644", "1644"]) assert.throws(() => fileMode(v), ConfigError, v);
    for (const v of ["0644", "640", "0600", "0440"]) assert.equal(fileMode(v) & 0o002, 0, v);
    for (const v of ["nginx:nginx", "-1:0", "1", "1:2:3", "99999999999:0"]) assert.throws(() => fileOwner(v), ConfigError, v);
    assert.deepEqual(fileOwner("101:65534"), { uid: 101, gid: 65534 });
    // And through the real command line (exit 2 = configuration error).
    for (const bad of [
      ["--lb-file-mode", "0666"],
      ["--lb-file-owner", "nginx:nginx"],
    ]) {
      const r = await run(process.execPath, [...controllerCommand(), ...base, ...bad], { timeoutMs: 60_000 });
      assert.equal(r.code, 2, `${bad.join(" ")}: exit ${r.code} ${r.stderr}`);
      assert.match(r.stderr, /--lb-file-(mode|owner)/);
    }
  });

  it("writes every generated file with the configured mode and owner, atomically, never world-writable", async () => {
    const port = await freePort();
    world.writeFile("files.yaml", bindingYaml({ name: "files", service: "sec-files", app: "sec-files", listenPort: port, check: "none" }));
    const file = join(world.nginx.confDir, "files.conf");
    const c = await world.startController(["--lb-file-mode", "0640", "--lb-file-owner", "1:65534"]);
    await waitFor(() => world.lbFile("files.conf"), { timeoutMs: 20_000, what: "files.conf" });
    const watch = watchFile(file, 2);
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      ids.push((await runBackend({ name: `sec-files-${n}`, labels: { app: "sec-files" }, env: { NAME: `sec-files-${n}` } })).id);
      await waitFor(() => upstreamServers(world.lbFile("files.conf")).length === n || undefined, { timeoutMs: 20_000, what: `${n} servers` });
    }
    for (const id of ids) await removeContainer(id);
    await waitFor(() => upstreamServers(world.lbFile("files.conf")).length === 0 || undefined, { timeoutMs: 20_000, what: "0 servers" });
    const versions = watch.stop().filter((v) => v.text !== undefined);
    assert.ok(versions.length >= 5, `observed ${versions.length} versions`);
    for (const v of versions) {
      // A reader only ever sees a whole file: the ownership header first, the closing brace of the server block last.
      assert.match(v.text ?? "", /^# dockbind-generated binding=default\/files\n[\s\S]*\}\n$/, "a partial file was visible");
    }
    const st = statSync(file);
    assert.equal(st.mode & 0o7777, 0o640, `mode ${(st.mode & 0o7777).toString(8)}`);
    assert.equal(st.uid, 1);
    assert.equal(st.gid, 65534);
    for (const name of readdirSync(world.nginx.confDir)) {
      const s = statSync(join(world.nginx.confDir, name));
      assert.equal(s.mode & 0o002, 0, `${name} is world-writable`);
      assert.ok(!name.endsWith(".tmp"), `temp file left: ${name}`);
    }
    // nginx (master as root) still loads it.
    assert.equal((await run("nginx", ["-t", ...world.nginx.nginxArgs])).code, 0);
    // Changing only the mode flag fixes existing files without rewriting or reloading them.
    await c.stop();
    const reloads = await world.nginx.reloadCount();
    const before = readFileSync(file, "utf8");
    await world.startController(["--lb-file-mode", "0600"]);
    await waitFor(() => (statSync(file).mode & 0o7777) === 0o600 || undefined, { timeoutMs: 20_000, what: "mode 0600 applied" });
    assert.equal(readFileSync(file, "utf8"), before);
    assert.equal(await world.nginx.reloadCount(), reloads, "a mode change alone does not reload nginx");
  });
});
