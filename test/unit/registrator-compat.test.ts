import { describe as nodeDescribe, it as nodeIt } from "node:test";
import assert from "node:assert/strict";

import {
  COMPAT_BINDING_KEY,
  MAX_META_KEYS,
  compatRegistrations,
  defaultServiceName,
  sanitizeServiceName,
  splitTags,
  type CompatOptions,
  type CompatResult,
} from "../../src/domain/registratorCompat.js";
import { OWNER_META, type ContainerInfo, type PortMapping, type Registration } from "../../src/domain/types.js";
import { makeContainer } from "../support/fakes.js";

// node:test's describe/it return promises the runner tracks itself; these
// wrappers keep @typescript-eslint/no-floating-promises quiet.
function describe(name: string, fn: () => void): void {
  void nodeDescribe(name, fn);
}
function it(name: string, fn: () => void): void {
  void nodeIt(name, fn);
}

const HOST = "192.168.1.102";

/** registrator's redis example: container redis.0, private 6379 published on 0.0.0.0:10000, no labels. */
function container(over: Partial<ContainerInfo> = {}): ContainerInfo {
  return makeContainer("c0ffee000001", {
    name: "redis.0",
    image: "progrium/redis:latest",
    labels: {},
    ports: [{ privatePort: 6379, protocol: "tcp", hostIP: "0.0.0.0", hostPort: 10000 }],
    networks: { bridge: "172.17.0.5" },
    ...over,
  });
}

function options(over: Partial<CompatOptions> = {}): CompatOptions {
  return { node: "node1", hostIP: HOST, internal: false, extraTags: [], ...over };
}

function pub(privatePort: number, hostPort: number, protocol: "tcp" | "udp" = "tcp", hostIP = "0.0.0.0"): PortMapping {
  return { privatePort, protocol, hostIP, hostPort };
}

function exposed(privatePort: number, protocol: "tcp" | "udp" = "tcp"): PortMapping {
  return { privatePort, protocol };
}

function only(result: CompatResult): Registration {
  assert.equal(result.registrations.length, 1, JSON.stringify(result));
  const reg = result.registrations[0];
  assert.ok(reg !== undefined);
  return reg;
}

function byName(result: CompatResult, name: string): Registration {
  const reg = result.registrations.find((r) => r.name === name);
  assert.ok(reg !== undefined, `no registration named ${name}: ${JSON.stringify(result.registrations)}`);
  return reg;
}

function userMeta(reg: Registration): Record<string, string> {
  const owner: readonly string[] = Object.values(OWNER_META);
  return Object.fromEntries(Object.entries(reg.meta).filter(([k]) => !owner.includes(k)));
}

function hasIssue(result: CompatResult, field: string, pattern: RegExp): boolean {
  return result.issues.some((i) => i.field === field && pattern.test(i.message));
}

function assertIssue(result: CompatResult, field: string, pattern: RegExp): void {
  assert.ok(hasIssue(result, field, pattern), `expected issue ${field} ~ ${pattern}: ${JSON.stringify(result.issues)}`);
}

