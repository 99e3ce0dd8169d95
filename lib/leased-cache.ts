// The Redis steps the leased caches share (the tweet cache, tweet-cache.ts;
// the profile cache, user-cache.ts): a batch read that takes a fill lease
// for each miss before the caller goes to the database, the same read
// without leases for a service that does not own the cache (peek), and a
// write after a committed change that is retried before the change's call
// gives up.
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { Counter } from "prom-client";
import type { Logger } from "./logger.js";
import { countResults, type Metrics } from "./metrics.js";

/** What a leased cache is made with (each adds its own, and its key prefix's default). */
export interface LeasedCacheOptions {
  readonly redis: Redis;
  /** How long an entry lives. */
  readonly ttlMs: number;
  /** How long a fill lease holds. */
  readonly leaseMs?: number;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Key prefix. */
  readonly prefix?: string;
  /** Attempts of a write after a committed change before the call gives up (default 3), and the pause before the second (doubling). */
  readonly attempts?: number;
  readonly retryMs?: number;
}

/**
 * A fill under its lease, as a Redis script. KEYS: entry, lease. ARGV: the
 * reader's lease token, the value, TTL ms. Stores the value only while the
 * lease is still the reader's (no invalidation came between), and uses the
 * lease up. 1 if stored.
 */
export const LEASED_FILL_LUA = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;

/**
 * A writer's settle, as a Redis script: after a change committed, in place of
 * the invalidation, by a writer that read its own row in the change's
 * transaction under a lease it took before that read. KEYS: entry, lease.
 * ARGV: the writer's lease token ('' for none), the value, TTL ms. While the
 * lease is still the writer's (no reader took one since, no invalidation came
 * between) the value goes in; otherwise the entry is cleared, as an
 * invalidation would. The lease is used up either way. 1 if stored.
 */
export const WRITER_SETTLE_LUA = `
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
redis.call('DEL', KEYS[1], KEYS[2])
return 0`;

/** One key's read: its value, or a miss with the fill lease taken for it (undefined when none could be taken). */
export type LeasedRead = { readonly value: Buffer } | { readonly value: undefined; readonly lease: string | undefined };

/**
 * One MGET of every entry; for the misses only, a fill lease each (a random
 * token in its lease key for `leaseMs`), set before the caller reads the
 * database, so a change committed after the lease was set is seen by that
 * read. All hits: one command, one round trip. Throws when the MGET fails.
 */
export async function readWithLeases(redis: Redis, keys: ReadonlyArray<{ readonly entry: string; readonly lease: string }>, leaseMs: number): Promise<LeasedRead[]> {
  if (keys.length === 0) return [];
  const values = await redis.mgetBuffer(...keys.map((k) => k.entry));
  const misses = keys.flatMap((k, i) => (values[i] === null || values[i] === undefined ? [i] : []));
  const tokens = misses.map(() => randomUUID());
  let taken: Array<[Error | null, unknown]> | null = null;
  if (misses.length > 0) {
    try {
      const pipeline = redis.pipeline();
      misses.forEach((i, n) => void pipeline.set(keys[i]!.lease, tokens[n]!, "PX", leaseMs));
      taken = await pipeline.exec();
    } catch {
      // No leases: the misses are read from the database and nothing is filled.
    }
  }
  const leaseOf = new Map(misses.map((i, n) => [i, taken?.[n]?.[0] === null ? tokens[n] : undefined]));
  return keys.map((_, i) => {
    const value = values[i];
    return value === null || value === undefined ? { value: undefined, lease: leaseOf.get(i) } : { value };
  });
}

/** `write`, tried `attempts` times with a doubling pause from `retryMs`; the last error when every try failed. */
export async function retried<T>(attempts: number, retryMs: number, write: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      return await write();
    } catch (err) {
      last = err;
      if (attempt < attempts) await new Promise((r) => setTimeout(r, retryMs * 2 ** (attempt - 1)));
    }
  }
  throw last;
}

/** A cache miss: the lease to fill it with, undefined when none may be filled. */
export interface LeasedMiss {
  readonly kind: "miss";
  readonly lease: string | undefined;
}

export interface DecodedRead<E> {
  readonly redis: Redis;
  /** Unique ids. */
  readonly ids: readonly bigint[];
  readonly keysOf: (id: bigint) => { readonly entry: string; readonly lease: string };
  readonly leaseMs: number;
  /** The entry a value holds (the value of `id`'s key); undefined for a value this code did not write. */
  readonly decode: (value: Buffer, id: bigint) => E | undefined;
  /** The result a decoded entry is counted as ("hit", "tombstone", ...). */
  readonly resultOf: (entry: E) => string;
  /** Counts each id's result: "miss", "error" or resultOf's. */
  readonly reads: Counter<"result"> | undefined;
  /** When Redis did not answer (every id is then a miss without a lease). */
  readonly onUnavailable: (err: Error) => void;
}

