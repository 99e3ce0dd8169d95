// Timeline pages hydrated from the caches in the timeline service
// (services/timeline/hydrate.ts; the notification inbox and search results
// too, lib/cached-tweets.ts) against the same pages hydrated by the tweet
// service (BatchGetTweets): with the system as `npm start` runs it, a page is
// read once with one of its tweets taken out of the tweet cache (so the batch
// goes to the tweet service, which fills the caches again) and then again
// (from the caches alone); the timeline's own counter says which path each
// read took, and the two answers must be the same, field for field: likes
// and reposts by the reader and by others, reposts (one of a deleted
// original), quotes (one of a deleted tweet), a reply, a deleted tweet, an
// author's changed profile, a reader with no token.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Mesh } from "../../devcluster/launch.js";
import { eventually } from "../support/eventually.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { gatewayApi, type Account } from "./support/api.js";

let system: TestSystem;
let mesh: Mesh;
let redis: Redis;

beforeAll(async () => {
  system = await startSystem({});
  mesh = system.mesh;
  redis = new Redis(system.infra.redisUrl, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  redis?.disconnect();
  await system?.stop();
});

interface ApiTweet {
  id: string;
  authorId: string;
  likeCount?: number;
  likedByViewer?: boolean;
  repostedByViewer?: boolean;
  repostedBy?: { id: string };
  quoteTweet?: ApiTweet;
}

const { ok, signUpMany } = gatewayApi(() => mesh.gatewayUrl, "hy");
const T = "chirp.tweet.v1.TweetService";
const TL = "chirp.timeline.v1.TimelineService";
const post = async (who: Account, body: Record<string, unknown>): Promise<string> => (await ok<{ tweet: ApiTweet }>(`${T}/PostTweet`, body, who.token)).tweet.id;
const home = async (who: Account): Promise<ApiTweet[]> => (await ok<{ tweets?: ApiTweet[] }>(`${TL}/GetHomeTimeline`, { pageSize: 50 }, who.token)).tweets ?? [];
const userTimeline = async (of: Account, who?: Account): Promise<ApiTweet[]> =>
  (await ok<{ tweets?: ApiTweet[] }>(`${TL}/GetUserTimeline`, { userId: String(of.id), pageSize: 50 }, who?.token)).tweets ?? [];

/** The sum of one counter's series whose labels include `labels`, from the one process's metrics. */
async function counter(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${mesh.services.timeline.metricsPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) if (line.startsWith(`${name}{`) && line.includes(labels)) sum += Number(line.split(" ").at(-1));
  return sum;
}

/** chirp_timeline_hydrations_total{source} of the one process. */
const hydrations = (source: "cache" | "tweet_service"): Promise<number> => counter("chirp_timeline_hydrations_total", `source="${source}"`);

/** A page read by the tweet service (one of its tweets evicted first) and then from the caches: both must be the same. */
async function sameBothWays(read: () => Promise<ApiTweet[]>, evict: string): Promise<ApiTweet[]> {
  await redis.del(`chirp:tweet:{${evict}}`);
  const [service0, cache0] = [await hydrations("tweet_service"), await hydrations("cache")];
  const viaService = await read();
  expect([(await hydrations("tweet_service")) - service0, (await hydrations("cache")) - cache0]).toEqual([1, 0]);
  const viaCaches = await read();
  expect([(await hydrations("tweet_service")) - service0, (await hydrations("cache")) - cache0]).toEqual([1, 1]);
  expect(viaCaches).toEqual(viaService);
  return viaCaches;
}

describe("timeline pages from the caches", () => {
  it("are the tweet service's pages, field for field", async () => {
    const [alice, bob, carol, dave] = await signUpMany(4);
    for (const whom of [bob!, carol!]) await ok("chirp.graph.v1.GraphService/Follow", { userId: String(whom.id) }, alice!.token);

    const b1 = await post(bob!, { text: "b1 #hydration https://example.com/b1" });
    const b2 = await post(bob!, { text: `b2 for @${carol!.handle}` });
    const c1 = await post(carol!, { text: "c1 quotes b1", quoteTweetId: b1 });
    const d1 = await post(dave!, { text: "d1" });
    const d2 = await post(dave!, { text: "d2, soon gone" });
    const c2 = await post(carol!, { text: "c2 quotes d2", quoteTweetId: d2 });
    for (const id of [d1, d2]) await ok(`${T}/Repost`, { tweetId: id }, carol!.token);
    await ok(`${T}/DeleteTweet`, { tweetId: d2 }, dave!.token);
    const b3 = await post(bob!, { text: "b3 replies to c1", replyToTweetId: c1 });
    const b4 = await post(bob!, { text: "b4, soon gone" });
    await ok(`${T}/DeleteTweet`, { tweetId: b4 }, bob!.token);
    await ok(`${T}/LikeTweet`, { tweetId: b1 }, alice!.token);
    await ok(`${T}/LikeTweet`, { tweetId: b2 }, carol!.token);
    await ok(`${T}/LikeTweet`, { tweetId: d1 }, dave!.token);
    await ok(`${T}/Repost`, { tweetId: c1 }, alice!.token);
    await ok("chirp.user.v1.UserService/UpdateProfile", { displayName: "Carol, renamed" }, carol!.token);

    const expected = [c1, b3, d1, c2, b2, b1];
    // Fan-out is asynchronous: wait until Alice's home shows everything it will (c1 first: her own repost of it is her newest entry).
    await eventually("Alice's home shows every tweet", async () => JSON.stringify((await home(alice!)).map((t) => t.id)) === JSON.stringify(expected));

    const page = await sameBothWays(() => home(alice!), b2);
    expect(page.map((t) => t.id)).toEqual(expected);
    const byId = new Map(page.map((t) => [t.id, t]));
    expect(byId.get(b1)).toMatchObject({ likedByViewer: true, likeCount: 1 });
    expect(byId.get(b2)).toMatchObject({ likeCount: 1 });
    expect(byId.get(b2)!.likedByViewer ?? false).toBe(false);
    expect(byId.get(c1)).toMatchObject({ repostedByViewer: true, quoteTweet: { id: b1, likedByViewer: true }, repostedBy: { id: String(alice!.id) } });
    expect(byId.get(c2)!.quoteTweet).toBeUndefined();
    expect(byId.get(d1)).toMatchObject({ repostedBy: { id: String(carol!.id) }, likeCount: 1 });

    // Carol's own page as Alice sees it, as she sees it, and without a token; the repost's original evicted this time.
    for (const reader of [alice, carol, undefined]) await sameBothWays(() => userTimeline(carol!, reader), d1);
    // Bob's, with the quoted tweet evicted (only a quote names it on this page).
    await sameBothWays(() => userTimeline(bob!, alice), b1);
  });

  it("a like by someone else moves the tweet's version: the reader's next page asks the tweet service, then the caches again", async () => {
    const [erin, frank, gina] = await signUpMany(3);
    await ok("chirp.graph.v1.GraphService/Follow", { userId: String(frank!.id) }, erin!.token);
    const f1 = await post(frank!, { text: "f1" });
    await eventually("Erin's home shows f1", async () => (await home(erin!))[0]?.id === f1);
    await home(erin!);
    const before = [await hydrations("tweet_service"), await hydrations("cache")];
    await ok(`${T}/LikeTweet`, { tweetId: f1 }, gina!.token);
    // Erin's like state of f1 is known only at its old version: this read asks the tweet service.
    expect((await home(erin!))[0]).toMatchObject({ id: f1, likeCount: 1 });
    // Her own like is written at its new version by the call itself: her next read is from the caches, and shows it.
    await ok(`${T}/LikeTweet`, { tweetId: f1 }, erin!.token);
    expect((await home(erin!))[0]).toMatchObject({ id: f1, likeCount: 2, likedByViewer: true });
    expect([(await hydrations("tweet_service")) - before[0]!, (await hydrations("cache")) - before[1]!]).toEqual([1, 1]);
  });

  it("the notification inbox and search results are the same from the caches as from the tweet service", async () => {
    const [hana, ivan] = await signUpMany(2);
    const word = `hydr${process.pid % 10_000}x${Date.now() % 100_000}`;
    const h1 = await post(hana!, { text: `${word} first` });
    const h2 = await post(hana!, { text: `${word} second, for @${ivan!.handle}` });
    await ok(`${T}/LikeTweet`, { tweetId: h1 }, ivan!.token);
    const inbox = async (who: Account): Promise<unknown[]> =>
      (await ok<{ notifications?: unknown[] }>("chirp.notification.v1.NotificationService/ListNotifications", { pageSize: 50 }, who.token)).notifications ?? [];
    const search = async (): Promise<unknown[]> =>
      (await ok<{ tweets?: unknown[] }>("chirp.search.v1.SearchService/SearchTweets", { query: word, pageSize: 50 }, ivan!.token)).tweets ?? [];
    // The events are handled after the calls return: wait for the like's notification, the mention's and both search hits.
    await eventually("the inboxes and the index have caught up", async () => (await inbox(hana!)).length === 1 && (await inbox(ivan!)).length === 1 && (await search()).length === 2);
    const peeks = async (): Promise<[number, number]> => [
      await counter("chirp_tweet_cache_reads_total", 'result="peek_miss"'),
      await counter("chirp_tweet_cache_reads_total", 'result="peek_hit"'),
    ];
    for (const read of [() => inbox(hana!), () => inbox(ivan!), search]) {
      await redis.del(`chirp:tweet:{${h1}}`, `chirp:tweet:{${h2}}`);
      const [miss0] = await peeks();
      const viaService = await read();
      const [miss1, hit1] = await peeks();
      // The caches were looked into, lacked a tweet, and the tweet service answered (and filled them).
      expect(miss1).toBeGreaterThan(miss0);
      // The tweet service's own reads of the cache (result "hit"): none for the second read, served from the caches alone.
      const serviceHits = await counter("chirp_tweet_cache_reads_total", 'result="hit"');
      const viaCaches = await read();
      const [miss2, hit2] = await peeks();
      expect([miss2 - miss1, hit2 > hit1]).toEqual([0, true]);
      expect(await counter("chirp_tweet_cache_reads_total", 'result="hit"')).toBe(serviceHits);
      expect(viaCaches).toEqual(viaService);
    }
  });
});
