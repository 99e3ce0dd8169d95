// SearchTweets in memory: the real routes, query parser, analysis, fan-out
// and page tokens over a connect router transport. The index (SearchStore's
// searchShard: every term a posting, every phrase in the body, below the
// cursor, newest first) is an in-memory stand-in over documents made by the
// real analyzeTweet; the user and tweet services are fake handlers on the
// same router. The SQL is in test/integration/search*.test.ts, the whole path
// in test/e2e. GetTrends needs Redis (trends.ts talks to it directly): only
// its answer without Redis is checked here.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport, type ServiceImpl } from "@connectrpc/connect";
import { pino } from "pino";
import { Counter, Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { SearchService } from "../../gen/chirp/search/v1/search_service_pb.js";
import { TweetSchema } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { UserSchema } from "../../gen/chirp/user/v1/user_pb.js";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import { firstIdAt, ID_EPOCH_MS } from "../../lib/ids.js";
import type { MeshClients } from "../../lib/rpc/mesh-clients.js";
import { CALLER_ID_HEADER } from "../../lib/rpc/metadata.js";
import type { ShardRef, ShardRouter } from "../../lib/shard/router.js";
import { analyzeTweet } from "./analyze.js";
import type { SearchConfig } from "./config.js";
import type { SearchContext } from "./context.js";
import type { FanOutOptions } from "./fan-out.js";
import { MAX_QUERY_TERMS } from "./query.js";
import { routes } from "./routes.js";
import type { Hit, SearchStore, ShardQuery } from "./store.js";
import { codeOf, memoryShardRouter } from "../../lib/testing/in-memory.js";

// The hash vindex puts users 1 and 2 on -80 and 4 on 80-: Carol's tweets live on the other tweet shard.
const HANDLES = new Map([
  ["alice", 1n],
  ["bob", 2n],
  ["carol", 4n],
]);
const ALICE = 1n;
const BOB = 2n;
const CAROL = 4n;

const tid = (ms: number): bigint => firstIdAt(ID_EPOCH_MS + ms);
const desc = (a: bigint, b: bigint): number => (a < b ? 1 : a > b ? -1 : 0);



interface StoredTweet {
  readonly id: bigint;
  readonly authorId: bigint;
  readonly text: string;
  readonly hashtags: readonly string[];
  readonly mentions: readonly bigint[];
  deleted: boolean;
}

/** The tweets (the tweet service's truth) and the index built from them by the real analysis. */
class World {
  readonly tweets = new Map<bigint, StoredTweet>();
  readonly docs = new Map<bigint, { authorId: bigint; body: string; terms: Set<string> }>();
  /** Whom each user has a block with, either way (lib/relations.ts). */
  readonly blocks = new Map<bigint, Set<bigint>>();
  /** Index shards that fail every query. */
  readonly failingIndexShards = new Set<string>();
  /** Tweet shards (by author) whose BatchGetTweets is Unavailable. */
  readonly failingTweetShards = new Set<string>();

  constructor(readonly router: ShardRouter) {}

  post(authorId: bigint, ms: number, text: string, extra: { hashtags?: string[]; mentions?: bigint[] } = {}): bigint {
    const id = tid(ms);
    const tweet = { id, authorId, text, hashtags: extra.hashtags ?? [], mentions: extra.mentions ?? [], deleted: false };
    this.tweets.set(id, tweet);
    const doc = analyzeTweet(tweet);
    this.docs.set(id, { authorId, body: doc.body, terms: new Set(doc.terms) });
    return id;
  }

  /** Deleted at the tweet service; the index has not heard yet (its event is on the way). */
  deleteUnindexed(id: bigint): void {
    this.tweets.get(id)!.deleted = true;
  }

  store(): SearchStore {
    const searchShard = async (ref: ShardRef, q: ShardQuery): Promise<Hit[]> => {
      const shard = typeof ref === "string" ? ref : ref.name;
      if (this.failingIndexShards.has(shard)) throw new Error(`shard ${shard}: connection lost`);
      return [...this.docs]
        .filter(([id]) => this.router.shardForUser(id).name === shard)
        .filter(([id, d]) => q.terms.every((t) => d.terms.has(t)) && q.needles.every((n) => d.body.includes(n)) && (q.before === undefined || id < q.before))
        .sort(([a], [b]) => desc(a, b))
        .slice(0, q.limit)
        .map(([tweetId, d]) => ({ tweetId, authorId: d.authorId }));
    };
    return { searchShard } as Partial<SearchStore> as SearchStore;
  }
}

function meshImpls(world: World) {
  const user: Partial<ServiceImpl<typeof UserService>> = {
    async getUser(req) {
      const handle = req.lookup.case === "handle" ? req.lookup.value : "";
      const id = HANDLES.get(handle.toLowerCase());
      if (id === undefined) throw new ConnectError("user not found", Code.NotFound);
      return { user: create(UserSchema, { id, handle }) };
    },
  };
  const tweet: Partial<ServiceImpl<typeof TweetService>> = {
    async batchGetTweets(req) {
      const ids = [...new Set(req.tweetIds)];
      const shards = new Set(ids.map((id) => world.router.shardForUser(world.tweets.get(id)!.authorId).name));
      for (const s of shards) if (world.failingTweetShards.has(s)) throw new ConnectError("tweet shard unavailable", Code.Unavailable);
      return {
        tweets: ids.flatMap((id) => {
          const t = world.tweets.get(id)!;
          return t.deleted ? [] : [create(TweetSchema, { id, authorId: t.authorId, text: t.text })];
        }),
      };
    },
  };
  return { user, tweet };
}

function setUp() {
  const router = memoryShardRouter();
  const world = new World(router);
  const impls = meshImpls(world);
  let searchImpl: Partial<ServiceImpl<typeof SearchService>> = {};
  const transport = createRouterTransport((r) => {
    r.service(UserService, impls.user);
    r.service(TweetService, impls.tweet);
    // Resolved per call: the routes are made once the clients exist.
    r.service(SearchService, {
      searchTweets: (req, hctx) => searchImpl.searchTweets!(req, hctx),
      getTrends: (req, hctx) => searchImpl.getTrends!(req, hctx),
    });
  });
  const clients = { user: createClient(UserService, transport), tweet: createClient(TweetService, transport) } as unknown as MeshClients;
  const registry = new Registry();
  const log = pino({ level: "silent" });
  // Long deadlines: nothing here is slow, and no test depends on a timer.
  const search = { shardTimeoutMs: 60_000, hydrateTimeoutMs: 60_000 } as SearchConfig;
  const fanOut: FanOutOptions = { router, store: world.store(), timeoutMs: search.shardTimeoutMs, log };
  searchImpl = routes({
    router,
    clients,
    log,
    search,
    fanOut,
    trends: undefined,
    relations: {
      get: async (id: bigint) => ({ blocks: world.blocks.get(id) ?? new Set<bigint>(), mutes: new Set<bigint>() }),
    },
    searchMetrics: {
      queries: new Counter({ name: "q", help: "q", labelNames: ["result"], registers: [registry] }),
      terms: new Histogram({ name: "t", help: "t", registers: [registry] }),
    },
  } as unknown as SearchContext);
  const client = createClient(SearchService, transport);
  return {
    world,
    search: (query: string, pageSize = 20, pageToken = "", caller?: bigint) =>
      client.searchTweets({ query, pageSize, pageToken }, caller === undefined ? {} : { headers: { [CALLER_ID_HEADER]: String(caller) } }),
    trends: () => client.getTrends({}),
    /** Every page of `query`, `pageSize` at a time. */
    async allPages(query: string, pageSize: number): Promise<bigint[][]> {
      const pages: bigint[][] = [];
      let token = "";
      do {
        const res = await this.search(query, pageSize, token);
        expect(res.partial).toBe(false);
        pages.push(res.tweets.map((t) => t.id));
        token = res.nextPageToken;
      } while (token !== "" && pages.length < 50);
      expect(token).toBe("");
      return pages;
    },
  };
}

const ids = (res: { tweets: { id: bigint }[] }): bigint[] => res.tweets.map((t) => t.id);


describe("SearchTweets (in memory)", () => {
  it("leaves out, for a signed-in caller, the tweets of users they have a block with (either way), paging on past them", async () => {
    const t = setUp();
    const bob = [t.world.post(BOB, 10, "blocked words"), t.world.post(BOB, 30, "blocked words")];
    const carol = [t.world.post(CAROL, 20, "blocked words"), t.world.post(CAROL, 40, "blocked words")];
    t.world.blocks.set(ALICE, new Set([BOB]));
    expect(ids(await t.search("blocked words"))).toEqual([carol[1], bob[1], carol[0], bob[0]]);
    expect(ids(await t.search("blocked words", 20, "", ALICE))).toEqual([carol[1], carol[0]]);
    // A page of one: full pages past Bob's tweets, then the end.
    const first = await t.search("blocked words", 1, "", ALICE);
    expect(ids(first)).toEqual([carol[1]]);
    const second = await t.search("blocked words", 1, first.nextPageToken, ALICE);
    expect(ids(second)).toEqual([carol[0]]);
  });

  it("finds every word whatever its case and accents, newest first, hydrated", async () => {
    const t = setUp();
    const a = t.world.post(BOB, 10, "Crème brûlée at the café");
    const b = t.world.post(CAROL, 20, "CREME BRULEE again");
    t.world.post(ALICE, 30, "creme only");
    t.world.post(ALICE, 40, "nothing here");
    const res = await t.search("Creme Brulee");
    expect(ids(res)).toEqual([b, a]);
    expect(res.tweets.map((x) => x.text)).toEqual(["CREME BRULEE again", "Crème brûlée at the café"]);
    expect([res.nextPageToken, res.partial, res.unavailableShards]).toEqual(["", false, []]);
  });

  it("a hashtag matches the tag, not the bare word; the bare word matches both", async () => {
    const t = setUp();
    const tagged = t.world.post(BOB, 10, "#Rust is fun", { hashtags: ["Rust"] });
    const word = t.world.post(CAROL, 20, "rust on my bike");
    expect(ids(await t.search("#rust"))).toEqual([tagged]);
    expect(ids(await t.search("#RUST"))).toEqual([tagged]);
    expect(ids(await t.search("rust"))).toEqual([word, tagged]);
  });

  it("@handle matches mentions of that user, from:handle their tweets; an unknown handle matches nothing", async () => {
    const t = setUp();
    const mention = t.world.post(ALICE, 10, "hello @Bob", { mentions: [BOB] });
    const own = t.world.post(BOB, 20, "bob here, hello");
    // The word "bob" is not a mention.
    t.world.post(CAROL, 30, "hello bob");
    expect(ids(await t.search("@bob"))).toEqual([mention]);
    expect(ids(await t.search("@BOB hello"))).toEqual([mention]);
    expect(ids(await t.search("from:Bob"))).toEqual([own]);
    expect(ids(await t.search("from:alice @bob"))).toEqual([mention]);
    for (const q of ["@nobody", "from:nobody", "from:bob @nobody hello"]) {
      const res = await t.search(q);
      expect([ids(res), res.nextPageToken], q).toEqual([[], ""]);
    }
  });

  it("a quoted phrase, or a word of several tokens, matches those tokens adjacent and in order", async () => {
    const t = setUp();
    const ny = t.world.post(BOB, 10, "New York pizza");
    const reversed = t.world.post(BOB, 20, "york is new");
    t.world.post(BOB, 30, "new yorkers");
    const email = t.world.post(CAROL, 40, "send an e-mail");
    t.world.post(CAROL, 50, "e and mail");
    expect(ids(await t.search(`"new york"`))).toEqual([ny]);
    expect(ids(await t.search(`new york`))).toEqual([reversed, ny]);
    expect(ids(await t.search(`e-mail`))).toEqual([email]);
    expect(ids(await t.search(`"e mail" send`))).toEqual([email]);
  });

  it("pages with tokens, every match once, newest first; a token serves any query that parses alike and no other", async () => {
    const t = setUp();
    const matching = Array.from({ length: 12 }, (_, i) => t.world.post(i % 2 === 0 ? BOB : CAROL, 10 + i, `café ${i} #Rust`, { hashtags: ["Rust"] }));
    t.world.post(ALICE, 100, "café without the tag");
    for (const size of [1, 5, 12, 13]) expect((await t.allPages("Café #Rust", size)).flat()).toEqual([...matching].sort(desc));

    const first = await t.search("Café  #Rust", 5);
    expect(first.tweets).toHaveLength(5);
    const second = await t.search("#rust cafe", 5, first.nextPageToken);
    expect(ids(second)).toEqual([...matching].sort(desc).slice(5, 10));
    for (const [query, token] of [
      ["cafe", first.nextPageToken],
      ["#rust", first.nextPageToken],
      ["Café #Rust", "not-a-token"],
      ["Café #Rust", `${first.nextPageToken}A`],
      ["Café #Rust", first.nextPageToken.slice(0, -1)],
    ] as const) {
      expect(await codeOf(t.search(query, 5, token)), `${query} ${token}`).toBe(Code.InvalidArgument);
    }
  });

  it("leaves out tweets deleted since they were indexed and reads on to fill the page", async () => {
    const t = setUp();
    const matching = Array.from({ length: 10 }, (_, i) => t.world.post(BOB, 10 + i, `sale ${i}`));
    const newest = [...matching].sort(desc);
    for (const id of newest.slice(1, 4)) t.world.deleteUnindexed(id);
    const live = newest.filter((id) => !t.world.tweets.get(id)!.deleted);

    const first = await t.search("sale", 5);
    expect(ids(first)).toEqual(live.slice(0, 5));
    expect((await t.allPages("sale", 3)).flat()).toEqual(live);
  });

  it("answers without an index shard that fails: partial, naming it, and pages on", async () => {
    const t = setUp();
    const matching = Array.from({ length: 16 }, (_, i) => t.world.post(i % 2 === 0 ? BOB : CAROL, 10 + i, `hello ${i}`));
    const onShard = (name: string) => matching.filter((id) => t.world.router.shardForUser(id).name === name).sort(desc);
    expect(onShard("80-").length).toBeGreaterThan(0);
    expect(onShard("-80").length).toBeGreaterThan(3);
    t.world.failingIndexShards.add("80-");

    const res = await t.search("hello", 3);
    expect(ids(res)).toEqual(onShard("-80").slice(0, 3));
    expect([res.partial, res.unavailableShards]).toEqual([true, ["80-"]]);
    expect(res.nextPageToken).not.toBe("");
    t.world.failingIndexShards.clear();
    const next = await t.search("hello", 3, res.nextPageToken);
    expect(ids(next)).toEqual(matching.filter((id) => id < onShard("-80")[2]!).sort(desc).slice(0, 3));
    expect(next.partial).toBe(false);
  });

  it("is Unavailable when every index shard fails, not an empty page that looks like no matches", async () => {
    const t = setUp();
    t.world.post(BOB, 10, "hello there");
    for (const s of t.world.router.shards()) t.world.failingIndexShards.add(s.name);
    expect(await codeOf(t.search("hello"))).toBe(Code.Unavailable);
    t.world.failingIndexShards.clear();
    expect((await t.search("hello")).tweets).toHaveLength(1);
  });

  it("answers without the tweets of a tweet shard that cannot be loaded (partial); Unavailable when none can", async () => {
    const t = setUp();
    const bobs = [t.world.post(BOB, 10, "news one"), t.world.post(BOB, 30, "news three")];
    t.world.post(CAROL, 20, "news two");
    t.world.failingTweetShards.add(t.world.router.shardForUser(CAROL).name);

    const res = await t.search("news");
    expect(ids(res)).toEqual([bobs[1], bobs[0]]);
    expect([res.partial, res.unavailableShards]).toEqual([true, [t.world.router.shardForUser(CAROL).name]]);

    t.world.failingTweetShards.add(t.world.router.shardForUser(BOB).name);
    expect(await codeOf(t.search("news"))).toBe(Code.Unavailable);
  });

  it("refuses a query with nothing to match, or with too many terms: InvalidArgument", async () => {
    const t = setUp();
    t.world.post(BOB, 10, "anything");
    for (const q of ["   ", "#", "@", "from:", `""`, "% * .*"]) expect(await codeOf(t.search(q)), q).toBe(Code.InvalidArgument);
    const words = Array.from({ length: MAX_QUERY_TERMS + 1 }, (_, i) => `w${i}`);
    expect(await codeOf(t.search(words.join(" ")))).toBe(Code.InvalidArgument);
    expect(await codeOf(t.search(words.slice(1).join(" ")))).toBeUndefined();
  });
});

describe("GetTrends (in memory)", () => {
  it("is Unavailable without Redis", async () => {
    expect(await codeOf(setUp().trends())).toBe(Code.Unavailable);
  });
});
