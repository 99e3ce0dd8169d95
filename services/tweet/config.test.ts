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
        CHIRP_TWEET_LOOKUP_CACHE_SIZE: "0",
        CHIRP_TWEET_LOOKUP_TTL_MS: "5000",
        CHIRP_TWEET_LIKES_INDEX: "false",
      }),
    ).toEqual({ lookupCacheSize: 0, lookupTtlMs: 5000, likesIndex: false });
  });

  it("lists every problem at once", () => {
    try {
      loadTweetConfig({ CHIRP_TWEET_LOOKUP_TTL_MS: "soon", CHIRP_TWEET_LOOKUP_CACHE_SIZE: "-1", CHIRP_TWEET_LIKES_INDEX: "yes" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as ConfigError).problems).toHaveLength(3);
    }
  });
});
