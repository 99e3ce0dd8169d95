// Tweet reads in memory: GetTweet, BatchGetTweets and ListLikedTweets through
// the real routes, reader (skeleton -> hydrate -> present) and author lookup,
// over a connect router transport. The store (TweetStore), the cache
// (TweetCache: versioned entries and fill leases, as its scripts keep them)
// and the shard router's grouping are in-memory stand-ins behind the
// interfaces the reader already takes; the user and media services are fake
// handlers on the same router. The SQL and the cache's scripts against real
// servers are in test/integration and test/e2e.
import { clone, create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport, type ServiceImpl } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { MediaSchema } from "../../gen/chirp/media/v1/media_pb.js";
import { MediaService } from "../../gen/chirp/media/v1/media_service_pb.js";
import { TweetSchema } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { UserSchema } from "../../gen/chirp/user/v1/user_pb.js";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import type { ShardInfo } from "../../lib/shard/types.js";
import { firstIdAt, ID_EPOCH_MS } from "../../lib/ids.js";
import type { MeshClients } from "../../lib/rpc/mesh-clients.js";
import { CALLER_ID_HEADER } from "../../lib/rpc/metadata.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import type { CachedTweet, CacheRead, TweetCache } from "../../lib/tweet-cache.js";
import type { TweetContext } from "./context.js";
import { createAuthorLookup } from "./lookup.js";
import { encodeLikesPageToken, type LikeCursor } from "./page-token.js";
import { createTweetReader } from "./reads.js";
import { routes } from "./routes.js";
import type { LikeListRow, TweetRow, TweetStore } from "./store.js";
import { codeOf, memoryShardRouter } from "../../lib/testing/in-memory.js";

const ALICE = 1n;
const BOB = 2n;
/** On the other shard than Alice and Bob (the hash vindex puts 1 and 2 on -80, 4 on 80-). */
const CAROL = 4n;
/** Has a users row but no profile the user service answers for (say, a user being deleted). */
const GHOST = 5n;

const tid = (ms: number): bigint => firstIdAt(ID_EPOCH_MS + ms);



