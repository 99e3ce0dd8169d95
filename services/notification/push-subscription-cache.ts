// The push subscriptions of each recipient, cached in Redis for the Web Push
// consumer. It reads a recipient's subscriptions for every notification, and
// nearly every recipient has none: without the cache that was one primary
// SELECT per notification (3.5 per compose with mentions in the DSB mix).
//
// The protocol is the profile cache's (lib/user-cache.ts, decision 12):
//
//   read        one GET of the entry; on a miss a fill lease (a random token
//               in a second key) is set BEFORE the reader goes to the primary.
//   fill        the rows read go in only if the reader's lease is still there;
//               the lease is used up.
//   invalidate  after a change to the user's rows commits (RegisterPush,
//               UnregisterPush, a subscription dropped as gone, an account
//               erased), and before the call that made it returns: the entry
//               and any lease are deleted. The call fails (Unavailable) unless
//               this succeeded.
//
// So a subscription registered before a notification's delivery started is
// pushed to, exactly as with the primary read. An invalidation lost to a
// crash between the commit and the delete is healed by the entry's TTL.
import type { Redis } from "ioredis";
import { Counter } from "prom-client";
import { LEASED_FILL_LUA, readWithLeases, writeAfterCommit, type LeasedCacheOptions } from "../../lib/leased-cache.js";
import type { Metrics } from "../../lib/metrics.js";
import type { PushSubscriptionRow, PushSubscriptionStore } from "./store.js";
import { defineScript } from "../../lib/redis-scripts.js";

/** Key prefix default "chirp:push-subs:". */
export type PushSubscriptionCacheOptions = LeasedCacheOptions;

/** A store whose list() is served from the cache, and whose changes clear it. */
export interface CachedPushSubscriptionStore extends PushSubscriptionStore {
  /** After these users' subscriptions changed other than through this store (an account erased). Throws Unavailable when the cache could not be cleared. */
  invalidate(userIds: readonly bigint[]): Promise<void>;
}

interface Scripts {
  chirpPushSubsFill(entry: string, lease: string, token: string, payload: string, ttlMs: number): Promise<number>;
}

/** What an entry holds: the rows, the endpoint hash in hex. */
interface Stored {
  readonly h: string;
  readonly e: string;
  readonly p: string;
  readonly a: string;
}

export function cachePushSubscriptions(store: PushSubscriptionStore, opts: PushSubscriptionCacheOptions): CachedPushSubscriptionStore {
  const { redis, ttlMs, log } = opts;
  const leaseMs = opts.leaseMs ?? 5_000;
  const prefix = opts.prefix ?? "chirp:push-subs:";
  const attempts = opts.attempts ?? 3;
  const retryMs = opts.retryMs ?? 25;
  // A hash tag keeps an entry and its lease in one Redis Cluster slot.
  const entryKey = (id: bigint): string => `${prefix}{${id}}`;
  const leaseKey = (id: bigint): string => `${prefix}{${id}}:lease`;
  defineScript(redis, "chirpPushSubsFill", { numberOfKeys: 2, lua: LEASED_FILL_LUA });
  const scripts = redis as unknown as Scripts;
  const m = opts.metrics === undefined ? undefined : cacheMetrics(opts.metrics);

  const invalidate = async (userIds: readonly bigint[]): Promise<void> => {
    const unique = [...new Set(userIds)];
    if (unique.length === 0) return;
    await writeAfterCommit({ attempts, retryMs }, () => redis.del(...unique.flatMap((id) => [entryKey(id), leaseKey(id)])), m?.invalidations, (err) =>
      log.warn({ err: (err as Error | undefined)?.message }, "push subscription cache not cleared after a committed change"),
    );
  };

  return {
    async list(userId) {
      const keys = { entry: entryKey(userId), lease: leaseKey(userId) };
      let read;
      try {
        [read] = await readWithLeases(redis, [keys], leaseMs);
      } catch (err) {
        m?.reads.inc({ result: "error" });
        log.debug({ err: (err as Error).message }, "push subscription cache read failed; reading the primary");
        return store.list(userId);
      }
      if (read?.value !== undefined) {
        const rows = decode(read.value);
        if (rows !== undefined) {
          m?.reads.inc({ result: "hit" });
          return rows;
        }
        m?.reads.inc({ result: "error" });
        return store.list(userId);
      }
      m?.reads.inc({ result: "miss" });
      const rows = await store.list(userId);
      if (read?.lease !== undefined) {
        try {
          await scripts.chirpPushSubsFill(keys.entry, keys.lease, read.lease, encode(rows), ttlMs);
        } catch (err) {
          log.debug({ err: (err as Error).message }, "push subscription cache fill failed");
        }
      }
      return rows;
    },

    async add(userId, sub, keep) {
      await store.add(userId, sub, keep);
      await invalidate([userId]);
    },

    async remove(userId, endpoint) {
      const removed = await store.remove(userId, endpoint);
      await invalidate([userId]);
      return removed;
    },

    async drop(userId, row) {
      await store.drop(userId, row);
      await invalidate([userId]);
    },

    invalidate,
  };
}

function encode(rows: readonly PushSubscriptionRow[]): string {
  return JSON.stringify(rows.map((r): Stored => ({ h: r.endpointHash.toString("hex"), e: r.endpoint, p: r.p256dh, a: r.auth })));
}

/** Undefined for a value this code did not write (the primary is read then). */
function decode(value: Buffer): PushSubscriptionRow[] | undefined {
  try {
    const parsed = JSON.parse(value.toString("utf8")) as unknown;
    if (!Array.isArray(parsed)) return undefined;
    const rows: PushSubscriptionRow[] = [];
    for (const s of parsed as Partial<Stored>[]) {
      if (typeof s.h !== "string" || typeof s.e !== "string" || typeof s.p !== "string" || typeof s.a !== "string") return undefined;
      rows.push({ endpointHash: Buffer.from(s.h, "hex"), endpoint: s.e, p256dh: s.p, auth: s.a });
    }
    return rows;
  } catch {
    return undefined;
  }
}

// One cache per process (the notification context makes it), so one set of counters per registry.
function cacheMetrics(metrics: Metrics) {
  const registers = [metrics.registry];
  return {
    reads: new Counter({
      name: "chirp_push_subscription_cache_reads_total",
      help: "Push subscription lookups by the Web Push consumer, by result (hit, miss, error).",
      labelNames: ["result"] as const,
      registers,
    }),
    invalidations: new Counter({
      name: "chirp_push_subscription_cache_invalidations_total",
      help: "Push subscription cache clears after a committed change by result (ok, failed: the call answered Unavailable).",
      labelNames: ["result"] as const,
      registers,
    }),
  };
}
