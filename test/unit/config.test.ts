import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { compatOptions, ConfigError, consulUrl, loadConfig } from "../../src/config/config.js";

// --docker-only: Kubernetes mode needs a kubeconfig, which these tests are not about.
const DOCKER_ONLY = "--docker-only";
const BASE = [DOCKER_ONLY, "--bindings", "/srv/bindings"];

describe("loadConfig defaults", () => {
  it("fills every field from defaults when only --bindings is given", () => {
    const c = loadConfig([...BASE, "--log-format", "json"], {});
    assert.equal(c.bindingsDir, "/srv/bindings");
    assert.equal(c.dockerOnly, true);
    assert.equal(c.registratorCompat, false);
    assert.equal(c.registratorInternal, false);
    assert.equal(c.node, hostname());
    assert.equal(c.hostIP, "127.0.0.1");
    assert.deepEqual(c.dockerEndpoints, [{ node: hostname(), host: "unix:///var/run/docker.sock", hostIP: "127.0.0.1" }]);
    assert.deepEqual(c.consul, { url: "http://127.0.0.1:8500", urls: ["http://127.0.0.1:8500"] });
    assert.equal(c.lbOutputDir, "/etc/nginx/conf.d");
    assert.equal(c.templateDir, "/srv/bindings", "templates default to the bindings directory");
    assert.deepEqual(c.nginx, { bin: "nginx", args: [] });
    assert.equal(c.resyncIntervalMs, 300_000);
    assert.equal(c.waitMinMs, 100);
    assert.equal(c.waitMaxMs, 1000);
    assert.equal(c.workers, 2);
    assert.equal(c.logLevel, "info");
    assert.equal(c.logFormat, "json");
  });

  it("defaults the log format from whether stderr is a TTY", () => {
    const c = loadConfig(BASE, {});
    assert.equal(c.logFormat, process.stderr.isTTY ? "text" : "json");
  });

  it("requires a bindings directory in docker-only mode", () => {
    assert.throws(() => loadConfig([DOCKER_ONLY], {}), ConfigError);
    assert.throws(() => loadConfig([DOCKER_ONLY], { DOCKBIND_BINDINGS_DIR: "" }), ConfigError);
  });

  it("resolves relative directories against the working directory", () => {
    const c = loadConfig([DOCKER_ONLY, "--bindings", "rel/b", "--lb-output-dir", "out", "--nginx-prefix", "p", "--nginx-conf", "p/nginx.conf"], {});
    assert.equal(c.bindingsDir, resolve("rel/b"));
    assert.equal(c.lbOutputDir, resolve("out"));
    assert.deepEqual(c.nginx.args, ["-p", resolve("p"), "-c", resolve("p/nginx.conf")]);
  });

  it("parses boolean flags", () => {
    const c = loadConfig([...BASE, "--registrator-compat", "--registrator-internal"], {});
    assert.equal(c.registratorCompat, true);
    assert.equal(c.registratorInternal, true);
    assert.equal(c.registratorExplicit, false);
  });

  it("builds each endpoint's registrator-compat options from one place (node, host IP, -internal, -explicit)", () => {
    const off = loadConfig([...BASE, "--node", "n1"], {});
    assert.equal(compatOptions(off, { node: "n1", hostIP: "127.0.0.1" }), undefined);
    const on = loadConfig([...BASE, "--registrator-compat", "--registrator-explicit", "--node", "n1"], {});
    assert.deepEqual(compatOptions(on, { node: "ep-2", hostIP: "10.0.0.7" }), {
      node: "ep-2",
      hostIP: "10.0.0.7",
      internal: false,
      explicit: true,
      extraTags: [],
    });
  });
});

