/**
 * The Docker cache is built from `GET /containers/json` (no inspect) unless
 * registrator-compat needs Config.Env. Against the REAL engine: the list
 * entry and the inspect of the same containers must give the same
 * ContainerInfo apart from env and hostname.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import Docker from "dockerode";
import { fromInspect, fromListEntry } from "../../src/sources/docker/inspect.js";
import { removeContainer, runBackend } from "../support/docker.js";
import { ensureDockerd } from "../support/dockerd.js";
import { ensureBackendImage } from "../support/image.js";
import { run } from "../support/exec.js";

const docker = new Docker({ socketPath: "/var/run/docker.sock" });
const ids: string[] = [];

before(async () => {
  await ensureDockerd();
  await ensureBackendImage();
  ids.push((await runBackend({ name: `lvi-published-${process.pid}`, labels: { app: "lvi", tier: "front" }, env: { NAME: "a" } })).id);
  ids.push((await runBackend({ name: `lvi-exposed-${process.pid}`, labels: { app: "lvi" }, env: { NAME: "b" }, publish: "none" })).id);
  const udp = await run(
    "docker",
    [
      "run",
      "-d",
      "--label",
      "dockbind-test=1",
      "--label",
      `dockbind-test.pid=${process.pid}`,
      "--name",
      `lvi-udp-${process.pid}`,
      "-p",
      "127.0.0.1::53/udp",
      "-p",
      "127.0.0.1::80",
      "local/dockbind-web:1",
    ],
    { check: true },
  );
  ids.push(udp.stdout.trim());
});

after(async () => {
  for (const id of ids) await removeContainer(id);
});

test("list entries and inspects normalise to the same ContainerInfo (but env/hostname)", async () => {
  const listed = await docker.listContainers({ all: false, filters: { id: ids } });
  assert.equal(listed.length, ids.length);
  for (const entry of listed) {
    const fromList = fromListEntry(entry);
    const fromFull = fromInspect(await docker.getContainer(entry.Id).inspect());
    assert.deepEqual({ ...fromList, env: {}, hostname: "" }, { ...fromFull, env: {}, hostname: "" }, entry.Names[0]);
    assert.ok(fromList.ports.length > 0, "ports are read");
    assert.ok(Object.keys(fromList.networks).length > 0, "networks are read");
  }
});
