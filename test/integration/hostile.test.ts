/**
 * Issue #6 hostile input corpus (test/fixtures/hostile/manifest.json, >= 50
 * cases), fed to the RUNNING controller and to `controller validate`:
 * - binding files (malformed YAML, wrong types, unknown fields, out-of-range
 *   ports, duplicate IDs, cross-binding claims, injection attempts, Consul
 *   limits, huge documents): each gets its precise field + message, and
 *   NOTHING else changes: zero Consul writes, other bindings' registrations
 *   and LB files byte-identical;
 * - templates that fail (valid bindings): precise reason, output never written;
 * - container labels/env (registrator-compat, and labels of selected
 *   containers): hostile values are dropped and reported, never rendered;
 * - the live nginx config passes `nginx -t` throughout.
 *
 * Its containers run on a private engine of its own (test/support/extraDockerd.ts):
 * a registrator-compat controller registers every published container of its
 * engine, so on the shared one other files' containers would make writes this
 * file cannot attribute.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { controllerCommand, type ControllerHandle, type LogLine } from "../support/controller.js";
import { TEST_LABEL } from "../support/docker.js";
import { apiRunContainer } from "../support/dockerProxy.js";
import { startExtraDockerd, type ExtraDockerd } from "../support/extraDockerd.js";
import { run } from "../support/exec.js";
import { upstreamServers } from "../support/fsWatch.js";
import { ensureBackendImage } from "../support/image.js";
import { ensureBedRoot } from "../support/procs.js";
import { cleanupAll } from "../support/teardown.js";
import { freePort, waitFor } from "../support/wait.js";
import { startWorld, type World } from "../support/world.js";

const FIXTURES = join(import.meta.dirname, "..", "fixtures", "hostile");

interface BindingCase {
  readonly id: string;
  readonly kind: "binding";
  readonly file: string;
  readonly document: number;
  readonly field: string;
  readonly message: string;
  readonly generate?: "huge" | "deep" | "many-docs";
}
interface RenderCase {
  readonly id: string;
  readonly kind: "render";
  readonly name: string;
  readonly template: string;
  readonly reason: string;
  readonly message: string;
}
interface ContainerCase {
  readonly id: string;
  readonly kind: "container";
  readonly labels?: Record<string, string>;
  readonly env?: Record<string, string>;
  readonly field: string;
  readonly message: string;
  readonly rendersInto?: string;
  /** false: the container must not be registered at all (e.g. no usable service name). */
  readonly registered?: boolean;
}
type Case = BindingCase | RenderCase | ContainerCase;

const manifest = JSON.parse(readFileSync(join(FIXTURES, "manifest.json"), "utf8")) as { cases: Case[] };
const bindingCases = manifest.cases.filter((c): c is BindingCase => c.kind === "binding");
const renderCases = manifest.cases.filter((c): c is RenderCase => c.kind === "render");
const containerCases = manifest.cases.filter((c): c is ContainerCase => c.kind === "container");
const BASE_LISTEN = 18800; // cases h61/h62 refer to it
const BASE_FILES = ["base-a.conf", "base-b.conf", "sink.conf", "sink2.conf"];
const SAFE_TAG = /^[A-Za-z0-9._:/=@+-]{1,255}$/;

let world: World;
let engine: ExtraDockerd;
const controllerArgs = (): string[] => ["--docker-host", engine.host, "--template-dir", join(FIXTURES, "templates")];

function baseYaml(portB: number, portSink: number, portSink2: number): string {
  const doc = (name: string, service: string, app: string, port: number): string => `apiVersion: dockbind.io/v1alpha1
kind: ServiceBinding
metadata: {name: ${name}}
spec:
  service: {name: ${service}}
  backends: {selector: {matchLabels: {app: ${app}}}, port: 80}
  healthCheck: {type: none}
  loadBalancer: {listen: {port: ${port}}, output: ${name}.conf}
`;
  return [
    doc("base-a", "hostile-base-a", "hostile-base-a", BASE_LISTEN),
    doc("base-b", "hostile-base-b", "hostile-base-b", portB),
    doc("sink", "hostile-sink", "hostile-sink-nobody", portSink),
    doc("sink2", "hostile-sink2", "hostile-sink2", portSink2),
  ].join("---\n");
}

function caseText(c: BindingCase): string {
  switch (c.generate) {
    case "huge":
      return `# ${"x".repeat(1100 * 1024)}\napiVersion: dockbind.io/v1alpha1\n`;
    case "deep":
      return `apiVersion: dockbind.io/v1alpha1\nspec: ${"[".repeat(5000)}${"]".repeat(5000)}\n`;
    case "many-docs":
      return Array.from(
        { length: 500 },
        (_, i) =>
          `apiVersion: dockbind.io/v1alpha1\nkind: ServiceBinding\nmetadata: {name: hm-${i}}\nspec: {service: {name: hm-${i}}, backends: {selector: {matchLabels: {app: hm-${i}}}, port: 70000}}\n`,
      ).join("---\n");
    case undefined:
      return readFileSync(join(FIXTURES, "bindings", c.file), "utf8");
  }
}

