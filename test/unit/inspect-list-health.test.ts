import assert from "node:assert/strict";
import { test } from "node:test";
import { healthFromListStatus } from "../../src/sources/docker/inspect.js";

test("health is read from a list entry's Status text", () => {
  assert.equal(healthFromListStatus("Up 5 minutes (healthy)"), "healthy");
  assert.equal(healthFromListStatus("Up 2 seconds (health: starting)"), "starting");
  assert.equal(healthFromListStatus("Up 1 hour (unhealthy)"), "unhealthy");
  assert.equal(healthFromListStatus("Up 3 minutes"), "none");
  assert.equal(healthFromListStatus("Exited (0) 2 minutes ago"), "none");
});
