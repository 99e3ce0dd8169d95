// The tweet cache's protocol against a real redis-server, step by step: the
// interleavings that an end-to-end test can only hope to hit. A reader takes
// a lease before it reads the database; a change's publish deletes every
// lease and writes only over an older version; a fill needs its lease and an
// older (or no) entry. So once a publish has run, no older copy can land,
// even when the entry is evicted in between.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TweetSchema } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { createTweetCache, type CacheRead, type CachedTweet, type TweetCache } from "../../lib/tweet-cache.js";
import { startTestRedis, type TestRedis } from "../support/redis.js";

const log = pino({ level: "silent" });
let server: TestRedis;
let redis: Redis;
let cache: TweetCache;
let nextId = 1000n;

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.redis;
  cache = createTweetCache({ redis, ttlMs: 60_000, leaseMs: 5000, log, publishAttempts: 2, publishRetryMs: 10 });
});

afterAll(async () => {
  await server?.stop();
});

const tweet = (id: bigint, version: bigint, likeCount: number): CachedTweet => ({
  kind: "tweet",
  version,
  tweet: create(TweetSchema, { id, authorId: 7n, text: `v${version}`, likeCount }),
});

async function readOne(id: bigint): Promise<CacheRead> {
  return (await cache.read([id])).get(id)!;
}

function leaseOf(r: CacheRead): string {
  if (r.kind !== "miss" || r.lease === undefined) throw new Error(`expected a miss with a lease, got ${r.kind}`);
  return r.lease;
}

const shown = (r: CacheRead) => (r.kind === "tweet" ? `tweet v${r.version} likes ${r.tweet.likeCount}` : r.kind === "deleted" ? `deleted v${r.version}` : "miss");

describe("the tweet cache", () => {
  it("a tweet kept decoded in memory is reused only while Redis answers the same bytes: a like, a delete and an eviction are seen at once", async () => {
    const id = ++nextId;
    await cache.publish(id, tweet(id, 1n, 0));
    const first = await readOne(id);
    const again = await readOne(id);
    expect(again.kind === "tweet" && first.kind === "tweet" && again.tweet === first.tweet).toBe(true); // decoded once
    await cache.publish(id, tweet(id, 2n, 1)); // a like
    expect(shown(await readOne(id))).toBe("tweet v2 likes 1");
    // Another process's publish, straight into Redis: same version and length, one count different.
    const other = createTweetCache({ redis, ttlMs: 60_000, leaseMs: 5000, log, decodedMemoSize: 0 });
    await redis.del(`chirp:tweet:{${id}}`);
    await other.publish(id, tweet(id, 3n, 7));
    expect(shown(await readOne(id))).toBe("tweet v3 likes 7");
    await cache.publish(id, { kind: "deleted", version: 4n });
    expect(shown(await readOne(id))).toBe("deleted v4");
    await redis.del(`chirp:tweet:{${id}}`);
    expect(shown(await readOne(id))).toBe("miss");
  });

  it("a miss hands out a lease; the fill with it is read back", async () => {
    const id = ++nextId;
    const lease = leaseOf(await readOne(id));
    await cache.fill(id, lease, tweet(id, 1n, 0));
    expect(shown(await readOne(id))).toBe("tweet v1 likes 0");
  });

  it("a reader that read the database before a change cannot fill its older row after the change's publish, even if the entry was evicted in between", async () => {
    const id = ++nextId;
    const staleLease = leaseOf(await readOne(id)); // the reader's lease, then its database read: v1
    await cache.publish(id, tweet(id, 2n, 1)); // a like commits v2 and publishes it
    await redis.del(`chirp:tweet:{${id}}`); // evicted, expired, flushed...
    await cache.fill(id, staleLease, tweet(id, 1n, 0)); // the slow reader's fill arrives
    const after = await readOne(id);
    expect(after.kind).toBe("miss"); // not v1: the next reader goes to the database and finds v2
    await cache.fill(id, leaseOf(after), tweet(id, 2n, 1));
    expect(shown(await readOne(id))).toBe("tweet v2 likes 1");
  });

  it("a fill never replaces a newer entry, and a publish never goes back", async () => {
    const id = ++nextId;
    const lease = leaseOf(await readOne(id));
    await cache.publish(id, tweet(id, 5n, 3));
    await cache.fill(id, lease, tweet(id, 4n, 2));
    expect(shown(await readOne(id))).toBe("tweet v5 likes 3");
    await cache.publish(id, tweet(id, 3n, 9)); // a late publish of an older change
    expect(shown(await readOne(id))).toBe("tweet v5 likes 3");
    await cache.publish(id, tweet(id, 6n, 4));
    expect(shown(await readOne(id))).toBe("tweet v6 likes 4");
  });

  it("of two racing readers only the last lease fills; a used lease fills once", async () => {
    const id = ++nextId;
    const first = leaseOf(await readOne(id));
    const second = leaseOf(await readOne(id));
    await cache.fill(id, first, tweet(id, 1n, 0));
    expect((await readOne(id)).kind).toBe("miss");
    const third = leaseOf(await readOne(id));
    await cache.fill(id, second, tweet(id, 1n, 0));
    await cache.fill(id, third, tweet(id, 1n, 0));
    expect(shown(await readOne(id))).toBe("tweet v1 likes 0");
    await redis.del(`chirp:tweet:{${id}}`);
    await cache.fill(id, third, tweet(id, 1n, 0)); // used up
    expect((await readOne(id)).kind).toBe("miss");
  });

  it("a deletion's tombstone wins over every older fill and publish", async () => {
    const id = ++nextId;
    const lease = leaseOf(await readOne(id));
    await cache.publish(id, { kind: "deleted", version: 3n });
    await cache.fill(id, lease, tweet(id, 2n, 1));
    await cache.publish(id, tweet(id, 2n, 1));
    expect(shown(await readOne(id))).toBe("deleted v3");
  });

  it("reads many ids in one round trip, each with its own answer", async () => {
    const [a, b, c] = [++nextId, ++nextId, ++nextId];
    await cache.publish(a, tweet(a, 1n, 0));
    await cache.publish(c, { kind: "deleted", version: 2n });
    const reads = await cache.read([a, b, c, a]);
    expect([a, b, c].map((id) => shown(reads.get(id)!))).toEqual(["tweet v1 likes 0", "miss", "deleted v2"]);
  });

  it("a value it did not write is a miss without a lease (the database answers, nothing is filled)", async () => {
    const id = ++nextId;
    await redis.set(`chirp:tweet:{${id}}`, "garbage");
    expect(await readOne(id)).toEqual({ kind: "miss", lease: undefined });
  });

  it("with Redis gone, reads are misses without a lease and a publish fails with Unavailable", async () => {
    const id = ++nextId;
    await server.stopServer();
    await new Promise((r) => setTimeout(r, 100));
    expect(await readOne(id)).toEqual({ kind: "miss", lease: undefined });
    const err = await cache.publish(id, tweet(id, 1n, 0)).catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.Unavailable);
  });
});
