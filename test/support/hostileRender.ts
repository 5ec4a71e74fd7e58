/**
 * Injection table shared by the render unit tests and the nginx integration
 * test: hostile values in every free-text position a render can receive.
 */
import type { HealthInstance, LoadBalancerSpec } from "../../src/domain/types.js";
import type { NginxRenderInput } from "../../src/render/nginx.js";

export const HOSTILE: readonly string[] = [
  "127.0.0.1; include /etc/passwd",
  "}",
  "{",
  "10.0.0.1\n}\nserver { listen 81; }",
  "10.0.0.1\r\nreturn 200;",
  "10.0.0.1\uFF1B", // fullwidth semicolon ；
  "\uFF11\uFF12\uFF17.\uFF10.\uFF10.\uFF11", // fullwidth digits １２７.０.０.１
  "\u0661\u0662\u0667.\u0660.\u0660.\u0661", // Arabic-Indic digits
  "10.0.0.1\u2028include x;", // LINE SEPARATOR
  "web-\u0430pp", // Cyrillic а
  "\u0455\u0435rv\u0435r", // Cyrillic ѕеrvеr
  "10.0.0.1 # }",
  '"10.0.0.1"',
  "'10.0.0.1'",
  "$host",
  "${jndi:ldap://x}",
  "10.0.0.1\\;",
  "unix:/var/run/docker.sock",
  "10.0.0.1:80 backup",
  "10.0.0.1 max_fails=0",
  "fe80::1%eth0;}",
  "[::1]",
  "localhost",
  "",
  "10.0.0.1\u0000",
  "{{upstream}}",
  "</script><!--",
  "a".repeat(5000),
];

export const LB: LoadBalancerSpec = {
  kind: "nginx",
  listen: { address: "127.0.0.1", port: 18080 },
  onlyPassing: true,
  method: "least_conn",
  serverName: "web.example.com",
  output: "web.conf",
};

export function inst(serviceId: string, address: string, tags: readonly string[] = []): HealthInstance {
  return { serviceId, node: "node-1", address, port: 8080, tags, status: "passing" };
}

export interface HostileCase {
  readonly name: string;
  readonly hostile: string;
  readonly input: NginxRenderInput;
}

/** Every hostile value in every free-text position, default template (and one custom). */
export function hostileCases(lb: LoadBalancerSpec = LB): HostileCase[] {
  const base = { bindingKey: "default/web", serviceName: "web", lb };
  const custom =
    "# {{bindingKey}}\n{{#hasServers}}upstream {{upstream}} {\n{{#servers}}    server {{address}}:{{port}}; # {{id}}\n{{/servers}}}\n{{/hasServers}}server { listen {{listenAddress}}:{{listenPort}}; return 404; }\n";
  return HOSTILE.flatMap((h, i) => [
    { name: `#${i} address+tags`, hostile: h, input: { ...base, instances: [inst("svc-bad", h, [h]), inst("svc-ok", "10.0.0.5")] } },
    { name: `#${i} address only`, hostile: h, input: { ...base, instances: [inst("svc-bad", h, [h])] } },
    { name: `#${i} service id`, hostile: h, input: { ...base, instances: [inst(h, "10.0.0.5", [h, `${h}=x`])] } },
    { name: `#${i} custom template`, hostile: h, input: { ...base, template: custom, instances: [inst(h, h), inst(h, "10.0.0.5")] } },
  ]);
}

/** Renders whose binding key is hostile: identity, not data, so they must be refused (RenderError InvalidSpec). */
export function hostileBindingKeyCases(lb: LoadBalancerSpec = LB): HostileCase[] {
  return HOSTILE.map((h, i) => ({
    name: `#${i} binding key`,
    hostile: h,
    input: { bindingKey: h, serviceName: "web", lb, instances: [inst("svc-ok", "fd00::5")] },
  }));
}
