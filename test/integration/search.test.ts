// The search index store, the shard fan-out and the trend counts against a
// tenant of the shared cluster (real mariadbd in two replica sets, real Redis), called
// directly: test/e2e/search.test.ts goes through the gateway and the events.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createIdGenerator } from "../../lib/ids.js";
import { topologyFromEnv } from "../../lib/shard/config.js";
import { createShardRouter, type ShardRouter } from "../../lib/shard/router.js";
import { analyzeTweet, authorTerm, phraseNeedle } from "../../services/search/analyze.js";
import { searchAllShards } from "../../services/search/fan-out.js";
import { parseQuery } from "../../services/search/query.js";
import { createIndexWriter } from "../../services/search/index-writer.js";
import { createSearchStore, type SearchStore } from "../../services/search/store.js";
import { createTrends } from "../../services/search/trends.js";
import { startSystem, type TestSystem } from "../support/system.js";

let system: TestSystem;
let router: ShardRouter;
let store: SearchStore;
let redis: Redis;
const ids = createIdGenerator(5);

beforeAll(async () => {
  system = await startSystem({ mesh: false, router: false });
  // Reads on the primaries: what is asserted is the index, not replication.
  router = await createShardRouter({ ...topologyFromEnv(system.env, system.infra.shardConfig), maxReplicaLagMs: 0 });
  store = createSearchStore(router);
  redis = new Redis(system.infra.redisUrl, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  redis?.disconnect();
  await router?.close();
  await system?.stop();
});

async function postingsOf(tweetId: bigint): Promise<number> {
  const [row] = await router.primary(store.shardOf(tweetId)).query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.search_postings WHERE tweet_id = ?", [tweetId.toString()]);
  return Number(row?.n);
}

async function index(text: string, authorId = 1n, hashtags: string[] = [], mentions: bigint[] = []): Promise<bigint> {
  const tweetId = ids.next();
  const doc = analyzeTweet({ text, authorId, hashtags, mentions });
  expect(await store.indexTweet({ tweetId, authorId, ...doc })).toBe("indexed");
  return tweetId;
}

/** Every match, newest first, through the fan-out, for a query string (handles given as ids). */
async function search(query: string, extraTerms: string[] = [], limit = 100): Promise<bigint[]> {
  const q = parseQuery(query);
  const result = await searchAllShards(
    { router, store, timeoutMs: 5000 },
    { terms: [...q.terms, ...extraTerms], needles: q.phrases.map(phraseNeedle), before: undefined, limit },
  );
  expect(result.unavailable).toEqual([]);
  return result.hits.map((h) => h.tweetId);
}

describe("the index store", () => {
  it("finds every word, any case and accent, short words and stopwords included, newest first across shards", async () => {
    const a = await index("The Crème brûlée at Café Zoë is a must");
    const b = await index("CREME BRULEE is the best, a must");
    const c = await index("nothing to see here");
    expect(await search("creme brulee")).toEqual([b, a]);
    expect(await search("CRÈME")).toEqual([b, a]);
    expect(await search("a the is")).toEqual([b, a]);
    expect(await search("zoe")).toEqual([a]);
    expect(await search("see here")).toEqual([c]);
  });

  it("matches phrases only adjacent and in order", async () => {
    const a = await index("new york pizza is great");
    const b = await index("york new pizza");
    const c = await index("a new pizza in york");
    expect(await search(`"new york" pizza`)).toEqual([a]);
    expect(await search(`"york new"`)).toEqual([b]);
    expect((await search("new york pizza")).filter((id) => [a, b, c].includes(id))).toEqual([c, b, a]);
  });

  it("keeps SQL and regex metacharacters as plain text", async () => {
    const pct = await index("a 100% sure thing");
    const under = await index("snake_case_name here");
    const other = await index("one hundred sure things");
    // `%` and `_` are not LIKE wildcards, `.*` no regex, quotes and backslashes no SQL.
    expect(await search("100%")).toEqual([pct]);
    expect(await search("snake_case_name")).toEqual([under]);
    expect(await search("sure .* thing")).toEqual([pct]);
    expect(await search(`sure' OR '1'='1`)).toEqual([]);
    expect(await search(`"sure \\ thing"`)).toEqual([pct]);
    expect(await search("+sure -thing (100)")).toEqual([pct]);
    // The near miss is in the index: the queries above left it out on their merits.
    expect(await search("hundred sure")).toEqual([other]);
  });

  it("finds hashtags, mentions and authors by their own terms", async () => {
    const a = await index("loving #Rust today @ann", 77n, ["Rust"], [501n]);
    const b = await index("rust on my bike", 78n);
    expect(await search("#rust")).toEqual([a]);
    expect(await search("rust")).toEqual([b, a]);
    expect(await search("today", ["@501"])).toEqual([a]);
    // Hits name their author (hydration goes to the author's shard).
    const page = await searchAllShards({ router, store, timeoutMs: 5000 }, { terms: ["#rust"], needles: [], before: undefined, limit: 5 });
    expect(page.hits).toEqual([{ tweetId: a, authorId: 77n }]);
    expect(await search("rust", [authorTerm(78n)])).toEqual([b]);
  });

  it("indexes a tweet once and forgets it on deletion, in either order, any number of times", async () => {
    const tweetId = ids.next();
    const doc = analyzeTweet({ text: "ephemeral words zyx", authorId: 9n, hashtags: [], mentions: [] });
    expect(await store.indexTweet({ tweetId, authorId: 9n, ...doc })).toBe("indexed");
    expect(await store.indexTweet({ tweetId, authorId: 9n, ...doc })).toBe("exists");
    expect(await search("zyx")).toEqual([tweetId]);
    expect(await store.deleteTweet(tweetId, 9n)).toBe("deleted");
    expect(await store.deleteTweet(tweetId, 9n)).toBe("already");
    expect(await search("zyx")).toEqual([]);
    expect(await store.indexTweet({ tweetId, authorId: 9n, ...doc })).toBe("exists");
    expect(await search("zyx")).toEqual([]);
    const [{ n }] = (await router.primary(store.shardOf(tweetId)).query<{ n: number }>(
      "SELECT COUNT(*) AS n FROM chirp.search_postings WHERE tweet_id = ?",
      [tweetId.toString()],
    )) as [{ n: number }];
    expect(Number(n)).toBe(0);

    // The deletion first: the creation that follows finds the tombstone.
    const late = ids.next();
    expect(await store.deleteTweet(late, 9n)).toBe("tombstoned");
    expect(await store.indexTweet({ tweetId: late, authorId: 9n, ...doc })).toBe("exists");
    expect(await search("zyx")).toEqual([]);
  });

  it("survives concurrent creations and deletions of one tweet", async () => {
    for (let round = 0; round < 5; round++) {
      const tweetId = ids.next();
      const doc = analyzeTweet({ text: `race word${round}`, authorId: 3n, hashtags: [], mentions: [] });
      await Promise.all([
        store.indexTweet({ tweetId, authorId: 3n, ...doc }),
        store.deleteTweet(tweetId, 3n),
        store.indexTweet({ tweetId, authorId: 3n, ...doc }),
        store.deleteTweet(tweetId, 3n),
      ]);
      expect(await search(`word${round}`)).toEqual([]);
    }
  });

  it("indexes a batch in one transaction: known tweets and tombstones left alone, repeats once", async () => {
    const shard = router.shards()[1]!;
    const onShard: bigint[] = [];
    while (onShard.length < 5) {
      const id = ids.next();
      if (store.shardOf(id).name === shard.name) onShard.push(id);
    }
    const [known, deleted, a, b, c] = onShard as [bigint, bigint, bigint, bigint, bigint];
    const doc = (tweetId: bigint, text: string) => ({ tweetId, authorId: 4n, ...analyzeTweet({ text, authorId: 4n, hashtags: [], mentions: [] }) });
    expect(await store.indexTweet(doc(known, "batchy known"))).toBe("indexed");
    expect(await store.deleteTweet(deleted, 4n)).toBe("tombstoned");
    const results = await store.indexTweets(shard, [doc(a, "batchy a"), doc(known, "batchy known"), doc(deleted, "batchy deleted"), doc(b, "batchy b"), doc(a, "batchy a"), doc(c, "batchy c")]);
    expect(results).toEqual(["indexed", "exists", "exists", "indexed", "exists", "indexed"]);
    expect(await search("batchy")).toEqual([c, b, a, known]);
    expect(await postingsOf(a)).toBe(3); // batchy, a, from:4
  });

  it("group-commits concurrent creations per shard, each answered with its own result", async () => {
    const writer = createIndexWriter(store, { maxBatch: 8 });
    const made = Array.from({ length: 60 }, () => ids.next());
    const results = await Promise.all(
      made.map((tweetId, i) => writer.index({ tweetId, authorId: 6n, ...analyzeTweet({ text: `grouped n${i}`, authorId: 6n, hashtags: [], mentions: [] }) })),
    );
    expect(results.every((r) => r === "indexed")).toBe(true);
    expect(await search("grouped")).toEqual([...made].reverse());
    expect(await writer.index({ tweetId: made[0]!, authorId: 6n, body: " x ", terms: ["x"] })).toBe("exists");
  });

  it("with a linger, holds a shard's first tweet that long so that those arriving meanwhile share its transaction", async () => {
    const batches: number[] = [];
    const writer = createIndexWriter({ ...store, indexTweets: (shard, docs) => (batches.push(docs.length), store.indexTweets(shard, docs)) }, { lingerMs: 150 });
    const shard = router.shards()[1]!;
    const made: bigint[] = [];
    while (made.length < 3) {
      const id = ids.next();
      if (store.shardOf(id).name === shard.name) made.push(id);
    }
    const doc = (tweetId: bigint) => ({ tweetId, authorId: 7n, ...analyzeTweet({ text: "lingered", authorId: 7n, hashtags: [], mentions: [] }) });
    // Without the linger the first would go at once, alone, and the other two after it: [1, 2].
    expect(await Promise.all(made.map((id) => writer.index(doc(id))))).toEqual(["indexed", "indexed", "indexed"]);
    expect(batches).toEqual([3]);
    expect(await search("lingered")).toEqual([...made].reverse());
  });

  it("pages by keyset without repeats or gaps", async () => {
    const made: bigint[] = [];
    for (let i = 0; i < 23; i++) made.push(await index(`pagetest item ${i}`));
    const seen: bigint[] = [];
    let before: bigint | undefined;
    for (;;) {
      const page = await searchAllShards({ router, store, timeoutMs: 5000 }, { terms: ["pagetest"], needles: [], before, limit: 5 });
      seen.push(...page.hits.map((h) => h.tweetId));
      if (!page.hasMore) break;
      before = page.hits[page.hits.length - 1]!.tweetId;
    }
    expect(seen).toEqual([...made].reverse());
    // They were spread over the shards (a merge, not one list).
    expect(new Set(made.map((id) => store.shardOf(id).name)).size).toBeGreaterThan(1);
  });

  it("reads the driving list backwards in index order, without a sort", async () => {
    const shard = router.shards()[0]!;
    const rows = await router.primary(shard).query<{ Extra: string | null; table: string }>(
      `EXPLAIN SELECT STRAIGHT_JOIN p0.tweet_id, d.author_id FROM chirp.search_postings p0
       JOIN chirp.search_postings p1 ON p1.term = ? AND p1.tweet_id = p0.tweet_id
       JOIN chirp.search_docs d ON d.tweet_id = p0.tweet_id
       WHERE p0.term = ? AND p0.tweet_id < ? AND INSTR(d.body, ?) > 0 ORDER BY p0.tweet_id DESC LIMIT 21`,
      ["a", "the", "18446744073709551615", " the a "],
    );
    expect(rows.map((r) => r.Extra ?? "").join(" ")).not.toMatch(/filesort|temporary/i);
  });
});

describe("trends", () => {
  it("counts distinct live tweets per hashtag in the window, idempotently, and forgets deleted ones", async () => {
    let now = Date.UTC(2030, 0, 1, 12, 0, 0);
    const trends = createTrends({ redis, prefix: "it:trends", windowMs: 10_000, bucketMs: 1000, now: () => now });
    const t1 = ids.next();
    const t2 = ids.next();
    const t3 = ids.next();
    // A tweet without hashtags counts nothing and leaves nothing in Redis (not even its marker).
    const keysBefore = await redis.keys("{it:trends}:*");
    const plain = ids.next();
    expect(await trends.created(plain, now, [])).toBe(false);
    expect(await redis.keys("{it:trends}:*")).toEqual(keysBefore);
    await trends.deleted(plain);
    expect(await trends.created(t1, now, ["Rust", "rust", "Go"])).toBe(true);
    expect(await trends.created(t1, now, ["Rust", "Go"])).toBe(false); // redelivered
    expect(await trends.created(t2, now - 500, ["RUST"])).toBe(true);
    now += 3000;
    expect(await trends.created(t3, now, ["zig"])).toBe(true);
    expect(await trends.top(10)).toEqual([
      { hashtag: "rust", tweetCount: 2 },
      { hashtag: "go", tweetCount: 1 },
      { hashtag: "zig", tweetCount: 1 },
    ]);
    expect(await trends.top(1)).toEqual([{ hashtag: "rust", tweetCount: 2 }]);

    await trends.deleted(t2);
    await trends.deleted(t2);
    expect(await trends.top(10)).toEqual([
      { hashtag: "go", tweetCount: 1 },
      { hashtag: "rust", tweetCount: 1 },
      { hashtag: "zig", tweetCount: 1 },
    ]);
    // A deletion seen before its creation: the creation counts nothing.
    const t4 = ids.next();
    await trends.deleted(t4);
    expect(await trends.created(t4, now, ["zig"])).toBe(false);

    // The first tweets leave the window; t3 stays until its own bucket does.
    now += 7500;
    expect(await trends.top(10)).toEqual([{ hashtag: "zig", tweetCount: 1 }]);
    now += 3000;
    expect(await trends.top(10)).toEqual([]);
    // A creation older than the window is not counted.
    expect(await trends.created(ids.next(), now - 20_000, ["old"])).toBe(false);
  });
});
