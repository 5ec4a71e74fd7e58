import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ConfigError, loadConfigFiles, parseConfig } from "../../src/config/config.js";
import { CONTROLLER_FLAGS, OPTIONS, flagHelp, flagTableMarkdown, withFlagTable } from "../../src/config/options.js";

const README = join(import.meta.dirname, "..", "..", "README.md");
const BASE = ["--docker-only", "--bindings", "/srv/bindings"];

describe("option table: one declaration for parseArgs, --help and the README", () => {
  it("README.md's flag table is the one generated from the option table (node --import tsx scripts/gen-flags.ts)", () => {
    const readme = readFileSync(README, "utf8");
    assert.equal(withFlagTable(readme), readme, "README.md flag table differs from src/config/options.ts: run node --import tsx scripts/gen-flags.ts");
  });

  it("a README whose table was edited by hand is detected", () => {
    const readme = readFileSync(README, "utf8");
    const edited = readme.replace("| `--workers N` | `DOCKBIND_WORKERS` | `2` |", "| `--workers N` | `DOCKBIND_WORKERS` | `4` |");
    assert.notEqual(edited, readme, "the README has the --workers row");
    assert.notEqual(withFlagTable(edited), edited);
  });

  it("every parseArgs flag and every environment variable appears in --help and in the README table", () => {
    const help = flagHelp();
    const table = flagTableMarkdown();
    for (const [name, spec] of Object.entries(OPTIONS)) {
      const hasFlag = !("flag" in spec);
      assert.equal(name in CONTROLLER_FLAGS, hasFlag, name);
      if (hasFlag) {
        assert.match(help, new RegExp(`--${name}\\b`), name);
        assert.match(table, new RegExp(`\`(-h, )?--${name}\\b`), name);
      }
      for (const variable of "env" in spec ? spec.env : []) {
        assert.ok(help.includes(variable), `${variable} in --help`);
        assert.ok(table.includes(`\`${variable}\``), `${variable} in README`);
      }
    }
  });

  it("parseArgs options keep their kinds: repeatable flags, booleans and -h", () => {
    assert.deepEqual(CONTROLLER_FLAGS["consul-addr"], { type: "string", multiple: true });
    assert.deepEqual(CONTROLLER_FLAGS["docker-only"], { type: "boolean", multiple: false });
    assert.deepEqual(CONTROLLER_FLAGS.help, { type: "boolean", multiple: false, short: "h" });
    assert.equal("consul-token" in CONTROLLER_FLAGS, false, "CONSUL_HTTP_TOKEN has no flag");
  });

  it("a parser's error names the flag, for a flag and for its environment variable", () => {
    assert.throws(
      () => parseConfig([...BASE, "--wait-min", "soon"], {}),
      (e: unknown) => e instanceof ConfigError && e.message.startsWith("--wait-min: "),
    );
    assert.throws(
      () => parseConfig(BASE, { DOCKBIND_LOG_LEVEL: "trace" }),
      (e: unknown) => e instanceof ConfigError && e.message.startsWith("--log-level must be one of"),
    );
  });
});

describe("files named by options are read by loadConfigFiles, not while parsing", () => {
  it("parseConfig only records the paths: missing files are no error there", () => {
    const p = parseConfig(
      [
        ...BASE,
        "--consul-token-file",
        "/nonexistent/token",
        "--consul-cacert",
        "/nonexistent/ca.pem",
        "--docker-host",
        "tcp://127.0.0.1:2376",
        "--docker-cert-path",
        "/nonexistent/certs",
      ],
      { CONSUL_CLIENT_CERT: "/nonexistent/cert.pem", CONSUL_CLIENT_KEY: "/nonexistent/key.pem" },
    );
    assert.equal(p.consul.tokenFile, "/nonexistent/token");
    assert.deepEqual(p.consul.tlsFiles, { ca: "/nonexistent/ca.pem", cert: "/nonexistent/cert.pem", key: "/nonexistent/key.pem" });
    assert.deepEqual(p.dockerEndpoints[0]?.tls, { option: "--docker-cert-path", certPath: "/nonexistent/certs", verify: true });
  });

  it("loadConfigFiles reads them, and an unreadable one is a ConfigError naming the option and the file", () => {
    const dir = mkdtempSync(join(tmpdir(), "dockbind-files-"));
    try {
      writeFileSync(join(dir, "token"), "s3cr3t\n");
      writeFileSync(join(dir, "ca.pem"), "PEM CA\n");
      const ok = loadConfigFiles(parseConfig([...BASE, "--consul-token-file", join(dir, "token"), "--consul-cacert", join(dir, "ca.pem")], {}));
      assert.equal(ok.consul.token, "s3cr3t");
      assert.equal(ok.consul.tokenFile, join(dir, "token"));
      assert.deepEqual(ok.consul.tls, { ca: "PEM CA\n" });
      assert.ok(Object.isFrozen(ok.consul) && Object.isFrozen(ok.consul.tls));
      const missingCa = parseConfig([...BASE, "--consul-cacert", join(dir, "nope.pem")], {});
      assert.throws(
        () => loadConfigFiles(missingCa),
        (e: unknown) => e instanceof ConfigError && e.message.startsWith(`--consul-cacert ${join(dir, "nope.pem")}: `) && /ENOENT/.test(e.message),
      );
      const missingCerts = parseConfig([...BASE, "--docker-host", "tcp://127.0.0.1:2376", "--docker-cert-path", join(dir, "certs")], {});
      assert.throws(
        () => loadConfigFiles(missingCerts),
        (e: unknown) => e instanceof ConfigError && e.message.startsWith(`--docker-cert-path ${join(dir, "certs")}: `),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
