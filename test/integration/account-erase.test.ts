// A deleted account's erasure stopped part way and run again (issue 21, item
// 4: "resumable after a crash mid-way"), against a tenant of the shared
// cluster (real mariadbd and Redis), called directly as the graph's consumer
// of UserDeleted calls it: a user with more follows both ways and blocks both
// ways than one batch holds; the run dies after a batch (as a crashed process
// does: what it committed stays); the redelivery finishes what is left, and
// every count on the other side ends exact, never corrected twice; a third
// run (a duplicate delivery) changes nothing. The same for the tweet
// service's part (likes, tweets, replies, quotes, reposts), and once behind a
// real durable consumer that JetStream redelivers to. test/e2e/account-deletion.test.ts
// goes through the gateway and every service's consumer.
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserDeletedSchema } from "../../gen/chirp/user/v1/events_pb.js";
import { createEventBus, type EventBus } from "../../lib/events/bus.js";
import { BUS_DEFAULTS } from "../../lib/events/config.js";
import { consume } from "../../lib/events/consumer.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { eraseTwice } from "../../lib/events/user-deleted.js";
import { createIdGenerator } from "../../lib/ids.js";
import { createRelationCache } from "../../lib/relations.js";
import type { MeshClients } from "../../lib/rpc/mesh-clients.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { createBlocks } from "../../services/graph/blocks.js";
import { createGraphErasure, type GraphErasure } from "../../services/graph/erase.js";
import { createFollowEdges, type FollowEdges } from "../../services/graph/follow-edges.js";
import { createEdgeRepair, type EdgeRepair } from "../../services/graph/repair.js";
import type { Blocks } from "../../services/graph/blocks.js";
import { createTweetErasure, type TweetErasure } from "../../services/tweet/erase.js";
import { announceLikeChange } from "../../services/tweet/events.js";
import { createAuthorLookup } from "../../services/tweet/lookup.js";
import { createTweetReader } from "../../services/tweet/reads.js";
import { createReplies } from "../../services/tweet/replies.js";
import { createReposts } from "../../services/tweet/reposts.js";
import { createTweetStore, type NewTweet, type TweetRow, type TweetStore } from "../../services/tweet/store.js";
import { createTweetWrites, type TweetWrites } from "../../services/tweet/writes.js";
import { startSystem, type TestSystem } from "../support/system.js";

let system: TestSystem;
let router: ShardRouter;
let redis: Redis;
let repair: EdgeRepair;
let follows: FollowEdges;
let blocks: Blocks;
let erasure: GraphErasure;
let bus: EventBus;
let tweets: TweetStore;
let writes: TweetWrites;
let tweetErasure: TweetErasure;
const ids = createIdGenerator(5);
const silent = pino({ level: "silent" });

beforeAll(async () => {
  system = await startSystem({ mesh: false });
  router = system.router;
  redis = new Redis(system.infra.redisUrl, { maxRetriesPerRequest: 1 });
  repair = createEdgeRepair({ router, log: silent, sweepIntervalMs: 0, sweepGraceMs: 0, sweepBatch: 100 });
  follows = createFollowEdges({ router, ids, userCache: undefined, repair });
  // Erasure only clears cached relation sets (Redis); it never asks the graph service for them.
  const relations = createRelationCache({ redis, clients: {} as Pick<MeshClients, "graph">, ttlMs: 60_000, log: silent });
  blocks = createBlocks({ router, ids, relations, follows, log: silent });
  erasure = createGraphErasure({ router, follows, blocks, relations, log: silent });
  // The tweet service's parts as its consumer of UserDeleted holds them, without caches (nothing to publish to).
  tweets = createTweetStore(router);
  const lookup = createAuthorLookup({ store: tweets, redis: undefined, localSize: 1000, ttlMs: 60_000, log: silent });
  writes = createTweetWrites({ store: tweets, lookup, ids, userCache: undefined });
  const reader = createTweetReader({ router, store: tweets, cache: undefined, clients: {} as MeshClients, log: silent, lookup });
  const publish = async (): Promise<void> => {};
  const replies = createReplies({ store: tweets, ids, lookup, reader, publish, relations });
  const reposts = createReposts({ store: tweets, ids, lookup, reader, liked: undefined, publish, writes, relations });
  tweetErasure = createTweetErasure({ store: tweets, writes, replies, reposts, ids, publish });
  tweetParts = { replies, reposts };
  bus = createEventBus({ config: { ...BUS_DEFAULTS, natsUrl: system.infra.natsUrl }, log: silent });
});

