/**
 * `GET /containers/json` read as a stream: each list entry is
 * parsed and handed to the caller as soon as it has arrived, so a full
 * resync of 10,000 containers never holds the raw body, its decoded string
 * and the parsed array at the same time (dockerode's listContainers() holds
 * all three: ~13 MB + 13 MB + ~50 MB of short-lived objects that outlive
 * several young-generation collections and inflate the old generation).
 * Same endpoint, query and transport (dockerode's modem: unix socket, tcp,
 * TLS) as listContainers().
 */
import type Dockerode from "dockerode";
import type { IncomingMessage } from "node:http";
import { JsonArraySplitter } from "./jsonArraySplitter.js";

export interface ListQuery {
  /** Include stopped containers. */
  readonly all: boolean;
  /** The engine's `filters` (e.g. `{ id: [...] }`). */
  readonly filters?: Readonly<Record<string, readonly string[]>>;
}

function open(docker: Dockerode, q: ListQuery): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: "/containers/json?",
        method: "GET",
        options: { all: q.all, ...(q.filters !== undefined ? { filters: q.filters } : {}) },
        isStream: true,
        statusCodes: { 200: true, 400: "bad parameter", 500: "server error" },
      },
      (err, res) => {
        if (err !== null) reject(err);
        else resolve(res as IncomingMessage);
      },
    );
  });
}

/**
 * Calls `onEntry` with every entry of the list, in the engine's order, and
 * resolves with their number once the whole body arrived. Rejects on a
 * transport error, a non-200 answer or a body that is not one JSON array of
 * objects; entries before the failure have been delivered.
 */
export async function streamContainerList(docker: Dockerode, q: ListQuery, onEntry: (entry: Dockerode.ContainerInfo) => void): Promise<number> {
  const res = await open(docker, q);
  const splitter = new JsonArraySplitter();
  let n = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    for (const text of splitter.push(chunk)) {
      const entry: unknown = JSON.parse(text);
      if (entry === null || typeof entry !== "object" || Array.isArray(entry)) throw new Error("container list: entry is not an object");
      // Same trust as dockerode's listContainers(): the engine's JSON, typed by @types/dockerode.
      onEntry(entry as Dockerode.ContainerInfo);
      n++;
    }
  }
  splitter.end();
  return n;
}