describe("loadConfig precedence: flag > env > default", () => {
  const env = {
    DOCKBIND_BINDINGS_DIR: "/env/bindings",
    DOCKBIND_NODE: "env-node",
    DOCKBIND_HOST_IP: "10.0.0.2",
    DOCKBIND_WORKERS: "8",
    DOCKBIND_LOG_LEVEL: "warn",
    DOCKBIND_LOG_FORMAT: "text",
    DOCKBIND_RESYNC: "1m",
    DOCKBIND_WAIT_MIN: "200ms",
    DOCKBIND_WAIT_MAX: "2s",
    DOCKBIND_LB_OUTPUT_DIR: "/env/out",
    DOCKBIND_TEMPLATE_DIR: "/env/tpl",
    DOCKBIND_NGINX_BIN: "/env/nginx",
    DOCKER_HOST: "tcp://env:2375",
    CONSUL_HTTP_ADDR: "env-consul:8500",
  };

  it("environment beats defaults", () => {
    const c = loadConfig([DOCKER_ONLY], env);
    assert.equal(c.bindingsDir, "/env/bindings");
    assert.equal(c.node, "env-node");
    assert.equal(c.hostIP, "10.0.0.2");
    assert.equal(c.workers, 8);
    assert.equal(c.logLevel, "warn");
    assert.equal(c.logFormat, "text");
    assert.equal(c.resyncIntervalMs, 60_000);
    assert.equal(c.waitMinMs, 200);
    assert.equal(c.waitMaxMs, 2000);
    assert.equal(c.lbOutputDir, "/env/out");
    assert.equal(c.templateDir, "/env/tpl");
    assert.equal(c.nginx.bin, "/env/nginx");
    assert.deepEqual(c.dockerEndpoints, [{ node: "env-node", host: "tcp://env:2375", hostIP: "10.0.0.2" }]);
    assert.equal(c.consul.url, "http://env-consul:8500");
  });

  it("flags beat the environment", () => {
    const c = loadConfig(
      [
        DOCKER_ONLY,
        "--bindings",
        "/flag/bindings",
        "--node",
        "flag-node",
        "--host-ip",
        "10.0.0.3",
        "--workers",
        "3",
        "--log-level",
        "debug",
        "--log-format",
        "json",
        "--resync",
        "5s",
        "--wait-min",
        "1s",
        "--wait-max",
        "3s",
        "--lb-output-dir",
        "/flag/out",
        "--template-dir",
        "/flag/tpl",
        "--nginx-bin",
        "/flag/nginx",
        "--docker-host",
        "tcp://flag:2375",
        "--consul-addr",
        "flag-consul:8501",
      ],
      env,
    );
    assert.equal(c.bindingsDir, "/flag/bindings");
    assert.equal(c.node, "flag-node");
    assert.equal(c.hostIP, "10.0.0.3");
    assert.equal(c.workers, 3);
    assert.equal(c.logLevel, "debug");
    assert.equal(c.logFormat, "json");
    assert.equal(c.resyncIntervalMs, 5000);
    assert.equal(c.waitMinMs, 1000);
    assert.equal(c.waitMaxMs, 3000);
    assert.equal(c.lbOutputDir, "/flag/out");
    assert.equal(c.templateDir, "/flag/tpl");
    assert.equal(c.nginx.bin, "/flag/nginx");
    assert.deepEqual(c.dockerEndpoints, [{ node: "flag-node", host: "tcp://flag:2375", hostIP: "10.0.0.3" }]);
    assert.equal(c.consul.url, "http://flag-consul:8501");
  });

  it("an empty environment variable counts as unset", () => {
    const c = loadConfig(BASE, { DOCKBIND_HOST_IP: "", DOCKBIND_WORKERS: "", DOCKBIND_NODE: "", CONSUL_HTTP_ADDR: "" });
    assert.equal(c.hostIP, "127.0.0.1");
    assert.equal(c.workers, 2);
    assert.equal(c.node, hostname());
    assert.equal(c.consul.url, "http://127.0.0.1:8500");
  });

  it("an empty flag falls back to the environment", () => {
    const c = loadConfig([...BASE, "--host-ip", ""], { DOCKBIND_HOST_IP: "10.9.9.9" });
    assert.equal(c.hostIP, "10.9.9.9");
  });
});

