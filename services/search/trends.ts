// Trending hashtags: distinct tweets per hashtag over a sliding window, kept
// in Redis from tweet events, never by reading tweets.
//
// Keys (one Redis Cluster slot, through the `{...}` hash tag, so the scripts
// below may touch them together):
//   <p>:b:<bucket start ms>   sorted set: hashtag -> live tweets created in
//                             that bucket that use it; expires once the
//                             bucket has left the window
//   <p>:t:<tweet id>          what the tweet's TweetCreated counted
//                             ("c", bucket key, tags), or "d" once deleted;
//                             kept a window and two buckets
// A tweet's creation counts at most once (the marker is written with the
// counts, in one script), a deletion takes back exactly what was counted,
// and a deletion seen before the creation leaves "d", so the creation then
// counts nothing: any order, any number of deliveries.
//
// GetTrends sums the window's buckets (the bucket in progress and the ones
// before it) and sorts by count, then hashtag. The window therefore slides in
// bucket steps: it covers between windowMs - bucketMs and windowMs.
import type { Redis } from "ioredis";
import { defineScript } from "../../lib/redis-scripts.js";

export interface TrendsOptions {
  readonly redis: Redis;
  /** Key prefix; wrapped in a hash tag. */
  readonly prefix: string;
  readonly windowMs: number;
  readonly bucketMs: number;
  readonly now?: () => number;
}

export interface Trend {
  readonly hashtag: string;
  readonly tweetCount: number;
}

export interface Trends {
  /** Counts a created tweet's hashtags once. Returns false when it was counted (or deleted) before, or is older than the window. */
  created(tweetId: bigint, createTimeMs: number, hashtags: readonly string[]): Promise<boolean>;
  /** Takes back what the tweet's creation counted; remembers the deletion. */
  deleted(tweetId: bigint): Promise<void>;
  top(limit: number): Promise<Trend[]>;
}

