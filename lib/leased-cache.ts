// The Redis steps the leased caches share (the tweet cache, tweet/cache.ts;
// the profile cache, user-cache.ts): a batch read that takes a fill lease
// for each miss before the caller goes to the database, and a write after a
// committed change that is retried before the change's call gives up.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";

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