afterAll(async () => {
  await bus?.close();
  await repair?.close();
  redis?.disconnect();
  await system?.stop();
});

let nextUser = 0;
async function newUsers(n: number): Promise<bigint[]> {
  const made: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const id = ids.next();
    await router
      .primaryForUser(id)
      .execute("INSERT INTO chirp.users (id, handle, email, password_hash) VALUES (?, ?, ?, 'x')", [id, `er${nextUser++}_${process.pid % 1000}`, `${id}@example.com`]);
    made.push(id);
  }
  return made;
}

async function counts(userIds: readonly bigint[]): Promise<string[]> {
  const out: string[] = [];
  for (const id of userIds) {
    const [row] = await router
      .primaryForUser(id)
      .query<{ follower_count: string; following_count: string }>("SELECT follower_count, following_count FROM chirp.users WHERE id = ?", [id]);
    out.push(`${row!.follower_count}/${row!.following_count}`);
  }
  return out;
}

async function active(table: string, column: string, userId: bigint): Promise<number> {
  const [row] = await router.primaryForUser(userId).query<{ n: string }>(`SELECT COUNT(*) AS n FROM chirp.${table} WHERE ${column} = ? AND state = 1`, [userId]);
  return Number(row!.n);
}

class Crash extends Error {}

let tweetParts: { replies: ReturnType<typeof createReplies>; reposts: ReturnType<typeof createReposts> };

/** A tweet as PostTweet writes it (the lookup row, the row, its edge on the tweet it replies to or quotes). */
async function postAs(authorId: bigint, refs: { replyToTweetId?: bigint; quoteTweetId?: bigint } = {}): Promise<TweetRow> {
  const id = ids.next();
  const t: NewTweet = {
    id,
    authorId,
    text: `tweet ${id}`,
    replyToTweetId: refs.replyToTweetId ?? 0n,
    quoteTweetId: refs.quoteTweetId ?? 0n,
    repostOfTweetId: 0n,
    mediaIds: [],
    latitude: null,
    longitude: null,
    hashtags: [],
    mentions: [],
    urls: [],
    createTimeMicros: BigInt(Date.now()) * 1000n,
  };
  const { row } = (await writes.create(t, undefined))!;
  await tweetParts.replies.recordEdges(row, true);
  return row;
}

async function tweetCounts(authorId: bigint, tweetId: bigint): Promise<string> {
  const [t] = await tweets.readTweets(tweets.tweetShard(authorId), [tweetId], undefined);
  return `likes ${t!.row.likeCount}, replies ${t!.row.replyCount}, quotes ${t!.row.quoteCount}, reposts ${t!.row.repostCount}`;
}

async function liveTweets(authorId: bigint): Promise<number> {
  const [row] = await router.primaryForUser(authorId).query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.tweets WHERE author_id = ? AND delete_time IS NULL", [authorId]);
  return Number(row!.n);
}