describe("loadConfig: Consul address", () => {
  const url = (addr: string, extra: Record<string, string> = {}): string => loadConfig(BASE, { CONSUL_HTTP_ADDR: addr, ...extra }).consul.url;

  it("accepts host:port without a scheme (http)", () => {
    assert.equal(url("consul.local:8500"), "http://consul.local:8500");
  });

  it("keeps an explicit http or https scheme", () => {
    assert.equal(url("http://consul.local:8500"), "http://consul.local:8500");
    assert.equal(url("https://consul.local:8501"), "https://consul.local:8501");
  });

  it("uses https for a scheme-less address when CONSUL_HTTP_SSL=true", () => {
    assert.equal(url("consul.local:8501", { CONSUL_HTTP_SSL: "true" }), "https://consul.local:8501");
    assert.equal(url("consul.local:8500", { CONSUL_HTTP_SSL: "false" }), "http://consul.local:8500");
  });

  it("an explicit scheme wins over CONSUL_HTTP_SSL", () => {
    assert.equal(url("http://consul.local:8500", { CONSUL_HTTP_SSL: "true" }), "http://consul.local:8500");
  });

  it("drops any path and trailing slash", () => {
    assert.equal(url("http://consul.local:8500/"), "http://consul.local:8500");
    assert.equal(url("http://consul.local:8500/v1"), "http://consul.local:8500");
  });

  it("handles IPv6 literals", () => {
    assert.equal(consulUrl("[::1]:8500", false), "http://[::1]:8500");
  });

  it("drops the default port of the scheme like URL does", () => {
    assert.equal(consulUrl("https://consul.local:443", false), "https://consul.local");
  });
});

describe("loadConfig: Consul token", () => {
  let dir = "";
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "dockbind-config-"));
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function tokenFile(name: string, content: string): string {
    const file = join(dir, name);
    writeFileSync(file, content);
    return file;
  }

  it("has no token by default", () => {
    const c = loadConfig(BASE, {});
    assert.equal(c.consul.token, undefined);
    assert.equal("token" in c.consul, false);
  });

  it("reads CONSUL_HTTP_TOKEN", () => {
    assert.equal(loadConfig(BASE, { CONSUL_HTTP_TOKEN: "s3cr3t-env" }).consul.token, "s3cr3t-env");
  });

  it("reads and trims CONSUL_HTTP_TOKEN_FILE", () => {
    const file = tokenFile("env-token", "  s3cr3t-file\n");
    assert.equal(loadConfig(BASE, { CONSUL_HTTP_TOKEN_FILE: file }).consul.token, "s3cr3t-file");
  });

  it("the token file wins over CONSUL_HTTP_TOKEN", () => {
    const file = tokenFile("both-token", "from-file");
    const c = loadConfig(BASE, { CONSUL_HTTP_TOKEN_FILE: file, CONSUL_HTTP_TOKEN: "from-env" });
    assert.equal(c.consul.token, "from-file");
  });

  it("--consul-token-file wins over CONSUL_HTTP_TOKEN_FILE", () => {
    const envFile = tokenFile("env-file", "env-file-token");
    const flagFile = tokenFile("flag-file", "flag-file-token");
    const c = loadConfig([...BASE, "--consul-token-file", flagFile], { CONSUL_HTTP_TOKEN_FILE: envFile });
    assert.equal(c.consul.token, "flag-file-token");
  });

  it("an empty token file is a ConfigError", () => {
    const file = tokenFile("empty", "  \n");
    assert.throws(() => loadConfig(BASE, { CONSUL_HTTP_TOKEN_FILE: file }), ConfigError);
  });

  it("a missing token file is an error", () => {
    assert.throws(() => loadConfig(BASE, { CONSUL_HTTP_TOKEN_FILE: join(dir, "does-not-exist") }), { message: /does-not-exist/ });
  });
});