/**
 * readWithLeases with each value decoded. A value `decode` refuses is a miss
 * without a lease: the caller reads the database and fills nothing over it.
 */
export async function readDecoded<E>(opts: DecodedRead<E>): Promise<Map<bigint, E | LeasedMiss>> {
  const out = new Map<bigint, E | LeasedMiss>();
  let reads: LeasedRead[];
  try {
    reads = await readWithLeases(opts.redis, opts.ids.map(opts.keysOf), opts.leaseMs);
  } catch (err) {
    opts.onUnavailable(err as Error);
    opts.reads?.inc({ result: "error" }, opts.ids.length);
    for (const id of opts.ids) out.set(id, { kind: "miss", lease: undefined });
    return out;
  }
  const results: string[] = [];
  opts.ids.forEach((id, i) => {
    const read = reads[i]!;
    if (read.value === undefined) {
      results.push("miss");
      out.set(id, { kind: "miss", lease: read.lease });
      return;
    }
    const entry = opts.decode(read.value, id);
    results.push(entry === undefined ? "error" : opts.resultOf(entry));
    out.set(id, entry ?? { kind: "miss", lease: undefined });
  });
  countResults(opts.reads, "result", results);
  return out;
}

/**
 * The cache write after a committed change, retried. If every try fails, an
 * older value could still be served, so the change's call must not report
 * success: this throws Unavailable (a retry of the call is idempotent and
 * writes again). Counted on `writes` as "ok" or "failed".
 */
export async function writeAfterCommit(
  retry: { readonly attempts: number; readonly retryMs: number },
  write: () => Promise<unknown>,
  writes: Counter<"result"> | undefined,
  onFailed: (err: unknown) => void,
): Promise<void> {
  try {
    await retried(retry.attempts, retry.retryMs, write);
    writes?.inc({ result: "ok" });
  } catch (err) {
    writes?.inc({ result: "failed" });
    onFailed(err);
    throw new ConnectError("change saved, but not yet visible everywhere; retry", Code.Unavailable, undefined, undefined, err);
  }
}

/** Help texts of a leased cache's three counters (each names its cache and says what its results mean). */
export interface LeasedCacheHelp {
  readonly reads: string;
  readonly fills: string;
  readonly invalidations: string;
}

/**
 * `<name>_reads_total`, `_fills_total` and `_invalidations_total` by result,
 * on `metrics`' registry. One cache per process, so one set per registry.
 */
export function leasedCacheCounters(metrics: Metrics, name: string, help: LeasedCacheHelp) {
  const registers = [metrics.registry];
  const counter = (suffix: string, text: string) => new Counter({ name: `${name}_${suffix}_total`, help: text, labelNames: ["result"] as const, registers });
  return { reads: counter("reads", help.reads), fills: counter("fills", help.fills), invalidations: counter("invalidations", help.invalidations) };
}

/**
 * One MGET of the entries of `ids`, without fill leases (another service's
 * read: what it lacks it asks of the cache's owner, whose read takes the
 * leases): the entries that decode, counted peek_hit, peek_miss or error.
 * Empty when Redis does not answer.
 */
export async function peekDecoded<E>(opts: {
  readonly redis: Redis;
  readonly ids: readonly bigint[];
  readonly keyOf: (id: bigint) => string;
  readonly decode: (value: Buffer, id: bigint) => E | undefined;
  readonly reads: Counter<"result"> | undefined;
  readonly onUnavailable: (err: Error) => void;
}): Promise<Map<bigint, E>> {
  const out = new Map<bigint, E>();
  const unique = [...new Set(opts.ids)];
  if (unique.length === 0) return out;
  let values: Array<Buffer | null>;
  try {
    values = await opts.redis.mgetBuffer(...unique.map(opts.keyOf));
  } catch (err) {
    opts.reads?.inc({ result: "error" }, unique.length);
    opts.onUnavailable(err as Error);
    return out;
  }
  const results = unique.map((id, i): string => {
    const value = values[i];
    if (value === null || value === undefined) return "peek_miss";
    const entry = opts.decode(value, id);
    if (entry === undefined) return "error";
    out.set(id, entry);
    return "peek_hit";
  });
  countResults(opts.reads, "result", results);
  return out;
}
