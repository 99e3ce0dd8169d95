// The cache-only loader's rules (cached-tweets.ts), over in-memory caches:
// what it answers, and everything it must refuse (NotCached) so the caller
// asks the tweet service instead. The whole path against the tweet service's
// own answers is test/e2e/timeline-hydration.test.ts.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { TweetSchema } from "../gen/chirp/tweet/v1/tweet_pb.js";
import { cachedTweetLoader, NotCached } from "./cached-tweets.js";
import type { LikeAt, LikedCache } from "./liked-cache.js";
import type { CachedTweet, TweetCache } from "./tweet-cache.js";

const VIEWER = 7n;

const tweet = (id: bigint, version: bigint, counts: { likeCount?: number; repostCount?: number } = {}): CachedTweet => ({
  kind: "tweet",
  version,
  tweet: create(TweetSchema, { id, authorId: 1n, text: `t${id}`, ...counts }),
});

function caches(entries: ReadonlyArray<[bigint, CachedTweet]>, likes: readonly LikeAt[]) {
  const calls = { likesRead: 0 };
  const tweets: Pick<TweetCache, "peek"> = {
    async peek(ids) {
      const all = new Map(entries);
      return new Map(ids.flatMap((id) => (all.has(id) ? [[id, all.get(id)!] as const] : [])));
    },
  };
  const liked: Pick<LikedCache, "read"> = {
    async read(viewer, ids) {
      calls.likesRead++;
      return new Map(viewer === VIEWER ? likes.filter((l) => ids.includes(l.tweetId)).map((l) => [l.tweetId, l]) : []);
    },
  };
  return { tweets, liked, calls };
}

describe("cachedTweetLoader", () => {
  it("answers tweets with the viewer's states at their versions, leaves tombstones out, and needs no state for a tweet nobody likes or has reposted", async () => {
    const { tweets, liked } = caches(
      [
        [1n, tweet(1n, 3n, { likeCount: 2 })],
        [2n, tweet(2n, 5n, { repostCount: 1 })],
        [3n, tweet(3n, 1n)],
        [4n, { kind: "deleted", version: 9n }],
      ],
      [
        { tweetId: 1n, version: 3n, liked: true, reposted: false },
        { tweetId: 2n, version: 5n, liked: false, reposted: true },
      ],
    );
    const loaded = await cachedTweetLoader({ tweets, liked })([1n, 2n, 3n, 4n], VIEWER);
    expect([...loaded].map(([id, t]) => [id, t.core.id, t.liked, t.reposted])).toEqual([
      [1n, 1n, true, false],
      [2n, 2n, false, true],
      [3n, 3n, false, false],
    ]);
  });

  it("refuses a tweet that is not cached", async () => {
    const { tweets, liked } = caches([[1n, tweet(1n, 1n)]], []);
    await expect(cachedTweetLoader({ tweets, liked })([1n, 2n], VIEWER)).rejects.toBeInstanceOf(NotCached);
  });

  it("refuses a tweet with likes or reposts whose viewer state is unknown, or known only at another version", async () => {
    for (const likes of [[], [{ tweetId: 1n, version: 2n, liked: true, reposted: false }]]) {
      const { tweets, liked } = caches([[1n, tweet(1n, 3n, { likeCount: 1 })]], likes);
      await expect(cachedTweetLoader({ tweets, liked })([1n], VIEWER)).rejects.toBeInstanceOf(NotCached);
    }
    // Without a like-state cache at all, the same.
    const { tweets } = caches([[1n, tweet(1n, 3n, { repostCount: 1 })]], []);
    await expect(cachedTweetLoader({ tweets, liked: undefined })([1n], VIEWER)).rejects.toBeInstanceOf(NotCached);
  });

  it("without a viewer reads no like states: every tweet is shown as neither liked nor reposted", async () => {
    const { tweets, liked, calls } = caches([[1n, tweet(1n, 3n, { likeCount: 4 })]], []);
    const loaded = await cachedTweetLoader({ tweets, liked })([1n], undefined);
    expect(loaded.get(1n)).toMatchObject({ liked: false, reposted: false });
    expect(calls.likesRead).toBe(0);
  });
});
