/** Kubernetes-mode configuration: kubeconfig precedence, leader-election flags, docker-only untouched. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "../../src/config/config.js";

const dir = mkdtempSync(join(tmpdir(), "dockbind-k8s-config-"));
const home = join(dir, "home");
const homeConfig = join(home, ".kube", "config");
const fileA = join(dir, "a.kubeconfig");
writeFileSync(fileA, "apiVersion: v1\nkind: Config\n");

describe("Kubernetes mode config", () => {
  it("--kubeconfig wins over KUBECONFIG, which wins over in-cluster and ~/.kube/config", () => {
    const env = { HOME: home, KUBECONFIG: `${fileA}:/missing`, KUBERNETES_SERVICE_HOST: "10.0.0.1" };
    const flag = loadConfig(["--kubeconfig", "/x/cfg"], env).kubernetes;
    assert.deepEqual(flag?.connection, { kind: "kubeconfig", paths: ["/x/cfg"] });
    const list = loadConfig([], env).kubernetes;
    assert.deepEqual(list?.connection, { kind: "kubeconfig", paths: [fileA, "/missing"] });
  });

  it("falls back to ~/.kube/config, and fails clearly when there is nothing", () => {
    assert.throws(
      () => loadConfig([], { HOME: home }),
      (e: unknown) => e instanceof ConfigError && /no kubeconfig/.test(e.message) && /--docker-only/.test(e.message),
    );
    mkdirSync(join(home, ".kube"), { recursive: true });
    writeFileSync(homeConfig, "apiVersion: v1\nkind: Config\n");
    assert.deepEqual(loadConfig([], { HOME: home }).kubernetes?.connection, { kind: "kubeconfig", paths: [homeConfig] });
  });

  it("leader election defaults like controller-runtime; flags and env override; invalid values are rejected", () => {
    const env = { KUBECONFIG: fileA, POD_NAMESPACE: "ops", POD_NAME: "dockbind-7f9c-abcde" };
    const k = loadConfig([], env).kubernetes;
    assert.ok(k);
    assert.equal(k.leaderElect, true);
    assert.equal(k.leaseName, "dockbind-controller");
    assert.equal(k.leaseNamespace, "ops");
    assert.equal(k.identity, "dockbind-7f9c-abcde");
    assert.deepEqual(k.watchNamespaces, [], "all namespaces by default");
    const o = loadConfig(
      ["--leader-elect", "false", "--lease-name", "x", "--lease-namespace", "kube-system", "--namespace", "team-a", "--leader-identity", "me"],
      env,
    ).kubernetes;
    assert.deepEqual([o?.leaderElect, o?.leaseName, o?.leaseNamespace, o?.watchNamespaces, o?.identity], [false, "x", "kube-system", ["team-a"], "me"]);
    assert.throws(() => loadConfig(["--leader-elect", "maybe"], env), ConfigError);
    assert.throws(() => loadConfig(["--namespace", "Not_A_Namespace"], env), ConfigError);
    // Without POD_NAME: hostname + random suffix, unique per process.
    const a = loadConfig([], { KUBECONFIG: fileA }).kubernetes?.identity;
    const b = loadConfig([], { KUBECONFIG: fileA }).kubernetes?.identity;
    assert.notEqual(a, b);
  });

  it("--watch-namespace is repeatable and comma-separated, --namespace is an alias; flags replace the environment", () => {
    const env = { KUBECONFIG: fileA };
    const ns = (argv: string[], e: Record<string, string> = env): readonly string[] | undefined => loadConfig(argv, e).kubernetes?.watchNamespaces;
    assert.deepEqual(ns(["--watch-namespace", "b", "--watch-namespace", "a"]), ["a", "b"]);
    assert.deepEqual(ns(["--watch-namespace", "b,c", "--watch-namespace", "b"]), ["b", "c"], "sorted, each once");
    assert.deepEqual(ns(["--watch-namespace", "a", "--namespace", "old"]), ["a", "old"], "the deprecated alias adds its namespace");
    assert.deepEqual(ns([], { ...env, DOCKBIND_WATCH_NAMESPACES: "x, y", DOCKBIND_NAMESPACE: "z" }), ["x", "y", "z"]);
    assert.deepEqual(ns(["--watch-namespace", "a"], { ...env, DOCKBIND_WATCH_NAMESPACES: "x" }), ["a"], "a flag replaces the environment");
    assert.deepEqual(ns([], { ...env, DOCKBIND_WATCH_NAMESPACES: " , " }), [], "blank = all namespaces");
    for (const bad of ["Team", "a_b", "-a", "a".repeat(64)]) {
      assert.throws(
        () => loadConfig([`--watch-namespace=${bad}`], env),
        (e: unknown) => e instanceof ConfigError && /--watch-namespace must be a namespace name/.test(e.message),
        bad,
      );
    }
  });

  it("docker-only mode has no kubernetes section and needs no kubeconfig", () => {
    const c = loadConfig(["--docker-only", "--bindings", dir], { HOME: home });
    assert.equal(c.kubernetes, undefined);
  });
});
