// The Redis cache of public profiles (the User message without its email:
// handle, names, bio, counts), read by BatchGetUsers for every hydrated
// tweet's author and by GetUser. Written by the user service; invalidated by
// whichever service changes a users row (the user service's UpdateProfile,
// the graph service's follower and following counts, the tweet service's
// tweet counts), so it lives in the shared library.
//
//   read        one MGET of every entry; for the misses only, a fill lease
//               each (a random token in a second key), set BEFORE the reader
//               goes to the database. All hits: one command, one round trip.
//   fill        the reader's row (read from the PRIMARY) goes in only if its
//               lease is still there; the lease is used up.
//   invalidate  after a change commits, and before the call that made it
//               returns: the entry and any lease are deleted. The call does
//               not return OK unless this succeeded.
//
// So once an invalidation has run, no row read before the commit can land:
// the leases taken before it are gone, and a reader that takes one after it
// reads the primary after the commit. A count is then exact on every read
// that starts after the follow, post or delete returned, as a primary read
// would be. An invalidation lost to a crash between the commit and the
// delete is healed by the entry's TTL.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { UserSchema, type User } from "../gen/chirp/user/v1/user_pb.js";
import { EnvReader, type Env } from "./config.js";
import { DecodedMemo } from "./decoded-memo.js";
import { LEASED_FILL_LUA, WRITER_SETTLE_LUA, leasedCacheCounters, peekDecoded, readDecoded, writeAfterCommit, type LeasedMiss } from "./leased-cache.js";
import type { Logger } from "./logger.js";
import { type Metrics } from "./metrics.js";
import { defineScript } from "./redis-scripts.js";
import { encodeMessage, decodeMessage } from "./proto-codec.js";

/** A read: the profile, or a miss with the lease to fill it (undefined when the cache did not answer). */
export type UserCacheRead = { readonly kind: "user"; readonly user: User } | LeasedMiss;

export interface UserCache {
  read(ids: readonly bigint[]): Promise<Map<bigint, UserCacheRead>>;
  /**
   * The cached profiles among `ids`, without taking fill leases: for a
   * service other than the user service that shows authors (the tweet
   * service), which asks BatchGetUsers only for what this lacks (that read
   * takes the leases and fills). One MGET; empty when Redis does not answer.
   */
  peek(ids: readonly bigint[]): Promise<Map<bigint, User>>;
  /** Best effort: a refused or failed fill changes nothing. `user` must come from the primary, without its email. */
  fill(fills: ReadonlyArray<{ readonly lease: string; readonly user: User }>): Promise<void>;
  /** After a committed change to these users' rows. Throws Unavailable when the cache could not be cleared. */
  invalidate(ids: readonly bigint[]): Promise<void>;
  /**
   * A writer's fill lease, for a writer that reads the user's row in its own
   * transaction after changing it (PostTweet's author): taken, and waited
   * for, before that read is sent. Undefined when Redis did not answer
   * (settle then only clears).
   */
  writerLease(id: bigint): Promise<string | undefined>;
  /**
   * In place of invalidate, after the writer's change committed: `user` (its
   * row as its transaction left it, from the primary, without the email) goes
   * in while the writer's lease is still there; the entry is cleared
   * otherwise (a reader took a lease since, or another change's invalidation
   * came between: either may hold a newer row). Throws Unavailable when Redis
   * could not be written, as invalidate does.
   */
  settle(lease: string | undefined, user: User): Promise<void>;
}

export interface UserCacheOptions {
  readonly redis: Redis;
  readonly ttlMs: number;
  readonly leaseMs: number;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Key prefix; default "chirp:user:". */
  readonly prefix?: string;
  /** Invalidation attempts before giving up (default 3), and the pause before the second (doubling). */
  readonly attempts?: number;
  readonly retryMs?: number;
  /**
   * Profiles kept decoded in this process, reused while Redis answers the
   * same bytes (decoded-memo.ts); default DEFAULT_DECODED_MEMO_SIZE, 0: none.
   */
  readonly decodedMemoSize?: number;
}

function decodeUser(value: Buffer): User | undefined {
  try {
    return decodeMessage(UserSchema, value);
  } catch {
    return undefined;
  }
}

interface Scripts {
  chirpUserFill(entry: string, lease: string, token: string, payload: Buffer, ttlMs: number): Promise<number>;
  chirpUserSettle(entry: string, lease: string, token: string, payload: Buffer, ttlMs: number): Promise<number>;
}

type Replies = Array<[Error | null, unknown]> | null;

