/**
 * Entry point of test/bed/ensure.sh: shared dockerd up and backend image built.
 * One implementation (test/support/*) serves both the Makefile and the tests.
 */
import { ensureDockerd } from "../support/dockerd.js";
import { ensureBackendImage } from "../support/image.js";

await ensureDockerd();
console.log("ensure: dockerd ready");
console.log(`ensure: image ${await ensureBackendImage()} ready`);
