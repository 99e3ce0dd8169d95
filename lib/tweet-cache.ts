// The Redis cache of tweets for hydration (GetTweet, BatchGetTweets, the
// liked list; the timeline service's pages, which peek). An entry is the
// viewer-independent tweet (protobuf bytes) or a deleted tweet's tombstone,
// tagged with the tweets row's version. Written and filled by the tweet
// service only; peeked by the timeline service, which asks BatchGetTweets
// for a page whose tweets it does not all find (so it lives in the shared
// library, as the profile cache does). The protocol, and why a like, an unlike or a delete is seen by every read that
// starts after the call returned, is in
// docs/decisions/0012-versioned-cache-with-fill-leases.md. In short:
//
//   peek     one MGET, no leases: another service's read; it asks the tweet
//            service for whatever was missing (that read takes the leases).
//   read     one MGET of every entry; for the misses only, a fill lease each
//            (a random token in a second key) set BEFORE the reader goes to
//            the database. All hits: one command, one round trip.
//   fill     the reader's row goes in only if its lease is still there and
//            the entry (if any) is older; the lease is used up.
//   publish  after a change commits, its handler writes the new version
//            (only over an older one) and deletes any lease. The call does
//            not return OK unless this succeeded.
//
// So once a change's publish has run, no fill of an older row can land: the
// leases taken before it are gone, and a reader that takes one after it reads
// the primary after the commit. Every write is conditional on the version, so
// the entry never goes back either.
import type { Redis } from "ioredis";
import { Counter } from "prom-client";
import { TweetSchema, type Tweet } from "../gen/chirp/tweet/v1/tweet_pb.js";
import { EnvReader, type Env } from "./config.js";
import { DecodedMemo } from "./decoded-memo.js";
import { peekDecoded, readDecoded, writeAfterCommit, type LeasedMiss } from "./leased-cache.js";
import type { Logger } from "./logger.js";
import type { Metrics } from "./metrics.js";
import { defineScript } from "./redis-scripts.js";
import { encodeMessage, decodeMessage } from "./proto-codec.js";

/** What a tweet's cache entry says. */
export type CachedTweet =
  | { readonly kind: "tweet"; readonly version: bigint; readonly tweet: Tweet }
  | { readonly kind: "deleted"; readonly version: bigint };

/** A read: the entry, or a miss with the lease to fill it (undefined when the cache did not answer). */
export type CacheRead = CachedTweet | LeasedMiss;

export interface TweetCache {
  read(ids: readonly bigint[]): Promise<Map<bigint, CacheRead>>;
  /**
   * The cached entries among `ids` (tweets and tombstones), without taking
   * fill leases: for the timeline service, which asks BatchGetTweets for a
   * page it does not find whole here. One MGET; empty when Redis does not answer.
   */
  peek(ids: readonly bigint[]): Promise<Map<bigint, CachedTweet>>;
  /** Best effort: a refused or failed fill changes nothing. */
  fill(id: bigint, lease: string, entry: CachedTweet): Promise<void>;
  /** After a committed change: the entry is at least `entry.version` when this resolves. Throws Unavailable otherwise. */
  publish(id: bigint, entry: CachedTweet): Promise<void>;
}

export interface TweetCacheOptions {
  readonly redis: Redis;
  readonly ttlMs: number;
  readonly leaseMs: number;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Key prefix; default "chirp:tweet:". */
  readonly prefix?: string;
  /** Publish attempts before giving up (default 3), and the pause before the second (doubling). */
  readonly publishAttempts?: number;
  readonly publishRetryMs?: number;
  /**
   * Entries kept decoded in this process, reused while Redis answers the same
   * bytes (lib/decoded-memo.ts); default DEFAULT_DECODED_MEMO_SIZE, 0: none.
   */
  readonly decodedMemoSize?: number;
}

// Values are "<version>:T<protobuf bytes>" or "<version>:D". Lua strings are
// byte strings, so the payload passes through untouched; versions are far
// below 2^53, where Lua numbers are exact.
const OLDER_OR_ABSENT = `
local function newer(key, version)
  local cur = redis.call('GET', key)
  if not cur then return true end
  local v = tonumber(string.match(cur, '^(%d+):'))
  return (not v) or v < tonumber(version)
end`;

/** KEYS: entry, lease. ARGV: token, version, tagged payload, ttl ms. 1 if stored. */
const FILL_LUA = `${OLDER_OR_ABSENT}
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
if not newer(KEYS[1], ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2] .. ':' .. ARGV[3], 'PX', ARGV[4])
return 1`;

/** KEYS: entry, lease. ARGV: version, tagged payload, ttl ms. 1 if stored, 0 if the entry was already as new. */
const PUBLISH_LUA = `${OLDER_OR_ABSENT}
redis.call('DEL', KEYS[2])
if not newer(KEYS[1], ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1`;

interface Scripts {
  chirpTweetFill(entry: string, lease: string, token: string, version: string, payload: Buffer, ttlMs: number): Promise<number>;
  chirpTweetPublish(entry: string, lease: string, version: string, payload: Buffer, ttlMs: number): Promise<number>;
}

const TAG_TWEET = 0x54; // "T"
const TAG_DELETED = 0x44; // "D"
const COLON = 0x3a;