export function createUserCache(opts: UserCacheOptions): UserCache {
  const { redis, ttlMs, leaseMs, log } = opts;
  const prefix = opts.prefix ?? "chirp:user:";
  const attempts = opts.attempts ?? 3;
  const retryMs = opts.retryMs ?? 25;
  // A hash tag keeps an entry and its lease in one Redis Cluster slot.
  const entryKey = (id: bigint): string => `${prefix}{${id}}`;
  const leaseKey = (id: bigint): string => `${prefix}{${id}}:lease`;
  defineScript(redis, "chirpUserFill", { numberOfKeys: 2, lua: LEASED_FILL_LUA });
  defineScript(redis, "chirpUserSettle", { numberOfKeys: 2, lua: WRITER_SETTLE_LUA });
  const m = opts.metrics === undefined ? undefined : userCacheMetrics(opts.metrics);
  // Authors shown again and again are decoded once per profile change.
  const decoded = new DecodedMemo<User>(opts.decodedMemoSize);
  const pipeline = (): Scripts & { exec(): Promise<Replies> } => redis.pipeline() as unknown as Scripts & { exec(): Promise<Replies> };

  return {
    async read(ids) {
      return readDecoded<UserCacheRead>({
        redis,
        ids: [...new Set(ids)],
        keysOf: (id) => ({ entry: entryKey(id), lease: leaseKey(id) }),
        leaseMs,
        decode: (value, id) => {
          const user = decoded.decode(id, value, decodeUser);
          return user === undefined ? undefined : { kind: "user", user };
        },
        resultOf: () => "hit",
        reads: m?.reads,
        onUnavailable: (err) => log.debug({ err: err.message }, "user cache read failed; reading the database"),
      });
    },

    peek(ids) {
      return peekDecoded({
        redis,
        ids,
        keyOf: entryKey,
        decode: (value, id) => decoded.decode(id, value, decodeUser),
        reads: m?.reads,
        onUnavailable: (err) => log.debug({ err: err.message }, "user cache peek failed; asking the user service"),
      });
    },

    async fill(fills) {
      if (fills.length === 0) return;
      try {
        const p = pipeline();
        for (const { lease, user } of fills) {
          void p.chirpUserFill(entryKey(user.id), leaseKey(user.id), lease, encodeMessage(UserSchema, user), ttlMs);
        }
        const replies = await p.exec();
        for (const [err, stored] of replies ?? []) m?.fills.inc({ result: err !== null ? "error" : stored === 1 ? "stored" : "refused" });
      } catch (err) {
        m?.fills.inc({ result: "error" }, fills.length);
        log.debug({ err: (err as Error).message }, "user cache fill failed");
      }
    },

    async invalidate(ids) {
      const unique = [...new Set(ids)];
      if (unique.length === 0) return;
      await writeAfterCommit({ attempts, retryMs }, () => redis.del(...unique.flatMap((id) => [entryKey(id), leaseKey(id)])), m?.invalidations, (err) =>
        log.warn({ err: (err as Error | undefined)?.message }, "user cache not cleared after a committed change"),
      );
    },

    async writerLease(id) {
      const token = randomUUID();
      try {
        await redis.set(leaseKey(id), token, "PX", leaseMs);
        return token;
      } catch (err) {
        log.debug({ err: (err as Error).message }, "user cache writer lease not taken; the write will clear the entry");
        return undefined;
      }
    },

    async settle(lease, user) {
      const payload = encodeMessage(UserSchema, user);
      let stored = 0;
      await writeAfterCommit(
        { attempts, retryMs },
        async () => (stored = await (redis as unknown as Scripts).chirpUserSettle(entryKey(user.id), leaseKey(user.id), lease ?? "", payload, ttlMs)),
        m?.invalidations,
        (err) => log.warn({ err: (err as Error | undefined)?.message }, "user cache not settled after a committed change"),
      );
      m?.fills.inc({ result: stored === 1 ? "writer_stored" : "writer_refused" });
    },
  };
}

export interface UserCacheConfig {
  /** CHIRP_USER_CACHE_TTL_MS: how long a profile stays cached; it bounds an invalidation lost to a crash. 0: no cache. */
  readonly ttlMs: number;
  /** CHIRP_USER_CACHE_LEASE_MS: how long a reader's fill lease lasts. */
  readonly leaseMs: number;
}

export function loadUserCacheConfig(env: Env): UserCacheConfig {
  const read = new EnvReader(env);
  const config = {
    ttlMs: read.int("CHIRP_USER_CACHE_TTL_MS", 600_000, 0, 86_400_000),
    leaseMs: read.int("CHIRP_USER_CACHE_LEASE_MS", 5_000, 100, 600_000),
  };
  read.done();
  return config;
}

// One cache per process (the shared context makes it), so one set of counters per registry.
function userCacheMetrics(metrics: Metrics) {
  return leasedCacheCounters(metrics, "chirp_user_cache", {
    reads: "Profile cache lookups by result (hit, miss, error; peek_hit and peek_miss: another service's lookup without a fill lease, its misses then asked of the user service).",
    fills: "Profile cache fills by result: a reader's after a miss (stored, refused: lease gone, error), a writer's after its change (writer_stored; writer_refused: the entry was cleared instead).",
    invalidations: "Profile cache clears after a committed change by result (ok, failed: the call answered Unavailable).",
  });
}
