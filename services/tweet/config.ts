import { EnvReader, type Env } from "../../lib/config.js";

/** The tweet service's own settings (CHIRP_TWEET_*), read once at start. */
export interface TweetConfig {
  /** CHIRP_TWEET_CACHE_TTL_MS: how long Redis keeps a cached tweet or a deleted tweet's tombstone. */
  readonly cacheTtlMs: number;
  /**
   * CHIRP_TWEET_CACHE_FILL_LEASE_MS: how long a reader that missed the cache
   * may take between its lease and its fill; a slower fill is dropped.
   */
  readonly cacheFillLeaseMs: number;
  /** CHIRP_TWEET_LOOKUP_CACHE_SIZE: tweet id -> author entries kept in this process (0: none). */
  readonly lookupCacheSize: number;
  /** CHIRP_TWEET_LOOKUP_TTL_MS: how long Redis keeps a tweet id -> author entry (it never changes). */
  readonly lookupTtlMs: number;
  /** CHIRP_TWEET_LIKES_INDEX: whether this process runs the consumer that keeps each liker's list of liked tweets. */
  readonly likesIndex: boolean;
  /** CHIRP_TWEET_LIKED_CACHE_TTL_MS: how long a viewer's like states stay in Redis after their last read of the database (0: none). */
  readonly likedCacheTtlMs: number;
}

export const TWEET_DEFAULTS: TweetConfig = {
  cacheTtlMs: 24 * 3_600_000,
  cacheFillLeaseMs: 5000,
  lookupCacheSize: 100_000,
  lookupTtlMs: 7 * 24 * 3_600_000,
  likesIndex: true,
  likedCacheTtlMs: 3_600_000,
};

export function loadTweetConfig(env: Env): TweetConfig {
  const read = new EnvReader(env);
  const config: TweetConfig = {
    cacheTtlMs: read.int("CHIRP_TWEET_CACHE_TTL_MS", TWEET_DEFAULTS.cacheTtlMs, 1000, 30 * 24 * 3_600_000),
    cacheFillLeaseMs: read.int("CHIRP_TWEET_CACHE_FILL_LEASE_MS", TWEET_DEFAULTS.cacheFillLeaseMs, 100, 600_000),
    lookupCacheSize: read.int("CHIRP_TWEET_LOOKUP_CACHE_SIZE", TWEET_DEFAULTS.lookupCacheSize, 0, 10_000_000),
    lookupTtlMs: read.int("CHIRP_TWEET_LOOKUP_TTL_MS", TWEET_DEFAULTS.lookupTtlMs, 1000, 365 * 24 * 3_600_000),
    likesIndex: read.oneOf("CHIRP_TWEET_LIKES_INDEX", ["true", "false"], "true") === "true",
    likedCacheTtlMs: read.int("CHIRP_TWEET_LIKED_CACHE_TTL_MS", TWEET_DEFAULTS.likedCacheTtlMs, 0, 30 * 24 * 3_600_000),
  };
  read.done();
  return config;
}