describe("loadConfig: invalid values", () => {
  const cases: [string, string[]][] = [
    ["--host-ip hostname", ["--host-ip", "myhost"]],
    ["--host-ip with port", ["--host-ip", "10.0.0.1:80"]],
    ["--host-ip out of range", ["--host-ip", "10.0.0.256"]],
    ["--workers 0", ["--workers", "0"]],
    ["--workers 65", ["--workers", "65"]],
    ["--workers 1.5", ["--workers", "1.5"]],
    ["--workers abc", ["--workers", "abc"]],
    ["--log-level verbose", ["--log-level", "verbose"]],
    ["--log-level INFO", ["--log-level", "INFO"]],
    ["--log-format xml", ["--log-format", "xml"]],
    ["--resync 10", ["--resync", "10"]],
    ["--wait-min bogus", ["--wait-min", "bogus"]],
    ["--wait-max < --wait-min", ["--wait-min", "2s", "--wait-max", "1s"]],
  ];
  for (const [name, args] of cases) {
    it(`${name} => ConfigError`, () => {
      assert.throws(() => loadConfig([...BASE, ...args], {}), ConfigError);
    });
  }

  it("invalid environment values are ConfigErrors too", () => {
    assert.throws(() => loadConfig(BASE, { DOCKBIND_HOST_IP: "not-an-ip" }), ConfigError);
    assert.throws(() => loadConfig(BASE, { DOCKBIND_WORKERS: "-1" }), ConfigError);
    assert.throws(() => loadConfig(BASE, { DOCKBIND_LOG_LEVEL: "trace" }), ConfigError);
  });

  it("the ConfigError names the flag and carries reason InvalidConfig", () => {
    assert.throws(
      () => loadConfig([...BASE, "--host-ip", "myhost"], {}),
      (err: unknown) =>
        err instanceof ConfigError && (err as { reason: unknown }).reason === "InvalidConfig" && /--host-ip/.test(err.message) && /myhost/.test(err.message),
    );
  });

  it("accepts the boundaries of --workers and IPv6 host IPs", () => {
    assert.equal(loadConfig([...BASE, "--workers", "1"], {}).workers, 1);
    assert.equal(loadConfig([...BASE, "--workers", "64"], {}).workers, 64);
    assert.equal(loadConfig([...BASE, "--host-ip", "fd00::1"], {}).hostIP, "fd00::1");
  });

  it("rejects unknown flags and positionals", () => {
    assert.throws(() => loadConfig([...BASE, "--no-such-flag"], {}));
    assert.throws(() => loadConfig([...BASE, "extra"], {}));
  });
});

describe("loadConfig result is frozen", () => {
  it("cannot be modified", () => {
    const c = loadConfig(BASE, {});
    assert.equal(Object.isFrozen(c), true);
    assert.throws(() => {
      (c as { workers: number }).workers = 99;
    }, TypeError);
    assert.equal(c.workers, 2);
  });

  it("nested objects cannot be modified either", () => {
    const c = loadConfig(BASE, { CONSUL_HTTP_TOKEN: "tok-1234" });
    assert.equal(Object.isFrozen(c.consul), true);
    assert.equal(Object.isFrozen(c.nginx), true);
    assert.equal(Object.isFrozen(c.nginx.args), true);
    assert.throws(() => {
      (c.consul as { url: string }).url = "http://evil:8500";
    }, TypeError);
  });
});