describe("registrator compat: names, IDs, defaults", () => {
  it("single published port with defaults (registrator docs example)", () => {
    const result = compatRegistrations(container(), options());
    assert.deepEqual(only(result), {
      id: "node1:redis.0:6379",
      name: "redis",
      address: HOST,
      port: 10000,
      tags: [],
      meta: {
        [OWNER_META.node]: "node1",
        [OWNER_META.binding]: COMPAT_BINDING_KEY,
        [OWNER_META.container]: "c0ffee000001",
      },
    });
    assert.deepEqual(result.issues, []);
  });

  it("owner meta is set, the hash is left to the planner", () => {
    const reg = only(compatRegistrations(container(), options({ node: "edge-7" })));
    assert.equal(reg.meta[OWNER_META.node], "edge-7");
    assert.equal(reg.meta[OWNER_META.binding], "registrator-compat");
    assert.equal(reg.meta[OWNER_META.container], "c0ffee000001");
    assert.equal(reg.meta[OWNER_META.hash], undefined);
  });

  it("default name is the image base name without registry, tag or digest", () => {
    assert.equal(defaultServiceName("progrium/foo:latest"), "foo");
    assert.equal(defaultServiceName("redis"), "redis");
    assert.equal(defaultServiceName("registry.example.com:5000/org/team/api:1.2.3"), "api");
    assert.equal(defaultServiceName("registry.example.com:5000/web"), "web");
    assert.equal(defaultServiceName("nginx@sha256:0123abcd"), "nginx");
    const reg = only(compatRegistrations(container({ image: "registry.local:5000/org/cache:7" }), options()));
    assert.equal(reg.name, "cache");
  });

  it("SERVICE_NAME, SERVICE_TAGS and other keys from env (docs example)", () => {
    const env = { SERVICE_NAME: "db", SERVICE_TAGS: "master,backups", SERVICE_REGION: "us2", PATH: "/usr/bin" };
    const reg = only(compatRegistrations(container({ env }), options()));
    assert.equal(reg.name, "db");
    assert.equal(reg.id, "node1:redis.0:6379");
    assert.deepEqual(reg.tags, ["master", "backups"]);
    assert.deepEqual(userMeta(reg), { region: "us2" });
  });

  it("labels work like env and win over env for the same key", () => {
    const reg = only(
      compatRegistrations(
        container({
          env: { SERVICE_NAME: "from-env", SERVICE_REGION: "env-region", SERVICE_ZONE: "a" },
          labels: { SERVICE_NAME: "from-label", SERVICE_REGION: "label-region" },
        }),
        options(),
      ),
    );
    assert.equal(reg.name, "from-label");
    assert.deepEqual(userMeta(reg), { region: "label-region", zone: "a" });
  });

  it("the SERVICE_ prefix is case-sensitive and an empty value counts as unset", () => {
    const reg = only(compatRegistrations(container({ labels: { service_name: "nope", SERVICE_NAME: "" } }), options()));
    assert.equal(reg.name, "redis");
  });

  it("SERVICE_<port>_<KEY> overrides SERVICE_<KEY> and applies only to its port", () => {
    const result = compatRegistrations(
      container({
        image: "progrium/nginx",
        name: "nginx.0",
        ports: [pub(443, 4443), pub(80, 8000)],
        env: {
          SERVICE_443_NAME: "https",
          SERVICE_443_ID: "https.12345",
          SERVICE_443_SNI: "enabled",
          SERVICE_80_NAME: "http",
          SERVICE_TAGS: "www",
          SERVICE_80_TAGS: "plain",
          SERVICE_SNI: "generic",
        },
      }),
      options(),
    );
    const https = byName(result, "https");
    assert.equal(https.id, "https.12345");
    assert.equal(https.port, 4443);
    assert.deepEqual(https.tags, ["www"]);
    assert.deepEqual(userMeta(https), { sni: "enabled" });
    const http = byName(result, "http");
    assert.equal(http.id, "node1:nginx.0:80");
    assert.equal(http.port, 8000);
    assert.deepEqual(http.tags, ["plain"]);
    assert.deepEqual(userMeta(http), { sni: "generic" });
    assert.deepEqual(
      result.registrations.map((r) => r.id),
      ["https.12345", "node1:nginx.0:80"],
    );
  });

  it("multiple published ports get a -<privatePort> name suffix", () => {
    const result = compatRegistrations(container({ image: "progrium/nginx", name: "nginx.0", ports: [pub(443, 4443), pub(80, 8000)] }), options());
    assert.deepEqual(
      result.registrations.map((r) => [r.id, r.name, r.port]),
      [
        ["node1:nginx.0:443", "nginx-443", 4443],
        ["node1:nginx.0:80", "nginx-80", 8000],
      ],
    );
  });

  it("a generic SERVICE_NAME still gets the suffix on multi-port containers, a port-specific one does not", () => {
    const result = compatRegistrations(
      container({
        ports: [pub(80, 8000), pub(443, 4443)],
        labels: { SERVICE_NAME: "web", SERVICE_443_NAME: "secure" },
      }),
      options(),
    );
    assert.deepEqual(result.registrations.map((r) => r.name).sort(), ["secure", "web-80"]);
  });

  it("only published ports count for the suffix in published mode", () => {
    const result = compatRegistrations(container({ ports: [pub(6379, 10000), exposed(16379)] }), options());
    assert.equal(only(result).name, "redis");
    assert.deepEqual(result.issues, []);
  });

  it("UDP ports get :udp in the ID and a udp tag; tcp+udp on one port form a group", () => {
    const result = compatRegistrations(
      container({
        image: "coredns/coredns:1.11",
        name: "dns",
        ports: [pub(53, 53, "udp"), pub(53, 53, "tcp")],
        labels: { SERVICE_TAGS: "primary" },
      }),
      options({ extraTags: ["dc1"] }),
    );
    assert.deepEqual(
      result.registrations.map((r) => ({ id: r.id, name: r.name, tags: r.tags })),
      [
        { id: "node1:dns:53", name: "coredns-53", tags: ["primary", "dc1"] },
        { id: "node1:dns:53:udp", name: "coredns-53", tags: ["primary", "dc1", "udp"] },
      ],
    );
  });

  it("SERVICE_IGNORE skips the container, SERVICE_<port>_IGNORE one port", () => {
    const ports = [pub(80, 8000), pub(443, 4443)];
    assert.deepEqual(compatRegistrations(container({ ports, labels: { SERVICE_IGNORE: "true" } }), options()).registrations, []);
    const one = compatRegistrations(container({ ports, env: { SERVICE_443_IGNORE: "1" } }), options());
    assert.deepEqual(
      one.registrations.map((r) => r.name),
      ["redis-80"],
    );
  });

  it("SERVICE_IGNORE=false still ignores (registrator semantics) and says so; empty does not", () => {
    const result = compatRegistrations(container({ labels: { SERVICE_IGNORE: "false" } }), options());
    assert.deepEqual(result.registrations, []);
    assertIssue(result, "labels.SERVICE_IGNORE", /still ignores/);
    assert.equal(compatRegistrations(container({ labels: { SERVICE_IGNORE: "" } }), options()).registrations.length, 1);
  });

  it("explicit mode registers only ports that have a name", () => {
    const ports = [pub(80, 8000), pub(443, 4443)];
    const result = compatRegistrations(container({ ports, labels: { SERVICE_80_NAME: "web" } }), options({ explicit: true }));
    assert.deepEqual(
      result.registrations.map((r) => r.name),
      ["web"],
    );
    assert.deepEqual(compatRegistrations(container(), options({ explicit: true })).registrations, []);
  });

  it("SERVICE_ID overrides the ID; an invalid one falls back to the default and is reported", () => {
    assert.equal(only(compatRegistrations(container({ labels: { SERVICE_ID: "redis-a" } }), options())).id, "redis-a");
    const bad = compatRegistrations(container({ labels: { SERVICE_ID: "x;rm -rf /" } }), options());
    assert.equal(only(bad).id, "node1:redis.0:6379");
    assertIssue(bad, "labels.SERVICE_ID", /service ID .* dropped/);
  });

  it("a generic SERVICE_ID on a multi-port container keeps the lowest port and reports the rest", () => {
    const result = compatRegistrations(container({ ports: [pub(443, 4443), pub(80, 8000)], labels: { SERVICE_ID: "same" } }), options());
    const reg = only(result);
    assert.equal(reg.port, 8000);
    assertIssue(result, "ports.443/tcp", /already used/);
  });

  it("not-running containers yield nothing", () => {
    assert.deepEqual(compatRegistrations(container({ running: false }), options()), { registrations: [], issues: [] });
  });

  it("output is deterministic: sorted by ID, independent of label/port order", () => {
    const labels = { SERVICE_B: "2", SERVICE_A: "1", SERVICE_9000_NAME: "z", SERVICE_TAGS: "t1,t2" };
    const reversedLabels = Object.fromEntries(Object.entries(labels).reverse());
    const ports = [pub(9000, 19000), pub(1000, 11000), pub(5000, 15000)];
    const a = compatRegistrations(container({ labels, ports }), options());
    const b = compatRegistrations(container({ labels: reversedLabels, ports: [...ports].reverse() }), options());
    assert.deepEqual(a, b);
    const ids = a.registrations.map((r) => r.id);
    assert.deepEqual(ids, [...ids].sort());
    assert.deepEqual(Object.keys(userMeta(byName(a, "z"))), ["a", "b"]);
  });
});