function controller(): ControllerHandle {
  assert.ok(world.controller);
  return world.controller;
}

interface Snapshot {
  readonly files: string;
  readonly services: string;
  readonly writes: number;
  readonly logs: number;
}

async function agentServices(): Promise<
  Record<string, { ID: string; Service: string; Tags: string[] | null; Port: number; Meta: Record<string, string> | null }>
> {
  const r = await fetch(`${world.consul.url}/v1/agent/services`);
  return (await r.json()) as Record<string, { ID: string; Service: string; Tags: string[] | null; Port: number; Meta: Record<string, string> | null }>;
}

async function snapshot(): Promise<Snapshot> {
  const all = await agentServices();
  const base = Object.values(all)
    .filter((s) => s.Meta?.dockbind_binding === "default/base-a" || s.Meta?.dockbind_binding === "default/base-b")
    .sort((a, b) => (a.ID < b.ID ? -1 : 1));
  return {
    files: JSON.stringify(BASE_FILES.slice(0, 2).map((f) => world.lbFile(f))),
    services: JSON.stringify(base),
    writes: world.proxy.writes().length,
    logs: controller().logs().length,
  };
}

async function assertUntouched(before: Snapshot, what: string, opts: { writes: boolean }): Promise<void> {
  const now = await snapshot();
  assert.equal(now.files, before.files, `${what}: other bindings' LB files changed`);
  assert.equal(now.services, before.services, `${what}: other bindings' registrations changed`);
  if (opts.writes) assert.deepEqual(world.proxy.writes().slice(before.writes), [], `${what}: Consul writes`);
}

async function nginxT(): Promise<void> {
  const r = await run("nginx", ["-t", ...world.nginx.nginxArgs]);
  assert.equal(r.code, 0, `nginx -t on the live config: ${r.stderr}`);
}

function since(mark: number): LogLine[] {
  return controller().logs().slice(mark);
}

before(async () => {
  world = await startWorld("hostile");
  const [pb, ps, ps2] = [await freePort(), await freePort(), await freePort()];
  world.writeFile("00-base.yaml", baseYaml(pb, ps, ps2));
  engine = await startExtraDockerd({ name: "hostile", bridgeCidr: "172.31.249.1/24" });
  // Without registrator-compat first; the container cases restart the controller with it.
  await world.startController(controllerArgs());
  for (const [name, app] of [
    ["hb-a1", "hostile-base-a"],
    ["hb-a2", "hostile-base-a"],
    ["hb-b1", "hostile-base-b"],
  ] as const) {
    await engine.runBackend({ name, labels: { app }, env: { NAME: name } });
  }
  await waitFor(() => (upstreamServers(world.lbFile("base-a.conf")).length === 2 && upstreamServers(world.lbFile("base-b.conf")).length === 1) || undefined, {
    timeoutMs: 30_000,
    what: "base bindings rendered",
  });
});

after(async () => {
  await world.controller?.stop();
  await world.proxy.close();
  await cleanupAll();
  await engine.stop();
});

