// Each user's blocks (either way) and mutes, cached in Redis for the paths
// that must honour them without a database read: the home timeline's read
// script (services/timeline/lists.ts reads the set in the same round trip as
// the page), the tweet service's writes and threads, search and
// notifications. The graph service owns the rows (blocks, blocked_by, mutes)
// and serves them with ListRelationIds; it clears a user's set whenever one
// of them changes, before its call returns.
//
//   chirp:rel:{<user>}        SET  "*" once built; "b<id>" for a block either
//                                  way; "m<id>" for a mute of the user's
//   chirp:rel:{<user>}:lease  the token of the build in progress
//
// The same lease protocol as the following sets and the profile cache
// (docs/decisions/0012-versioned-cache-with-fill-leases.md): a build sets a
// random token in the lease, reads the graph, and stores only if the lease
// still holds it; a change clears the set and the lease after its commit. So
// a build that read the graph before a change cannot store its snapshot after
// the change's call returned. Everything here can be rebuilt from MySQL
// (after a FLUSHALL, a read rebuilds it); without Redis every question goes
// to the graph service.
import { randomUUID } from "node:crypto";
import { ConnectError, type CallOptions } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import { writeAfterCommit } from "./leased-cache.js";
import type { Logger } from "./logger.js";
import type { MeshClients } from "./rpc/mesh-clients.js";
import { defineScript } from "./redis-scripts.js";

/** One user's relations as a reader needs them. */
export interface Relations {
  /** Users with a block between them and this user, whichever of the two blocked. */
  readonly blocks: ReadonlySet<bigint>;
  /** Users this user mutes. */
  readonly mutes: ReadonlySet<bigint>;
}

export const NO_RELATIONS: Relations = { blocks: new Set(), mutes: new Set() };

const BUILT = "*";
const LEASE_MS = 10_000;

export const RELATION_KEYS = {
  set: (userId: bigint): string => `chirp:rel:{${userId}}`,
  lease: (userId: bigint): string => `chirp:rel:{${userId}}:lease`,
} as const;

/** The members a cached set holds for these relations ("*" first). */
export function relationMembers(blocks: Iterable<bigint>, mutes: Iterable<bigint>): string[] {
  return [BUILT, ...[...blocks].map((id) => `b${id}`), ...[...mutes].map((id) => `m${id}`)];
}

/** The relations a cached set's members say; undefined when the set is not built (no "*"). */
export function parseRelations(members: readonly string[]): Relations | undefined {
  if (!members.includes(BUILT)) return undefined;
  const blocks = new Set<bigint>();
  const mutes = new Set<bigint>();
  for (const m of members) {
    if (!/^[bm]\d+$/.test(m)) continue;
    (m[0] === "b" ? blocks : mutes).add(BigInt(m.slice(1)));
  }
  return { blocks, mutes };
}

/** Whether `viewer`'s view leaves `userId` out: a block either way, or a mute of the viewer's. */
export function hides(r: Relations, userId: bigint): boolean {
  return r.blocks.has(userId) || r.mutes.has(userId);
}

// KEYS[1] set, KEYS[2] lease. ARGV: token, ttl ms, members... 1 if stored.
const STORE_LUA = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2], KEYS[1])
for i = 3, #ARGV, 1000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

export interface RelationCache {
  /** The user's relations: one SMEMBERS in steady state; built from the graph on a miss. */
  get(userId: bigint, options?: CallOptions): Promise<Relations>;
  /**
   * Builds the set from the graph unless it is cached (a reader that found it
   * missing in a script of its own, as the home read does); its relations.
   */
  build(userId: bigint, options?: CallOptions): Promise<Relations>;
  /** Whether a block stands between the two (either way): one SMISMEMBER in steady state. */
  blocked(userId: bigint, otherId: bigint, options?: CallOptions): Promise<boolean>;
  /** After a committed change of these users' blocks or mutes. Throws Unavailable when the sets could not be cleared. */
  invalidate(ids: readonly bigint[]): Promise<void>;
}