describe("registrator compat: addresses", () => {
  it("published mode: the host IP option beats the binding IP", () => {
    const reg = only(compatRegistrations(container({ ports: [pub(6379, 10000, "tcp", "10.0.0.9")] }), options()));
    assert.equal(reg.address, HOST);
    assert.equal(reg.port, 10000);
  });

  it("published mode without the option uses a specific binding IP", () => {
    const reg = only(compatRegistrations(container({ ports: [pub(6379, 10000, "tcp", "10.0.0.9")] }), options({ hostIP: undefined })));
    assert.equal(reg.address, "10.0.0.9");
  });

  it("published on 0.0.0.0 without the option: skipped and reported", () => {
    const result = compatRegistrations(container(), options({ hostIP: undefined }));
    assert.deepEqual(result.registrations, []);
    assertIssue(result, "ports.6379/tcp", /host IP option/);
  });

  it("exposed-but-unpublished ports are skipped in published mode, reported when configured", () => {
    const result = compatRegistrations(container({ ports: [exposed(6379)], labels: { SERVICE_6379_NAME: "cache" } }), options());
    assert.deepEqual(result.registrations, []);
    assertIssue(result, "ports.6379/tcp", /not published/);
    const silent = compatRegistrations(container({ ports: [exposed(6379)] }), options());
    assert.deepEqual(silent, { registrations: [], issues: [] });
  });

  it("IPv4 and IPv6 bindings of one port give one registration on the IPv4 binding", () => {
    const reg = only(compatRegistrations(container({ ports: [pub(6379, 10001, "tcp", "::"), pub(6379, 10000, "tcp", "0.0.0.0")] }), options()));
    assert.equal(reg.port, 10000);
  });

  it("internal mode: container IP and private port, exposed ports included", () => {
    const result = compatRegistrations(
      container({ ports: [pub(6379, 10000), exposed(16379)], networks: { zeta: "10.9.0.2", app: "10.1.0.2" } }),
      options({ internal: true }),
    );
    assert.deepEqual(
      result.registrations.map((r) => [r.name, r.address, r.port]),
      [
        ["redis-16379", "10.1.0.2", 16379],
        ["redis-6379", "10.1.0.2", 6379],
      ],
    );
  });

  it("internal mode: the network option picks the IP; a missing network is reported", () => {
    const networks = { app: "10.1.0.2", backend: "10.2.0.2" };
    const reg = only(compatRegistrations(container({ networks }), options({ internal: true, network: "backend" })));
    assert.equal(reg.address, "10.2.0.2");
    assert.equal(reg.port, 6379);
    const missing = compatRegistrations(container({ networks }), options({ internal: true, network: "nope" }));
    assert.deepEqual(missing.registrations, []);
    assertIssue(missing, "ports.6379/tcp", /no IP on network/);
  });
});

