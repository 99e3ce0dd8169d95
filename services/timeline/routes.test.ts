// GetHomeTimeline and GetUserTimeline in memory: the real routes and reader
// (reads.ts, merge.ts, page tokens) over a connect router transport, with
// in-memory stand-ins behind the interfaces the reader already takes: the
// MySQL read model (AuthorTweets), the Redis lists (TimelineLists,
// FollowingCache: each call does what its script does, on maps) and the
// mesh's tweet, graph and user services (fake handlers on the same router).
// The scripts themselves run against redis-server in test/integration; the
// whole path end to end is in test/e2e/timeline.test.ts.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport, type Interceptor, type ServiceImpl } from "@connectrpc/connect";
import { pino } from "pino";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { GraphService } from "../../gen/chirp/graph/v1/graph_service_pb.js";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetSchema } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { UserSchema } from "../../gen/chirp/user/v1/user_pb.js";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import { callerOf } from "../../lib/auth/caller.js";
import type { ShardInfo } from "../../lib/shard/types.js";
import { firstIdAt, ID_EPOCH_MS } from "../../lib/ids.js";
import type { Metrics } from "../../lib/metrics.js";
import type { MeshClients } from "../../lib/rpc/mesh-clients.js";
import { CALLER_ID_HEADER } from "../../lib/rpc/metadata.js";
import { createAssertionVerifier, formatServiceKeys, generateMeshSecret, parseMeshSecrets, parseServiceKeys } from "../../lib/auth/assertion.js";
import { SERVICE_NAMES } from "../../lib/mesh.js";
import { createCallerCheck } from "../../lib/rpc/callers.js";
import { vouchingInterceptor } from "../../lib/rpc/vouching-interceptor.js";
import { TIMELINE_DEFAULTS, type TimelineConfig } from "./config.js";
import type { TimelineContext } from "./context.js";
import { entryMember, entryScore, padId, type Entry } from "./entries.js";
import { listFollowing, type FollowingCache } from "./following.js";
import { KEYS, parsePage, type TimelineLists } from "./lists.js";
import { createTimelineMetrics, type TimelineMetrics } from "./metrics.js";
import { encodeTimelineToken } from "./page-token.js";
import { createTimelineReader } from "./reads.js";
import { routes } from "./routes.js";
import type { AuthorWalk, AuthorTweets } from "./author-tweets.js";
import { codeOf } from "../../lib/testing/in-memory.js";
import { NO_RELATIONS, type RelationCache, type Relations } from "../../lib/relations.js";

const ALICE = 1n;
const BOB = 2n;
const CAROL = 3n;
const DAVE = 4n;
/** Above the follower threshold: never fanned out, merged at read time. */
const HOT = 5n;
const HOT_UNFOLLOWED = 6n;

/** A Snowflake id at `ms` after the id epoch; `seq` tells ids of one millisecond apart. */
const tid = (ms: number, seq = 0): bigint => firstIdAt(ID_EPOCH_MS + ms) + BigInt(seq);

const desc = (a: bigint, b: bigint): number => (a < b ? 1 : a > b ? -1 : 0);

/** The system's truth: users, tweets, follows, likes; what MySQL and the other services hold. */
class World {
  readonly users = new Set<bigint>([ALICE, BOB, CAROL, DAVE, HOT, HOT_UNFOLLOWED]);
  readonly tweets = new Map<bigint, { authorId: bigint; deleted: boolean }>();
  readonly follows = new Map<bigint, Set<bigint>>();
  readonly likes = new Set<string>();
  /** Whom each reader has a block with (either way) or mutes: ListRelationIds, as lib/relations.ts hands it over. */
  readonly hidden = new Map<bigint, Relations>();
  /** Replicas have applied every tweet up to this id (undefined: no lag). */
  replicaHorizon: bigint | undefined;

  post(authorId: bigint, id: bigint): Entry {
    this.tweets.set(id, { authorId, deleted: false });
    return { id, authorId };
  }