/** Rows, lookup rows, like edges and the likers' index in maps; counts the tweet rows it reads. */
function memoryStore(router: ShardRouter) {
  const rows = new Map<bigint, TweetRow>();
  const lookups = new Map<bigint, bigint>();
  const likes = new Set<string>();
  const reposts = new Set<string>();
  const likerIndex: Array<LikeListRow & { userId: bigint }> = [];
  const users = new Set([ALICE, BOB, CAROL, GHOST]);
  const stats = { rowsRead: [] as bigint[], likesAtCalls: 0, lookupReads: 0 };
  /** A failover: the primary answers Unavailable; a replica holds the rows and likes of `snapshotReplica()`'s moment. */
  const failover = { primaryDown: false, replicaRows: new Map<bigint, TweetRow>(), replicaLikes: new Set<string>() };
  const tweetShard = (authorId: bigint): ShardInfo => router.shardForUser(authorId);

  const store: Partial<TweetStore> = {
    tweetShard,
    lookupShard: (id) => router.shardForUser(id),
    async lookupAuthors(ids) {
      stats.lookupReads += ids.length;
      return new Map(ids.flatMap((id) => (lookups.has(id) ? [[id, lookups.get(id)!] as const] : [])));
    },
    async readTweets(shard, ids, viewer) {
      stats.rowsRead.push(...ids);
      return ids.flatMap((id) => {
        const row = rows.get(id);
        if (row === undefined) return [];
        // One statement per shard: asked only for the tweets that live there.
        expect(tweetShard(row.authorId).name).toBe(shard.name);
        return [{ row, liked: viewer !== undefined && likes.has(`${viewer}:${id}`), reposted: viewer !== undefined && reposts.has(`${viewer}:${id}`) }];
      });
    },
    async likesAt(shard, viewer, ids, from = "primary") {
      // As the real store: no ids, no statement.
      if (ids.length === 0) return [];
      stats.likesAtCalls++;
      for (const id of ids) expect(tweetShard(rows.get(id)!.authorId).name).toBe(shard.name);
      if (from === "primary" && failover.primaryDown) throw new ConnectError(`shard ${shard.name}: no primary`, Code.Unavailable);
      const [r, l] = from === "primary" ? [rows, likes] : [failover.replicaRows, failover.replicaLikes];
      return ids.flatMap((id) => (r.has(id) ? [{ tweetId: id, version: r.get(id)!.version, liked: l.has(`${viewer}:${id}`), reposted: reposts.has(`${viewer}:${id}`) }] : []));
    },
    async listLikes(userId, after: LikeCursor | undefined, limit) {
      return likerIndex
        .filter((l) => l.userId === userId)
        .sort((a, b) => (a.likeTimeMicros !== b.likeTimeMicros ? (a.likeTimeMicros < b.likeTimeMicros ? 1 : -1) : a.tweetId < b.tweetId ? 1 : -1))
        .filter(
          (l) => after === undefined || l.likeTimeMicros < after.likeTimeMicros || (l.likeTimeMicros === after.likeTimeMicros && l.tweetId < after.tweetId),
        )
        .slice(0, limit)
        .map(({ tweetId, authorId, likeTimeMicros }) => ({ tweetId, authorId, likeTimeMicros }));
    },
  };

  return {
    store: store as TweetStore,
    stats,
    failover,
    snapshotReplica(): void {
      failover.replicaRows = new Map(rows);
      failover.replicaLikes = new Set(likes);
    },
    post(authorId: bigint, id: bigint, extra: Partial<TweetRow> = {}): TweetRow {
      const row: TweetRow = {
        id,
        authorId,
        text: `tweet ${id}`,
        replyToTweetId: 0n,
        mediaIds: [],
        latitude: null,
        longitude: null,
        likeCount: 0,
        replyCount: 0,
        quoteTweetId: 0n,
        quoteCount: 0,
        repostOfTweetId: 0n,
        repostCount: 0,
        hashtags: [],
        mentions: [],
        urls: [],
        version: 1n,
        deleted: false,
        ...extra,
      };
      rows.set(id, row);
      lookups.set(id, authorId);
      return row;
    },
    /** A committed like: the edge, the count, the version; and the liker's index (`likeMs` after the epoch). */
    like(userId: bigint, tweetId: bigint, likeMs: number): void {
      const row = rows.get(tweetId)!;
      likes.add(`${userId}:${tweetId}`);
      rows.set(tweetId, { ...row, likeCount: row.likeCount + 1, version: row.version + 1n });
      likerIndex.push({ userId, tweetId, authorId: row.authorId, likeTimeMicros: BigInt(likeMs) * 1000n });
    },
    /** A repost gone live: the edge, the count, the version. */
    repost(userId: bigint, tweetId: bigint): void {
      const row = rows.get(tweetId)!;
      reposts.add(`${userId}:${tweetId}`);
      rows.set(tweetId, { ...row, repostCount: row.repostCount + 1, version: row.version + 1n });
    },
    delete(tweetId: bigint): void {
      const row = rows.get(tweetId)!;
      rows.set(tweetId, { ...row, text: "", deleted: true, version: row.version + 1n });
    },
    /** A lookup row whose tweet was never written (a post that crashed between the two). */
    dangle(tweetId: bigint, authorId: bigint): void {
      lookups.set(tweetId, authorId);
    },
  };
}

/**
 * The cache as its scripts keep it: a miss hands out a fill lease; a fill
 * lands only with the lease still current and over an older entry; a
 * publish takes the lease away and lands over an older entry. `down` answers
 * every read as the real cache does when Redis fails: a miss without a lease.
 */
