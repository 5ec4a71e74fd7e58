/**
 * Pure accounting of the failure table (bench/failures.ts): what one
 * contender's Consul and generated nginx file say about the backends that
 * really run on the engine. A backend is known by the `address:port` pairs
 * that reach it (its container IP and target port; a published host port); a
 * Consul entry or an upstream server line belongs to the backend whose pairs
 * contain its own, otherwise it is stale (it names nothing that runs).
 */

export interface ConsulEntry {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  /** "passing" | "warning" | "critical" (worst check of the entry). */
  readonly status: string;
}

export interface LiveBackend {
  /** Container name (for messages). */
  readonly name: string;
  /** `address:port` pairs that reach this backend. */
  readonly keys: readonly string[];
}

export interface Tally {
  /** Live backends with at least one entry. */
  readonly registered: number;
  /** Live backends with at least one passing entry. */
  readonly passing: number;
  /** Entries beyond the first of one backend. */
  readonly duplicates: number;
  /** Entries that name no live backend, and how many of them are passing. */
  readonly stale: number;
  readonly stalePassing: number;
  /** Live backends without any entry. */
  readonly missing: readonly string[];
  /** Upstream server lines naming a live backend / naming nothing that runs. */
  readonly renderedLive: number;
  readonly renderedStale: number;
}

/** `address:port` of every `server ADDR:PORT ...;` line of an nginx upstream. */
export function upstreamServers(conf: string): string[] {
  const out: string[] = [];
  for (const line of conf.split("\n")) {
    const m = /^\s*server\s+(\d{1,3}(?:\.\d{1,3}){3}:\d+)[\s;]/.exec(line);
    if (m?.[1] !== undefined) out.push(m[1]);
  }
  return out;
}

export function tally(entries: readonly ConsulEntry[], backends: readonly LiveBackend[], upstream: readonly string[]): Tally {
  const owner = new Map<string, number>();
  backends.forEach((b, i) => {
    for (const k of b.keys) owner.set(k, i);
  });
  const perBackend = backends.map(() => ({ n: 0, passing: 0 }));
  let stale = 0;
  let stalePassing = 0;
  for (const e of entries) {
    const i = owner.get(`${e.address}:${e.port}`);
    const slot = i === undefined ? undefined : perBackend[i];
    if (slot === undefined) {
      stale++;
      if (e.status === "passing") stalePassing++;
      continue;
    }
    slot.n++;
    if (e.status === "passing") slot.passing++;
  }
  const renderedLive = upstream.filter((k) => owner.has(k)).length;
  return {
    registered: perBackend.filter((s) => s.n > 0).length,
    passing: perBackend.filter((s) => s.passing > 0).length,
    duplicates: perBackend.reduce((d, s) => d + Math.max(0, s.n - 1), 0),
    stale,
    stalePassing,
    missing: backends.filter((_, i) => (perBackend[i]?.n ?? 0) === 0).map((b) => b.name),
    renderedLive,
    renderedStale: upstream.length - renderedLive,
  };
}

/** Every live backend registered once and passing, nothing stale, the upstream naming exactly the live backends. */
export function converged(t: Tally, live: number): boolean {
  return t.passing === live && t.registered === live && t.duplicates === 0 && t.stale === 0 && t.renderedLive === live && t.renderedStale === 0;
}

/** "1.8 s" / "42 s". */
export function seconds(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** One line of what a tally says, for table cells: "3 of 5 registered (3 passing), 2 stale (critical), upstream 3 + 0 stale". */
export function describe(t: Tally, live: number): string {
  const parts = [`${t.registered} of ${live} registered${t.passing !== t.registered ? ` (${t.passing} passing)` : ""}`];
  if (t.duplicates > 0) parts.push(`${t.duplicates} duplicate${t.duplicates === 1 ? "" : "s"}`);
  if (t.stale > 0) parts.push(`${t.stale} stale (${t.stalePassing > 0 ? `${t.stalePassing} passing` : "critical"})`);
  parts.push(`upstream ${t.renderedLive} of ${live}${t.renderedStale > 0 ? ` + ${t.renderedStale} stale` : ""}`);
  return parts.join(", ");
}
