import { describe, expect, it } from "vitest";
import { ConfigError } from "../../lib/config.js";
import { TWEET_DEFAULTS, loadTweetConfig } from "./config.js";

describe("loadTweetConfig", () => {
  it("has defaults", () => {
    expect(loadTweetConfig({})).toEqual(TWEET_DEFAULTS);
  });

  it("reads every setting", () => {
    expect(
      loadTweetConfig({
        CHIRP_TWEET_CACHE_TTL_MS: "60000",
        CHIRP_TWEET_CACHE_FILL_LEASE_MS: "1000",
        CHIRP_TWEET_LOOKUP_CACHE_SIZE: "0",
        CHIRP_TWEET_LOOKUP_TTL_MS: "5000",
        CHIRP_TWEET_LIKES_INDEX: "false",
        CHIRP_TWEET_LIKED_CACHE_TTL_MS: "0",
      }),
    ).toEqual({ cacheTtlMs: 60_000, cacheFillLeaseMs: 1000, lookupCacheSize: 0, lookupTtlMs: 5000, likesIndex: false, likedCacheTtlMs: 0 });
  });

  it("lists every problem at once", () => {
    try {
      loadTweetConfig({ CHIRP_TWEET_CACHE_TTL_MS: "soon", CHIRP_TWEET_LOOKUP_CACHE_SIZE: "-1", CHIRP_TWEET_LIKES_INDEX: "yes" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(3);
    }
  });
});
