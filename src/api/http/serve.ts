/** Starts the HTTP endpoint for a controller run, as configured (--metrics-addr; undefined when "off"). */
import type { Config } from "../../config/config.js";
import { processTelemetry, type Telemetry } from "../../observability/telemetry.js";
import type { Logger } from "../../runtime/logger.js";
import { startHttpServer, type HttpServerHandle } from "./server.js";

/** A reconcile (or a stalled queue) older than this fails /healthz: 5 resync periods, at least 2 minutes. */
function wedgeAfterMs(config: Pick<Config, "resyncIntervalMs">): number {
  return Math.max(5 * config.resyncIntervalMs, 120_000);
}

export async function serveTelemetry(
  config: Readonly<Config>,
  logger: Logger,
  telemetry: Telemetry = processTelemetry(),
): Promise<HttpServerHandle | undefined> {
  if (config.metricsAddr === undefined) return undefined;
  telemetry.captureLogs(logger);
  return startHttpServer({ listen: config.metricsAddr, telemetry, logger, wedgeAfterMs: wedgeAfterMs(config) });
}
