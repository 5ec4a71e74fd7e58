/**
 * Consul health -> nginx config text. Pure and synchronous: no I/O, no clock,
 * no randomness, so the same input yields the same bytes (the writer relies on
 * byte equality to skip reloads). Idempotent by construction.
 *
 * Safety contract: instance addresses/ports are validated (safety.ts); failing
 * instances are dropped and listed in `rejected`, never rendered. Free text
 * (service ids, binding key) is only emitted through sanitizeComment.
 *
 * Errors: throws RenderError("InvalidSpec") for an unsafe binding-level value
 * and RenderError("TemplateInvalid") for an unparsable custom template. A
 * result that renders is not guaranteed to be valid nginx (custom templates
 * can emit anything): the actuator validates it with `nginx -t` before use.
 */
import { lbProtocol, type HealthInstance, type LoadBalancerSpec } from "../domain/types.js";
import { renderCustom } from "./customTemplate.js";
import { renderDefault } from "./nginxDefault.js";
import { renderStreamDefault } from "./nginxStream.js";
import { buildView, type RejectedInstance, type RenderedServer } from "./view.js";

export type { NginxTemplateView, RejectedInstance, RenderedServer, TemplateServer } from "./view.js";

export interface NginxRenderInput {
  readonly bindingKey: string;
  readonly serviceName: string;
  readonly lb: LoadBalancerSpec;
  readonly instances: readonly HealthInstance[];
  /** Custom mustache template text (already read from --template-dir); default template when absent. */
  readonly template?: string;
  /** The controller-managed PEM of a validated `lb.tls` pair; required when lb.tls is set. */
  readonly tlsFile?: string;
}

export interface RenderResult {
  readonly text: string;
  /** Rendered servers, sorted by (address, port), deduplicated. */
  readonly servers: readonly RenderedServer[];
  /** Health-eligible instances dropped by validation, sorted by serviceId. */
  readonly rejected: readonly RejectedInstance[];
}

export function renderNginx(input: NginxRenderInput): RenderResult {
  const { view, servers, rejected } = buildView(input);
  const protocol = lbProtocol(input.lb);
  // tcp/udp: a `stream {}` snippet (nginxStream.ts); a custom template is rendered with the same view.
  const builtIn = protocol === "http" ? renderDefault(view) : renderStreamDefault(view, protocol);
  const text = input.template === undefined ? builtIn : renderCustom(input.template, view);
  return { text, servers, rejected };
}
