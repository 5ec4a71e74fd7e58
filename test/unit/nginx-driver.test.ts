/** The nginx driver's pure helpers: the pid directive it confirms reloads against, and /proc children. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { pidDirective } from "../../src/actuators/lb/nginxDriver.js";
import { childPids, processAlive } from "../../src/actuators/lb/procfs.js";

describe("pidDirective", () => {
  const cases: readonly (readonly [string, string | undefined])[] = [
    ["pid /run/nginx.pid;\nevents {}", "/run/nginx.pid"],
    ['worker_processes 1; pid "/tmp/a b/nginx.pid"; events {}', "/tmp/a b/nginx.pid"],
    ["pid   logs/nginx.pid ;", "logs/nginx.pid"],
    ["# pid /commented/out.pid;\nevents {}", undefined],
    ["events {}\nhttp { include x; }", undefined],
    ["user www-data;\npid\t/var/run/n.pid;", "/var/run/n.pid"],
    ["rapid 1; pid /ok.pid;", "/ok.pid"],
  ];
  for (const [conf, want] of cases) {
    it(`${JSON.stringify(conf)} -> ${String(want)}`, () => {
      assert.equal(pidDirective(conf), want);
    });
  }
});

describe("childPids / processAlive", () => {
  it("lists a live child of this process and stops listing it once it exited", async () => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    const pid = child.pid;
    assert.ok(pid !== undefined);
    try {
      assert.ok(childPids(process.pid).includes(pid));
      assert.equal(processAlive(pid), true);
    } finally {
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
    }
    assert.equal(childPids(process.pid).includes(pid), false, "reaped: gone");
    assert.equal(processAlive(pid), false);
  });
});
