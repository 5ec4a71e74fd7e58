/**
 * plan(current, desired) -> the Consul writes that converge current to
 * desired. Pure. A registration is (re)written only when its content hash
 * differs from the hash stored in the registered service's meta, so a
 * converged system produces an empty plan (zero writes). Only services in
 * `current` are ever deregistered, and callers pass only services owned by
 * this node (OWNER_META.node), so foreign registrations are never touched.
 */
import { createHash } from "node:crypto";
import { OWNER_META, type RegisteredService, type Registration } from "./types.js";

export interface RegistrationPlan {
  readonly register: readonly Registration[];
  readonly deregister: readonly string[];
}

/**
 * JSON with object keys sorted and undefined members left out: the same text as
 * JSON.stringify of a key-sorted copy, written in one pass (no intermediate objects).
 */
function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v: unknown) => (v === undefined ? "null" : stableJson(v))).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const parts: string[] = [];
    for (const k of Object.keys(obj).sort()) {
      const v = obj[k];
      if (v !== undefined) parts.push(`${JSON.stringify(k)}:${stableJson(v)}`);
    }
    return `{${parts.join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Content hash of a registration (everything but the hash itself and the live Docker health of a docker check). */
export function registrationHash(r: Registration): string {
  const meta = Object.fromEntries(Object.entries(r.meta).filter(([k]) => k !== OWNER_META.hash));
  const check = r.check === undefined ? undefined : { ...r.check, dockerHealth: undefined };
  return createHash("sha256")
    .update(stableJson({ ...r, meta, tags: [...r.tags].sort(), check }))
    .digest("hex")
    .slice(0, 16);
}

/** Returns the registration with its hash recorded in meta. */
export function withHash(r: Registration): Registration {
  return { ...r, meta: { ...r.meta, [OWNER_META.hash]: registrationHash(r) } };
}

/** The fields of a registration that the agent's service list and a health answer both show. */
export interface VisibleRegistration {
  readonly address: string;
  readonly port: number;
  readonly tags: readonly string[];
  readonly meta?: Readonly<Record<string, string>>;
  /** `Weights.Passing`; absent = Consul's default, 1. */
  readonly weight?: number;
}

/**
 * Whether two registrations of one service ID look the same to Consul's readers: address, port,
 * weight, tags (order ignored, duplicates counted) and meta (every key and value; absent = empty). Pure.
 */
export function sameVisible(a: VisibleRegistration, b: VisibleRegistration): boolean {
  if (a.address !== b.address || a.port !== b.port || (a.weight ?? 1) !== (b.weight ?? 1) || a.tags.length !== b.tags.length) return false;
  const ta = [...a.tags].sort();
  const tb = [...b.tags].sort();
  if (ta.some((t, i) => t !== tb[i])) return false;
  const ma = Object.entries(a.meta ?? {});
  const mb = b.meta ?? {};
  return ma.length === Object.keys(mb).length && ma.every(([k, v]) => mb[k] === v);
}

export function planRegistrations(current: readonly RegisteredService[], desired: readonly Registration[]): RegistrationPlan {
  const byId = new Map(current.map((s) => [s.id, s]));
  const wanted = new Set(desired.map((r) => r.id));
  const register = desired.map(withHash).filter((r) => {
    const cur = byId.get(r.id);
    // The hash in meta covers everything we write; the visible fields are compared too, so that a
    // registration edited behind our back (our meta copied, tags or port changed) is corrected.
    return cur === undefined || cur.name !== r.name || !sameVisible(cur, r);
  });
  const deregister = current
    .filter((s) => !wanted.has(s.id))
    .map((s) => s.id)
    .sort();
  return { register, deregister };
}
