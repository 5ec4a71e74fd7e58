import assert from "node:assert/strict";
import { test } from "node:test";
import type { ContainerInfo } from "../../src/domain/types.js";
import { healthFromListStatus, sameContainer } from "../../src/sources/docker/inspect.js";

test("health is read from a list entry's Status text", () => {
  assert.equal(healthFromListStatus("Up 5 minutes (healthy)"), "healthy");
  assert.equal(healthFromListStatus("Up 2 seconds (health: starting)"), "starting");
  assert.equal(healthFromListStatus("Up 1 hour (unhealthy)"), "unhealthy");
  assert.equal(healthFromListStatus("Up 3 minutes"), "none");
  assert.equal(healthFromListStatus("Exited (0) 2 minutes ago"), "none");
});

test("sameContainer: equal states regardless of record key order; any field difference counts", () => {
  const base: ContainerInfo = {
    id: "abc",
    name: "web-1",
    image: "img:1",
    hostname: "abc",
    labels: { app: "web", tier: "front" },
    env: { A: "1" },
    running: true,
    health: "none",
    ports: [{ privatePort: 80, protocol: "tcp", hostIP: "0.0.0.0", hostPort: 32768 }],
    networks: { bridge: "172.17.0.2" },
  };
  assert.equal(sameContainer(base, { ...base, labels: { tier: "front", app: "web" } }), true);
  assert.equal(sameContainer(base, { ...base, draining: false }), true);
  const changed: Partial<ContainerInfo>[] = [
    { name: "web-2" },
    { image: "img:2" },
    { hostname: "x" },
    { running: false },
    { health: "healthy" },
    { draining: true },
    { labels: { app: "web" } },
    { labels: { app: "web", tier: "back" } },
    { labels: { app: "web", tie: "front" } },
    { env: {} },
    { networks: { bridge: "172.17.0.3" } },
    { networks: { other: "172.17.0.2" } },
    { ports: [] },
    { ports: [{ privatePort: 80, protocol: "tcp", hostIP: "0.0.0.0", hostPort: 32769 }] },
    { ports: [{ privatePort: 80, protocol: "udp", hostIP: "0.0.0.0", hostPort: 32768 }] },
    { ports: [{ privatePort: 80, protocol: "tcp", hostPort: 32768 }] },
  ];
  for (const d of changed) assert.equal(sameContainer(base, { ...base, ...d }), false, JSON.stringify(d));
});
