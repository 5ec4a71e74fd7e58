/** The leader-election lock as a coordination.k8s.io/v1 Lease (what client-go's LeaseLock does). */
import type { LeaderElectionRecord, LockState, ResourceLock } from "../../runtime/leaderElection.js";
import { isKubeApiError, type KubeClient, type KubeObject } from "../../clients/kubernetes/kubeClient.js";

interface LeaseSpec {
  readonly holderIdentity?: string;
  readonly leaseDurationSeconds?: number;
  readonly acquireTime?: string;
  readonly renewTime?: string;
  readonly leaseTransitions?: number;
}

type Lease = KubeObject & { readonly spec?: LeaseSpec };

export function leaseLock(client: KubeClient, namespace: string, name: string): ResourceLock {
  const collection = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`;
  const body = (rec: LeaderElectionRecord, resourceVersion?: string): unknown => ({
    apiVersion: "coordination.k8s.io/v1",
    kind: "Lease",
    metadata: { name, namespace, ...(resourceVersion !== undefined ? { resourceVersion } : {}) },
    // MicroTime fields must be valid timestamps or absent.
    spec: Object.fromEntries(Object.entries(rec).filter(([, v]) => v !== "")),
  });
  return {
    describe: () => `lease ${namespace}/${name}`,
    async get(signal) {
      let lease: Lease;
      try {
        lease = await client.request<Lease>("GET", `${collection}/${name}`, { signal });
      } catch (err) {
        if (isKubeApiError(err, 404)) return undefined;
        throw err;
      }
      const s = lease.spec ?? {};
      const state: LockState = {
        version: lease.metadata.resourceVersion ?? "",
        record: {
          holderIdentity: s.holderIdentity ?? "",
          leaseDurationSeconds: s.leaseDurationSeconds ?? 0,
          acquireTime: s.acquireTime ?? "",
          renewTime: s.renewTime ?? "",
          leaseTransitions: s.leaseTransitions ?? 0,
        },
      };
      return state;
    },
    async create(rec, signal) {
      await client.request("POST", collection, { body: body(rec), signal });
    },
    async update(rec, version, signal) {
      await client.request("PUT", `${collection}/${name}`, { body: body(rec, version), signal });
    },
  };
}