export function createTweetCache(opts: TweetCacheOptions): TweetCache {
  const { redis, ttlMs, leaseMs, log } = opts;
  const prefix = opts.prefix ?? "chirp:tweet:";
  const attempts = opts.publishAttempts ?? 3;
  const retryMs = opts.publishRetryMs ?? 25;
  // A hash tag keeps an entry and its lease in one Redis Cluster slot.
  const entryKey = (id: bigint): string => `${prefix}{${id}}`;
  const leaseKey = (id: bigint): string => `${prefix}{${id}}:lease`;
  defineScript(redis, "chirpTweetFill", { numberOfKeys: 2, lua: FILL_LUA });
  defineScript(redis, "chirpTweetPublish", { numberOfKeys: 2, lua: PUBLISH_LUA });
  const scripts = redis as unknown as Scripts;
  const m = opts.metrics === undefined ? undefined : cacheMetrics(opts.metrics);
  // Tweets read again and again (a home page's) are decoded once per version.
  const decoded = new DecodedMemo<CachedTweet>(opts.decodedMemoSize);

  return {
    async read(ids) {
      return readDecoded<CacheRead>({
        redis,
        ids: [...new Set(ids)],
        keysOf: (id) => ({ entry: entryKey(id), lease: leaseKey(id) }),
        leaseMs,
        decode: (value, id) => decoded.decode(id, value, decodeEntry),
        resultOf: (entry) => (entry.kind === "tweet" ? "hit" : "tombstone"),
        reads: m?.reads,
        onUnavailable: (err) => log.debug({ err: err.message }, "tweet cache read failed; reading the database"),
      });
    },

    peek(ids) {
      return peekDecoded({
        redis,
        ids,
        keyOf: entryKey,
        decode: (value, id) => decoded.decode(id, value, decodeEntry),
        reads: m?.reads,
        onUnavailable: (err) => log.debug({ err: err.message }, "tweet cache peek failed; asking the tweet service"),
      });
    },

    async fill(id, lease, entry) {
      try {
        const stored = await scripts.chirpTweetFill(entryKey(id), leaseKey(id), lease, String(entry.version), payloadOf(entry), ttlMs);
        m?.fills.inc({ result: stored === 1 ? "stored" : "refused" });
      } catch (err) {
        m?.fills.inc({ result: "error" });
        log.debug({ err: (err as Error).message }, "tweet cache fill failed");
      }
    },

    async publish(id, entry) {
      await writeAfterCommit(
        { attempts, retryMs },
        () => scripts.chirpTweetPublish(entryKey(id), leaseKey(id), String(entry.version), payloadOf(entry), ttlMs),
        m?.publishes,
        (err) => log.warn({ err: (err as Error | undefined)?.message, tweet_version: String(entry.version) }, "tweet cache not updated after a committed change"),
      );
    },
  };
}

function payloadOf(entry: CachedTweet): Buffer {
  if (entry.kind === "deleted") return Buffer.of(TAG_DELETED);
  return Buffer.concat([Buffer.of(TAG_TWEET), encodeMessage(TweetSchema, entry.tweet)]);
}

/** Undefined for a value this code did not write (it is then treated as a miss without a fill). */
export function decodeEntry(value: Buffer): CachedTweet | undefined {
  const colon = value.indexOf(COLON);
  if (colon <= 0 || colon + 1 >= value.length) return undefined;
  const digits = value.subarray(0, colon).toString("latin1");
  if (!/^[0-9]+$/.test(digits)) return undefined;
  const version = BigInt(digits);
  const tag = value[colon + 1];
  if (tag === TAG_DELETED) return { kind: "deleted", version };
  if (tag !== TAG_TWEET) return undefined;
  try {
    return { kind: "tweet", version, tweet: decodeMessage(TweetSchema, value.subarray(colon + 2)) };
  } catch {
    return undefined;
  }
}

function cacheMetrics(metrics: Metrics) {
  const registers = [metrics.registry];
  return {
    reads: new Counter({
      name: "chirp_tweet_cache_reads_total",
      help: "Tweet cache lookups by result (hit, tombstone, miss, error; peek_hit and peek_miss: the timeline service's lookups without a fill lease, a page with a miss then asked of the tweet service).",
      labelNames: ["result"] as const,
      registers,
    }),
    fills: new Counter({
      name: "chirp_tweet_cache_fills_total",
      help: "Cache fills after a miss by result (stored, refused: lease gone or entry newer, error).",
      labelNames: ["result"] as const,
      registers,
    }),
    publishes: new Counter({
      name: "chirp_tweet_cache_publishes_total",
      help: "Cache writes after a committed change by result (ok, failed: the call answered Unavailable).",
      labelNames: ["result"] as const,
      registers,
    }),
  };
}

/** The tweet caches' settings (this cache and the viewers' like states, liked-cache.ts): every service process reads them, as one builds both. */
export interface TweetCacheConfig {
  /** CHIRP_TWEET_CACHE_TTL_MS: how long Redis keeps a cached tweet or a deleted tweet's tombstone. */
  readonly ttlMs: number;
  /**
   * CHIRP_TWEET_CACHE_FILL_LEASE_MS: how long a reader that missed the cache
   * may take between its lease and its fill; a slower fill is dropped.
   */
  readonly leaseMs: number;
  /** CHIRP_TWEET_LIKED_CACHE_TTL_MS: how long a viewer's like states stay in Redis after their last read of the database (0: none). */
  readonly likedTtlMs: number;
}

export function loadTweetCacheConfig(env: Env): TweetCacheConfig {
  const read = new EnvReader(env);
  const config = {
    ttlMs: read.int("CHIRP_TWEET_CACHE_TTL_MS", 24 * 3_600_000, 1000, 30 * 24 * 3_600_000),
    leaseMs: read.int("CHIRP_TWEET_CACHE_FILL_LEASE_MS", 5000, 100, 600_000),
    likedTtlMs: read.int("CHIRP_TWEET_LIKED_CACHE_TTL_MS", 3_600_000, 0, 30 * 24 * 3_600_000),
  };
  read.done();
  return config;
}
