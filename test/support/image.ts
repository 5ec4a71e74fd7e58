/**
 * The backend image every integration test runs: `local/dockbind-web:1`, a
 * busybox rootfs (Debian busybox-static) imported with `docker import` — no
 * registry needed. Behaviour of a container from it:
 *   - GET /         -> body is exactly $NAME (default: the container hostname)
 *   - GET /health/  -> 200 "ok", or 404 when FAIL_HEALTH=1 (GET /health redirects there)
 *   - listens on ${PORT:-80}; EXPOSE 80
 *   - SIGTERM stops it at once (`docker stop` well under 2 s), or after
 *     DRAIN_SECONDS (default 0) during which it keeps serving (graceful drain tests)
 * Built once and reused; rebuilt when the recipe (this file's START_SH/APPLETS
 * or the busybox binary) changes, detected through an image label.
 */
import { createHash } from "node:crypto";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { ensureDockerd } from "./dockerd.js";
import { docker, run } from "./exec.js";
import { ensureBedRoot } from "./procs.js";

export const BACKEND_IMAGE = "local/dockbind-web:1";
const BUSYBOX = "/bin/busybox";
const REV_LABEL = "io.dockbind.test.image-rev";

/**
 * busybox httpd as PID 1 ignores SIGTERM (the kernel drops signals PID 1 has no
 * handler for), so `exec httpd` made `docker stop` wait the full 10 s. The
 * shell keeps PID 1, traps TERM/INT and forwards it.
 */
const START_SH = `#!/bin/sh
# dockbind test backend: see test/support/image.ts
NAME="\${NAME:-$(hostname)}"
mkdir -p /www
printf '%s' "$NAME" > /www/index.html
if [ "\${FAIL_HEALTH:-0}" != "1" ]; then
  mkdir -p /www/health
  printf 'ok' > /www/health/index.html
fi
httpd -f -p "\${PORT:-80}" -h /www &
pid=$!
trap 'sleep "\${DRAIN_SECONDS:-0}"; kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
wait "$pid"
`;

const APPLETS = [
  "sh",
  "ash",
  "httpd",
  "echo",
  "printf",
  "mkdir",
  "cat",
  "sleep",
  "true",
  "false",
  "test",
  "[",
  "wget",
  "nc",
  "hostname",
  "kill",
  "ls",
  "ps",
  "env",
  "rm",
  "grep",
  "ip",
  "netstat",
  "nslookup",
] as const;

/** One build at a time per engine (key: its `-H` host; "" is the shared engine). */
const pending = new Map<string, Promise<string>>();

/**
 * Ensures the image exists with the current recipe on the shared engine (started if needed), or on
 * the engine at `host` (a private one, e.g. extraDockerd.ts: imported there directly, so building it
 * never touches the shared engine); resolves with its tag.
 */
export function ensureBackendImage(host = ""): Promise<string> {
  let p = pending.get(host);
  if (p === undefined) {
    p = build(host).catch((err: unknown) => {
      pending.delete(host);
      throw err;
    });
    pending.set(host, p);
  }
  return p;
}

async function build(host: string): Promise<string> {
  if (host === "") await ensureDockerd();
  const rev = recipeRevision();
  const current = await docker(host, ["image", "inspect", "-f", `{{index .Config.Labels "${REV_LABEL}"}}`, BACKEND_IMAGE]);
  if (current.code === 0 && current.stdout.trim() === rev) return BACKEND_IMAGE;

  const root = mkdtempSync(join(ensureBedRoot(), "image-"));
  try {
    const rootfs = join(root, "rootfs");
    for (const d of ["bin", "www", "etc", "tmp", "proc", "sys", "dev"]) mkdirSync(join(rootfs, d), { recursive: true });
    chmodSync(join(rootfs, "tmp"), 0o1777);
    copyFileSync(BUSYBOX, join(rootfs, "bin/busybox"));
    chmodSync(join(rootfs, "bin/busybox"), 0o755);
    for (const a of APPLETS) symlinkSync("busybox", join(rootfs, "bin", a));
    writeFileSync(join(rootfs, "start.sh"), START_SH, { mode: 0o755 });
    const tarball = join(root, "rootfs.tar");
    await run("tar", ["--numeric-owner", "--owner=0", "--group=0", "-C", rootfs, "-cf", tarball, "."], { check: true });
    await docker(
      host,
      ["import", "-c", 'CMD ["/bin/sh","/start.sh"]', "-c", "EXPOSE 80", "-c", "ENV PATH=/bin", "-c", `LABEL ${REV_LABEL}=${rev}`, tarball, BACKEND_IMAGE],
      { check: true },
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return BACKEND_IMAGE;
}

function recipeRevision(): string {
  return createHash("sha256").update(START_SH).update(APPLETS.join(",")).update(readFileSync(BUSYBOX)).digest("hex").slice(0, 16);
}
