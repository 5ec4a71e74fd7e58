/** Starts the HTTP endpoint for a controller run, as configured (--metrics-addr; undefined when "off"). */
import type { Config } from "../../config/config.js";
import { processTelemetry, type Telemetry } from "../../observability/telemetry.js";
import type { Logger } from "../../runtime/logger.js";
import { startHttpServer, type HttpServerHandle } from "./server.js";

/**
 * A reconcile (or a stalled queue) older than this fails /healthz. Every Consul, Docker and load
 * balancer request a reconcile waits on times out long before; not tied to --resync, so a long
 * resync period does not slow the detection of a stuck worker.
 */
const WEDGE_AFTER_MS = 150_000;

export async function serveTelemetry(
  config: Readonly<Config>,
  logger: Logger,
  telemetry: Telemetry = processTelemetry(),
): Promise<HttpServerHandle | undefined> {
  if (config.metricsAddr === undefined) return undefined;
  telemetry.captureLogs(logger);
  return startHttpServer({ listen: config.metricsAddr, telemetry, logger, wedgeAfterMs: WEDGE_AFTER_MS });
}
