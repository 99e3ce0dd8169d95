// Keyrange math with Vitess semantics (go/vt/key/key.go) and the map from a
// keyspace id to the shard that owns it.
import { ShardConfigError, parseKeyRange, type KeyRange } from "./shard-config.js";
import { handleKeyspaceId, hashVindex, parseUint64 } from "./vindex.js";

/** How many users' shards a map remembers (about 10 MB at most). */
const USER_SHARDS_REMEMBERED = 100_000;

/**
 * Compares keyspace ids (or keyrange bounds) as big-endian bytes, ignoring
 * trailing zero bytes: `40` == `4000` == `4000000000000000`. Vitess compares
 * this way so that a short shard bound acts as if right-padded with zeros.
 */
export function compareKeyspaceIds(a: Uint8Array, b: Uint8Array): number {
  const la = normalizedLength(a);
  const lb = normalizedLength(b);
  const n = Math.min(la, lb);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return la === lb ? 0 : la < lb ? -1 : 1;
}

/** Start inclusive, end exclusive; an empty (or all-zero) bound is open. */
export function keyRangeContains(range: KeyRange, ksid: Uint8Array): boolean {
  const start = Buffer.from(range.start, "hex");
  const end = Buffer.from(range.end, "hex");
  return (
    (isOpen(start) || compareKeyspaceIds(ksid, start) >= 0) &&
    (isOpen(end) || compareKeyspaceIds(ksid, end) < 0)
  );
}

function normalizedLength(id: Uint8Array): number {
  let n = id.length;
  while (n > 0 && id[n - 1] === 0) n--;
  return n;
}

function isOpen(bound: Uint8Array): boolean {
  return normalizedLength(bound) === 0;
}

/** What a ShardMap needs of a shard: its name, a Vitess keyrange. */
export interface NamedShard {
  readonly name: string;
}

interface Entry<S> {
  shard: S;
  start: Buffer;
  end: Buffer;
}

/**
 * The shards of a keyspace, sorted by keyrange, answering "which shard owns
 * this keyspace id" by binary search. Construction fails (ShardConfigError,
 * every problem listed) unless the ranges tile the ring exactly.
 */
export class ShardMap<S extends NamedShard = NamedShard> {
  readonly #entries: readonly Entry<S>[];
  /** Users' shards already computed (a map never changes its keyranges; a new topology is a new map). */
  readonly #byUser = new Map<bigint, S>();
  /** The shards in keyrange order. */
  readonly shards: readonly S[];

  constructor(shards: readonly S[]) {
    const problems: string[] = [];
    const entries: Entry<S>[] = [];
    const names = new Set<string>();
    for (const shard of shards) {
      if (names.has(shard.name)) problems.push(`duplicate shard ${shard.name}`);
      names.add(shard.name);
      try {
        const range = parseKeyRange(shard.name);
        entries.push({ shard, start: Buffer.from(range.start, "hex"), end: Buffer.from(range.end, "hex") });
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    if (shards.length === 0) problems.push("no shards");
    // An open start normalises to no bytes, so it sorts below every keyspace id.
    entries.sort((a, b) => compareKeyspaceIds(a.start, b.start));
    if (problems.length === 0) problems.push(...tilingProblems(entries));
    if (problems.length > 0) throw new ShardConfigError("shard map", problems);
    this.#entries = entries;
    this.shards = Object.freeze(entries.map((e) => e.shard));
  }

  /** The shard whose keyrange holds `ksid`. */
  shardFor(ksid: Uint8Array): S {
    // Last entry whose start <= ksid; the first start is open, so one exists.
    let lo = 0;
    let hi = this.#entries.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (compareKeyspaceIds(this.#entries[mid]!.start, ksid) <= 0) lo = mid;
      else hi = mid - 1;
    }
    return this.#entries[lo]!.shard;
  }

  /** The shard of a user's rows (Vitess `hash` of the id). */
  shardForUser(userId: bigint | string): S {
    // The same authors and viewers recur on every read: a hash (a DES block) per
    // tweet showed in profiles. Cleared when full, to stay bounded.
    const id = parseUint64(userId);
    let shard = this.#byUser.get(id);
    if (shard === undefined) {
      if (this.#byUser.size >= USER_SHARDS_REMEMBERED) this.#byUser.clear();
      shard = this.shardFor(hashVindex(id));
      this.#byUser.set(id, shard);
    }
    return shard;
  }

  /** The shard of a handle's `user_handles` row (binary_md5 of the lower-cased handle). */
  shardForHandle(handle: string): S {
    return this.shardFor(handleKeyspaceId(handle));
  }
}

function tilingProblems<S extends NamedShard>(sorted: readonly Entry<S>[]): string[] {
  const problems: string[] = [];
  const first = sorted[0];
  if (first && !isOpen(first.start)) problems.push(`keyrange gap before shard ${first.shard.name}: the first shard must start open (like "-40")`);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (isOpen(prev.end)) {
      problems.push(`shard ${prev.shard.name} runs to the end of the keyspace but shard ${cur.shard.name} follows it`);
      continue;
    }
    const c = compareKeyspaceIds(prev.end, cur.start);
    if (c < 0) problems.push(`keyrange gap between shards ${prev.shard.name} and ${cur.shard.name}`);
    else if (c > 0) problems.push(`shards ${prev.shard.name} and ${cur.shard.name} overlap`);
  }
  const last = sorted[sorted.length - 1];
  if (last && !isOpen(last.end)) problems.push(`keyrange gap after shard ${last.shard.name}: the last shard must end open (like "c0-")`);
  return problems;
}