describe("hostile input corpus", () => {
  it(`has at least 50 cases (${manifest.cases.length})`, () => {
    assert.ok(manifest.cases.length >= 50);
    assert.equal(new Set(manifest.cases.map((c) => c.id)).size, manifest.cases.length, "case ids are unique");
  });

  it(`binding files: precise error in the running controller, nothing else changes (${bindingCases.length} cases)`, async () => {
    for (const c of bindingCases) {
      const before = await snapshot();
      world.writeFile(c.file, caseText(c));
      const line = await controller()
        .waitForLog(
          (l) => l.message === "invalid binding" && String(l.source).endsWith(`/${c.file}`) && l.document === c.document && l.field === c.field,
          `${c.id}: invalid binding ${c.field} (document ${c.document})`,
          15_000,
        )
        .catch((err: unknown) => {
          const got = since(before.logs)
            .filter((l) => l.message === "invalid binding")
            .map((l) => `${String(l.field)}: ${String(l.error)}`);
          throw new Error(`${err instanceof Error ? err.message : String(err)}; reported instead: ${JSON.stringify(got).slice(0, 600)}`);
        });
      assert.match(String(line.error), new RegExp(c.message), `${c.id}: message`);
      world.removeFile(c.file);
      await assertUntouched(before, c.id, { writes: true });
    }
    await nginxT();
    // Every case file is gone: the problems are gone too, and the base bindings are still served.
    await waitFor(() => controller().logs().length > 0 || undefined, { timeoutMs: 1_000, what: "logs" });
    assert.equal(upstreamServers(world.lbFile("base-a.conf")).length, 2);
  });

  it(`templates that fail to render: precise reason, output never written (${renderCases.length} cases)`, async () => {
    for (const c of renderCases) {
      const before = await snapshot();
      const port = await freePort();
      world.writeFile(
        `${c.name}.yaml`,
        `apiVersion: dockbind.io/v1alpha1\nkind: ServiceBinding\nmetadata: {name: ${c.name}}\nspec:\n  service: {name: ${c.name}}\n` +
          `  backends: {selector: {matchLabels: {app: hostile-nobody}}, port: 80}\n  healthCheck: {type: none}\n` +
          `  loadBalancer: {listen: {port: ${port}}, output: ${c.name}.conf, template: ${c.template}}\n`,
      );
      const line = await controller().waitForLog(
        (l) => l.message === "reconcile failed, will retry" && l.key === `default/${c.name}` && new RegExp(`^(${c.reason})$`).test(String(l.reason)),
        `${c.id}: render failure ${c.reason}`,
        20_000,
      );
      assert.match(String(line.error), new RegExp(c.message), `${c.id}: message`);
      assert.equal(world.lbFile(`${c.name}.conf`), undefined, `${c.id}: a failing render never writes its output`);
      await nginxT();
      world.removeFile(`${c.name}.yaml`);
      await assertUntouched(before, c.id, { writes: true });
    }
  });

  it(`container labels and env: hostile values dropped and reported, never rendered (${containerCases.length} cases)`, async () => {
    const image = await ensureBackendImage(engine.host);
    await controller().stop();
    await world.startController([...controllerArgs(), "--registrator-compat"]);
    let n = 0;
    for (const c of containerCases) {
      const before = await snapshot();
      const id = await apiRunContainer(
        {
          name: `hostile-${process.pid}-${n++}`,
          image,
          labels: { [TEST_LABEL]: "1", "dockbind-test.pid": String(process.pid), ...(c.labels ?? {}) },
          ...(c.env !== undefined ? { env: c.env } : {}),
          hostPort: await engine.hostPort(),
        },
        { socketPath: engine.socket },
      );
      if (c.field !== "") {
        const line = await controller().waitForLog(
          (l) => l.message === "registrator label ignored" && l.container === id.slice(0, 12) && l.field === c.field,
          `${c.id}: registrator label ignored (${c.field})`,
          20_000,
        );
        assert.match(String(line.reason), new RegExp(c.message), `${c.id}: reason`);
      }
      if (c.rendersInto !== undefined) {
        const port = Number(/127\.0\.0\.1:(\d+)/.exec((await engine.docker(["port", id, "80/tcp"], { check: true })).stdout)?.[1] ?? "0");
        const file = c.rendersInto;
        await waitFor(() => upstreamServers(world.lbFile(file)).includes(`127.0.0.1:${port}`) || undefined, {
          timeoutMs: 20_000,
          what: `${c.id}: rendered into ${file}`,
        });
        const text = world.lbFile(file) ?? "";
        assert.doesNotMatch(text, /include|passwd|[;}]\s*#?\s*\n\s*server \{ listen 1/, `${c.id}: nothing of the labels reached ${file}`);
      } else if (c.registered !== false) {
        await waitFor(async () => Object.values(await agentServices()).some((s) => s.Meta?.dockbind_container === id) || undefined, {
          timeoutMs: 20_000,
          what: `${c.id}: container registered (with the hostile values dropped)`,
        });
      }
      for (const s of Object.values(await agentServices())) {
        assert.match(s.Service, /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, `${c.id}: service name ${JSON.stringify(s.Service)}`);
        assert.match(s.ID, /^[A-Za-z0-9._:@-]{1,255}$/, `${c.id}: service ID ${JSON.stringify(s.ID)}`);
        for (const t of s.Tags ?? []) assert.match(t, SAFE_TAG, `${c.id}: tag ${JSON.stringify(t)}`);
      }
      await nginxT();
      await assertUntouched(before, c.id, { writes: false });
    }
  });

  it("`controller validate` reports every binding case with the same field and message", async () => {
    const dir = mkdtempSync(join(ensureBedRoot(), "hostile-validate-"));
    writeFileSync(join(dir, "00-base.yaml"), baseYaml(18801, 18802, 18803));
    for (const c of bindingCases) {
      if (c.generate === undefined) copyFileSync(join(FIXTURES, "bindings", c.file), join(dir, c.file));
      else writeFileSync(join(dir, c.file), caseText(c));
    }
    const r = await run(process.execPath, [...controllerCommand(), "validate", "-f", dir], { timeoutMs: 120_000 });
    assert.equal(r.code, 1, r.stderr);
    const lines = r.stdout.split("\n");
    assert.ok(!lines.some((l) => l.startsWith(join(dir, "00-base.yaml"))), "the base bindings are valid");
    for (const c of bindingCases) {
      const prefix = `${join(dir, c.file)} (document ${c.document}): ${c.field}: `;
      const hit = lines.find((l) => l.startsWith(prefix) && new RegExp(c.message).test(l.slice(prefix.length)));
      assert.ok(
        hit !== undefined,
        `${c.id}: validate printed no "${prefix}${c.message}" line; got ${JSON.stringify(lines.filter((l) => l.includes(c.file)).slice(0, 3))}`,
      );
    }
  });
});
