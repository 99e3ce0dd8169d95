import { describe, expect, it } from "vitest";
import { ConfigError } from "../../lib/config.js";
import { loadSearchConfig } from "./config.js";

describe("loadSearchConfig", () => {
  it("has defaults: 1 s per shard, a one-hour window of one-minute buckets", () => {
    expect(loadSearchConfig({})).toEqual({
      shardTimeoutMs: 1000,
      hydrateTimeoutMs: 2000,
      indexConcurrency: 64,
      indexLingerMs: 50,
      trendsWindowMs: 3_600_000,
      trendsBucketMs: 60_000,
      trendsPrefix: "chirp:trends",
    });
  });

  it("takes a short window for tests", () => {
    expect(loadSearchConfig({ CHIRP_SEARCH_TRENDS_WINDOW_MS: "8000", CHIRP_SEARCH_TRENDS_BUCKET_MS: "500" })).toMatchObject({
      trendsWindowMs: 8000,
      trendsBucketMs: 500,
    });
  });

  it("lists every problem at once", () => {
    let err: unknown;
    try {
      loadSearchConfig({ CHIRP_SEARCH_TRENDS_WINDOW_MS: "10000", CHIRP_SEARCH_TRENDS_BUCKET_MS: "3000", CHIRP_SEARCH_TRENDS_PREFIX: "bad prefix!" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toHaveLength(2);
    expect(() => loadSearchConfig({ CHIRP_SEARCH_TRENDS_WINDOW_MS: "86400000", CHIRP_SEARCH_TRENDS_BUCKET_MS: "1000" })).toThrow(ConfigError);
    expect(() => loadSearchConfig({ CHIRP_SEARCH_SHARD_TIMEOUT_MS: "0" })).toThrow(ConfigError);
    try {
      loadSearchConfig({ CHIRP_SEARCH_SHARD_TIMEOUT_MS: "x", CHIRP_SEARCH_TRENDS_PREFIX: "bad prefix!" });
    } catch (e) {
      expect((e as ConfigError).problems).toHaveLength(2);
    }
  });
});
