/**
 * Builds a @kubernetes/client-node KubeConfig from the connection chosen by
 * src/config (which alone reads the environment): kubeconfig file(s) merged
 * in order like kubectl, or the in-cluster ServiceAccount (token file re-read
 * by the library, so projected-token rotation works).
 */
import { KubeConfig } from "@kubernetes/client-node";
import { existsSync } from "node:fs";
import type { KubeConnection } from "../../config/config.js";

export function loadKubeConfig(conn: KubeConnection): KubeConfig {
  const kc = new KubeConfig();
  if (conn.kind === "in-cluster") {
    const host = conn.host.includes(":") ? `[${conn.host}]` : conn.host;
    kc.loadFromClusterAndUser(
      { name: "inCluster", server: `https://${host}:${conn.port}`, caFile: conn.caFile, skipTLSVerify: false },
      { name: "inClusterUser", authProvider: { name: "tokenFile", config: { tokenFile: conn.tokenFile } } },
    );
    return kc;
  }
  // Like kubectl, missing files in a KUBECONFIG list are skipped.
  const paths = conn.paths.length === 1 ? conn.paths : conn.paths.filter((p) => existsSync(p));
  let first = true;
  for (const path of paths) {
    const one = new KubeConfig();
    one.loadFromFile(path);
    // kubectl semantics: the first file that sets current-context wins.
    kc.mergeConfig(one, !first && kc.currentContext !== "");
    first = false;
  }
  if (conn.context !== undefined) kc.setCurrentContext(conn.context);
  if (kc.getCurrentCluster() === null) throw new Error(`kubeconfig ${conn.paths.join(":")}: no current context/cluster`);
  return kc;
}