function memoryCache() {
  const entries = new Map<bigint, CachedTweet>();
  const leases = new Map<bigint, string>();
  const state = { down: false, fills: 0, entries };
  let n = 0;
  const newer = (id: bigint, version: bigint): boolean => (entries.get(id)?.version ?? -1n) < version;
  // Entries are bytes in Redis: each read gets its own copy.
  const copy = (e: CachedTweet): CachedTweet => (e.kind === "tweet" ? { ...e, tweet: clone(TweetSchema, e.tweet) } : e);
  const cache: TweetCache = {
    async read(ids) {
      const out = new Map<bigint, CacheRead>();
      for (const id of new Set(ids)) {
        const e = entries.get(id);
        if (state.down) out.set(id, { kind: "miss", lease: undefined });
        else if (e !== undefined) out.set(id, copy(e));
        else {
          const lease = `lease-${++n}`;
          leases.set(id, lease);
          out.set(id, { kind: "miss", lease });
        }
      }
      return out;
    },
    async peek(ids) {
      const out = new Map<bigint, CachedTweet>();
      if (state.down) return out;
      for (const id of new Set(ids)) {
        const e = entries.get(id);
        if (e !== undefined) out.set(id, copy(e));
      }
      return out;
    },
    async fill(id, lease, entry) {
      if (state.down || leases.get(id) !== lease) return;
      leases.delete(id);
      if (!newer(id, entry.version)) return;
      entries.set(id, copy(entry));
      state.fills++;
    },
    async publish(id, entry) {
      if (state.down) throw new ConnectError("change saved, but not yet visible everywhere; retry", Code.Unavailable);
      leases.delete(id);
      if (newer(id, entry.version)) entries.set(id, copy(entry));
    },
  };
  return { cache, state };
}

/** The user and media services: profiles for Alice, Bob and Carol; media as `media` says. */
function meshImpls(media: { mode: "ok" | "unimplemented" | "unavailable" }) {
  const calls = { batchGetUsers: 0, batchGetMedia: 0 };
  const user: Partial<ServiceImpl<typeof UserService>> = {
    async batchGetUsers(req) {
      calls.batchGetUsers++;
      const known = [ALICE, BOB, CAROL];
      return { users: [...new Set(req.userIds)].filter((id) => known.includes(id)).map((id) => create(UserSchema, { id, handle: `user${id}` })) };
    },
  };
  const mediaImpl: Partial<ServiceImpl<typeof MediaService>> = {
    async batchGetMedia(req) {
      calls.batchGetMedia++;
      if (media.mode === "unimplemented") throw new ConnectError("not implemented", Code.Unimplemented);
      if (media.mode === "unavailable") throw new ConnectError("media service unavailable", Code.Unavailable);
      // Answered in reverse: the reader must put each tweet's media in its mediaIds order.
      return { media: [...req.mediaIds].reverse().map((id) => create(MediaSchema, { id })) };
    },
  };
  return { user, media: mediaImpl, calls };
}

function setUp() {
  const router = memoryShardRouter();
  const db = memoryStore(router);
  const cached = memoryCache();
  const media = { mode: "ok" as "ok" | "unimplemented" | "unavailable" };
  const impls = meshImpls(media);
  let tweetImpl: Partial<ServiceImpl<typeof TweetService>> = {};
  const transport = createRouterTransport((r) => {
    r.service(UserService, impls.user);
    r.service(MediaService, impls.media);
    // Resolved per call: the routes are made once the clients exist.
    r.service(TweetService, {
      getTweet: (req, hctx) => tweetImpl.getTweet!(req, hctx),
      batchGetTweets: (req, hctx) => tweetImpl.batchGetTweets!(req, hctx),
      listLikedTweets: (req, hctx) => tweetImpl.listLikedTweets!(req, hctx),
    });
  });
  const clients = { user: createClient(UserService, transport), media: createClient(MediaService, transport) } as unknown as MeshClients;
  const log = pino({ level: "silent" });
  const lookup = createAuthorLookup({ store: db.store, redis: undefined, localSize: 1000, ttlMs: 60_000, log });
  const reader = createTweetReader({ router, store: db.store, cache: cached.cache, clients, log, lookup });
  tweetImpl = routes({ store: db.store, cache: cached.cache, lookup, reader, clients, log } as unknown as TweetContext);
  const tweets = createClient(TweetService, transport);
  const as = (caller: bigint | undefined) => ({ headers: caller === undefined ? {} : { [CALLER_ID_HEADER]: String(caller) } });
  return {
    db,
    cached,
    media,
    calls: impls.calls,
    batchGet: (caller: bigint | undefined, tweetIds: bigint[], authorIds: bigint[] = []) => tweets.batchGetTweets({ tweetIds, authorIds }, as(caller)),
    get: (caller: bigint | undefined, tweetId: bigint) => tweets.getTweet({ tweetId }, as(caller)),
    liked: (caller: bigint | undefined, userId: bigint, pageSize: number, pageToken = "") =>
      tweets.listLikedTweets({ userId, pageSize, pageToken }, as(caller)),
  };
}