  /** `n` tweets of `authorId`, one every `stepMs` from `fromMs`. */
  posts(authorId: bigint, n: number, fromMs: number, stepMs: number, seq = 0): Entry[] {
    return Array.from({ length: n }, (_, i) => this.post(authorId, tid(fromMs + i * stepMs, seq)));
  }

  delete(id: bigint): void {
    this.tweets.get(id)!.deleted = true;
  }

  follow(follower: bigint, ...followees: bigint[]): void {
    const set = this.follows.get(follower) ?? new Set();
    for (const f of followees) set.add(f);
    this.follows.set(follower, set);
  }

  like(userId: bigint, tweetId: bigint): void {
    this.likes.add(`${userId}:${tweetId}`);
  }

  liveIdsOf(authorId: bigint): bigint[] {
    return [...this.tweets].filter(([, t]) => t.authorId === authorId && !t.deleted).map(([id]) => id);
  }

  /** What a home timeline should show: live tweets of everyone followed and the reader's own, newest first. */
  home(userId: bigint, atOrBelow?: bigint): bigint[] {
    const authors = new Set([...(this.follows.get(userId) ?? []), userId]);
    return [...this.tweets]
      .filter(([id, t]) => authors.has(t.authorId) && !t.deleted && (atOrBelow === undefined || id <= atOrBelow))
      .map(([id]) => id)
      .sort(desc);
  }
}

/** Authors' tweets as ListAuthorTweets answers them: live tweets only, replicas behind the primary by `replicaHorizon`. */
function memoryAuthorTweets(world: World): AuthorTweets {
  const ids = async (authorId: bigint, before: bigint, limit: number, opts: { atLeast?: bigint; primary?: boolean } = {}): Promise<bigint[]> =>
    world
      .liveIdsOf(authorId)
      .filter((id) => id < before && id >= (opts.atLeast ?? 0n))
      .filter((id) => opts.primary === true || world.replicaHorizon === undefined || id <= world.replicaHorizon)
      .sort(desc)
      .slice(0, limit);
  const entries = async (authorId: bigint, before: bigint, limit: number, opts: { atLeast?: bigint; primary?: boolean } = {}): Promise<Entry[]> =>
    (await ids(authorId, before, limit, opts)).map((id) => ({ id, authorId }));
  return {
    entries,
    async walkAuthors(walks: readonly AuthorWalk[], primary) {
      const out: Entry[] = [];
      for (const w of walks) out.push(...(await entries(w.authorId, w.before, w.limit, { primary })));
      return out;
    },
  };
}

interface MemoryList {
  /** "b" while being built, else the floor of the sentinel `f<floor>`. */
  sentinel: "b" | bigint;
  readonly entries: Map<bigint, Entry>;
}

/**
 * The Redis side of timelines on maps: each method does what its script in
 * lists.ts (or following.ts) does, and pages go through the real parsePage.
 * `down` makes every call fail as a lost connection does; `failing`, the
 * calls of the methods it names.
 */
