/**
 * The generated file of one load-balanced binding: which renderer (nginx or
 * haproxy, from `loadBalancer.kind`), where it goes (nginx tcp/udp streams: the
 * stream directory), and its full text with
 * the ownership marker. Pure. The renderer reconciler and `controller plan`
 * both call it, so a plan previews exactly the file the controller writes.
 */
import { bindingKey, lbProtocol, type HealthInstance, type LoadBalancerSpec, type ServiceBinding } from "../domain/types.js";
import { ReconcileError } from "../runtime/errors.js";
import { renderHaproxy } from "./haproxy.js";
import { renderNginx, type RenderResult } from "./nginx.js";
import { dirname, join } from "node:path";

/** First line of every generated file; the binding key follows. */
export const OWNERSHIP_MARKER = "# dockbind-generated binding=";

/**
 * Where generated files go: `--lb-output-dir`, `--haproxy-output-dir` when haproxy is configured,
 * and `--nginx-stream-dir` (nginx `protocol: tcp|udp` files, included in nginx's `stream {}`).
 */
export interface OutputDirs {
  readonly nginx: string;
  readonly haproxy?: string;
  readonly nginxStream?: string;
}

export interface RenderedFile {
  readonly path: string;
  /** The file's full text: ownership marker, then the rendered config. */
  readonly text: string;
  readonly result: RenderResult;
}

/**
 * The generated file's path. Throws LoadBalancerNotConfigured (terminal) for haproxy without a
 * haproxy output dir, or an nginx tcp/udp binding without a stream dir.
 */
export function outputPath(lb: LoadBalancerSpec, dirs: OutputDirs): string {
  if (lb.kind !== "haproxy" && lbProtocol(lb) !== "http") {
    if (dirs.nginxStream === undefined)
      throw new ReconcileError(
        "LoadBalancerNotConfigured",
        `binding asks for an nginx ${lbProtocol(lb)} stream but the controller has no stream directory`,
        true,
      );
    return join(dirs.nginxStream, lb.output);
  }
  if (lb.kind !== "haproxy") return join(dirs.nginx, lb.output);
  if (dirs.haproxy === undefined)
    throw new ReconcileError("LoadBalancerNotConfigured", "binding asks for haproxy but the controller has no haproxy configured", true);
  return join(dirs.haproxy, lb.output);
}

/** Directory (inside the binding's output dir) of the controller-managed TLS pairs: a dot name, so no include glob or `-f DIR` loads it. */
export const TLS_STORE_DIR = ".dockbind-tls";

/**
 * The controller-managed PEM (chain + key) of `key`'s validated TLS pair whose content hash is
 * `hash`: `<output dir>/.dockbind-tls/<namespace>_<name>.<hash>.pem`. A new pair is a new file, so
 * the generated config changes with the certificate and the file a live config names is never
 * rewritten. Throws what outputPath throws.
 */
export function tlsPemPath(lb: LoadBalancerSpec, dirs: OutputDirs, key: string, hash: string): string {
  return join(dirname(outputPath(lb, dirs)), TLS_STORE_DIR, `${tlsPemPrefix(key)}${hash}.pem`);
}

/** File-name prefix of `key`'s managed TLS pairs (DNS labels have no `_`, so prefixes never overlap). */
export function tlsPemPrefix(key: string): string {
  return `${key.replace("/", "_")}.`;
}

/**
 * Renders `binding`'s file from Consul's `instances` (and its custom `template` text, when it has
 * one) and, with `loadBalancer.tls`, the content hash of its validated pair (`tlsHash`). Throws
 * what the renderers throw (RenderError: template or validation failure, a tls binding without
 * `tlsHash`) and LoadBalancerNotConfigured; undefined for a binding without a load balancer.
 */
export function renderFor(
  binding: ServiceBinding,
  instances: readonly HealthInstance[],
  template: string | undefined,
  dirs: OutputDirs,
  tlsHash?: string,
): RenderedFile | undefined {
  const lb = binding.spec.loadBalancer;
  if (lb === undefined) return undefined;
  const path = outputPath(lb, dirs);
  const key = bindingKey(binding);
  const render = lb.kind === "haproxy" ? renderHaproxy : renderNginx;
  const tlsFile = lb.tls !== undefined && tlsHash !== undefined ? tlsPemPath(lb, dirs, key, tlsHash) : undefined;
  const result = render({
    bindingKey: key,
    serviceName: binding.spec.service.name,
    lb,
    instances,
    ...(template !== undefined ? { template } : {}),
    ...(tlsFile !== undefined ? { tlsFile } : {}),
  });
  return { path, text: `${OWNERSHIP_MARKER}${key}\n${result.text}`, result };
}
