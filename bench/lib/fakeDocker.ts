/**
 * A simulated Docker Engine API on loopback (node:http), answering with the
 * shapes dockerd 20.10 records for the endpoints the controller uses:
 * /_ping, /version, /info, /containers/json, /containers/{id}/json and a streaming
 * /events. Any `/vX.Y` prefix is accepted. State is in memory; `emit()` flips
 * a container and pushes the matching event to every connected stream.
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeContainer {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly env: readonly string[];
  readonly ip: string;
  running: boolean;
}

export interface FakeDocker {
  /** `tcp://127.0.0.1:PORT` for --docker-host. */
  readonly url: string;
  readonly containers: Map<string, FakeContainer>;
  /** Requests served, by kind (list, inspect, events, other). */
  readonly hits: Record<"list" | "inspect" | "events" | "other", number>;
  /** Last request time (performance.now()). */
  lastRequestAt(): number;
  /** Sets `running` and pushes a "start" or "die" event. */
  emit(id: string, action: "start" | "die"): void;
  /** Pushes a network event naming container `id` (sent by `docker network connect/disconnect`, and while a container starts or stops). */
  emitNetwork(id: string, action: "connect" | "disconnect"): void;
  /**
   * Holds every inspect answer until the returned function is called. `at`:
   * "release" answers the state at release (dockerd answers an inspect only
   * once a container's start has completed), "request" the state when asked
   * (a slow answer that later reads overtake).
   */
  holdInspects(at: "request" | "release"): () => void;
  close(): Promise<void>;
}

const NET = "bench-sim";
const IMAGE = "local/dockbind-web:1";
const CREATED = "2024-01-01T00:00:00.000000000Z";

function listEntry(c: FakeContainer): object {
  return {
    Id: c.id,
    Names: [`/${c.name}`],
    Image: IMAGE,
    ImageID: "sha256:5f1e1c1d0c9f1a7b1d4e4d7ad5a0c9a1f0b7d2e3c4b5a6978877665544332211",
    Command: "/bin/sh /start.sh",
    Created: 1704067200,
    Ports: [{ PrivatePort: 80, Type: "tcp" }],
    Labels: c.labels,
    // What the engine lists for a stopped container (`all=true`): exited, no endpoint, no IP.
    State: c.running ? "running" : "exited",
    Status: c.running ? "Up 2 hours" : "Exited (143) 1 second ago",
    HostConfig: { NetworkMode: NET },
    NetworkSettings: {
      Networks: {
        [NET]: {
          IPAMConfig: null,
          Links: null,
          Aliases: null,
          NetworkID: "n".repeat(64),
          EndpointID: c.running ? "e".repeat(64) : "",
          Gateway: c.running ? "10.99.0.1" : "",
          IPAddress: c.running ? c.ip : "",
          IPPrefixLen: 16,
          IPv6Gateway: "",
          GlobalIPv6Address: "",
          GlobalIPv6PrefixLen: 0,
          MacAddress: "02:42:0a:63:00:02",
          DriverOpts: null,
        },
      },
    },
    Mounts: [],
  };
}

function inspect(c: FakeContainer): object {
  return {
    Id: c.id,
    Created: CREATED,
    Path: "/bin/sh",
    Args: ["/start.sh"],
    State: {
      Status: c.running ? "running" : "exited",
      Running: c.running,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: c.running ? 4242 : 0,
      ExitCode: c.running ? 0 : 143,
      Error: "",
      StartedAt: CREATED,
      FinishedAt: "0001-01-01T00:00:00Z",
    },
    Image: "sha256:5f1e1c1d0c9f1a7b1d4e4d7ad5a0c9a1f0b7d2e3c4b5a6978877665544332211",
    ResolvConfPath: `/var/lib/docker/containers/${c.id}/resolv.conf`,
    HostnamePath: `/var/lib/docker/containers/${c.id}/hostname`,
    HostsPath: `/var/lib/docker/containers/${c.id}/hosts`,
    LogPath: `/var/lib/docker/containers/${c.id}/${c.id}-json.log`,
    Name: `/${c.name}`,
    RestartCount: 0,
    Driver: "overlay2",
    Platform: "linux",
    MountLabel: "",
    ProcessLabel: "",
    AppArmorProfile: "docker-default",
    ExecIDs: null,
    HostConfig: {
      Binds: null,
      NetworkMode: NET,
      PortBindings: {},
      RestartPolicy: { Name: "no", MaximumRetryCount: 0 },
      AutoRemove: false,
      Privileged: false,
      PublishAllPorts: false,
      ReadonlyRootfs: false,
      LogConfig: { Type: "json-file", Config: {} },
    },
    GraphDriver: { Data: { LowerDir: "/var/lib/docker/overlay2/l/x", MergedDir: "/m", UpperDir: "/u", WorkDir: "/w" }, Name: "overlay2" },
    Mounts: [],
    Config: {
      Hostname: c.id.slice(0, 12),
      Domainname: "",
      User: "",
      AttachStdin: false,
      AttachStdout: false,
      AttachStderr: false,
      ExposedPorts: { "80/tcp": {} },
      Tty: false,
      OpenStdin: false,
      StdinOnce: false,
      Env: c.env,
      Cmd: ["/bin/sh", "/start.sh"],
      Image: IMAGE,
      Volumes: null,
      WorkingDir: "",
      Entrypoint: null,
      OnBuild: null,
      Labels: c.labels,
    },
    NetworkSettings: {
      Bridge: "",
      SandboxID: "s".repeat(64),
      HairpinMode: false,
      LinkLocalIPv6Address: "",
      LinkLocalIPv6PrefixLen: 0,
      Ports: { "80/tcp": null },
      SandboxKey: `/var/run/docker/netns/${c.id.slice(0, 12)}`,
      SecondaryIPAddresses: null,
      SecondaryIPv6Addresses: null,
      EndpointID: "",
      Gateway: "",
      GlobalIPv6Address: "",
      GlobalIPv6PrefixLen: 0,
      IPAddress: "",
      IPPrefixLen: 0,
      IPv6Gateway: "",
      MacAddress: "",
      Networks: c.running
        ? {
            [NET]: {
              IPAMConfig: null,
              Links: null,
              Aliases: [c.id.slice(0, 12)],
              NetworkID: "n".repeat(64),
              EndpointID: "e".repeat(64),
              Gateway: "10.99.0.1",
              IPAddress: c.ip,
              IPPrefixLen: 16,
              IPv6Gateway: "",
              GlobalIPv6Address: "",
              GlobalIPv6PrefixLen: 0,
              MacAddress: "02:42:0a:63:00:02",
              DriverOpts: null,
            },
          }
        : {},
    },
  };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json", "Api-Version": "1.41", "Content-Length": Buffer.byteLength(text) });
  res.end(text);
}