function memoryRedis(clients: MeshClients) {
  const lists = new Map<string, MemoryList>();
  const following = new Map<bigint, Set<bigint>>();
  const hot = new Set<bigint>();
  const state = { down: false, failing: new Set<string>(), lists, following, hot };
  const reachable = (method: string): void => {
    if (state.down || state.failing.has(method)) throw new Error("connect ECONNREFUSED 127.0.0.1:6379");
  };

  /** The read script's reply: [sentinel, lowest entry, entries with score <= the bound's millisecond, newest first, at most limit]. */
  const reply = (key: string, before: bigint | undefined, limit: number): string[] => {
    const list = lists.get(key);
    if (list === undefined) return [];
    const sorted = [...list.entries.values()].sort((a, b) => desc(a.id, b.id));
    const maxScore = before === undefined ? Infinity : entryScore(before);
    const lowest = sorted.at(-1);
    return [
      list.sentinel === "b" ? "b" : `f${padId(list.sentinel)}`,
      lowest === undefined ? "" : entryMember(lowest),
      ...sorted
        .filter((e) => entryScore(e.id) <= maxScore)
        .slice(0, limit)
        .map(entryMember),
    ];
  };
  const trim = (list: MemoryList, cap: number): void => {
    const sorted = [...list.entries.keys()].sort(desc);
    for (const id of sorted.slice(cap)) list.entries.delete(id);
  };
  const readPage = (key: string, before: bigint | undefined, limit: number) => parsePage(reply(key, before, limit), before, limit);

  const fakeLists: Omit<TimelineLists, "redis"> = {
    async addToEach(keys, entry, cap) {
      reachable("addToEach");
      let added = 0;
      for (const key of keys) {
        const list = lists.get(key);
        if (list === undefined) continue;
        list.entries.set(entry.id, entry);
        trim(list, cap);
        added++;
      }
      return added;
    },
    async removeFromEach(keys, entry) {
      reachable("removeFromEach");
      for (const key of keys) lists.get(key)?.entries.delete(entry.id);
    },
    async readPage(key, before, limit) {
      reachable("readPage");
      return readPage(key, before, limit);
    },
    async readPages(keys, before, limit) {
      reachable("readPages");
      return keys.map((key) => readPage(key, before, limit));
    },
    async readHome(userId, before, limit) {
      reachable("readHome");
      const set = following.get(userId);
      const page = readPage(KEYS.home(userId), before, limit);
      // Never cached here: the reader builds the caller's blocks and mutes (lib/relations.ts) on every read.
      if (set === undefined) return { page, relations: undefined, following: undefined };
      const authors = page.state === "built" ? page.entries.map((e) => e.authorId) : [];
      return {
        page,
        relations: undefined,
        following: {
          followed: new Set(authors.filter((a) => a !== userId && set.has(a))),
          hot: [...set].filter((id) => id !== userId && hot.has(id)).map((authorId) => ({ authorId, page: readPage(KEYS.recent(authorId), before, limit) })),
        },
      };
    },
    async isHot(authorId) {
      reachable("isHot");
      return hot.has(authorId);
    },
    async markHot(authorId) {
      reachable("markHot");
      hot.add(authorId);
    },
    async beginBuild(key) {
      reachable("beginBuild");
      const list = lists.get(key);
      if (list !== undefined && list.sentinel !== "b") return false;
      if (list === undefined) lists.set(key, { sentinel: "b", entries: new Map() });
      return true;
    },
    async finishBuild(key, entries, floor, cap) {
      reachable("finishBuild");
      const list = lists.get(key);
      if (list === undefined) return false;
      list.sentinel = floor;
      for (const e of entries) list.entries.set(e.id, e);
      trim(list, cap);
      return true;
    },
    async removeAuthor() {
      throw new Error("not used by reads");
    },
    async mergeAuthor() {
      throw new Error("not used by reads");
    },
  };

  const build = async (userId: bigint, hctx?: Parameters<FollowingCache["all"]>[1]): Promise<bigint[]> => {
    const ids = await listFollowing(clients, userId, hctx);
    following.set(userId, new Set(ids));
    return ids;
  };
  const followingCache: FollowingCache = {
    async all(userId, hctx) {
      reachable("all");
      const set = following.get(userId);
      return set === undefined ? build(userId, hctx) : [...set];
    },
    async ensure(userId, hctx) {
      reachable("ensure");
      if (following.has(userId)) return false;
      await build(userId, hctx);
      return true;
    },
    async invalidate(userId) {
      reachable("invalidate");
      following.delete(userId);
    },
  };

  /** A built list holding `entries` (all the user's, down to `floor`). */
  const setList = (key: string, entries: readonly Entry[], floor = 0n): void => {
    lists.set(key, { sentinel: floor, entries: new Map(entries.map((e) => [e.id, e])) });
  };

  // The reader never touches `redis` (fan-out does): the cast only fills the type.
  return { lists: fakeLists as TimelineLists, following: followingCache, state, setList };
}

