import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type Dockerode from "dockerode";
import { fromInspect } from "../../src/sources/docker/inspect.js";

const ID = "4f66ad9a0b2e8f1c3d5e7a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d";

type Json = Record<string, unknown>;

/** A trimmed but realistic `docker inspect` document (Engine API 1.4x field names and shapes). */
function inspectJson(edit: (j: { State: Json; Config: Json; NetworkSettings: Json } & Json) => void = () => undefined): Dockerode.ContainerInspectInfo {
  const j = {
    Id: ID,
    Created: "2025-01-01T00:00:00.000000000Z",
    Path: "/docker-entrypoint.sh",
    Args: ["nginx", "-g", "daemon off;"],
    State: {
      Status: "running",
      Running: true,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      Pid: 4242,
      ExitCode: 0,
      Error: "",
      StartedAt: "2025-01-01T00:00:01.000000000Z",
      FinishedAt: "0001-01-01T00:00:00Z",
    } as Json,
    Image: "sha256:0123456789abcdef",
    Name: "/shop-web-1",
    RestartCount: 0,
    HostConfig: { PortBindings: { "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "" }] } },
    Config: {
      Hostname: "4f66ad9a0b2e",
      Domainname: "",
      User: "",
      ExposedPorts: { "80/tcp": {}, "9000/tcp": {}, "53/udp": {} },
      Tty: false,
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "NGINX_VERSION=1.27.0", "SERVICE_NAME=web"],
      Cmd: ["nginx", "-g", "daemon off;"],
      Image: "nginx:1.27",
      Labels: { "com.docker.compose.project": "shop", app: "web" },
    } as Json,
    NetworkSettings: {
      Bridge: "",
      SandboxID: "abc",
      Ports: {
        "80/tcp": [{ HostIp: "127.0.0.1", HostPort: "32768" }],
        "9000/tcp": null,
        "53/udp": [
          { HostIp: "0.0.0.0", HostPort: "5353" },
          { HostIp: "::", HostPort: "5353" },
        ],
      },
      IPAddress: "172.17.0.2",
      Networks: {
        bridge: {
          IPAMConfig: null,
          Links: null,
          Aliases: null,
          NetworkID: "n1",
          EndpointID: "e1",
          Gateway: "172.17.0.1",
          IPAddress: "172.17.0.2",
          IPPrefixLen: 16,
          MacAddress: "02:42:ac:11:00:02",
        },
        shop_backend: {
          IPAMConfig: null,
          Links: null,
          Aliases: ["web"],
          NetworkID: "n2",
          EndpointID: "e2",
          Gateway: "10.5.0.1",
          IPAddress: "10.5.0.7",
          IPPrefixLen: 24,
          MacAddress: "02:42:0a:05:00:07",
        },
      },
    } as Json,
  };
  edit(j);
  return j as unknown as Dockerode.ContainerInspectInfo;
}

describe("fromInspect: identity and state", () => {
  it("maps id, name without the slash, image, hostname and labels", () => {
    const c = fromInspect(inspectJson());
    assert.equal(c.id, ID);
    assert.equal(c.name, "shop-web-1");
    assert.equal(c.image, "nginx:1.27");
    assert.equal(c.hostname, "4f66ad9a0b2e");
    assert.deepEqual(c.labels, { "com.docker.compose.project": "shop", app: "web" });
  });

  it("null labels become an empty map", () => {
    const c = fromInspect(
      inspectJson((j) => {
        j.Config.Labels = null;
      }),
    );
    assert.deepEqual(c.labels, {});
  });

  it("running only when Running and not Paused", () => {
    assert.equal(fromInspect(inspectJson()).running, true);
    const paused = inspectJson((j) => {
      j.State.Paused = true;
      j.State.Status = "paused";
    });
    assert.equal(fromInspect(paused).running, false);
    const exited = inspectJson((j) => {
      j.State.Running = false;
      j.State.Status = "exited";
    });
    assert.equal(fromInspect(exited).running, false);
  });

  for (const status of ["starting", "healthy", "unhealthy"] as const) {
    it(`health status ${status}`, () => {
      const c = fromInspect(
        inspectJson((j) => {
          j.State.Health = { Status: status, FailingStreak: 0, Log: [] };
        }),
      );
      assert.equal(c.health, status);
    });
  }

  it("no health check (or an unknown status) is none", () => {
    assert.equal(fromInspect(inspectJson()).health, "none");
    const odd = inspectJson((j) => {
      j.State.Health = { Status: "none", FailingStreak: 0, Log: [] };
    });
    assert.equal(fromInspect(odd).health, "none");
  });
});

describe("fromInspect: env", () => {
  it("parses KEY=VALUE, keeping '=' inside values and empty values", () => {
    const c = fromInspect(
      inspectJson((j) => {
        j.Config.Env = ["A=1", "B=x=y", "C=", "NOEQUALS", "=nokey", "SERVICE_TAGS=a,b"];
      }),
    );
    assert.deepEqual(c.env, { A: "1", B: "x=y", C: "", SERVICE_TAGS: "a,b" });
  });

  it("null Env is an empty map", () => {
    const c = fromInspect(
      inspectJson((j) => {
        j.Config.Env = null;
      }),
    );
    assert.deepEqual(c.env, {});
  });

  it("a later duplicate wins, as in the process environment", () => {
    const c = fromInspect(
      inspectJson((j) => {
        j.Config.Env = ["A=1", "A=2"];
      }),
    );
    assert.equal(c.env.A, "2");
  });
});

describe("fromInspect: ports", () => {
  it("maps published, exposed-only and udp ports, sorted by private then host port", () => {
    assert.deepEqual(fromInspect(inspectJson()).ports, [
      { privatePort: 53, protocol: "udp", hostIP: "0.0.0.0", hostPort: 5353 },
      { privatePort: 53, protocol: "udp", hostIP: "::", hostPort: 5353 },
      { privatePort: 80, protocol: "tcp", hostIP: "127.0.0.1", hostPort: 32768 },
      { privatePort: 9000, protocol: "tcp" },
    ]);
  });

  it("null NetworkSettings.Ports (e.g. a stopped container) keeps exposed ports only", () => {
    const c = fromInspect(
      inspectJson((j) => {
        j.NetworkSettings.Ports = null;
      }),
    );
    assert.deepEqual(c.ports, [
      { privatePort: 53, protocol: "udp" },
      { privatePort: 80, protocol: "tcp" },
      { privatePort: 9000, protocol: "tcp" },
    ]);
  });

  it("null Ports and null ExposedPorts give no ports", () => {
    const c = fromInspect(
      inspectJson((j) => {
        j.NetworkSettings.Ports = null;
        j.Config.ExposedPorts = null;
      }),
    );
    assert.deepEqual(c.ports, []);
  });

  it("a published port missing from ExposedPorts is still listed", () => {
    const c = fromInspect(
      inspectJson((j) => {
        j.Config.ExposedPorts = {};
        j.NetworkSettings.Ports = { "8443/tcp": [{ HostIp: "10.1.2.3", HostPort: "443" }] };
      }),
    );
    assert.deepEqual(c.ports, [{ privatePort: 8443, protocol: "tcp", hostIP: "10.1.2.3", hostPort: 443 }]);
  });

  it("a binding without a usable host port has no hostPort", () => {
    const c = fromInspect(
      inspectJson((j) => {
        j.Config.ExposedPorts = {};
        j.NetworkSettings.Ports = { "80/tcp": [{ HostIp: "0.0.0.0", HostPort: "" }] };
      }),
    );
    assert.deepEqual(c.ports, [{ privatePort: 80, protocol: "tcp", hostIP: "0.0.0.0" }]);
  });

  it("ignores sctp and malformed port specs", () => {
    const c = fromInspect(
      inspectJson((j) => {
        j.Config.ExposedPorts = { "132/sctp": {}, "abc/tcp": {}, "7000": {} };
        j.NetworkSettings.Ports = { "132/sctp": [{ HostIp: "0.0.0.0", HostPort: "132" }] };
      }),
    );
    assert.deepEqual(c.ports, [{ privatePort: 7000, protocol: "tcp" }], "a spec without a protocol is tcp");
  });
});

describe("fromInspect: networks", () => {
  it("maps network name to container IP", () => {
    assert.deepEqual(fromInspect(inspectJson()).networks, { bridge: "172.17.0.2", shop_backend: "10.5.0.7" });
  });

  it("drops networks with an empty IP (e.g. host network, or not yet connected)", () => {
    const c = fromInspect(
      inspectJson((j) => {
        j.NetworkSettings.Networks = {
          host: { NetworkID: "h", EndpointID: "", Gateway: "", IPAddress: "", IPPrefixLen: 0, MacAddress: "" },
          shop_backend: { NetworkID: "n2", EndpointID: "e2", Gateway: "10.5.0.1", IPAddress: "10.5.0.7", IPPrefixLen: 24, MacAddress: "" },
        };
      }),
    );
    assert.deepEqual(c.networks, { shop_backend: "10.5.0.7" });
  });
});