describe("registrator compat: hostile values", () => {
  it("tags: invalid ones are dropped and reported, escaped commas parsed, duplicates removed", () => {
    const result = compatRegistrations(
      container({ labels: { SERVICE_TAGS: "ok, spaced ,evil\nserver,semi;colon,brace},a\\,b,ok,v=1.2" } }),
      options({ extraTags: ["dc1", "bad tag"] }),
    );
    const reg = only(result);
    assert.deepEqual(reg.tags, ["ok", "spaced", "v=1.2", "dc1"]);
    assertIssue(result, "labels.SERVICE_TAGS", /"evil\\nserver" dropped/);
    assertIssue(result, "labels.SERVICE_TAGS", /"semi;colon" dropped/);
    assertIssue(result, "labels.SERVICE_TAGS", /"brace}" dropped/);
    assertIssue(result, "labels.SERVICE_TAGS", /"a,b" dropped/);
    assertIssue(result, "extraTags", /"bad tag" dropped/);
    for (const issue of result.issues) assert.ok(!issue.message.includes("\n"), "issue messages must stay on one line");
  });

  it("splitTags follows registrator's escaping", () => {
    assert.deepEqual(splitTags("a,b"), ["a", "b"]);
    assert.deepEqual(splitTags(",a,,b,"), ["a", "b"]);
    assert.deepEqual(splitTags("x\\,y,z"), ["x,y", "z"]);
    assert.deepEqual(splitTags(""), []);
  });

  it("names are sanitized to DNS-safe labels and reported", () => {
    const result = compatRegistrations(container({ labels: { SERVICE_NAME: "Web;}\nEvil_App" } }), options());
    assert.equal(only(result).name, "web-evil-app");
    assertIssue(result, "labels.SERVICE_NAME", /not DNS-safe; registered as "web-evil-app"/);
    const image = compatRegistrations(container({ image: "acme/My_Service:1" }), options());
    assert.equal(only(image).name, "my-service");
    assertIssue(image, "image", /not DNS-safe/);
  });

  it("a name with no usable characters skips the port", () => {
    const result = compatRegistrations(container({ labels: { SERVICE_NAME: ";;{}\n" } }), options());
    assert.deepEqual(result.registrations, []);
    assertIssue(result, "labels.SERVICE_NAME", /no DNS-safe characters/);
  });

  it("long names are cut to 63 characters and keep the port suffix", () => {
    assert.equal(sanitizeServiceName("-a--b-"), "a--b");
    const result = compatRegistrations(container({ ports: [pub(80, 8000), pub(8443, 18443)], labels: { SERVICE_NAME: "x".repeat(80) } }), options());
    const names = result.registrations.map((r) => r.name).sort();
    assert.deepEqual(names, [`${"x".repeat(58)}-8443`, `${"x".repeat(60)}-80`]);
    for (const n of names) assert.ok(n.length <= 63);
  });

  it("meta: invalid keys, reserved prefixes and hostile values are dropped and reported", () => {
    const result = compatRegistrations(
      container({
        labels: {
          SERVICE_REGION: "eu-west",
          "SERVICE_BAD.KEY": "x",
          "SERVICE_A}B": "x",
          SERVICE_DOCKBIND_NODE: "other-node",
          "SERVICE_CONSUL-VERSION": "1",
          SERVICE_NEWLINE: "a\nb",
          SERVICE_SEMI: "a;b",
          SERVICE_BRACE: "a}",
          SERVICE_LONG: "v".repeat(513),
          SERVICE_EXACT: "v".repeat(512),
        },
      }),
      options(),
    );
    const reg = only(result);
    assert.deepEqual(userMeta(reg), { exact: "v".repeat(512), region: "eu-west" });
    assert.equal(reg.meta[OWNER_META.node], "node1");
    assertIssue(result, "labels.SERVICE_BAD.KEY", /key must match/);
    assertIssue(result, 'labels."SERVICE_A}B"', /key must match/);
    assertIssue(result, "labels.SERVICE_DOCKBIND_NODE", /reserved/);
    assertIssue(result, "labels.SERVICE_CONSUL-VERSION", /reserved/);
    assertIssue(result, "labels.SERVICE_NEWLINE", /control characters/);
    assertIssue(result, "labels.SERVICE_SEMI", /control characters or one of/);
    assertIssue(result, "labels.SERVICE_BRACE", /control characters or one of/);
    assertIssue(result, "labels.SERVICE_LONG", /longer than 512/);
  });

  it("meta: at most 50 user keys", () => {
    const labels: Record<string, string> = {};
    for (let i = 0; i < MAX_META_KEYS + 5; i++) labels[`SERVICE_K${String(i).padStart(2, "0")}`] = "v";
    const result = compatRegistrations(container({ labels }), options());
    const meta = userMeta(only(result));
    assert.equal(Object.keys(meta).length, MAX_META_KEYS);
    assert.equal(meta.k54, undefined);
    assertIssue(result, "labels.SERVICE_K54", /more than 50/);
  });

  it("label keys with control characters are quoted in issue fields", () => {
    const result = compatRegistrations(container({ labels: { "SERVICE_X\nY": "1" } }), options());
    assert.ok(result.issues.length > 0);
    for (const i of result.issues) assert.ok(!i.field.includes("\n") && !i.message.includes("\n"));
  });
});