/** How a hashtag is counted and shown: tags that differ only in case are one. */
export function trendKey(tag: string): string {
  return tag.replace(/^[#＃]/u, "").normalize("NFC").toLowerCase();
}

// KEYS: marker, bucket. ARGV: marker TTL ms, bucket expiry (unix ms), marker value, tags...
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 4, #ARGV do redis.call('ZINCRBY', KEYS[2], 1, ARGV[i]) end
if #ARGV >= 4 then redis.call('PEXPIREAT', KEYS[2], ARGV[2]) end
redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[1])
return 1`;

// KEYS: marker, bucket (from the marker as read). ARGV: marker TTL ms, the
// marker as read ("" when absent), tags... Returns -1 if the marker changed
// meanwhile (read again), else 1.
const DELETE = `
local v = redis.call('GET', KEYS[1])
if (v or '') ~= ARGV[2] then return -1 end
if v == 'd' then return 1 end
if v and redis.call('EXISTS', KEYS[2]) == 1 then
  for i = 3, #ARGV do
    local left = tonumber(redis.call('ZINCRBY', KEYS[2], -1, ARGV[i]))
    if left <= 0 then redis.call('ZREM', KEYS[2], ARGV[i]) end
  end
end
redis.call('SET', KEYS[1], 'd', 'PX', ARGV[1])
return 1`;

// KEYS: the window's buckets, then a scratch key. ARGV: limit, how many more
// to return on a tie at the cut. Returns [tag, count, ...]: the top `limit`
// and every tag tied with the last of them (bounded), for sorting by name.
const TOP = `
local n = #KEYS - 1
local tmp = KEYS[#KEYS]
redis.call('ZUNIONSTORE', tmp, n, unpack(KEYS, 1, n))
local top = redis.call('ZREVRANGE', tmp, 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local out = {}
if #top > 0 then
  out = redis.call('ZRANGEBYSCORE', tmp, top[#top], '+inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]) + tonumber(ARGV[2]))
end
redis.call('DEL', tmp)
return out`;

/** The scripts as ioredis commands (defineScript); arguments as EVAL's after the key count. */
interface TrendScripts {
  chirpTrendCreate(...args: Array<string | number>): Promise<unknown>;
  chirpTrendDelete(...args: Array<string | number>): Promise<unknown>;
  /** No fixed key count: the first argument is the number of keys. */
  chirpTrendTop(...args: Array<string | number>): Promise<unknown>;
}

export function createTrends(opts: TrendsOptions): Trends {
  const { redis, windowMs, bucketMs } = opts;
  if (windowMs % bucketMs !== 0) throw new RangeError("the trends window must be a whole number of buckets");
  const now = opts.now ?? Date.now;
  const base = `{${opts.prefix}}`;
  const bucketKey = (startMs: number): string => `${base}:b:${startMs}`;
  const markerKey = (tweetId: bigint): string => `${base}:t:${tweetId}`;
  const markerTtlMs = windowMs + 2 * bucketMs;
  const buckets = windowMs / bucketMs;
  // EVALSHA, not EVAL: the scripts go to Redis once per connection, not with every call
  // (ioredis falls back to EVAL by itself after a SCRIPT FLUSH or a new server).
  defineScript(redis, "chirpTrendCreate", { numberOfKeys: 2, lua: CREATE });
  defineScript(redis, "chirpTrendDelete", { numberOfKeys: 2, lua: DELETE });
  defineScript(redis, "chirpTrendTop", { lua: TOP });
  const scripts = redis as unknown as TrendScripts;

  return {
    created: async (tweetId, createTimeMs, hashtags) => {
      const t = now();
      const start = Math.floor(Math.min(createTimeMs, t) / bucketMs) * bucketMs;
      const oldest = Math.floor(t / bucketMs) * bucketMs - (buckets - 1) * bucketMs;
      // Out of the window already: nothing to count, and nothing for a deletion to take back.
      if (start < oldest) return false;
      const tags = [...new Set(hashtags.map(trendKey).filter((s) => s.length > 0))];
      // Nothing to count, so nothing a deletion could take back: no marker needed (most tweets).
      if (tags.length === 0) return false;
      const key = bucketKey(start);
      const marker = ["c", key, ...tags].join("\n");
      const counted = await scripts.chirpTrendCreate(markerKey(tweetId), key, markerTtlMs, start + windowMs + bucketMs, marker, ...tags);
      return Number(counted) === 1;
    },

    deleted: async (tweetId) => {
      const marker = markerKey(tweetId);
      for (let attempt = 0; attempt < 5; attempt++) {
        const seen = (await redis.get(marker)) ?? "";
        const [kind, bucket, ...tags] = seen.split("\n");
        const bucketArg = kind === "c" && bucket !== undefined ? bucket : `${base}:b:none`;
        const tagArgs = kind === "c" ? tags : [];
        const result = await scripts.chirpTrendDelete(marker, bucketArg, markerTtlMs, seen, ...tagArgs);
        if (Number(result) === 1) return;
      }
      throw new Error("trend marker kept changing");
    },

    top: async (limit) => {
      const current = Math.floor(now() / bucketMs) * bucketMs;
      const keys: string[] = [];
      for (let i = 0; i < buckets; i++) keys.push(bucketKey(current - i * bucketMs));
      const scratch = `${base}:scratch`;
      const flat = (await scripts.chirpTrendTop(keys.length + 1, ...keys, scratch, limit, 1000)) as string[];
      const trends: Trend[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const count = Number(flat[i + 1]);
        if (count > 0) trends.push({ hashtag: flat[i]!, tweetCount: count });
      }
      trends.sort((a, b) => b.tweetCount - a.tweetCount || (a.hashtag < b.hashtag ? -1 : a.hashtag > b.hashtag ? 1 : 0));
      return trends.slice(0, limit);
    },
  };
}
