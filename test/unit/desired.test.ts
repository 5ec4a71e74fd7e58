import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkFor, desiredForBinding, serviceId, type DesiredOptions } from "../../src/domain/desired.js";
import { OWNER_META, type BackendsSpec, type ContainerInfo, type HealthCheckSpec, type Registration, type ServiceBinding } from "../../src/domain/types.js";
import { HEALTH_CHECK, makeBinding, makeContainer } from "../support/fakes.js";

const OPTS: DesiredOptions = { node: "node-1", hostIP: "192.0.2.10" };

/** Binding shop/web: service web-svc (tags v1, http; meta team=blue) for containers app=web on private port 8080. */
function binding(backends: Partial<BackendsSpec> = {}, healthCheck: Partial<HealthCheckSpec> = {}): ServiceBinding {
  return makeBinding("web", {
    namespace: "shop",
    service: { name: "web-svc", tags: ["v1", "http"], meta: { team: "blue" } },
    backends: { selector: { matchLabels: { app: "web" } }, port: 8080, ...backends },
    healthCheck,
  });
}

/** Container app=web, private port 8080 published on 127.0.0.1:32768. */
function container(id: string, over: Partial<ContainerInfo> = {}): ContainerInfo {
  return makeContainer(id, { name: `web-${id.slice(0, 4)}`, ports: [{ privatePort: 8080, protocol: "tcp", hostIP: "127.0.0.1", hostPort: 32768 }], ...over });
}

const ID_A = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111";
const ID_B = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222";
const ID_C = "cccccccccccc3333333333333333333333333333333333333333333333333333";

function only(b: ServiceBinding, containers: ContainerInfo[], opts: DesiredOptions = OPTS): Registration {
  const result = desiredForBinding(b, containers, opts);
  assert.equal(result.registrations.length, 1, JSON.stringify(result));
  const r = result.registrations[0];
  assert.ok(r !== undefined);
  return r;
}

describe("desiredForBinding: published mode", () => {
  it("advertises the specific host IP and the published host port", () => {
    const r = only(binding(), [container(ID_A)]);
    assert.equal(r.address, "127.0.0.1");
    assert.equal(r.port, 32768);
    assert.equal(r.name, "web-svc");
    assert.deepEqual(r.tags, ["v1", "http"]);
  });

  for (const bound of ["0.0.0.0", "::", ""]) {
    it(`a port bound to wildcard ${JSON.stringify(bound)} advertises opts.hostIP`, () => {
      const c = container(ID_A, { ports: [{ privatePort: 8080, protocol: "tcp", hostIP: bound, hostPort: 40000 }] });
      const r = only(binding(), [c]);
      assert.equal(r.address, OPTS.hostIP);
      assert.equal(r.port, 40000);
    });
  }

  it("a port mapping without a host IP advertises opts.hostIP", () => {
    const c = container(ID_A, { ports: [{ privatePort: 8080, protocol: "tcp", hostPort: 40001 }] });
    assert.equal(only(binding(), [c]).address, OPTS.hostIP);
  });

  it("the binding's hostIP overrides both the bound IP and opts.hostIP", () => {
    assert.equal(only(binding({ hostIP: "203.0.113.7" }), [container(ID_A)]).address, "203.0.113.7");
    const wildcard = container(ID_A, { ports: [{ privatePort: 8080, protocol: "tcp", hostIP: "0.0.0.0", hostPort: 40000 }] });
    assert.equal(only(binding({ hostIP: "203.0.113.7" }), [wildcard]).address, "203.0.113.7");
  });

  it("picks the mapping of the binding's protocol", () => {
    const c = container(ID_A, {
      ports: [
        { privatePort: 8080, protocol: "udp", hostIP: "127.0.0.1", hostPort: 5000 },
        { privatePort: 8080, protocol: "tcp", hostIP: "127.0.0.1", hostPort: 6000 },
      ],
    });
    assert.equal(only(binding({ protocol: "udp" }), [c]).port, 5000);
    assert.equal(only(binding({ protocol: "tcp" }), [c]).port, 6000);
  });

  it("skips an exposed-but-unpublished port with a reason", () => {
    const c = container(ID_A, { ports: [{ privatePort: 8080, protocol: "tcp" }] });
    const result = desiredForBinding(binding(), [c], OPTS);
    assert.deepEqual(result.registrations, []);
    assert.deepEqual(result.skipped, [{ containerId: ID_A, reason: "port 8080/tcp is not published" }]);
  });

  it("skips a container that does not have the port at all", () => {
    const c = container(ID_A, { ports: [{ privatePort: 9090, protocol: "tcp", hostIP: "127.0.0.1", hostPort: 1 }] });
    const result = desiredForBinding(binding(), [c], OPTS);
    assert.equal(result.registrations.length, 0);
    assert.match(result.skipped[0]?.reason ?? "", /8080\/tcp is not published/);
  });

  it("skips a port published for the other protocol only", () => {
    const c = container(ID_A, { ports: [{ privatePort: 8080, protocol: "udp", hostIP: "127.0.0.1", hostPort: 5000 }] });
    const result = desiredForBinding(binding(), [c], OPTS);
    assert.equal(result.registrations.length, 0);
    assert.equal(result.skipped.length, 1);
  });

  it("skips a bound host IP that is not an IP literal", () => {
    const c = container(ID_A, { ports: [{ privatePort: 8080, protocol: "tcp", hostIP: "localhost", hostPort: 5000 }] });
    const result = desiredForBinding(binding(), [c], OPTS);
    assert.equal(result.registrations.length, 0);
    assert.match(result.skipped[0]?.reason ?? "", /"localhost" is not an IP address/);
  });
});