/** The other services, as fake handlers: what they answer is the World's truth. */
function meshImpls(world: World) {
  const tweet: Partial<ServiceImpl<typeof TweetService>> = {
    async batchGetTweets(req, hctx) {
      const viewer = callerOf(hctx);
      const tweets = [...new Set(req.tweetIds)].flatMap((id) => {
        const t = world.tweets.get(id);
        if (t === undefined || t.deleted) return [];
        return [
          create(TweetSchema, {
            id,
            authorId: t.authorId,
            author: create(UserSchema, { id: t.authorId, handle: `user${t.authorId}` }),
            text: `tweet ${id}`,
            likedByViewer: viewer !== undefined && world.likes.has(`${viewer}:${id}`),
          }),
        ];
      });
      // The proto promises no order: the timeline must put its page in order itself.
      return { tweets: tweets.reverse() };
    },
  };
  const graph: Partial<ServiceImpl<typeof GraphService>> = {
    async listFollowingIds(req) {
      const all = [...(world.follows.get(req.userId) ?? [])].sort((a, b) => -desc(a, b));
      const after = req.pageToken === "" ? 0n : BigInt(req.pageToken);
      const page = all.filter((id) => id > after).slice(0, req.pageSize);
      const more = all.filter((id) => id > after).length > page.length;
      return { userIds: page, nextPageToken: more ? String(page.at(-1)) : "" };
    },
  };
  const user: Partial<ServiceImpl<typeof UserService>> = {
    async batchGetUsers(req) {
      return { users: req.userIds.filter((id) => world.users.has(id)).map((id) => create(UserSchema, { id, handle: `user${id}` })) };
    },
  };
  return { tweet, graph, user };
}

const silent = pino({ level: "silent" });

/** The graph's blocks and mutes as the reader's cache hands them over. */
function memoryRelations(world: World): RelationCache {
  const get = async (userId: bigint): Promise<Relations> => world.hidden.get(userId) ?? NO_RELATIONS;
  return {
    get,
    build: get,
    blocked: async (userId, otherId) => (await get(userId)).blocks.has(otherId),
    invalidate: async () => {},
  };
}

const MESH_SECRET = generateMeshSecret();
const callerCheck = createCallerCheck(createAssertionVerifier(parseServiceKeys(formatServiceKeys(parseMeshSecrets(MESH_SECRET), SERVICE_NAMES))));
const admitCallers: Interceptor = (next) => (req) => {
  callerCheck.admit(req.method, req.header);
  return next(req);
};

/**
 * The timeline service over an in-memory router, with the fake services on the
 * same router. `redis: false` is a process without REDIS_URL.
 */
function setUp(world: World, opts: { redis?: boolean; config?: Partial<TimelineConfig> } = {}) {
  const impls = meshImpls(world);
  let timelineImpl: Partial<ServiceImpl<typeof TimelineService>> = {};
  const transport = createRouterTransport((router) => {
    router.service(TweetService, impls.tweet);
    router.service(GraphService, impls.graph);
    router.service(UserService, impls.user);
    // Resolved per call: the routes are made once the clients exist.
    router.service(TimelineService, {
      getHomeTimeline: (req, hctx) => timelineImpl.getHomeTimeline!(req, hctx),
      getUserTimeline: (req, hctx) => timelineImpl.getUserTimeline!(req, hctx),
    });
    // As in the mesh: the test's calls leave vouched for (as the gateway would), every service admits
    // the caller from the assertion only, and the timeline's calls pass it on (onBehalfOf).
  }, { router: { interceptors: [admitCallers] }, transport: { interceptors: [vouchingInterceptor(MESH_SECRET)] } });
  const clients = {
    tweet: createClient(TweetService, transport),
    graph: createClient(GraphService, transport),
    user: createClient(UserService, transport),
  } as unknown as MeshClients;
  const redis = memoryRedis(clients);
  const metrics: TimelineMetrics = createTimelineMetrics({ registry: new Registry() } as unknown as Metrics);
  const config: TimelineConfig = { ...TIMELINE_DEFAULTS, maxEntries: 10, recentEntries: 10, ...opts.config };
  const withRedis = opts.redis ?? true;
  const reader = createTimelineReader({
    authorTweets: memoryAuthorTweets(world),
    lists: withRedis ? redis.lists : undefined,
    following: withRedis ? redis.following : undefined,
    relations: memoryRelations(world),
    clients,
    config,
    metrics,
    log: silent,
  });
  // No Redis caches here (tweetCache undefined): every page is hydrated by the fake tweet service.
  timelineImpl = routes({ reader, clients, hub: undefined, timelineMetrics: metrics, log: silent } as unknown as TimelineContext);
  const timeline = createClient(TimelineService, transport);
  const as = (caller: bigint | undefined) => ({ headers: caller === undefined ? {} : { [CALLER_ID_HEADER]: String(caller) } });

  return {
    redis,
    home: (caller: bigint | undefined, pageSize: number, pageToken = "") => timeline.getHomeTimeline({ pageSize, pageToken }, as(caller)),
    userTimeline: (caller: bigint | undefined, userId: bigint, pageSize: number, pageToken = "") =>
      timeline.getUserTimeline({ userId, pageSize, pageToken }, as(caller)),
    /** Home pages served so far, by source (redis, redis_mysql, mysql). */
    async pagesBySource(): Promise<Record<string, number>> {
      const out: Record<string, number> = {};
      for (const v of (await metrics.homePages.get()).values) out[String(v.labels.source)] = v.value;
      return out;
    },
    /** Every home page from the first, `pageSize` at a time: the ids of each page. */
    async allHomePages(caller: bigint, pageSize: number, between?: (page: number) => void): Promise<bigint[][]> {
      const pages: bigint[][] = [];
      let token = "";
      do {
        const res = await this.home(caller, pageSize, token);
        expect(res.tweets.length).toBeLessThanOrEqual(pageSize);
        pages.push(res.tweets.map((t) => t.id));
        token = res.nextPageToken;
        between?.(pages.length);
      } while (token !== "" && pages.length < 100);
      expect(token).toBe("");
      return pages;
    },
  };
}