describe("registrator compat: checks", () => {
  it("HTTP check with interval and timeout (backends.md example)", () => {
    const reg = only(
      compatRegistrations(
        container({
          ports: [pub(80, 8000)],
          labels: {
            SERVICE_80_CHECK_HTTP: "/health/endpoint/path",
            SERVICE_80_CHECK_INTERVAL: "15s",
            SERVICE_80_CHECK_TIMEOUT: "1s",
          },
        }),
        options(),
      ),
    );
    assert.deepEqual(reg.check, { http: `http://${HOST}:8000/health/endpoint/path`, interval: "15s", timeout: "1s" });
    assert.deepEqual(userMeta(reg), {}, "check_* keys are not copied into meta");
  });

  it("HTTPS check defaults the interval to 10s", () => {
    const reg = only(compatRegistrations(container({ labels: { SERVICE_CHECK_HTTPS: "/ready?x=1" } }), options()));
    assert.deepEqual(reg.check, { http: `https://${HOST}:10000/ready?x=1`, interval: "10s" });
  });

  it("TCP check on the advertised address; internal mode uses container IP and private port", () => {
    const labels = { SERVICE_CHECK_TCP: "true", SERVICE_CHECK_TIMEOUT: "3s" };
    assert.deepEqual(only(compatRegistrations(container({ labels }), options())).check, {
      tcp: `${HOST}:10000`,
      interval: "10s",
      timeout: "3s",
    });
    assert.deepEqual(only(compatRegistrations(container({ labels }), options({ internal: true }))).check, {
      tcp: "172.17.0.5:6379",
      interval: "10s",
      timeout: "3s",
    });
  });

  it("IPv6 addresses are bracketed in check targets", () => {
    const reg = only(compatRegistrations(container({ labels: { SERVICE_CHECK_HTTP: "/h" } }), options({ hostIP: "2001:db8::7" })));
    assert.equal(reg.check?.http, "http://[2001:db8::7]:10000/h");
  });

  it("TTL check has no interval or timeout", () => {
    const reg = only(
      compatRegistrations(container({ env: { SERVICE_CHECK_TTL: "30s", SERVICE_CHECK_INTERVAL: "5s", SERVICE_CHECK_TIMEOUT: "1s" } }), options()),
    );
    assert.deepEqual(reg.check, { ttl: "30s" });
  });

  it("initial status and deregister-after are passed through when valid", () => {
    const reg = only(
      compatRegistrations(
        container({
          labels: {
            SERVICE_CHECK_HTTP: "/",
            SERVICE_CHECK_INITIAL_STATUS: "passing",
            SERVICE_CHECK_DEREGISTER_AFTER: "90m",
          },
        }),
        options(),
      ),
    );
    assert.deepEqual(reg.check, {
      http: `http://${HOST}:10000/`,
      interval: "10s",
      status: "passing",
      deregisterCriticalServiceAfter: "90m",
    });
  });

  it("http has precedence over tcp and ttl", () => {
    const reg = only(compatRegistrations(container({ labels: { SERVICE_CHECK_HTTP: "/h", SERVICE_CHECK_TCP: "true", SERVICE_CHECK_TTL: "10s" } }), options()));
    assert.equal(reg.check?.http, `http://${HOST}:10000/h`);
    assert.equal(reg.check.tcp, undefined);
  });

  it("invalid durations and status are reported; interval falls back to 10s", () => {
    const result = compatRegistrations(
      container({
        labels: {
          SERVICE_CHECK_TCP: "true",
          SERVICE_CHECK_INTERVAL: "10 s; rm",
          SERVICE_CHECK_TIMEOUT: "0s",
          SERVICE_CHECK_DEREGISTER_AFTER: "1d",
          SERVICE_CHECK_INITIAL_STATUS: "ok\n",
        },
      }),
      options(),
    );
    assert.deepEqual(only(result).check, { tcp: `${HOST}:10000`, interval: "10s" });
    assertIssue(result, "labels.SERVICE_CHECK_INTERVAL", /invalid check interval/);
    assertIssue(result, "labels.SERVICE_CHECK_TIMEOUT", /invalid check timeout/);
    assertIssue(result, "labels.SERVICE_CHECK_DEREGISTER_AFTER", /invalid deregister-after/);
    assertIssue(result, "labels.SERVICE_CHECK_INITIAL_STATUS", /invalid initial status/);
  });

  it("an invalid TTL or HTTP path gives no check from that key", () => {
    const ttl = compatRegistrations(container({ labels: { SERVICE_CHECK_TTL: "forever" } }), options());
    assert.equal(only(ttl).check, undefined);
    assertIssue(ttl, "labels.SERVICE_CHECK_TTL", /invalid check TTL/);
    for (const path of ["health", "/a b", "/x\ny", "/\\evil", "/ü"]) {
      const r = compatRegistrations(container({ labels: { SERVICE_CHECK_HTTP: path } }), options());
      assert.equal(only(r).check, undefined, path);
      assertIssue(r, "labels.SERVICE_CHECK_HTTP", /invalid check path/);
    }
  });

  it("an invalid HTTP path falls through to the next usable check kind", () => {
    const result = compatRegistrations(container({ labels: { SERVICE_CHECK_HTTP: "no-slash", SERVICE_CHECK_TCP: "true" } }), options());
    assert.deepEqual(only(result).check, { tcp: `${HOST}:10000`, interval: "10s" });
  });

  it("script, cmd and docker checks are not registered and are reported as a security risk", () => {
    const result = compatRegistrations(
      container({
        labels: {
          SERVICE_CHECK_SCRIPT: "nc $SERVICE_IP $SERVICE_PORT | grep OK",
          SERVICE_6379_CHECK_CMD: "/bin/health",
          SERVICE_CHECK_DOCKER: "curl localhost",
          SERVICE_CHECK_INTERVAL: "5s",
        },
      }),
      options(),
    );
    const reg = only(result);
    assert.equal(reg.check, undefined);
    assert.deepEqual(userMeta(reg), {});
    assertIssue(result, "labels.SERVICE_CHECK_SCRIPT", /security/);
    assertIssue(result, "labels.SERVICE_6379_CHECK_CMD", /security/);
    assertIssue(result, "labels.SERVICE_CHECK_DOCKER", /security/);
    assertIssue(result, "labels.SERVICE_CHECK_INTERVAL", /no usable check kind/);
  });

  it("a script check next to a supported kind: the supported one is used", () => {
    const result = compatRegistrations(container({ labels: { SERVICE_CHECK_SCRIPT: "true", SERVICE_CHECK_TTL: "20s" } }), options());
    assert.deepEqual(only(result).check, { ttl: "20s" });
    assertIssue(result, "labels.SERVICE_CHECK_SCRIPT", /ignored/);
  });

  it("unknown check keys are reported and never become meta", () => {
    const result = compatRegistrations(container({ labels: { SERVICE_CHECK_GRPC: "true", SERVICE_CHECK_FOO: "x" } }), options());
    assert.deepEqual(userMeta(only(result)), {});
    assertIssue(result, "labels.SERVICE_CHECK_GRPC", /gRPC/);
    assertIssue(result, "labels.SERVICE_CHECK_FOO", /unknown registrator check key/);
  });

  it("port-specific check keys apply only to their port", () => {
    const result = compatRegistrations(container({ ports: [pub(80, 8000), pub(443, 4443)], labels: { SERVICE_80_CHECK_HTTP: "/h" } }), options());
    assert.equal(byName(result, "redis-80").check?.http, `http://${HOST}:8000/h`);
    assert.equal(byName(result, "redis-443").check, undefined);
  });
});