describe("desiredForBinding: internal mode", () => {
  const multi = container(ID_A, { networks: { zeta: "10.0.9.9", backend: "10.0.1.5", bridge: "172.17.0.2" } });

  it("advertises the container IP on the named network and the private port", () => {
    const r = only(binding({ addressMode: "internal", network: "backend" }), [multi]);
    assert.equal(r.address, "10.0.1.5");
    assert.equal(r.port, 8080);
  });

  it("uses the alphabetically first network when none is named", () => {
    const r = only(binding({ addressMode: "internal" }), [multi]);
    assert.equal(r.address, "10.0.1.5", "backend < bridge < zeta");
  });

  it("does not need the port to be published", () => {
    const c = container(ID_A, { ports: [] });
    assert.equal(only(binding({ addressMode: "internal", network: "bridge" }), [c]).address, "172.17.0.2");
  });

  it("skips a container that is not on the network, naming it", () => {
    const result = desiredForBinding(binding({ addressMode: "internal", network: "other" }), [multi], OPTS);
    assert.equal(result.registrations.length, 0);
    assert.deepEqual(result.skipped, [{ containerId: ID_A, reason: "container is not attached to network other" }]);
  });

  it("skips a container without networks", () => {
    const result = desiredForBinding(binding({ addressMode: "internal" }), [container(ID_A, { networks: {} })], OPTS);
    assert.equal(result.skipped.length, 1);
    assert.match(result.skipped[0]?.reason ?? "", /\(any\)/);
  });
});

describe("desiredForBinding: filtering", () => {
  it("excludes containers that are not running (not even as skipped)", () => {
    const result = desiredForBinding(binding(), [container(ID_A, { running: false }), container(ID_B)], OPTS);
    assert.deepEqual(
      result.registrations.map((r) => r.meta[OWNER_META.container]),
      [ID_B],
    );
    assert.deepEqual(result.skipped, []);
  });

  it("excludes containers the label selector does not match", () => {
    const result = desiredForBinding(binding(), [container(ID_A, { labels: { app: "api" } }), container(ID_B, { labels: {} })], OPTS);
    assert.deepEqual(result.registrations, []);
    assert.deepEqual(result.skipped, []);
  });

  it("applies matchExpressions", () => {
    const b = binding({ selector: { matchExpressions: [{ key: "env", operator: "In", values: ["prod"] }] } });
    const result = desiredForBinding(
      b,
      [container(ID_A, { labels: { env: "prod" } }), container(ID_B, { labels: { env: "dev" } }), container(ID_C, { labels: {} })],
      OPTS,
    );
    assert.deepEqual(
      result.registrations.map((r) => r.meta[OWNER_META.container]),
      [ID_A],
    );
  });

  it("returns nothing for no containers", () => {
    assert.deepEqual(desiredForBinding(binding(), [], OPTS), { registrations: [], skipped: [] });
  });
});

