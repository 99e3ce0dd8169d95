// TweetWrites' choice of path for a new tweet, over an in-memory stand-in of
// the TweetStore interface that records what was called: one transaction with
// the lookup row when the id's lookup row lives on the author's shard, the
// lookup row first otherwise, and the fallback when a reshard put the two
// apart between the mint and the transaction. The SQL itself runs against
// MariaDB in test/e2e/tweets.test.ts.
import { describe, expect, it } from "vitest";
import { createIdGenerator } from "../../lib/ids.js";
import type { UserCache } from "../../lib/user-cache.js";
import type { AuthorLookup } from "./lookup.js";
import type { NewTweet, TweetRow, TweetStore } from "./store.js";
import { createTweetWrites, type PendingTweet } from "./writes.js";

const AUTHOR = 7n;

function setup(opts: { beside: (id: bigint, authorId: bigint) => boolean; apart?: boolean; authorGone?: boolean }) {
  const calls: string[] = [];
  const row = (t: NewTweet): TweetRow => ({ ...t, likeCount: 0, replyCount: 0, quoteCount: 0, repostCount: 0, version: 1n, deleted: false });
  const store: Partial<TweetStore> = {
    besideAuthor: opts.beside,
    async insertLookup(id) {
      calls.push(`insertLookup ${id}`);
    },
    async createTweet(t) {
      calls.push(`createTweet ${t.id} mentions ${t.mentions.join(",")}`);
      return row(t);
    },
    async createTweetWithLookup(t) {
      calls.push(`createTweetWithLookup ${t.id} mentions ${t.mentions.join(",")}`);
      if (opts.apart === true) return "apart";
      const author = { id: t.authorId, handle: "ann", displayName: "Ann", bio: "", createTime: new Date(0), followerCount: 2, followingCount: 3, tweetCount: 4 };
      return { row: row(t), author: opts.authorGone === true ? undefined : author };
    },
  };
  const lookup: Partial<AuthorLookup> = {
    async remember(id) {
      calls.push(`remember ${id}`);
    },
  };
  const userCache: Partial<UserCache> = {
    async invalidate(ids) {
      calls.push(`invalidate ${ids.join(",")}`);
    },
    async writerLease(id) {
      calls.push(`writerLease ${id}`);
      return "token";
    },
    async settle(lease, user) {
      calls.push(`settle ${user.id} ${lease} tweets ${user.tweetCount}`);
    },
  };
  const ids = createIdGenerator(3, () => 1_800_000_000_000);
  const writes = createTweetWrites({ store: store as TweetStore, lookup: lookup as AuthorLookup, ids, userCache: userCache as UserCache });
  const tweet = (id: bigint, mentions: PendingTweet["mentions"]): PendingTweet => ({
    id,
    authorId: AUTHOR,
    text: "hi",
    replyToTweetId: 0n,
    quoteTweetId: 0n,
    repostOfTweetId: 0n,
    mediaIds: [],
    latitude: null,
    longitude: null,
    hashtags: [],
    mentions,
    urls: [],
    createTimeMicros: 1n,
  });
  return { calls, writes, tweet };
}

describe("TweetWrites", () => {
  it("mints the next id whose lookup row lives on the author's shard, in increasing order", () => {
    const { writes } = setup({ beside: (id, authorId) => id % 4n === authorId % 4n });
    const minted = [writes.mint(AUTHOR), writes.mint(AUTHOR), writes.mint(AUTHOR)];
    for (const id of minted) expect(id % 4n).toBe(AUTHOR % 4n);
    expect(minted[1]! > minted[0]! && minted[2]! > minted[1]!).toBe(true);
  });

  it("gives up looking after a bounded number of ids", () => {
    let asked = 0;
    const { writes } = setup({ beside: () => (asked++, false) });
    expect(typeof writes.mint(AUTHOR)).toBe("bigint");
    // 256 ids minted: every one but the last asked about.
    expect(asked).toBe(255);
  });

  it("writes the lookup row in the tweet's own transaction when it lives on the author's shard, mentions resolved and the writer's lease taken first; the author read there is answered and settled", async () => {
    const { calls, writes, tweet } = setup({ beside: () => true });
    const written = await writes.create(tweet(100n, Promise.resolve([5n, 6n])), undefined);
    expect(written?.row.id).toBe(100n);
    expect(written?.author?.tweetCount).toBe(4);
    expect(calls).toEqual([`writerLease ${AUTHOR}`, "remember 100", "createTweetWithLookup 100 mentions 5,6", `settle ${AUTHOR} token tweets 4`]);
  });

  it("clears the author's cached profile when the post's transaction found no author row", async () => {
    const { calls, writes, tweet } = setup({ beside: () => true, authorGone: true });
    const written = await writes.create(tweet(104n, []), undefined);
    expect(written?.author).toBeUndefined();
    expect(calls).toEqual([`writerLease ${AUTHOR}`, "remember 104", "createTweetWithLookup 104 mentions ", `invalidate ${AUTHOR}`]);
  });

  it("writes the lookup row first when it lives elsewhere, and for a retried id (again)", async () => {
    const apart = setup({ beside: () => false });
    await apart.writes.create(apart.tweet(101n, [5n]), undefined);
    expect(apart.calls).toEqual(["insertLookup 101", "remember 101", "createTweet 101 mentions 5", `invalidate ${AUTHOR}`]);
    const again = setup({ beside: () => true });
    await again.writes.create(again.tweet(102n, []), undefined, { again: true });
    expect(again.calls).toEqual(["insertLookup 102", "remember 102", "createTweet 102 mentions ", `invalidate ${AUTHOR}`]);
  });

  it("falls back to the lookup row first when a reshard put them apart after the mint: nothing cleared for the attempt that wrote nothing", async () => {
    const { calls, writes, tweet } = setup({ beside: () => true, apart: true });
    const written = await writes.create(tweet(103n, [8n]), undefined);
    expect(written?.row.id).toBe(103n);
    expect(written?.author).toBeUndefined();
    expect(calls).toEqual([`writerLease ${AUTHOR}`, "remember 103", "createTweetWithLookup 103 mentions 8", "insertLookup 103", "remember 103", "createTweet 103 mentions 8", `invalidate ${AUTHOR}`]);
  });
});
