/**
 * The Docker cache is built from `GET /containers/json` (no inspect) unless
 * registrator-compat needs Config.Env; a container named by a network
 * connect is inspected either way and cached in its list view (asListed).
 * Against the REAL engine: the list entry and the list view of the inspect
 * of the same containers must be the same ContainerInfo, including a
 * container with a hostname of its own and one on two networks.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import Docker from "dockerode";
import { asListed, fromInspect, fromListEntry } from "../../src/sources/docker/inspect.js";
import { createTestNetwork, removeContainer, runBackend } from "../support/docker.js";
import { ensureDockerd } from "../support/dockerd.js";
import { ensureBackendImage } from "../support/image.js";
import { run } from "../support/exec.js";

const docker = new Docker({ socketPath: "/var/run/docker.sock" });
const ids: string[] = [];
const NET = `dockbind-lvi-${process.pid}`;

before(async () => {
  await ensureDockerd();
  await ensureBackendImage();
  ids.push((await runBackend({ name: `lvi-published-${process.pid}`, labels: { app: "lvi", tier: "front" }, env: { NAME: "a" } })).id);
  ids.push((await runBackend({ name: `lvi-exposed-${process.pid}`, labels: { app: "lvi" }, env: { NAME: "b" }, publish: "none" })).id);
  await createTestNetwork(NET);
  const twoNets = await runBackend({ name: `lvi-twonets-${process.pid}`, env: { NAME: "c" }, publish: "none", runArgs: ["--hostname", "own-name"] });
  await run("docker", ["network", "connect", NET, twoNets.id], { check: true });
  ids.push(twoNets.id);
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
  await run("docker", ["network", "rm", NET]);
});

test("list entries and the list view of inspects are the same ContainerInfo", async () => {
  const listed = await docker.listContainers({ all: false, filters: { id: ids } });
  assert.equal(listed.length, ids.length);
  for (const entry of listed) {
    const fromList = fromListEntry(entry);
    const fromFull = fromInspect(await docker.getContainer(entry.Id).inspect());
    assert.deepEqual(fromList, asListed(fromFull), entry.Names[0]);
    assert.ok(fromList.ports.length > 0, "ports are read");
    assert.ok(Object.keys(fromList.networks).length > 0, "networks are read");
    if (entry.Id === ids[2]) {
      assert.equal(fromFull.hostname, "own-name");
      assert.deepEqual(Object.keys(fromList.networks).sort(), ["bridge", NET].sort());
    }
  }
});
