import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogger, type Logger } from "../../src/runtime/logger.js";

/** The lines the logger formats (its readable side), with its console transport silenced. */
function formatted(logger: Logger): { readonly lines: Record<string, unknown>[] } {
  logger.transports.forEach((t) => (t.silent = true));
  const lines: Record<string, unknown>[] = [];
  logger.on("data", (info: Record<string, unknown>) => lines.push(info));
  return { lines };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("createLogger", () => {
  it("never formats a line below its level, also through a child", async () => {
    const logger = createLogger({ level: "info", format: "json" });
    const out = formatted(logger);
    assert.equal(logger.debug("reconciled", { key: "a" }), logger, "a dropped call still chains");
    logger.child({ dockerNode: "b" }).debug("reconciled", { key: "b" });
    logger.info("registered", { serviceId: "web-1" });
    logger.child({ dockerNode: "b" }).warn("cannot read", { key: "c" });
    await tick();
    assert.deepEqual(
      out.lines.map((l) => l.message),
      ["registered", "cannot read"],
    );
    assert.equal(out.lines[1]?.dockerNode, "b");
  });

  it("formats debug lines at level debug", async () => {
    const logger = createLogger({ level: "debug", format: "json" });
    const out = formatted(logger);
    logger.debug("reconciled", { key: "a" });
    await tick();
    assert.deepEqual(
      out.lines.map((l) => [l.message, l.key]),
      [["reconciled", "a"]],
    );
  });
});
