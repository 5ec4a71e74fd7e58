/**
 * Who gets how much traffic, as the renderer would render it now: per server
 * its weight and share of requests, per split group its declared percent and
 * its share now. Pure; computed by buildView (the renderer's own view), so
 * `controller plan`, /api/status and the status page show exactly what the
 * generated file does.
 */
import { describeSelector } from "../domain/traffic.js";
import { bindingKey, type HealthInstance, type ServiceBinding, type SplitGroup } from "../domain/types.js";
import { RenderError } from "./errors.js";
import { buildView, type RenderedServer } from "./view.js";

export interface ServerShare {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  /** Percent of requests (one decimal). */
  readonly share: number;
  readonly group?: number;
}

export interface SplitShare {
  readonly group: number;
  /** The group's selector in one line (`track=canary`). */
  readonly selector: string;
  /** Declared percent. */
  readonly percent: number;
  /** Servers rendered in the group now. */
  readonly servers: number;
  /** Percent of requests the group gets now (one decimal): its percent, or more when another group has no server. */
  readonly share: number;
}

export interface TrafficView {
  readonly servers: readonly ServerShare[];
  /** Present when the binding has a split. */
  readonly split?: readonly SplitShare[];
}

const oneDecimal = (x: number): number => Math.round(x * 10) / 10;

/** Shares of `servers` (rendered, weight > 0) under the binding's split. */
export function trafficShares(split: readonly SplitGroup[] | undefined, servers: readonly RenderedServer[]): TrafficView {
  const weightOf = (s: RenderedServer): number => s.weight ?? 1;
  const total = servers.reduce((sum, s) => sum + weightOf(s), 0);
  const pct = (w: number): number => (total === 0 ? 0 : oneDecimal((w / total) * 100));
  const shares = servers.map((s) => ({
    address: s.address,
    port: s.port,
    weight: weightOf(s),
    share: pct(weightOf(s)),
    ...(s.group !== undefined ? { group: s.group } : {}),
  }));
  if (split === undefined) return { servers: shares };
  const groups = split.map((g, i) => {
    const members = servers.filter((s) => s.group === i);
    return {
      group: i,
      selector: describeSelector(g.selector),
      percent: g.percent,
      servers: members.length,
      share: pct(members.reduce((sum, s) => sum + weightOf(s), 0)),
    };
  });
  return { servers: shares, split: groups };
}

/** The traffic view of `binding` over Consul's `instances`; undefined without a load balancer or when its spec cannot be rendered. */
export function bindingTraffic(binding: ServiceBinding, instances: readonly HealthInstance[]): TrafficView | undefined {
  const lb = binding.spec.loadBalancer;
  if (lb === undefined) return undefined;
  try {
    const { servers } = buildView({ bindingKey: bindingKey(binding), serviceName: binding.spec.service.name, lb, instances });
    return trafficShares(lb.split, servers);
  } catch (err) {
    if (err instanceof RenderError) return undefined;
    throw err;
  }
}