/** `engineId`: what /info answers as the engine ID (distinct per simulated engine of a fleet). */
export async function startFakeDocker(containers: Map<string, FakeContainer>, engineId = "FAKE:ENGINE:0001"): Promise<FakeDocker> {
  const streams = new Set<ServerResponse>();
  const hits = { list: 0, inspect: 0, events: 0, other: 0 };
  let held: { readonly at: "request" | "release"; readonly waiting: (() => void)[] } | undefined;
  const push = (ev: object): void => {
    const line = `${JSON.stringify(ev)}\n`;
    for (const s of streams) s.write(line);
  };
  let last = performance.now();
  const server: Server = createServer((req, res) => {
    last = performance.now();
    const url = new URL(req.url ?? "/", "http://docker");
    const path = url.pathname.replace(/^\/v\d+\.\d+/, "");
    if (path === "/_ping") {
      hits.other++;
      res.writeHead(200, { "Content-Type": "text/plain", "Api-Version": "1.41" });
      res.end("OK");
      return;
    }
    if (path === "/version") {
      hits.other++;
      json(res, 200, { Version: "20.10.24", ApiVersion: "1.41", MinAPIVersion: "1.12", Os: "linux", Arch: "amd64", KernelVersion: "6.1.0" });
      return;
    }
    if (path === "/info") {
      // The controller reads the engine ID (owner meta dockbind_engine) once per resync.
      hits.other++;
      json(res, 200, { ID: engineId, Name: "fake-docker", ServerVersion: "20.10.24", Swarm: { LocalNodeState: "inactive", ControlAvailable: false } });
      return;
    }
    if (path === "/containers/json") {
      const all = url.searchParams.get("all") === "true" || url.searchParams.get("all") === "1";
      // The engine's `filters={"id":[...]}` (the controller's one-container re-read after an event).
      const ids = (JSON.parse(url.searchParams.get("filters") ?? "{}") as { id?: string[] }).id;
      if (ids !== undefined) {
        hits.inspect++;
        json(
          res,
          200,
          ids
            .flatMap((id) => containers.get(id) ?? [])
            .filter((c) => all || c.running)
            .map(listEntry),
        );
        return;
      }
      hits.list++;
      json(res, 200, [...containers.values()].filter((c) => all || c.running).map(listEntry));
      return;
    }
    const m = /^\/containers\/([^/]+)\/json$/.exec(path);
    if (m?.[1] !== undefined) {
      hits.inspect++;
      const id = m[1];
      const answer = (c: FakeContainer | undefined): void => {
        if (c === undefined) json(res, 404, { message: `No such container: ${id}` });
        else json(res, 200, inspect(c));
      };
      const now = containers.get(id);
      if (held === undefined) answer(now);
      else if (held.at === "release") {
        held.waiting.push(() => {
          answer(containers.get(id));
        });
      } else {
        const snapshot = now === undefined ? undefined : { ...now };
        held.waiting.push(() => {
          answer(snapshot);
        });
      }
      return;
    }
    if (path === "/events") {
      hits.events++;
      res.writeHead(200, { "Content-Type": "application/json", "Api-Version": "1.41" });
      res.flushHeaders();
      streams.add(res);
      req.on("close", () => streams.delete(res));
      return;
    }
    hits.other++;
    json(res, 404, { message: "page not found" });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `tcp://127.0.0.1:${port}`,
    containers,
    hits,
    lastRequestAt: () => last,
    emit(id, action) {
      const c = containers.get(id);
      if (c === undefined) return;
      c.running = action === "start";
      const now = Date.now();
      const ev = {
        status: action,
        id,
        from: IMAGE,
        Type: "container",
        Action: action,
        Actor: { ID: id, Attributes: { ...c.labels, image: IMAGE, name: c.name, ...(action === "die" ? { exitCode: "143" } : {}) } },
        scope: "local",
        time: Math.floor(now / 1000),
        timeNano: now * 1_000_000,
      };
      push(ev);
    },
    emitNetwork(id, action) {
      const now = Date.now();
      push({
        Type: "network",
        Action: action,
        Actor: { ID: "n".repeat(64), Attributes: { container: id, name: NET, type: "bridge" } },
        scope: "local",
        time: Math.floor(now / 1000),
        timeNano: now * 1_000_000,
      });
    },
    holdInspects(at) {
      const mine = { at, waiting: [] as (() => void)[] };
      held = mine;
      return () => {
        if (held === mine) held = undefined;
        for (const answer of mine.waiting.splice(0)) answer();
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of streams) s.end();
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
