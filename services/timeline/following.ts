// Whom a reader follows, cached in Redis (a SET of ids plus "*"), read from
// the graph service on a miss. A follow or unfollow event drops the set (and
// any build's lease); a build writes only if its lease is still there. So a
// build that read the graph before a change cannot store its snapshot after
// that change's event: the event took the lease away. (The tweet cache's
// fill lease, the same argument: docs/decisions/0012-versioned-cache-with-fill-leases.md.)
import { randomUUID } from "node:crypto";
import type { HandlerContext } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import type { MeshClients } from "../../lib/rpc/mesh-clients.js";
import { onBehalfOf } from "../../lib/rpc/mesh-clients.js";
import { KEYS } from "./lists.js";
import { defineScript } from "../../lib/redis-scripts.js";

const BUILT = "*";
const PAGE = 5000;
const LEASE_MS = 10_000;

// KEYS[1] set, KEYS[2] lease. ARGV: token, ttl ms, ids... 1 if stored.
const STORE_LUA = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[1])
redis.call('SADD', KEYS[1], '${BUILT}')
for i = 3, #ARGV, 1000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

export interface FollowingCache {
  /** Everyone `userId` follows, from the cache or the graph (which then fills the cache). */
  all(userId: bigint, hctx?: HandlerContext): Promise<bigint[]>;
  /** Fills the cache from the graph if it is missing; returns whether it had to. */
  ensure(userId: bigint, hctx?: HandlerContext): Promise<boolean>;
  /** Drops the cached set (a follow or unfollow of the user). */
  invalidate(userId: bigint): Promise<void>;
}

/** Everyone `userId` follows, straight from the graph (its primary), page by page. */
export async function listFollowing(clients: MeshClients, userId: bigint, hctx?: HandlerContext): Promise<bigint[]> {
  const ids: bigint[] = [];
  let pageToken = "";
  do {
    const res = await clients.graph.listFollowingIds({ userId, pageSize: PAGE, pageToken }, hctx === undefined ? {} : onBehalfOf(hctx));
    ids.push(...res.userIds);
    pageToken = res.nextPageToken;
  } while (pageToken !== "");
  return ids;
}

export function createFollowingCache(opts: { redis: Redis; clients: MeshClients; ttlMs: number }): FollowingCache {
  const { redis, clients, ttlMs } = opts;
  defineScript(redis, "chirpTlStoreFollowing", { numberOfKeys: 2, lua: STORE_LUA });
  const store = (redis as unknown as { chirpTlStoreFollowing(set: string, lease: string, ...args: (string | number)[]): Promise<number> })
    .chirpTlStoreFollowing;
  const inFlight = new Map<bigint, Promise<bigint[]>>();

  const build = (userId: bigint, hctx?: HandlerContext): Promise<bigint[]> => {
    let p = inFlight.get(userId);
    if (p === undefined) {
      p = (async () => {
        const token = randomUUID();
        await redis.set(KEYS.followingLease(userId), token, "PX", LEASE_MS);
        const ids = await listFollowing(clients, userId, hctx);
        await store.call(redis, KEYS.following(userId), KEYS.followingLease(userId), token, ttlMs, ...ids.map(String));
        return ids;
      })().finally(() => inFlight.delete(userId));
      inFlight.set(userId, p);
    }
    return p;
  };

  return {
    async all(userId, hctx) {
      const members = await redis.smembers(KEYS.following(userId));
      if (!members.includes(BUILT)) return build(userId, hctx);
      return members.filter((m) => m !== BUILT).map((m) => BigInt(m));
    },
    async ensure(userId, hctx) {
      if ((await redis.exists(KEYS.following(userId))) === 1) return false;
      await build(userId, hctx);
      return true;
    },
    async invalidate(userId) {
      await redis.del(KEYS.following(userId), KEYS.followingLease(userId));
    },
  };
}