describe("account erasure (graph)", () => {
  it("stopped after a batch, finishes on redelivery with every count exact, and a duplicate delivery changes nothing", { timeout: 60_000 }, async () => {
    const [doomed] = (await newUsers(1)) as [bigint];
    const followees = await newUsers(7);
    const followers = await newUsers(7);
    const blockedByDoomed = await newUsers(4);
    const blockersOfDoomed = await newUsers(4);
    for (const f of followees) await follows.set(doomed, f, true, undefined);
    for (const f of followers) await follows.set(f, doomed, true, undefined);
    for (const b of blockedByDoomed) await blocks.setBlock(doomed, b, true, undefined);
    for (const b of blockersOfDoomed) await blocks.setBlock(b, doomed, true, undefined);
    await router.primaryForUser(doomed).execute("INSERT INTO chirp.mutes (muter_id, muted_id) VALUES (?, ?), (?, ?)", [doomed, followees[0]!, doomed, followees[1]!]);
    expect(await counts(followees)).toEqual(Array(7).fill("1/0"));
    expect(await counts(followers)).toEqual(Array(7).fill("0/1"));

    // The first delivery dies after the first batch of followers (batches of
    // 3: the 7 follows by the user are done, 3 of the 7 follows of them).
    const batches: string[] = [];
    const first = erasure.erase(doomed, {
      batch: 3,
      onBatch: (what, n) => {
        batches.push(`${what}:${n}`);
        if (what === "followers") throw new Crash("killed mid-way");
      },
    });
    await expect(first).rejects.toBeInstanceOf(Crash);
    expect(batches).toEqual(["following:3", "following:3", "following:1", "followers:3"]);
    expect(await counts(followees)).toEqual(Array(7).fill("0/0"));
    expect((await counts(followers)).filter((c) => c === "0/0")).toHaveLength(3);
    expect(await active("followers", "followee_id", doomed)).toBe(4);
    expect(await active("blocks", "blocker_id", doomed)).toBe(4);

    // The redelivery: only what is left.
    expect(await erasure.erase(doomed, { batch: 3 })).toEqual({ following: 0, followers: 4, blocked: 4, blockedBy: 4, mutes: 2 });
    expect(await counts(followees)).toEqual(Array(7).fill("0/0"));
    expect(await counts(followers)).toEqual(Array(7).fill("0/0"));
    expect(await active("follows", "follower_id", doomed)).toBe(0);
    expect(await active("followers", "followee_id", doomed)).toBe(0);
    expect(await active("blocks", "blocker_id", doomed)).toBe(0);
    expect(await active("blocked_by", "blocked_id", doomed)).toBe(0);
    for (const b of blockersOfDoomed) expect(await active("blocks", "blocker_id", b)).toBe(0);
    for (const b of blockedByDoomed) expect(await active("blocked_by", "blocked_id", b)).toBe(0);

    // A duplicate delivery: nothing to do, no count moves.
    expect(await erasure.erase(doomed, { batch: 3 })).toEqual({ following: 0, followers: 0, blocked: 0, blockedBy: 0, mutes: 0 });
    expect(await counts([...followees, ...followers])).toEqual(Array(14).fill("0/0"));
  });

  it("through a durable consumer: a delivery that fails after a batch is redelivered by JetStream and finishes the rest", { timeout: 60_000 }, async () => {
    const [doomed] = (await newUsers(1)) as [bigint];
    const followers = await newUsers(8);
    for (const f of followers) await follows.set(f, doomed, true, undefined);
    const deliveries: string[] = [];
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    const consumer = consume({
      bus,
      durable: `erase-test-${process.pid}`,
      subjects: [EVENTS.userDeleted],
      retryMinMs: 50,
      log: silent,
      handler: async (event) => {
        if (event.message.userId !== doomed) return;
        deliveries.push(`delivery ${event.redeliveryCount}`);
        const erased = await erasure.erase(event.message.userId, {
          batch: 3,
          onBatch: () => {
            if (event.redeliveryCount === 0) throw new Crash("died after a batch");
          },
        });
        deliveries.push(`followers ${erased.followers}`);
        finished();
      },
    });
    try {
      await consumer.started();
      const { js } = await bus.ready();
      await js.publish(EVENTS.userDeleted.subject, toBinary(UserDeletedSchema, create(UserDeletedSchema, { userId: doomed, deleteTime: timestampNow() })), {
        msgID: `erase-test-${doomed}`,
      });
      await done;
    } finally {
      await consumer.stop();
    }
    // The first delivery ended 3 of the 8 follows; the redelivery found the 5 left.
    expect(deliveries).toEqual(["delivery 0", "delivery 1", "followers 5"]);
    expect(await counts(followers)).toEqual(Array(8).fill("0/0"));
    expect(await active("followers", "followee_id", doomed)).toBe(0);
  });

  it("tweets: a run killed after a batch, after an earlier one died between a delete and its edge, finishes with the counts on others' tweets exact", { timeout: 60_000 }, async () => {
    const [doomed, other] = (await newUsers(2)) as [bigint, bigint];
    const target = await postAs(other);
    for (let i = 0; i < 4; i++) await postAs(doomed);
    const reply = await postAs(doomed, { replyToTweetId: target.id });
    await postAs(doomed, { quoteTweetId: target.id });
    // A repost (the edge pending, the repost tweet, the edge live) and a like (the edge, then the likers' index).
    const begun = await tweets.beginRepost(other, target.id, doomed, ids.next());
    if (begun.kind !== "pending") throw new Error(`repost not begun: ${begun.kind}`);
    const none = { text: "", replyToTweetId: 0n, quoteTweetId: 0n, mediaIds: [], latitude: null, longitude: null, hashtags: [], mentions: [], urls: [] };
    await writes.create({ ...none, id: begun.repostId, authorId: doomed, repostOfTweetId: target.id, createTimeMicros: BigInt(Date.now()) * 1000n }, undefined, { again: true });
    await tweetParts.reposts.settle({ id: begun.repostId, authorId: doomed, repostOfTweetId: target.id }, true);
    const liked = await tweets.setLike(other, target.id, doomed, true, announceLikeChange(ids, undefined));
    if (liked.kind !== "done" || liked.edge === undefined) throw new Error("like not made");
    await tweets.applyLikerSide(liked.edge);
    expect(await tweetCounts(other, target.id)).toBe("likes 1, replies 1, quotes 1, reposts 1");
    expect(await liveTweets(doomed)).toBe(7);

    // An earlier delivery died right after deleting the reply, before its edge step.
    await writes.remove(doomed, reply.id, doomed, undefined);
    // This one dies after its first batch of tweets (3 of the 7, in id order).
    await expect(
      tweetErasure.erase(doomed, {
        batch: 3,
        onBatch: (what) => {
          if (what === "tweets") throw new Crash("died after a batch");
        },
      }),
    ).rejects.toBeInstanceOf(Crash);
    expect(await tweetCounts(other, target.id)).toBe("likes 0, replies 1, quotes 1, reposts 1");
    expect(await liveTweets(doomed)).toBe(3);

    // The redelivery walks every tweet, the deleted ones too: the reply's edge is completed.
    expect((await tweetErasure.erase(doomed, { batch: 3 })).tweets).toBe(7);
    expect(await tweetCounts(other, target.id)).toBe("likes 0, replies 0, quotes 0, reposts 0");
    expect(await liveTweets(doomed)).toBe(0);
    // Once more (a duplicate delivery): no count moves again.
    await tweetErasure.erase(doomed, { batch: 3 });
    expect(await tweetCounts(other, target.id)).toBe("likes 0, replies 0, quotes 0, reposts 0");
    expect(await liveTweets(other)).toBe(1);
  });

  it("erases twice: a follow that lands after the first pass (a call in flight at the deletion) is ended by the second", { timeout: 60_000 }, async () => {
    const [doomed, early, late] = (await newUsers(3)) as [bigint, bigint, bigint];
    await follows.set(early, doomed, true, undefined);
    const passes: string[] = [];
    let firstPass!: () => void;
    const afterFirst = new Promise<void>((resolve) => (firstPass = resolve));
    let secondPass!: () => void;
    const afterSecond = new Promise<void>((resolve) => (secondPass = resolve));
    const consumer = consume({
      bus,
      durable: `erase-twice-test-${process.pid}`,
      subjects: [EVENTS.userDeleted],
      log: silent,
      // A second pass 1.5 s after the event (30 s in the services).
      handler: eraseTwice(async (userId) => {
        if (userId !== doomed) return;
        const erased = await erasure.erase(userId);
        passes.push(`followers ${erased.followers}`);
        if (passes.length === 1) firstPass();
        else secondPass();
      }, 1500),
    });
    try {
      await consumer.started();
      const { js } = await bus.ready();
      await js.publish(EVENTS.userDeleted.subject, toBinary(UserDeletedSchema, create(UserDeletedSchema, { userId: doomed, deleteTime: timestampNow() })), {
        msgID: `erase-twice-test-${doomed}`,
      });
      await afterFirst;
      // A Follow that had checked the user before the deletion commits now.
      await follows.set(late, doomed, true, undefined);
      expect(await counts([late])).toEqual(["0/1"]);
      await afterSecond;
    } finally {
      await consumer.stop();
    }
    expect(passes).toEqual(["followers 1", "followers 1"]);
    expect(await counts([early, late])).toEqual(["0/0", "0/0"]);
    expect(await active("followers", "followee_id", doomed)).toBe(0);
  });
});