describe("--docker-endpoint: several Docker engines, each with a node identity", () => {
  let certs: string;
  before(() => {
    certs = mkdtempSync(join(tmpdir(), "dockbind-certs-"));
    for (const f of ["ca.pem", "cert.pem", "key.pem"]) writeFileSync(join(certs, f), `PEM ${f}\n`);
  });
  after(() => {
    rmSync(certs, { recursive: true, force: true });
  });

  it("parses every endpoint: unix socket, tcp with an IP (host-ip defaults to it), tcp+TLS with a cert path", () => {
    const c = loadConfig(
      [
        ...BASE,
        "--node",
        "ctl",
        "--docker-endpoint",
        "node=local,host=unix:///var/run/docker.sock",
        "--docker-endpoint",
        "node=host-b,host=tcp://192.0.2.7:2375",
        "--docker-endpoint",
        `node=host-c,host=tcp://docker-c.example:2376,cert-path=${certs},host-ip=192.0.2.8`,
        "--docker-endpoint",
        `node=host-d,host=tcp://[2001:db8::4]:2376,cert-path=${certs},tls-verify=false`,
      ],
      { DOCKER_HOST: "tcp://ignored:1" },
    );
    assert.equal(c.node, "ctl");
    assert.deepEqual(
      c.dockerEndpoints.map((e) => [e.node, e.host, e.hostIP, e.tls?.verify]),
      [
        ["local", "unix:///var/run/docker.sock", "127.0.0.1", undefined],
        ["host-b", "tcp://192.0.2.7:2375", "192.0.2.7", undefined],
        ["host-c", "tcp://docker-c.example:2376", "192.0.2.8", true],
        ["host-d", "tcp://[2001:db8::4]:2376", "2001:db8::4", false],
      ],
    );
    assert.equal(c.dockerEndpoints[2]?.tls?.ca, "PEM ca.pem\n");
    assert.ok(Object.isFrozen(c.dockerEndpoints) && Object.isFrozen(c.dockerEndpoints[0]));
  });

  it("reads DOCKBIND_DOCKER_ENDPOINTS (entries separated by ';') when no flag is given", () => {
    const c = loadConfig(BASE, { DOCKBIND_DOCKER_ENDPOINTS: "node=a,host=/run/a.sock; node=b,host=tcp://127.0.0.2:2375" });
    assert.deepEqual(
      c.dockerEndpoints.map((e) => `${e.node}=${e.host}@${e.hostIP}`),
      ["a=/run/a.sock@127.0.0.1", "b=tcp://127.0.0.2:2375@127.0.0.2"],
    );
  });

  const bad: readonly (readonly [string, readonly string[], RegExp])[] = [
    ["a missing node", ["--docker-endpoint", "host=unix:///x.sock"], /node= and host= are required/],
    ["an unknown key", ["--docker-endpoint", "node=a,host=/x.sock,tls=yes"], /KEY one of node, host, cert-path, tls-verify, host-ip.*"tls=yes"/],
    ["a key twice", ["--docker-endpoint", "node=a,node=b,host=/x.sock"], /node given twice/],
    ["a node with ':'", ["--docker-endpoint", "node=a:b,host=/x.sock"], /node must be 1-63 letters/],
    ["a node with '@'", ["--docker-endpoint", "node=a@b,host=/x.sock"], /node must be 1-63 letters/],
    ["an http:// host", ["--docker-endpoint", "node=a,host=http://127.0.0.1:2375"], /must be unix:\/\/PATH, an absolute socket path or tcp:\/\/HOST:PORT/],
    [
      "a tcp host by name without host-ip",
      ["--docker-endpoint", "node=a,host=tcp://docker-a:2375"],
      /host-ip= is required when the tcp:\/\/ host is a name \(docker-a\)/,
    ],
    ["a bad host-ip", ["--docker-endpoint", "node=a,host=/x.sock,host-ip=10.0.0"], /host-ip must be an IP address/],
    ["cert-path on a socket", ["--docker-endpoint", "node=a,host=/x.sock,cert-path=/nowhere"], /cert-path needs a tcp:\/\/ host/],
    ["a missing cert file", ["--docker-endpoint", "node=a,host=tcp://127.0.0.1:2376,cert-path=/nonexistent-certs"], /cert-path \/nonexistent-certs: .*ENOENT/],
    ["bad tls-verify", ["--docker-endpoint", "node=a,host=tcp://127.0.0.1:2376,tls-verify=1"], /tls-verify must be true or false/],
    ["two endpoints with one node", ["--docker-endpoint", "node=a,host=/x.sock", "--docker-endpoint", "node=a,host=/y.sock"], /node "a" given twice/],
    [
      "--docker-host beside endpoints",
      ["--docker-host", "unix:///x.sock", "--docker-endpoint", "node=a,host=/y.sock"],
      /--docker-endpoint replaces --docker-host/,
    ],
    ["a --node with '/'", ["--node", "a/b"], /--node must be 1-63 letters/],
    ["a --docker-host that is no address", ["--docker-host", "docker.sock"], /--docker-host must be unix:\/\/PATH/],
  ];
  for (const [what, args, message] of bad) {
    it(`refuses ${what}, naming the flag`, () => {
      assert.throws(
        () => loadConfig([...BASE, ...args], {}),
        (err: unknown) => err instanceof ConfigError && message.test(err.message) && err.message.includes("--"),
      );
    });
  }
});