describe("GetHomeTimeline (in memory)", () => {
  it("serves the caller's list newest first, their own tweets included, hydrated for them", async () => {
    const world = new World();
    world.follow(ALICE, BOB, CAROL);
    const entries = [...world.posts(BOB, 3, 10, 10), ...world.posts(CAROL, 2, 15, 10), ...world.posts(ALICE, 1, 50, 1)];
    world.like(ALICE, entries[1]!.id);
    world.like(BOB, entries[2]!.id);
    const t = setUp(world);
    t.redis.setList(KEYS.home(ALICE), entries);

    const res = await t.home(ALICE, 20);
    expect(res.tweets.map((x) => x.id)).toEqual(world.home(ALICE));
    expect(res.tweets.map((x) => x.author?.id)).toEqual(res.tweets.map((x) => x.authorId));
    // The tweet service saw the caller: only Alice's own like shows.
    expect(res.tweets.filter((x) => x.likedByViewer).map((x) => x.id)).toEqual([entries[1]!.id]);
    expect(res.nextPageToken).toBe("");
  });

  it("merges the hot authors the caller follows into the page at read time, each tweet once", async () => {
    const world = new World();
    world.follow(ALICE, BOB, HOT);
    const bob = world.posts(BOB, 4, 10, 20);
    const hot = world.posts(HOT, 6, 5, 11);
    world.posts(HOT_UNFOLLOWED, 3, 12, 10);
    const t = setUp(world);
    t.redis.state.hot.add(HOT).add(HOT_UNFOLLOWED);
    // One of the hot author's tweets was fanned out before they were found hot; the rest never were.
    t.redis.setList(KEYS.home(ALICE), [...bob, hot[0]!]);
    t.redis.setList(KEYS.recent(HOT), hot);
    t.redis.setList(KEYS.recent(HOT_UNFOLLOWED), world.posts(HOT_UNFOLLOWED, 1, 100, 1));

    const res = await t.home(ALICE, 20);
    const ids = res.tweets.map((x) => x.id);
    expect(ids).toEqual(world.home(ALICE));
    expect(ids).toEqual(expect.arrayContaining(hot.map((e) => e.id)));
    expect(new Set(ids).size).toBe(ids.length);
    expect(res.nextPageToken).toBe("");
  });

  it("builds a hot author's missing recent list from MySQL and merges it", async () => {
    const world = new World();
    world.follow(ALICE, BOB, HOT);
    const bob = world.posts(BOB, 3, 10, 20);
    world.posts(HOT, 4, 15, 20);
    const t = setUp(world);
    t.redis.state.hot.add(HOT);
    t.redis.setList(KEYS.home(ALICE), bob);

    const res = await t.home(ALICE, 20);
    expect(res.tweets.map((x) => x.id)).toEqual(world.home(ALICE));
    expect(t.redis.state.lists.get(KEYS.recent(HOT))?.sentinel).toBe(0n);
  });

  it("rebuilds a missing list from MySQL (whom the caller follows, and their own), then serves from it", async () => {
    const world = new World();
    world.follow(ALICE, BOB, CAROL);
    world.posts(BOB, 3, 10, 10);
    world.posts(CAROL, 2, 12, 10);
    world.posts(ALICE, 2, 13, 10);
    world.posts(DAVE, 2, 14, 10);
    const t = setUp(world);

    const first = await t.home(ALICE, 20);
    expect(first.tweets.map((x) => x.id)).toEqual(world.home(ALICE));
    const list = t.redis.state.lists.get(KEYS.home(ALICE));
    expect(list?.sentinel).toBe(0n);
    expect([...list!.entries.keys()].sort(desc)).toEqual(world.home(ALICE));

    // A new tweet fanned out into the rebuilt list shows on the next read.
    const fresh = world.post(BOB, tid(1000));
    await t.redis.lists.addToEach([KEYS.home(ALICE)], fresh, 10);
    const second = await t.home(ALICE, 20);
    expect(second.tweets.map((x) => x.id)).toEqual(world.home(ALICE));
    expect(second.tweets[0]!.id).toBe(fresh.id);
  });

  it("a rebuilt list has tweets the replicas have not applied yet (the build reads the primaries)", async () => {
    const world = new World();
    world.follow(ALICE, BOB);
    const old = world.posts(BOB, 3, 10, 10);
    world.replicaHorizon = old.at(-1)!.id;
    const fresh = world.post(BOB, tid(500));
    const t = setUp(world);

    const res = await t.home(ALICE, 20);
    expect(res.tweets.map((x) => x.id)).toEqual([fresh.id, ...old.map((e) => e.id).reverse()]);
  });

  it("answers an empty page and no token for a caller who follows no one and has not posted", async () => {
    const world = new World();
    world.posts(BOB, 3, 10, 10);
    for (const redis of [true, false]) {
      const t = setUp(world, { redis });
      const res = await t.home(ALICE, 20);
      expect(res.tweets).toEqual([]);
      expect(res.nextPageToken).toBe("");
    }
  });

  it("drops deleted tweets: a page can come out short with a token, and paging goes on past it", async () => {
    const world = new World();
    world.follow(ALICE, BOB);
    const bob = world.posts(BOB, 7, 10, 10);
    const t = setUp(world);
    t.redis.setList(KEYS.home(ALICE), bob);
    // Deleted after fan-out: the list still holds them until the delete's fan-out runs.
    world.delete(bob[5]!.id);
    world.delete(bob[4]!.id);

    const first = await t.home(ALICE, 3);
    // The page was bob[6], bob[5], bob[4]: two of them are gone.
    expect(first.tweets.map((x) => x.id)).toEqual([bob[6]!.id]);
    expect(first.nextPageToken).not.toBe("");
    const pages = await t.allHomePages(ALICE, 3);
    expect(pages.flat()).toEqual(world.home(ALICE));
  });

  it.each([true, false])("leaves out the tweets of users the caller blocks, is blocked by or mutes, their entries already in the list too (Redis %s)", async (withRedis) => {
    const world = new World();
    world.follow(ALICE, BOB, CAROL, DAVE, HOT);
    const bob = world.posts(BOB, 2, 10, 10);
    const carol = world.posts(CAROL, 2, 15, 10);
    const dave = world.posts(DAVE, 2, 17, 10);
    const hot = world.posts(HOT, 2, 19, 10);
    world.hidden.set(ALICE, { blocks: new Set([CAROL]), mutes: new Set([DAVE, HOT]) });
    const t = setUp(world, { redis: withRedis });
    t.redis.state.hot.add(HOT);
    t.redis.setList(KEYS.home(ALICE), [...bob, ...carol, ...dave]);
    t.redis.setList(KEYS.recent(HOT), hot);

    const res = await t.home(ALICE, 20);
    expect(res.tweets.map((x) => x.id)).toEqual(bob.map((e) => e.id).sort(desc));
    // Only the muter's view: Bob's page is whole.
    world.follow(BOB, CAROL, DAVE);
    t.redis.setList(KEYS.home(BOB), [...bob, ...carol, ...dave]);
    expect((await t.home(BOB, 20)).tweets.map((x) => x.id)).toEqual(world.home(BOB));
  });

  it("leaves out entries of an author the caller no longer follows (an unfollow that raced a fan-out)", async () => {
    const world = new World();
    world.follow(ALICE, BOB);
    const bob = world.posts(BOB, 2, 10, 10);
    const dave = world.posts(DAVE, 2, 15, 10);
    const t = setUp(world);
    t.redis.setList(KEYS.home(ALICE), [...bob, ...dave]);

    const res = await t.home(ALICE, 20);
    expect(res.tweets.map((x) => x.id)).toEqual(bob.map((e) => e.id).reverse());
  });

  describe.each([
    ["from Redis lists, then MySQL below them", { redis: true, down: false }],
    ["from MySQL alone (no REDIS_URL)", { redis: false, down: false }],
    ["from MySQL when Redis does not answer", { redis: true, down: true }],
  ])("pages %s", (_, mode) => {
    /** Alice follows Bob, Carol and a hot author; Dave is not followed. Ids share milliseconds now and then. */
    const busyWorld = (): World => {
      const world = new World();
      world.follow(ALICE, BOB, CAROL, HOT);
      world.posts(BOB, 10, 0, 7);
      world.posts(BOB, 4, 21, 7, 1);
      world.posts(CAROL, 4, 3, 40);
      world.posts(ALICE, 5, 5, 23);
      world.posts(HOT, 12, 2, 9);
      world.posts(DAVE, 5, 1, 11);
      for (const id of [...world.liveIdsOf(BOB).slice(2, 4), world.liveIdsOf(HOT)[5]!]) world.delete(id);
      return world;
    };

    it.each([3, 7, 25])("%i at a time: every tweet once, newest first, nothing of anyone not followed", async (pageSize) => {
      const world = busyWorld();
      const t = setUp(world, { redis: mode.redis });
      t.redis.state.hot.add(HOT);
      t.redis.state.down = mode.down;
      const pages = await t.allHomePages(ALICE, pageSize);
      expect(pages.flat()).toEqual(world.home(ALICE));
      // Only the last page may be short here: nothing was deleted after the lists were written.
      for (const page of pages.slice(0, -1)) expect(page).toHaveLength(pageSize);
      const sources = await t.pagesBySource();
      if (mode.redis && !mode.down) {
        // The lists (capped at 10) hold the newest part; the rest came from MySQL below them.
        expect(sources.mysql).toBeUndefined();
        expect(sources.redis_mysql).toBeGreaterThan(0);
      } else expect(sources).toEqual({ mysql: pages.length });
    });

    it("tweets posted while paging do not shift later pages: each tweet at or below the first page's newest, once", async () => {
      const world = busyWorld();
      const t = setUp(world, { redis: mode.redis });
      t.redis.state.hot.add(HOT);
      t.redis.state.down = mode.down;
      const expected = world.home(ALICE);
      let ms = 10_000;
      const pages = await t.allHomePages(ALICE, 4, () => {
        // Fan-out of new tweets (a followed author's, the hot author's, the caller's own) between pages.
        for (const [author, key] of [
          [BOB, KEYS.home(ALICE)],
          [HOT, KEYS.recent(HOT)],
          [ALICE, KEYS.home(ALICE)],
        ] as const) {
          const e = world.post(author, tid(ms++));
          if (!t.redis.state.down) void t.redis.lists.addToEach([key], e, 10);
        }
      });
      expect(pages.flat()).toEqual(expected);
    });
  });

  // readHome is the first round trip (the page, the followed authors and the hot lists); all() the
  // following set wanted for MySQL below the lists, after it.
  it.each(["readHome", "all"])("serves the page from MySQL, whole, when Redis fails during a read (%s)", async (method) => {
    const world = new World();
    world.follow(ALICE, BOB, HOT);
    const bob = world.posts(BOB, 12, 10, 10);
    const hot = world.posts(HOT, 12, 15, 10);
    const t = setUp(world);
    t.redis.state.hot.add(HOT);
    // Lists that end above the page: a read needs the hot list, the following set and MySQL below.
    t.redis.setList(KEYS.home(ALICE), bob.slice(-4), bob.at(-4)!.id);
    t.redis.setList(KEYS.recent(HOT), hot.slice(-4), hot.at(-4)!.id);
    t.redis.state.failing.add(method);
    const res = await t.home(ALICE, 10);
    expect(res.tweets.map((x) => x.id)).toEqual(world.home(ALICE).slice(0, 10));
    expect(await t.pagesBySource()).toEqual({ mysql: 1 });
  });

  it("refuses a token of another user's home timeline, of a user timeline, or a malformed one", async () => {
    const world = new World();
    world.follow(ALICE, BOB);
    world.posts(BOB, 5, 10, 10);
    const t = setUp(world);
    const bobs = (await t.home(BOB, 1)).nextPageToken;
    const alices = (await t.home(ALICE, 2)).nextPageToken;
    expect(bobs).not.toBe("");
    expect(alices).not.toBe("");
    expect(await codeOf(t.home(ALICE, 2, alices))).toBeUndefined();
    for (const token of [
      encodeTimelineToken("home", BOB, tid(100)),
      encodeTimelineToken("user", ALICE, tid(100)),
      bobs,
      "not a token",
      `${alices}A`,
      alices.slice(0, -1),
    ]) {
      expect(await codeOf(t.home(ALICE, 2, token)), token).toBe(Code.InvalidArgument);
    }
  });

  it("is Unauthenticated without a caller", async () => {
    const t = setUp(new World());
    expect(await codeOf(t.home(undefined, 20))).toBe(Code.Unauthenticated);
  });
});