/** Bob's and Carol's tweets, spread over both shards (their authors' shards). */
function withTweets(t: ReturnType<typeof setUp>) {
  const b = [t.db.post(BOB, tid(10)), t.db.post(BOB, tid(20)), t.db.post(BOB, tid(30))];
  const c = [t.db.post(CAROL, tid(15)), t.db.post(CAROL, tid(25))];
  expect(new Set([BOB, CAROL].map((a) => t.db.store.tweetShard(a).name)).size).toBe(2);
  return { b, c };
}

describe("BatchGetTweets (in memory)", () => {
  it("answers in request order, each id once, with authors; unknown, dangling and deleted ids left out", async () => {
    const t = setUp();
    const { b, c } = withTweets(t);
    t.db.delete(b[1]!.id);
    t.db.dangle(tid(99), BOB);
    const ask = [c[1]!.id, b[0]!.id, tid(12345), b[1]!.id, c[0]!.id, b[0]!.id, tid(99), b[2]!.id];

    const res = await t.batchGet(ALICE, ask);
    expect(res.tweets.map((x) => x.id)).toEqual([c[1]!.id, b[0]!.id, c[0]!.id, b[2]!.id]);
    expect(res.tweets.map((x) => [x.authorId, x.author?.id, x.author?.handle])).toEqual(res.tweets.map((x) => [x.authorId, x.authorId, `user${x.authorId}`]));
    expect(res.tweets.map((x) => x.text)).toEqual(res.tweets.map((x) => `tweet ${x.id}`));
    // Authors come in one call for the page, not one per tweet.
    expect(t.calls.batchGetUsers).toBe(1);
  });

  it("takes author hints: right ones are read with the tweets, in the same one call; wrong ones change nothing", async () => {
    const t = setUp();
    const { b, c } = withTweets(t);
    const ask = [b[0]!.id, c[0]!.id, b[2]!.id];
    const want = await t.batchGet(ALICE, ask);
    t.calls.batchGetUsers = 0;

    const hinted = await t.batchGet(ALICE, ask, [BOB, CAROL, BOB]);
    expect(hinted).toEqual(want);
    expect(t.calls.batchGetUsers).toBe(1);

    // Carol named for Bob's tweets: Bob is read after all, and every tweet keeps its own author.
    t.calls.batchGetUsers = 0;
    const wrong = await t.batchGet(ALICE, ask, [CAROL]);
    expect(wrong).toEqual(want);
    expect(t.calls.batchGetUsers).toBe(2);
  });

  it("says which tweets the caller likes, and none for an anonymous caller; likeCount is the tweet's", async () => {
    const t = setUp();
    const { b, c } = withTweets(t);
    t.db.like(ALICE, b[0]!.id, 1);
    t.db.like(ALICE, c[1]!.id, 2);
    t.db.like(CAROL, b[0]!.id, 3);
    const ids = [b[0]!.id, b[1]!.id, c[1]!.id];
    for (let round = 0; round < 2; round++) {
      // Round 0 misses the cache and reads the rows; round 1 is served from the cache.
      const alice = await t.batchGet(ALICE, ids);
      expect(alice.tweets.map((x) => [x.id, x.likedByViewer, x.likeCount])).toEqual([
        [b[0]!.id, true, 2],
        [b[1]!.id, false, 0],
        [c[1]!.id, true, 1],
      ]);
      const anonymous = await t.batchGet(undefined, ids);
      expect(anonymous.tweets.map((x) => x.likedByViewer)).toEqual([false, false, false]);
      const carol = await t.batchGet(CAROL, ids);
      expect(carol.tweets.map((x) => x.likedByViewer)).toEqual([true, false, false]);
    }
    expect(t.db.stats.rowsRead.sort()).toEqual([...ids].sort());
  });

  it("while the primary is away, reads the viewer's likes from a replica that holds the tweets at the versions shown; a replica behind them fails as before", async () => {
    const t = setUp();
    const { b, c } = withTweets(t);
    const ids = [b[0]!.id, c[0]!.id];
    t.db.like(BOB, c[0]!.id, 5);
    await t.batchGet(BOB, ids); // fills the cache: b0 at version 1, c0 at 2
    t.db.snapshotReplica();
    t.db.failover.primaryDown = true;
    const during = await t.batchGet(BOB, ids);
    expect(during.tweets.map((x) => [x.id, x.likedByViewer])).toEqual([
      [b[0]!.id, false],
      [c[0]!.id, true],
    ]);

    // Carol likes b0 on the primary and the cache is refilled from it (b0 at version 2); the replica still holds version 1.
    t.db.failover.primaryDown = false;
    t.db.like(CAROL, b[0]!.id, 6);
    t.cached.state.entries.clear();
    await t.batchGet(CAROL, ids);
    t.db.failover.primaryDown = true;
    await expect(t.batchGet(CAROL, ids)).rejects.toMatchObject({ code: Code.Unavailable });
  });

  it("fills the cache on a miss; a hit reads no tweet row, only the viewer's likes, and still shows a new like", async () => {
    const t = setUp();
    const { b, c } = withTweets(t);
    const ids = [b[0]!.id, c[0]!.id];

    const cold = await t.batchGet(BOB, ids);
    expect(t.db.stats.rowsRead.sort()).toEqual([...ids].sort());
    expect([...t.cached.state.entries.keys()].sort()).toEqual([...ids].sort());

    t.db.stats.rowsRead.length = 0;
    const anonymous = await t.batchGet(undefined, ids);
    expect(anonymous.tweets.map((x) => x.id)).toEqual(ids);
    expect(t.db.stats.rowsRead).toEqual([]);
    expect(t.db.stats.likesAtCalls).toBe(0);

    // A like's count reaches the cache by its publish (before the like returns); the viewer's like
    // is read from the primary on every read, for the tweets someone likes or has reposted (b0
    // has neither: see below).
    t.db.like(BOB, c[0]!.id, 5);
    const before = t.cached.state.entries.get(c[0]!.id);
    if (before?.kind !== "tweet") throw new Error("c0 is cached");
    t.cached.state.entries.set(c[0]!.id, { ...before, version: before.version + 1n, tweet: { ...before.tweet, likeCount: before.tweet.likeCount + 1 } });
    const warm = await t.batchGet(BOB, ids);
    expect(t.db.stats.rowsRead).toEqual([]);
    expect(t.db.stats.likesAtCalls).toBe(1); // c0's shard
    expect(warm.tweets.map((x) => [x.id, x.likedByViewer])).toEqual([
      [b[0]!.id, false],
      [c[0]!.id, true],
    ]);
    expect(cold.tweets.map((x) => x.likedByViewer)).toEqual([false, false]);
  });

  it("reads no like state for a cached tweet that nobody likes or has reposted at the version shown: false for every viewer; a like makes it read again", async () => {
    const t = setUp();
    const { b, c } = withTweets(t);
    const ids = [b[0]!.id, b[1]!.id, c[0]!.id];
    await t.batchGet(undefined, ids); // fills the cache
    for (const viewer of [ALICE, BOB, CAROL]) {
      const res = await t.batchGet(viewer, ids);
      expect(res.tweets.map((x) => [x.likedByViewer, x.repostedByViewer])).toEqual(ids.map(() => [false, false]));
    }
    expect(t.db.stats.likesAtCalls).toBe(0);

    // Carol likes b1: its count and version reach the cache (the like's publish), so every
    // viewer's state of b1 is read at that version, and only b1's.
    t.db.like(CAROL, b[1]!.id, 7);
    t.cached.state.entries.delete(b[1]!.id);
    await t.batchGet(undefined, ids);
    const carol = await t.batchGet(CAROL, ids);
    expect(carol.tweets.map((x) => [x.id, x.likedByViewer])).toEqual([
      [b[0]!.id, false],
      [b[1]!.id, true],
      [c[0]!.id, false],
    ]);
    const alice = await t.batchGet(ALICE, ids);
    expect(alice.tweets.map((x) => x.likedByViewer)).toEqual([false, false, false]);
    expect(t.db.stats.likesAtCalls).toBe(2); // b1 for Carol, b1 for Alice
  });

  it("shows a cached tweet with reposts as reposted only by its reposter, read at its version", async () => {
    const t = setUp();
    const { b } = withTweets(t);
    t.db.repost(ALICE, b[0]!.id);
    const alice = await t.batchGet(ALICE, [b[0]!.id]);
    const carol = await t.batchGet(CAROL, [b[0]!.id]);
    expect([alice.tweets[0]!.repostedByViewer, carol.tweets[0]!.repostedByViewer]).toEqual([true, false]);
    // From the cache now: the counts say someone reposted it, so each viewer's state is read.
    const again = await t.batchGet(ALICE, [b[0]!.id]);
    expect(again.tweets[0]!.repostedByViewer).toBe(true);
    expect(t.db.stats.likesAtCalls).toBe(2); // Carol's read and this one (Alice's first read was a miss: the row, with her state)
  });

  it("leaves out a tweet whose cache entry is a tombstone without reading it, and caches a deleted row as one", async () => {
    const t = setUp();
    const { b } = withTweets(t);
    await t.batchGet(undefined, [b[0]!.id, b[1]!.id]);
    t.db.delete(b[0]!.id);
    // The delete's publish: a tombstone at the new version.
    t.cached.state.entries.set(b[0]!.id, { kind: "deleted", version: 2n });
    t.db.delete(b[2]!.id); // deleted before any read: the row is read, and cached as a tombstone

    t.db.stats.rowsRead.length = 0;
    const res = await t.batchGet(ALICE, [b[0]!.id, b[1]!.id, b[2]!.id]);
    expect(res.tweets.map((x) => x.id)).toEqual([b[1]!.id]);
    expect(t.db.stats.rowsRead).toEqual([b[2]!.id]);
    expect(t.cached.state.entries.get(b[2]!.id)).toEqual({ kind: "deleted", version: 2n });
    expect(await codeOf(t.get(ALICE, b[0]!.id))).toBe(Code.NotFound);
    expect(await codeOf(t.get(ALICE, b[2]!.id))).toBe(Code.NotFound);
  });

  it("reads every tweet from the store, correctly, while the cache does not answer, and fills nothing", async () => {
    const t = setUp();
    const { b, c } = withTweets(t);
    t.db.like(ALICE, c[0]!.id, 1);
    t.cached.state.down = true;
    for (let i = 0; i < 2; i++) {
      const res = await t.batchGet(ALICE, [c[0]!.id, b[2]!.id]);
      expect(res.tweets.map((x) => [x.id, x.likedByViewer])).toEqual([
        [c[0]!.id, true],
        [b[2]!.id, false],
      ]);
    }
    expect(t.db.stats.rowsRead).toHaveLength(4);
    expect(t.cached.state.fills).toBe(0);
  });

  it("answers an empty list for no ids, or for none that exist", async () => {
    const t = setUp();
    withTweets(t);
    expect((await t.batchGet(ALICE, [])).tweets).toEqual([]);
    expect((await t.batchGet(ALICE, [tid(1), tid(2)])).tweets).toEqual([]);
  });

  it("attaches media in each tweet's mediaIds order; without BatchGetMedia, ids only; another media error fails the read", async () => {
    const t = setUp();
    const row = t.db.post(BOB, tid(40), { mediaIds: [501n, 502n, 503n] });
    const plain = t.db.post(CAROL, tid(41));

    const res = await t.batchGet(ALICE, [row.id, plain.id]);
    expect(res.tweets.map((x) => x.media.map((m) => m.id))).toEqual([[501n, 502n, 503n], []]);

    t.media.mode = "unimplemented";
    const older = await t.batchGet(ALICE, [row.id]);
    expect(older.tweets.map((x) => [x.mediaIds, x.media])).toEqual([[[501n, 502n, 503n], []]]);

    t.media.mode = "unavailable";
    expect(await codeOf(t.batchGet(ALICE, [row.id]))).toBe(Code.Unavailable);
    // Tweets without media never ask the media service.
    const before = t.calls.batchGetMedia;
    await t.batchGet(ALICE, [plain.id]);
    expect(t.calls.batchGetMedia).toBe(before);
  });
});

