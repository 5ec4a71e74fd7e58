/**
 * The HTTP endpoint of a controller started by controller.ts (which passes
 * --metrics-addr 127.0.0.1:0): the bound address is read from its
 * "http server listening" log line.
 */
import type { ControllerHandle } from "./controller.js";
import { httpGet, type HttpResponse } from "./http.js";

/** `127.0.0.1:PORT` the controller serves /metrics, /healthz, /readyz, /api/status and / on. */
export async function controllerHttpAddr(c: ControllerHandle): Promise<string> {
  const line = await c.waitForLog((l) => l.message === "http server listening", "controller http server listening");
  if (typeof line.address !== "string") throw new Error(`no address in ${JSON.stringify(line)}`);
  return line.address;
}

/** GET http://<controller addr><path>. */
export async function controllerGet(c: ControllerHandle, path: string): Promise<HttpResponse> {
  return httpGet(`http://${await controllerHttpAddr(c)}${path}`);
}