describe("GetUserTimeline (in memory)", () => {
  it("pages through a user's live tweets, newest first, with tokens bound to that user", async () => {
    const world = new World();
    const bob = world.posts(BOB, 9, 10, 10);
    world.posts(CAROL, 3, 11, 10);
    world.delete(bob[3]!.id);
    world.like(ALICE, bob[8]!.id);
    const t = setUp(world);
    const seen: bigint[] = [];
    let token = "";
    do {
      const res = await t.userTimeline(ALICE, BOB, 4, token);
      seen.push(...res.tweets.map((x) => x.id));
      if (res.tweets[0]?.id === bob[8]!.id) expect(res.tweets[0].likedByViewer).toBe(true);
      token = res.nextPageToken;
      if (token !== "") expect(await codeOf(t.userTimeline(ALICE, CAROL, 4, token))).toBe(Code.InvalidArgument);
    } while (token !== "");
    expect(seen).toEqual(world.liveIdsOf(BOB).sort(desc));
  });

  it("shows one's own newest tweet at once; others read replicas, which may lag", async () => {
    const world = new World();
    const old = world.posts(BOB, 2, 10, 10);
    world.replicaHorizon = old.at(-1)!.id;
    const fresh = world.post(BOB, tid(100));
    const t = setUp(world);
    expect((await t.userTimeline(BOB, BOB, 20)).tweets.map((x) => x.id)).toEqual([fresh.id, old[1]!.id, old[0]!.id]);
    expect((await t.userTimeline(ALICE, BOB, 20)).tweets.map((x) => x.id)).toEqual([old[1]!.id, old[0]!.id]);
  });

  it("is NotFound for a user who does not exist, and empty for one who has not posted", async () => {
    const t = setUp(new World());
    expect(await codeOf(t.userTimeline(ALICE, 999n, 20))).toBe(Code.NotFound);
    const res = await t.userTimeline(ALICE, CAROL, 20);
    expect(res.tweets).toEqual([]);
    expect(res.nextPageToken).toBe("");
  });
});
