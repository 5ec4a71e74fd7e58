/**
 * One run of a Consul HTTP or TCP check from this process, the way the agent
 * runs it (for `healthCheck.probeBeforeRegister`): HTTP GET following
 * redirects, passing on 2xx (Consul: 2xx passing, 429 warning, anything else
 * critical); TCP: a connection accepted. Bounded by the check's timeout.
 *
 * Contract: never rejects; anything but "passing" (refused, timeout, non-2xx,
 * a check that is neither http nor tcp) resolves false. Sends one request to
 * the backend address the registration advertises, nowhere else.
 */
import { connect } from "node:net";
import { parseDurationMs } from "../../runtime/duration.js";
import type { CheckDefinition } from "../../domain/types.js";

const DEFAULT_TIMEOUT_MS = 2_000;
/** Consul's HTTP checks send this family of user agents; a backend can tell the probe apart by the suffix. */
const USER_AGENT = "Consul Health Check (dockbind probe)";

export type CheckProbe = (check: CheckDefinition) => Promise<boolean>;

export const probeCheck: CheckProbe = async (check) => {
  const timeoutMs = timeoutOf(check);
  if (check.http !== undefined) return httpPasses(check.http, timeoutMs);
  if (check.tcp !== undefined) return tcpAccepts(check.tcp, timeoutMs);
  return false;
};

function timeoutOf(check: CheckDefinition): number {
  try {
    return check.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDurationMs(check.timeout);
  } catch {
    return DEFAULT_TIMEOUT_MS;
  }
}

async function httpPasses(url: string, timeoutMs: number): Promise<boolean> {
  try {
    const res = await fetch(url, {
      redirect: "follow",
      signal: AbortSignal.timeout(timeoutMs),
      headers: { "user-agent": USER_AGENT, accept: "text/plain, text/*, */*" },
    });
    await res.body?.cancel();
    return res.status >= 200 && res.status < 300;
  } catch {
    return false;
  }
}

/** `host:port` or `[v6]:port`, as checkFor() writes it. */
function tcpAccepts(hostPort: string, timeoutMs: number): Promise<boolean> {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(hostPort);
  const host = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (host === undefined || !Number.isInteger(port)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once("connect", () => {
      done(true);
    });
    socket.once("timeout", () => {
      done(false);
    });
    socket.once("error", () => {
      done(false);
    });
  });
}
