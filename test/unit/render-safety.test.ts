import assert from "node:assert/strict";
import { test } from "node:test";
import { COMMENT_MAX_LENGTH, formatHostForNginx, isSafeAddress, isSafeName, isSafePort, isSafeServerName, sanitizeComment } from "../../src/render/safety.js";

test("isSafeAddress: literal IPv4/IPv6 only", () => {
  for (const ok of ["10.0.0.1", "127.0.0.1", "0.0.0.0", "::1", "fd00::1", "::ffff:10.1.2.3", "FE80::A"]) {
    assert.equal(isSafeAddress(ok), true, ok);
  }
  for (const bad of [
    "",
    "localhost",
    "web.service.consul",
    "10.0.0.1:80",
    "[::1]",
    "fe80::1%eth0",
    "10.0.0.01",
    "1.2.3",
    "10.0.0.1 ",
    " 10.0.0.1",
    "10.0.0.1\n",
    "１０.0.0.1",
    "unix:/run/x.sock",
    "10.0.0.1;",
    10,
    null,
    undefined,
  ]) {
    assert.equal(isSafeAddress(bad), false, JSON.stringify(bad));
  }
});

test("isSafePort: integers 1..65535", () => {
  for (const ok of [1, 80, 65535]) assert.equal(isSafePort(ok), true);
  for (const bad of [0, -1, 65536, 1.5, Number.NaN, Infinity, "80", null]) assert.equal(isSafePort(bad), false, String(bad));
});

test("isSafeName: DNS label", () => {
  for (const ok of ["web", "a", "web-1", "a".repeat(63)]) assert.equal(isSafeName(ok), true, ok);
  for (const bad of ["", "-web", "web-", "Web", "web_1", "a".repeat(64), "web\n", "wеb" /* Cyrillic е */, "web.x"]) {
    assert.equal(isSafeName(bad), false, JSON.stringify(bad));
  }
});

test("isSafeServerName: hostnames with optional leading wildcard", () => {
  for (const ok of ["example.com", "*.example.com", "a-b.C.io", "localhost"]) assert.equal(isSafeServerName(ok), true, ok);
  for (const bad of [
    "",
    "*",
    "*.",
    "a.*.com",
    "-a.com",
    "a..com",
    "a.com.",
    "~^re$",
    "a.com;",
    "a com",
    "ex\u212Aample.com" /* Kelvin K */,
    "exаmple.com" /* Cyrillic а */,
    `${"a".repeat(60)}.`.repeat(5) + "com",
    "$host",
  ]) {
    assert.equal(isSafeServerName(bad), false, JSON.stringify(bad));
  }
});

test("sanitizeComment: allow-list and length cap", () => {
  assert.equal(sanitizeComment("web-1:a/b=c@d+e_f.g"), "web-1:a/b=c@d+e_f.g");
  assert.equal(sanitizeComment("x; include /etc/passwd\n}#\"'$\\{"), "xinclude/etc/passwd");
  assert.equal(sanitizeComment("ｗｅｂ；"), "");
  assert.equal(sanitizeComment("a".repeat(1000)).length, COMMENT_MAX_LENGTH);
  assert.equal(sanitizeComment(42), "");
});

test("formatHostForNginx brackets IPv6 only", () => {
  assert.equal(formatHostForNginx("10.0.0.1"), "10.0.0.1");
  assert.equal(formatHostForNginx("fd00::1"), "[fd00::1]");
});
