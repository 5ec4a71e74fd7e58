/**
 * loadBalancer.tls: rendering (nginx, haproxy, renderFor), pair validation with
 * Node's crypto, managed copies (mode, pruning) and the file-change scan. Keys
 * and certificates are generated in memory / a temp dir with openssl.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { installTlsPair, pruneTlsPairs, readTlsPair, tlsFilePath } from "../../src/actuators/lb/tlsPair.js";
import type { BindingStore } from "../../src/ports/bindingStore.js";
import type { LoadBalancerSpec, ServiceBinding } from "../../src/domain/types.js";
import { renderHaproxy } from "../../src/render/haproxy.js";
import { renderNginx } from "../../src/render/nginx.js";
import { renderFor, tlsPemPath } from "../../src/render/renderFor.js";
import { RenderError } from "../../src/render/errors.js";
import { ReconcileError } from "../../src/runtime/errors.js";
import { validateBinding } from "../../src/api/v1alpha1/validate.js";
import { scanTlsFiles } from "../../src/sources/files/tlsFiles.js";

const dir = mkdtempSync(join(tmpdir(), "dockbind-tls-unit-"));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function openssl(args: readonly string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "ignore" });
}

/** Self-signed pair `<name>.crt`/`<name>.key`, valid for two days from now. */
function selfSigned(name: string): void {
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${name}`]);
}
selfSigned("a");
selfSigned("b");

const TLS_LB: LoadBalancerSpec = {
  kind: "nginx",
  listen: { address: "127.0.0.1", port: 8443 },
  onlyPassing: true,
  method: "round_robin",
  output: "web.conf",
  tls: { certificate: "a.crt", key: "a.key", redirectHttp: { port: 8080 } },
};
const INST = [{ serviceId: "web-1", node: "n", address: "10.0.0.2", port: 80, tags: [], status: "passing" as const }];
const PEM = "/out/.dockbind-tls/default_web.0123456789abcdef.pem";

test("nginx: ssl listener naming the managed pem twice, and a 308 redirect server", () => {
  const text = renderNginx({ bindingKey: "default/web", serviceName: "web", lb: TLS_LB, instances: INST, tlsFile: PEM }).text;
  assert.match(text, /^ {4}listen 127\.0\.0\.1:8443 ssl;$/m);
  assert.match(text, new RegExp(`^ {4}ssl_certificate ${PEM.replace(/\./g, "\\.")};$`, "m"));
  assert.match(text, new RegExp(`^ {4}ssl_certificate_key ${PEM.replace(/\./g, "\\.")};$`, "m"));
  assert.match(text, /server \{\n {4}listen 127\.0\.0\.1:8080;\n {4}return 308 https:\/\/\$host:8443\$request_uri;\n\}\n$/);
  const plain = renderNginx({ bindingKey: "default/web", serviceName: "web", lb: { ...TLS_LB, tls: undefined }, instances: INST }).text;
  assert.doesNotMatch(plain, /ssl|308/);
});

test("port 443 redirects without a port; no redirectHttp => no second server", () => {
  const lb: LoadBalancerSpec = { ...TLS_LB, listen: { address: "127.0.0.1", port: 443 } };
  assert.match(renderNginx({ bindingKey: "default/web", serviceName: "web", lb, instances: INST, tlsFile: PEM }).text, /https:\/\/\$host\$request_uri/);
  const noRedirect: LoadBalancerSpec = { ...TLS_LB, tls: { certificate: "a.crt", key: "a.key" } };
  const text = renderNginx({ bindingKey: "default/web", serviceName: "web", lb: noRedirect, instances: INST, tlsFile: PEM }).text;
  assert.equal(text.match(/^server \{/gm)?.length, 1);
});

test("haproxy: bind ... ssl crt PEM and a _redirect frontend answering 308", () => {
  const lb: LoadBalancerSpec = { ...TLS_LB, kind: "haproxy", output: "web.cfg" };
  const text = renderHaproxy({ bindingKey: "default/web", serviceName: "web", lb, instances: INST, tlsFile: PEM }).text;
  assert.match(text, new RegExp(`^ {4}bind 127\\.0\\.0\\.1:8443 ssl crt ${PEM.replace(/\./g, "\\.")}$`, "m"));
  assert.match(text, /^frontend dockbind_default_web_redirect\n {4}mode http\n {4}bind 127\.0\.0\.1:8080\n/m);
  assert.match(text, /http-request redirect location https:\/\/%\[req\.hdr\(host\),regsub\(:\[0-9\]\+\$,\)\]:8443%\[capture\.req\.uri\] code 308$/m);
});

test("a tls binding renders only with a safe managed path", () => {
  for (const tlsFile of [undefined, "relative.pem", "/a b.pem", "/x/../y.pem", "/x;y.pem"]) {
    assert.throws(
      () => renderNginx({ bindingKey: "default/web", serviceName: "web", lb: TLS_LB, instances: INST, ...(tlsFile !== undefined ? { tlsFile } : {}) }),
      (e: unknown) => e instanceof RenderError && e.reason === "InvalidSpec",
      String(tlsFile),
    );
  }
});

test("renderFor: the pair's hash names the managed file in the output dir, so a new pair changes the config", () => {
  const binding = {
    apiVersion: "dockbind.io/v1alpha1",
    kind: "ServiceBinding",
    metadata: { name: "web", namespace: "default" },
    spec: { service: { name: "web" }, loadBalancer: TLS_LB },
  } as unknown as ServiceBinding;
  const dirs = { nginx: "/etc/nginx/conf.d", haproxy: "/etc/haproxy/conf.d" };
  const one = renderFor(binding, INST, undefined, dirs, "1111111111111111");
  const two = renderFor(binding, INST, undefined, dirs, "2222222222222222");
  assert.equal(tlsPemPath(TLS_LB, dirs, "default/web", "1111111111111111"), "/etc/nginx/conf.d/.dockbind-tls/default_web.1111111111111111.pem");
  assert.match(one?.text ?? "", /ssl_certificate \/etc\/nginx\/conf\.d\/\.dockbind-tls\/default_web\.1111111111111111\.pem;/);
  assert.notEqual(one?.text, two?.text);
  assert.throws(() => renderFor(binding, INST, undefined, dirs), RenderError, "tls without a validated pair");
});

test("schema: tls file names stay inside --tls-dir; redirect port differs from listen", () => {
  const doc = (tls: unknown): unknown => ({
    apiVersion: "dockbind.io/v1alpha1",
    kind: "ServiceBinding",
    metadata: { name: "web", namespace: "default" },
    spec: {
      service: { name: "web" },
      backends: { selector: { matchLabels: { app: "web" } }, port: 80 },
      loadBalancer: { listen: { port: 8443 }, output: "web.conf", tls },
    },
  });
  assert.equal(validateBinding(doc({ certificate: "web/tls.crt", key: "web/tls.key", redirectHttp: { port: 8080 } })).ok, true);
  for (const bad of ["../x.crt", "/etc/x.crt", "a/../../x", ".hidden", "a//b"]) {
    const r = validateBinding(doc({ certificate: bad, key: "k" }));
    assert.ok(!r.ok && r.errors.some((e) => e.field === "spec.loadBalancer.tls.certificate"), bad);
  }
  const same = validateBinding(doc({ certificate: "c", key: "k", redirectHttp: { port: 8443 } }));
  assert.deepEqual(same.ok ? [] : same.errors.map((e) => e.field), ["spec.loadBalancer.tls.redirectHttp.port"]);
});

function reason(err: unknown): string {
  return err instanceof ReconcileError ? err.reason : `not a ReconcileError: ${String(err)}`;
}

test("readTlsPair: a good pair => chain + PKCS#8 key, hash, serial; broken pairs => Tls* reasons without key material", async () => {
  const pair = await readTlsPair(dir, { certificate: "a.crt", key: "a.key" }, Date.now());
  assert.match(pair.hash, /^[0-9a-f]{16}$/);
  assert.match(pair.pem.toString(), /^-----BEGIN CERTIFICATE-----[\s\S]+-----BEGIN PRIVATE KEY-----[\s\S]+\n$/);
  assert.match(pair.subject, /CN=a/);
  assert.ok(Date.parse(pair.notAfter) > Date.now());
  const keyBody = readFileSync(join(dir, "a.key"), "utf8").split("\n")[1] ?? "";
  writeFileSync(join(dir, "garbage.key"), "not a key\n");
  writeFileSync(join(dir, "garbage.crt"), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
  const cases: [string, string, number, string][] = [
    ["a.crt", "b.key", Date.now(), "TlsKeyMismatch"],
    ["a.crt", "missing.key", Date.now(), "TlsFileUnreadable"],
    ["a.crt", "garbage.key", Date.now(), "TlsKeyInvalid"],
    ["garbage.crt", "a.key", Date.now(), "TlsCertificateInvalid"],
    ["a.key", "a.key", Date.now(), "TlsCertificateInvalid"],
    ["a.crt", "a.key", Date.now() + 5 * 86_400_000, "TlsCertificateExpired"],
    ["a.crt", "a.key", Date.now() - 86_400_000, "TlsCertificateNotYetValid"],
  ];
  for (const [certificate, key, now, want] of cases) {
    const err = await readTlsPair(dir, { certificate, key }, now).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.equal(reason(err), want, `${certificate} + ${key}`);
    assert.ok(!(err as Error).message.includes(keyBody), "key material in an error message");
  }
  assert.throws(
    () => tlsFilePath(dir, "../etc/passwd", "key"),
    (e: unknown) => reason(e) === "TlsPathInvalid",
  );
});

test("installTlsPair: mode 0600, content-addressed, idempotent; pruneTlsPairs keeps only the live one", async () => {
  const store = join(dir, "out", ".dockbind-tls");
  const a = await readTlsPair(dir, { certificate: "a.crt", key: "a.key" }, Date.now());
  const b = await readTlsPair(dir, { certificate: "b.crt", key: "b.key" }, Date.now());
  const pathA = join(store, `default_web.${a.hash}.pem`);
  const pathB = join(store, `default_web.${b.hash}.pem`);
  const other = join(store, `default_webx.${a.hash}.pem`);
  await installTlsPair(pathA, a);
  await installTlsPair(pathA, a);
  await installTlsPair(pathB, b);
  await installTlsPair(other, a);
  assert.equal(statSync(pathA).mode & 0o777, 0o600);
  assert.equal(statSync(store).mode & 0o777, 0o700);
  assert.deepEqual(readFileSync(pathA), a.pem);
  assert.equal(await pruneTlsPairs(store, "default/web", pathB), 1);
  assert.deepEqual(readdirSync(store).sort(), [`default_web.${b.hash}.pem`, `default_webx.${a.hash}.pem`].sort());
  assert.equal(await pruneTlsPairs(store, "default/web"), 1);
  assert.deepEqual(readdirSync(store), [`default_webx.${a.hash}.pem`]);
});

test("scanTlsFiles: first sighting is recorded, a changed or vanished file is reported once", async () => {
  writeFileSync(join(dir, "w.crt"), readFileSync(join(dir, "a.crt")));
  writeFileSync(join(dir, "w.key"), readFileSync(join(dir, "a.key")));
  const binding = {
    metadata: { name: "web", namespace: "default" },
    spec: { loadBalancer: { ...TLS_LB, tls: { certificate: "w.crt", key: "w.key" } } },
  } as unknown as ServiceBinding;
  const plain = { metadata: { name: "plain", namespace: "default" }, spec: {} } as unknown as ServiceBinding;
  const store = { list: () => [binding, plain] } as unknown as BindingStore;
  const last = new Map<string, string>();
  assert.deepEqual(await scanTlsFiles(store, dir, last), []);
  assert.deepEqual(await scanTlsFiles(store, dir, last), []);
  writeFileSync(join(dir, "w.crt"), readFileSync(join(dir, "b.crt")));
  utimesSync(join(dir, "w.crt"), new Date(), new Date(Date.now() + 5000));
  assert.deepEqual(await scanTlsFiles(store, dir, last), ["default/web"]);
  assert.deepEqual(await scanTlsFiles(store, dir, last), []);
  rmSync(join(dir, "w.key"));
  assert.deepEqual(await scanTlsFiles(store, dir, last), ["default/web"]);
});