describe("desiredForBinding: identity and ownership", () => {
  it("ids are deterministic and sorted whatever the container order", () => {
    const cs = [container(ID_C), container(ID_A), container(ID_B)];
    const forward = desiredForBinding(binding(), cs, OPTS);
    const backward = desiredForBinding(binding(), [...cs].reverse(), OPTS);
    const ids = forward.registrations.map((r) => r.id);
    assert.deepEqual(ids, [...ids].sort());
    assert.equal(ids.length, 3);
    assert.deepEqual(forward, backward);
  });

  it("service ids encode node, namespace, name, short container id and port", () => {
    assert.equal(serviceId(binding(), "node-1", ID_A), "dockbind:node-1:shop:web:aaaaaaaaaaaa:8080");
    const r = only(binding(), [container(ID_A)]);
    assert.equal(r.id, "dockbind:node-1:shop:web:aaaaaaaaaaaa:8080");
  });

  it("different nodes produce different ids for the same container", () => {
    const a = only(binding(), [container(ID_A)], { ...OPTS, node: "n1" });
    const b = only(binding(), [container(ID_A)], { ...OPTS, node: "n2" });
    assert.notEqual(a.id, b.id);
  });

  it("carries owner meta next to the service meta", () => {
    const r = only(binding(), [container(ID_A)]);
    assert.deepEqual(r.meta, {
      team: "blue",
      [OWNER_META.node]: "node-1",
      [OWNER_META.binding]: "shop/web",
      [OWNER_META.container]: ID_A,
    });
    assert.equal(OWNER_META.hash in r.meta, false, "the planner fills the hash");
  });

  it("does not share tag arrays with the binding", () => {
    const b = binding();
    const r = only(b, [container(ID_A)]);
    assert.notEqual(r.tags, b.spec.service.tags);
  });
});

describe("health checks", () => {
  it("http: URL with path, interval, timeout and initial status", () => {
    const r = only(binding({}, { type: "http", path: "/healthz?full=1", interval: "5s", timeout: "1s", initialStatus: "passing" }), [container(ID_A)]);
    assert.deepEqual(r.check, { http: "http://127.0.0.1:32768/healthz?full=1", interval: "5s", timeout: "1s", status: "passing" });
  });

  it("tcp: host:port", () => {
    const r = only(binding(), [container(ID_A)]);
    assert.deepEqual(r.check, { tcp: "127.0.0.1:32768", interval: "10s", timeout: "2s", status: "critical" });
  });

  it("ttl: only the ttl and the status", () => {
    const r = only(binding({}, { type: "ttl", ttl: "45s", initialStatus: "warning" }), [container(ID_A)]);
    assert.deepEqual(r.check, { ttl: "45s", status: "warning" });
  });

  it("none: no check at all", () => {
    const r = only(binding({}, { type: "none" }), [container(ID_A)]);
    assert.equal(r.check, undefined);
    assert.equal("check" in r, false);
  });

  it("passes deregisterCriticalAfter through", () => {
    const r = only(binding({}, { deregisterCriticalAfter: "1m" }), [container(ID_A)]);
    assert.equal(r.check?.deregisterCriticalServiceAfter, "1m");
  });

  it("brackets IPv6 addresses in http and tcp checks", () => {
    const hcHttp = { ...HEALTH_CHECK, type: "http" as const, path: "/ready" };
    assert.equal(checkFor(hcHttp, "fd00::1", 8080)?.http, "http://[fd00::1]:8080/ready");
    assert.equal(checkFor(HEALTH_CHECK, "fd00::1", 8080)?.tcp, "[fd00::1]:8080");
    assert.equal(checkFor(HEALTH_CHECK, "10.0.0.1", 8080)?.tcp, "10.0.0.1:8080");
  });

  it("an IPv6 published address ends up bracketed in the check", () => {
    const c = container(ID_A, { ports: [{ privatePort: 8080, protocol: "tcp", hostIP: "fd00::5", hostPort: 30000 }] });
    const r = only(binding({}, { type: "http" }), [c]);
    assert.equal(r.address, "fd00::5", "the service address itself is not bracketed");
    assert.equal(r.check?.http, "http://[fd00::5]:30000/");
  });
});