describe("owner identity flags: --instance-id and --adopt", () => {
  it("defaults the instance ID from the bindings directory: stable across runs, distinct per directory", () => {
    const a = loadConfig(BASE, {}).instanceId;
    assert.match(a, /^i-[0-9a-f]{12}$/);
    assert.equal(loadConfig([DOCKER_ONLY, "--bindings", "/srv/../srv/bindings"], {}).instanceId, a, "the same directory, however it is written");
    assert.notEqual(loadConfig([DOCKER_ONLY, "--bindings", "/srv/other"], {}).instanceId, a);
    assert.deepEqual(loadConfig(BASE, {}).adopt, []);
  });

  it("a docker-only standby pair (--leader-elect) derives one instance from the lock name, whatever its bindings path", () => {
    const a = loadConfig([DOCKER_ONLY, "--bindings", "/srv/a", "--leader-elect", "true", "--lease-name", "edge"], {}).instanceId;
    assert.equal(loadConfig([DOCKER_ONLY, "--bindings", "/other/b", "--leader-elect", "true", "--lease-name", "edge"], {}).instanceId, a);
    assert.notEqual(loadConfig([DOCKER_ONLY, "--bindings", "/srv/a", "--leader-elect", "true", "--lease-name", "other"], {}).instanceId, a);
    assert.notEqual(loadConfig([DOCKER_ONLY, "--bindings", "/srv/a"], {}).instanceId, a);
  });

  it("takes --instance-id over DOCKBIND_INSTANCE_ID over the default, and validates it", () => {
    assert.equal(loadConfig([...BASE, "--instance-id", "edge-1"], { DOCKBIND_INSTANCE_ID: "env-1" }).instanceId, "edge-1");
    assert.equal(loadConfig(BASE, { DOCKBIND_INSTANCE_ID: "env-1" }).instanceId, "env-1");
    for (const bad of ["-x", "a b", "a:b", "x".repeat(64)]) assert.throws(() => loadConfig([...BASE, `--instance-id=${bad}`], {}), ConfigError, bad);
  });

  it("--adopt is repeatable and comma-separated (DOCKBIND_ADOPT otherwise); values are identifiers", () => {
    assert.deepEqual(loadConfig([...BASE, "--adopt", "i-old", "--adopt", "ABCD:EFGH,i-old"], { DOCKBIND_ADOPT: "ignored" }).adopt, ["i-old", "ABCD:EFGH"]);
    assert.deepEqual(loadConfig(BASE, { DOCKBIND_ADOPT: "4f2c1a9e-6b7d-4c1e-9a0b-1234567890ab, i-x" }).adopt, ["4f2c1a9e-6b7d-4c1e-9a0b-1234567890ab", "i-x"]);
    assert.throws(() => loadConfig([...BASE, "--adopt", "<x>"], {}), ConfigError);
  });

  it("Kubernetes mode derives the instance from the Lease: replicas share it, two releases differ", () => {
    const kubeconfig = join(mkdtempSync(join(tmpdir(), "dockbind-cfg-")), "kubeconfig");
    writeFileSync(kubeconfig, "apiVersion: v1\nkind: Config\n");
    const run = (...extra: string[]): string => loadConfig(["--kubeconfig", kubeconfig, "--lease-namespace", "ops", ...extra], {}).instanceId;
    assert.equal(run("--leader-identity", "pod-1"), run("--leader-identity", "pod-2"));
    assert.notEqual(run("--lease-name", "release-a"), run("--lease-name", "release-b"));
  });
});

describe("docker-only: --delete-delay and the Consul-lock standby", () => {
  it("--delete-delay defaults to 10 s; flag > DOCKBIND_DELETE_DELAY; 0s means at once; garbage is refused", () => {
    assert.equal(loadConfig(BASE, {}).deleteDelayMs, 10_000);
    assert.equal(loadConfig(BASE, { DOCKBIND_DELETE_DELAY: "30s" }).deleteDelayMs, 30_000);
    assert.equal(loadConfig([...BASE, "--delete-delay", "0s"], { DOCKBIND_DELETE_DELAY: "30s" }).deleteDelayMs, 0);
    assert.throws(() => loadConfig([...BASE, "--delete-delay", "soon"], {}), ConfigError);
  });

  it("no leader election by default in docker-only mode", () => {
    assert.equal(loadConfig(BASE, {}).consulLeaderElection, undefined);
    assert.equal(loadConfig([...BASE, "--leader-elect", "false"], { DOCKBIND_LEADER_ELECT: "true" }).consulLeaderElection, undefined);
  });

  it("--leader-elect true: a Consul lock named by --lease-name, held under --leader-identity (default hostname_random)", () => {
    assert.deepEqual(loadConfig([...BASE, "--leader-elect", "true", "--lease-name", "edge", "--leader-identity", "host-a"], {}).consulLeaderElection, {
      name: "edge",
      identity: "host-a",
    });
    const d = loadConfig(BASE, { DOCKBIND_LEADER_ELECT: "true" }).consulLeaderElection;
    assert.ok(d !== undefined);
    assert.equal(d.name, "dockbind-controller");
    assert.match(d.identity, new RegExp(`^${hostname().replace(/[.]/g, "\\.")}_[0-9a-f]{16}$`));
    assert.throws(() => loadConfig([...BASE, "--leader-elect", "yes"], {}), ConfigError);
    assert.throws(() => loadConfig([...BASE, "--leader-elect", "true", "--lease-name", "Not/A/Name"], {}), ConfigError);
  });
});
