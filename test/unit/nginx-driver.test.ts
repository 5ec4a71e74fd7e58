/**
 * The nginx driver's helpers (the pid directive it confirms reloads against, /proc children) and its
 * reload: a signal to the master named by the pid file, confirmed by a new child. The "master" here
 * is a small node process that starts a child on SIGHUP (or ignores it); the "nginx binary" a shell
 * script, so no nginx is needed.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LbError } from "../../src/actuators/lb/errors.js";
import { NginxDriver, pidDirective } from "../../src/actuators/lb/nginxDriver.js";
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

describe("NginxDriver.reload", () => {
  const dir = mkdtempSync(join(tmpdir(), "dockbind-nginx-reload-"));
  const pidFile = join(dir, "master.pid");
  const conf = join(dir, "nginx.conf");
  writeFileSync(conf, `pid ${pidFile};\nevents {}\n`);
  // The "nginx binary": `-V` prints no build paths; `-s reload` fails, saying so.
  const bin = join(dir, "nginx");
  writeFileSync(bin, `#!/bin/sh\ncase " $* " in *" -s reload "*) echo "fake nginx: $*" >&2; exit 1;; esac\nexit 0\n`);
  chmodSync(bin, 0o755);
  const masters: ChildProcess[] = [];
  after(() => {
    for (const m of masters) m.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  });

  /** A "master" with one child; on SIGHUP it starts another child when `applies`, else it ignores the signal. */
  async function startMaster(applies: boolean): Promise<number> {
    const code = `const { spawn } = require("node:child_process");
      const child = () => spawn("sleep", ["30"], { stdio: "ignore" });
      const kids = [child()];
      process.on("SIGHUP", () => { if (${String(applies)}) kids.push(child()); });
      process.on("SIGTERM", () => { for (const k of kids) k.kill(); process.exit(0); });
      setInterval(() => {}, 1000);
      process.stdout.write("ready\\n");`;
    const m = spawn(process.execPath, ["-e", code], { stdio: ["ignore", "pipe", "inherit"] });
    masters.push(m);
    await new Promise<void>((resolve) => {
      m.stdout.once("data", () => {
        resolve();
      });
    });
    assert.ok(m.pid !== undefined);
    writeFileSync(pidFile, `${String(m.pid)}\n`);
    return m.pid;
  }

  const driver = (): NginxDriver => new NginxDriver({ nginxBin: bin, args: ["-p", `${dir}/`, "-c", conf], reloadConfirmMs: 400, timeoutMs: 5_000 });
  const failure = (p: Promise<void>): Promise<unknown> =>
    p.then(
      () => assert.fail("reload resolved"),
      (e: unknown) => e,
    );

  it("signals the master itself and resolves once it started a new child", async () => {
    const master = await startMaster(true);
    const before = childPids(master).length;
    await driver().reload();
    assert.equal(childPids(master).length, before + 1, "one new child: the master got exactly one SIGHUP");
  });

  it("a master that keeps its children is ReloadRejected", async () => {
    await startMaster(false);
    const err = await failure(driver().reload());
    assert.ok(err instanceof LbError && err.reason === "ReloadRejected", String(err));
  });

  it("a pid file naming no process falls back to `nginx -s reload`, whose failure is ReloadFailed", async () => {
    const noProcess = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8").trim()) + 1;
    writeFileSync(pidFile, `${String(noProcess)}\n`);
    const err = await failure(driver().reload());
    assert.ok(err instanceof LbError && err.reason === "ReloadFailed", String(err));
    assert.match(err.message, /nginx -s reload failed: .*fake nginx: -s reload -p/);
  });
});
