import { EnvReader, type Env } from "../../lib/config.js";

/** The search service's own settings (CHIRP_SEARCH_*), read once at start. */
export interface SearchConfig {
  /** CHIRP_SEARCH_SHARD_TIMEOUT_MS: how long one index shard may take to answer a query before the page goes out without it (partial). */
  readonly shardTimeoutMs: number;
  /** CHIRP_SEARCH_HYDRATE_TIMEOUT_MS: how long loading the matched tweets of one tweet shard may take before the page goes out without them (partial). */
  readonly hydrateTimeoutMs: number;
  /**
   * CHIRP_SEARCH_INDEX_CONCURRENCY: tweet events the index consumer handles at
   * once in this process; those waiting for the same shard share a
   * transaction (services/search/index-writer.ts).
   */
  readonly indexConcurrency: number;
  /**
   * CHIRP_SEARCH_INDEX_LINGER_MS: how long the index consumer's first tweet
   * for an idle shard waits for others to share its transaction: tweets turn
   * up in search this much later, and at a moderate rate several share a
   * commit instead of each paying for one. 0: at once.
   */
  readonly indexLingerMs: number;
  /** CHIRP_SEARCH_TRENDS_WINDOW_MS: the sliding window GetTrends counts over. */
  readonly trendsWindowMs: number;
  /** CHIRP_SEARCH_TRENDS_BUCKET_MS: the trends window's step; the window must be a whole number of them, at most 1440. */
  readonly trendsBucketMs: number;
  /** CHIRP_SEARCH_TRENDS_PREFIX: the Redis key prefix of the trend counts. */
  readonly trendsPrefix: string;
}

export function loadSearchConfig(env: Env): SearchConfig {
  const read = new EnvReader(env);
  const config: SearchConfig = {
    shardTimeoutMs: read.int("CHIRP_SEARCH_SHARD_TIMEOUT_MS", 1000, 10, 60_000),
    hydrateTimeoutMs: read.int("CHIRP_SEARCH_HYDRATE_TIMEOUT_MS", 2000, 10, 60_000),
    indexConcurrency: read.int("CHIRP_SEARCH_INDEX_CONCURRENCY", 64, 1, 512),
    indexLingerMs: read.int("CHIRP_SEARCH_INDEX_LINGER_MS", 50, 0, 1000),
    trendsWindowMs: read.int("CHIRP_SEARCH_TRENDS_WINDOW_MS", 3_600_000, 1000, 7 * 86_400_000),
    trendsBucketMs: read.int("CHIRP_SEARCH_TRENDS_BUCKET_MS", 60_000, 100, 86_400_000),
    trendsPrefix: read.string("CHIRP_SEARCH_TRENDS_PREFIX", "chirp:trends"),
  };
  const problems: string[] = [];
  if (config.trendsWindowMs % config.trendsBucketMs !== 0) problems.push("CHIRP_SEARCH_TRENDS_WINDOW_MS must be a multiple of CHIRP_SEARCH_TRENDS_BUCKET_MS");
  else if (config.trendsWindowMs / config.trendsBucketMs > 1440) problems.push("CHIRP_SEARCH_TRENDS_WINDOW_MS must be at most 1440 buckets");
  if (!/^[A-Za-z0-9:_-]{1,64}$/.test(config.trendsPrefix)) problems.push("CHIRP_SEARCH_TRENDS_PREFIX: letters, digits, ':', '_' and '-' only (at most 64)");
  read.done(problems);
  return config;
}