export interface RelationCacheOptions {
  readonly redis: Redis | undefined;
  readonly clients: Pick<MeshClients, "graph">;
  /** How long a set lives; it bounds what a lost invalidation could leave wrong. */
  readonly ttlMs: number;
  readonly log: Logger;
}

export function createRelationCache(opts: RelationCacheOptions): RelationCache {
  const { redis, clients, ttlMs, log } = opts;
  const inFlight = new Map<bigint, Promise<Relations>>();

  const fromGraph = async (userId: bigint, options?: CallOptions): Promise<{ relations: Relations; members: string[] }> => {
    const res = await clients.graph.listRelationIds({ userId }, options ?? {});
    const blocks = new Set([...res.blockedIds, ...res.blockedByIds]);
    const mutes = new Set(res.mutedIds);
    return { relations: { blocks, mutes }, members: relationMembers(blocks, mutes) };
  };

  if (redis !== undefined) defineScript(redis, "chirpRelStore", { numberOfKeys: 2, lua: STORE_LUA });
  const store = (r: Redis, userId: bigint, token: string, members: string[]): Promise<number> =>
    (r as unknown as { chirpRelStore(set: string, lease: string, ...args: (string | number)[]): Promise<number> }).chirpRelStore(
      RELATION_KEYS.set(userId),
      RELATION_KEYS.lease(userId),
      token,
      ttlMs,
      ...members,
    );

  /** Redis failing (not the graph: a ConnectError) means "ask the graph": slower, still right. */
  const orGraph = async <T>(userId: bigint, options: CallOptions | undefined, viaRedis: () => Promise<T>, fromRelations: (r: Relations) => T): Promise<T> => {
    try {
      return await viaRedis();
    } catch (err) {
      if (err instanceof ConnectError) throw err;
      log.debug({ err: (err as Error).message }, "relations: redis unavailable; asking the graph");
      return fromRelations((await fromGraph(userId, options)).relations);
    }
  };

  const build = (userId: bigint, options?: CallOptions): Promise<Relations> => {
    if (redis === undefined) return fromGraph(userId, options).then((r) => r.relations);
    let p = inFlight.get(userId);
    if (p === undefined) {
      p = (async () => {
        const token = randomUUID();
        await redis.set(RELATION_KEYS.lease(userId), token, "PX", LEASE_MS);
        const { relations, members } = await fromGraph(userId, options);
        await store(redis, userId, token, members);
        return relations;
      })().finally(() => inFlight.delete(userId));
      inFlight.set(userId, p);
    }
    return p;
  };

  return {
    build: (userId, options) => orGraph(userId, options, () => build(userId, options), (r) => r),
    async get(userId, options) {
      if (redis === undefined) return build(userId, options);
      return orGraph(
        userId,
        options,
        async () => parseRelations(await redis.smembers(RELATION_KEYS.set(userId))) ?? build(userId, options),
        (r) => r,
      );
    },
    async blocked(userId, otherId, options) {
      if (redis === undefined) return (await build(userId, options)).blocks.has(otherId);
      return orGraph(
        userId,
        options,
        async () => {
          const [built, blocked] = (await redis.smismember(RELATION_KEYS.set(userId), BUILT, `b${otherId}`)) as [number, number];
          if (built === 1) return blocked === 1;
          return (await build(userId, options)).blocks.has(otherId);
        },
        (r) => r.blocks.has(otherId),
      );
    },
    async invalidate(ids) {
      if (redis === undefined) return;
      const unique = [...new Set(ids)];
      if (unique.length === 0) return;
      await writeAfterCommit({ attempts: 3, retryMs: 25 }, () => redis.del(...unique.flatMap((id) => [RELATION_KEYS.set(id), RELATION_KEYS.lease(id)])), undefined, (err) =>
        log.warn({ err: (err as Error | undefined)?.message }, "block and mute sets not cleared after a committed change"),
      );
    },
  };
}
