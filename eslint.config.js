// typescript-eslint strict + type-checked rules (DEVELOPERS.md "Style").
import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * The layers of src/ (README "Repository map"): each folder may import only
 * the folders listed for it (and itself). Bottom to top: domain, api/v1alpha1,
 * runtime, ports, config, clients | render, sources | actuators, reconcilers,
 * observability, api/http, app, cli. `config` is read only by the clients
 * (connection settings), api/http, app and cli: everything else is handed
 * its options. Cycles are checked by madge in `make lint`.
 */
const BASE = ["domain", "api/v1alpha1"];
export const LAYERS = {
  domain: [],
  "api/v1alpha1": ["domain"],
  runtime: [...BASE],
  ports: [...BASE],
  config: [...BASE, "runtime", "ports"],
  clients: [...BASE, "runtime", "ports", "config"],
  render: [...BASE, "runtime", "ports"],
  sources: [...BASE, "runtime", "ports", "clients", "render"],
  actuators: [...BASE, "runtime", "ports", "clients", "render"],
  reconcilers: [...BASE, "runtime", "ports", "clients", "render", "sources", "actuators"],
  observability: [...BASE, "runtime", "ports", "clients", "render", "sources", "actuators", "reconcilers"],
  "api/http": [...BASE, "runtime", "ports", "config", "observability"],
  app: [...BASE, "runtime", "ports", "config", "clients", "render", "sources", "actuators", "reconcilers", "observability", "api/http"],
  cli: [...BASE, "runtime", "ports", "config", "clients", "render", "sources", "actuators", "reconcilers", "observability", "api/http", "app"],
};
/** Node modules and packages that do I/O: the pure layers (domain, api/v1alpha1, ports) import none of them. */
const IO_MODULES = [
  "fs",
  "fs/promises",
  "child_process",
  "http",
  "https",
  "http2",
  "net",
  "tls",
  "dgram",
  "dns",
  "readline",
  "worker_threads",
  "cluster",
  "process",
]
  .flatMap((m) => [m, `node:${m}`])
  .concat(["dockerode", "consul", "@kubernetes/client-node", "winston"]);
const PURE = new Set(["domain", "api/v1alpha1", "ports"]);

/**
 * One no-restricted-imports entry per layer: a relative import that reaches a
 * layer not in its list is an error. Top-level folder names of src/ never
 * recur as subfolder names, so `(../)+<layer>/` identifies the layer
 * (test/unit/layers.test.ts checks that every folder of src/ is a layer).
 */
function layerRules() {
  return Object.entries(LAYERS).map(([layer, allowed]) => {
    const forbidden = Object.keys(LAYERS).filter((l) => l !== layer && !allowed.includes(l));
    const paths = PURE.has(layer)
      ? IO_MODULES.map((name) =>
          name === "net" || name === "node:net"
            ? { name, allowImportNames: ["isIP", "isIPv4", "isIPv6"], message: `src/${layer} is pure: only node:net's address checks, no I/O.` }
            : { name, message: `src/${layer} is pure: no I/O modules (README "Repository map").` },
        )
      : [];
    const patterns = forbidden.map((l) => ({
      regex: `^(\\./)?(\\.\\./)+${l.replace("/", "\\/")}(/|$)`,
      message: `src/${layer} may not import src/${l}: layers (README "Repository map", eslint.config.js LAYERS).`,
    }));
    return { files: [`src/${layer}/**/*.ts`], rules: { "no-restricted-imports": ["error", { paths, patterns }] } };
  });
}

export default tseslint.config(
  // .tmp/ and test-results/ are git-ignored scratch and output directories.
  { ignores: ["dist/**", "node_modules/**", "eslint.config.js", "bin/**", ".tmp/**", "test-results/**"] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        // node:test's describe/it/test return promises the runner awaits itself.
        {
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["describe", "it", "test", "suite", "before", "after", "beforeEach", "afterEach"] },
          ],
        },
      ],
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "no-restricted-properties": ["error", { object: "process", property: "env", message: "Only src/config reads process.env." }],
    },
  },
  {
    // Functions of the controller fit on a screen: comments and blank lines count too.
    files: ["src/**/*.ts"],
    rules: { "max-lines-per-function": ["error", { max: 80 }] },
  },
  {
    files: ["src/config/**/*.ts", "test/**/*.ts", "bench/**/*.ts"],
    rules: { "no-restricted-properties": "off" },
  },
  ...layerRules(),
);
