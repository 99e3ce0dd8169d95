import { EnvReader, type Env } from "../../lib/config.js";

/** The tweet service's own settings (CHIRP_TWEET_*), read once at start; its caches' are lib/tweet-cache.ts's (every service process reads them). */
export interface TweetConfig {
  /** CHIRP_TWEET_LOOKUP_CACHE_SIZE: tweet id -> author entries kept in this process (0: none). */
  readonly lookupCacheSize: number;
  /** CHIRP_TWEET_LOOKUP_TTL_MS: how long Redis keeps a tweet id -> author entry (it never changes). */
  readonly lookupTtlMs: number;
  /** CHIRP_TWEET_LIKES_INDEX: whether this process runs the consumer that keeps each liker's list of liked tweets. */
  readonly likesIndex: boolean;
}

export const TWEET_DEFAULTS: TweetConfig = {
  lookupCacheSize: 100_000,
  lookupTtlMs: 7 * 24 * 3_600_000,
  likesIndex: true,
};

export function loadTweetConfig(env: Env): TweetConfig {
  const read = new EnvReader(env);
  const config: TweetConfig = {
    lookupCacheSize: read.int("CHIRP_TWEET_LOOKUP_CACHE_SIZE", TWEET_DEFAULTS.lookupCacheSize, 0, 10_000_000),
    lookupTtlMs: read.int("CHIRP_TWEET_LOOKUP_TTL_MS", TWEET_DEFAULTS.lookupTtlMs, 1000, 365 * 24 * 3_600_000),
    likesIndex: read.oneOf("CHIRP_TWEET_LIKES_INDEX", ["true", "false"], "true") === "true",
  };
  read.done();
  return config;
}