describe("GetTweet (in memory)", () => {
  it("answers the tweet with its author and the caller's like; NotFound for unknown, dangling and deleted ids", async () => {
    const t = setUp();
    const { b } = withTweets(t);
    t.db.like(ALICE, b[1]!.id, 1);
    const { tweet } = await t.get(ALICE, b[1]!.id);
    expect([tweet?.id, tweet?.author?.handle, tweet?.likedByViewer, tweet?.likeCount]).toEqual([b[1]!.id, "user2", true, 1]);
    expect((await t.get(undefined, b[1]!.id)).tweet?.likedByViewer).toBe(false);

    t.db.dangle(tid(77), BOB);
    t.db.delete(b[0]!.id);
    for (const id of [tid(12345), tid(77), b[0]!.id]) expect(await codeOf(t.get(ALICE, id))).toBe(Code.NotFound);
  });

  it("answers a tweet whose author the user service does not know, without an author", async () => {
    const t = setUp();
    const row = t.db.post(GHOST, tid(50));
    const { tweet } = await t.get(ALICE, row.id);
    expect([tweet?.id, tweet?.authorId, tweet?.author]).toEqual([row.id, GHOST, undefined]);
  });
});

describe("ListLikedTweets (in memory)", () => {
  it("pages newest like first with tokens; deleted tweets drop out, a page may come out short", async () => {
    const t = setUp();
    const { b, c } = withTweets(t);
    // Alice's likes, in like order (not tweet order); two in one microsecond.
    const order = [c[0]!, b[2]!, b[0]!, c[1]!, b[1]!];
    order.forEach((tw, i) => t.db.like(ALICE, tw.id, i < 3 ? 100 + i : 200));
    t.db.delete(b[0]!.id);

    const pages: bigint[][] = [];
    let token = "";
    do {
      const res = await t.liked(BOB, ALICE, 2, token);
      pages.push(res.tweets.map((x) => x.id));
      token = res.nextPageToken;
    } while (token !== "" && pages.length < 10);
    // Newest like first; of the two in one microsecond, the higher tweet id (Carol's) first.
    // The second page was b[0] (deleted) and b[2].
    expect(c[1]!.id > b[1]!.id).toBe(true);
    expect(pages).toEqual([[c[1]!.id, b[1]!.id], [b[2]!.id], [c[0]!.id]]);
  });

  it("refuses a token of another user's list; NotFound for a user who does not exist; empty for one with no likes", async () => {
    const t = setUp();
    const { b } = withTweets(t);
    t.db.like(ALICE, b[0]!.id, 1);
    t.db.like(ALICE, b[1]!.id, 2);
    const token = (await t.liked(ALICE, ALICE, 1)).nextPageToken;
    expect(token).not.toBe("");
    expect((await t.liked(ALICE, ALICE, 1, token)).tweets.map((x) => x.id)).toEqual([b[0]!.id]);
    expect(await codeOf(t.liked(ALICE, BOB, 1, token))).toBe(Code.InvalidArgument);
    expect(await codeOf(t.liked(ALICE, ALICE, 1, "garbage"))).toBe(Code.InvalidArgument);
    expect(await codeOf(t.liked(ALICE, ALICE, 1, encodeLikesPageToken(ALICE, { likeTimeMicros: 0n, tweetId: 1n })))).toBe(Code.InvalidArgument);
    expect(await codeOf(t.liked(ALICE, 999n, 20))).toBe(Code.NotFound);
    const none = await t.liked(ALICE, CAROL, 20);
    expect([none.tweets, none.nextPageToken]).toEqual([[], ""]);
  });
});
