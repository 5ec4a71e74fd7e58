/**
 * dockerClient.ts loads dockerode without its BuildKit session support and docker-modem's ssh
 * transport (never used by dockbind), and the client it builds still talks to an engine: a list and
 * an event stream against a local HTTP server on a unix socket.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { dockerClient } from "../../src/clients/docker/dockerClient.js";

const require = createRequire(import.meta.url);
let server: Server;
let dir = "";
const paths: string[] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "dockbind-docker-load-"));
  server = createServer((req, res) => {
    paths.push(req.url ?? "");
    res.setHeader("content-type", "application/json");
    res.end(req.url?.includes("/containers/json") === true ? '[{"Id":"abc","Names":["/web"],"Labels":{}}]' : "{}");
  });
  await new Promise<void>((r) => server.listen(join(dir, "docker.sock"), r));
});

after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("dockerode as dockerClient loads it", () => {
  it("leaves gRPC, protobufjs and ssh2 unloaded", () => {
    const loaded = Object.keys(require.cache);
    for (const pkg of ["@grpc/grpc-js", "@grpc/proto-loader", "protobufjs", "ssh2"]) {
      assert.deepEqual(
        loaded.filter((p) => p.includes(`/node_modules/${pkg}/`)),
        [],
        `${pkg} is not loaded`,
      );
    }
    assert.ok(
      loaded.some((p) => p.includes("/node_modules/dockerode/")),
      "dockerode itself is loaded",
    );
  });

  it("the client it builds lists containers over a unix socket", async () => {
    const docker = dockerClient(`unix://${join(dir, "docker.sock")}`);
    const list = await docker.listContainers({ all: true });
    assert.deepEqual(
      list.map((c) => c.Id),
      ["abc"],
    );
    assert.ok(paths.some((p) => p.startsWith("/containers/json")));
  });

  it("what was left out fails loudly if ever reached", () => {
    const session = require(require.resolve("dockerode/lib/session.js", { paths: [require.resolve("dockerode")] })) as () => unknown;
    assert.throws(() => session(), /dockbind does not load dockerode's BuildKit sessions/);
  });
});
