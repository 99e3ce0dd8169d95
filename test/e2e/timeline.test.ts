// Timelines through the gateway, with the whole mesh as `npm start` runs it
// (private cluster, every service process, the gateway): users sign up, follow,
// post, like and delete through the public API with their tokens, and read
// their timelines and live events the way a browser would (Connect JSON over
// HTTP/1.1, server streaming through fetch). Redis is looked at to show where
// an entry is (or is not), and flushed to show nothing is lost; the timeline
// service's own metrics show which path a read took and the open streams.
//
// Small limits make every path reachable with a few tweets: a home list keeps
// 30 entries (older pages continue from MySQL), a hot author's recent list 10,
// an author with more than 3 followers is hot, a list not read for 8 s expires.
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect as connectNats, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TimelineService, type StreamEventsResponse } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { EVENT_STREAM } from "../../lib/events/subjects.js";
import { parseNatsUrl } from "../../lib/events/nats-url.js";
import type { Mesh } from "../../devcluster/launch.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { entryMember } from "../../services/timeline/entries.js";
import { FANOUT_DURABLE, GRAPH_DURABLE } from "../../services/timeline/fan-out.js";
import { KEYS } from "../../services/timeline/lists.js";
import { eventually, withTimeout } from "../support/eventually.js";
import { fetchKeepingAbort } from "../support/fetch.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { gatewayApi, type Account, type Answer } from "./support/api.js";

const MAX_ENTRIES = 30;
const RECENT_ENTRIES = 10;
const HOT_FOLLOWERS = 3;
const INACTIVE_MS = 8000;

let system: TestSystem;
let mesh: Mesh;
let router: ShardRouter;
let redis: Redis;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  system = await startSystem({
    env: {
      CHIRP_TIMELINE_MAX_ENTRIES: String(MAX_ENTRIES),
      CHIRP_TIMELINE_RECENT_ENTRIES: String(RECENT_ENTRIES),
      CHIRP_TIMELINE_HOT_FOLLOWERS: String(HOT_FOLLOWERS),
      CHIRP_TIMELINE_INACTIVE_MS: String(INACTIVE_MS),
      CHIRP_TIMELINE_STREAM_KEEPALIVE_MS: "500",
    },
  });
  ({ mesh, router } = system);
  redis = new Redis(system.infra.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
  nc = await connectNats(parseNatsUrl(system.infra.natsUrl));
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  redis?.disconnect();
  await system?.stop();
});

// --- the public API -------------------------------------------------------

interface ApiTweet {
  id: string;
  authorId: string;
  text: string;
  likedByViewer: boolean;
  repostedBy?: { handle: string };
}

const { call, ok, signUp, signUpMany } = gatewayApi(() => mesh.gatewayUrl, "l");

const T = "chirp.tweet.v1.TweetService";
const TL = "chirp.timeline.v1.TimelineService";
const follow = (who: Account, whom: Account) => ok("chirp.graph.v1.GraphService/Follow", { userId: String(whom.id) }, who.token);
const unfollow = (who: Account, whom: Account) => ok("chirp.graph.v1.GraphService/Unfollow", { userId: String(whom.id) }, who.token);
const post = async (who: Account, text: string): Promise<ApiTweet> => (await ok<{ tweet: ApiTweet }>(`${T}/PostTweet`, { text }, who.token)).tweet;
const del = (who: Account, id: string) => ok(`${T}/DeleteTweet`, { tweetId: id }, who.token);
const like = (who: Account, id: string) => ok(`${T}/LikeTweet`, { tweetId: id }, who.token);

interface Page {
  tweets: ApiTweet[];
  nextPageToken: string;
}
const home = (who: Account, pageSize = 0, pageToken = "") => call<Page>(`${TL}/GetHomeTimeline`, { pageSize, pageToken }, who.token);
const userTimeline = (of: Account, pageSize = 0, pageToken = "", who?: Account) =>
  call<Page>(`${TL}/GetUserTimeline`, { userId: String(of.id), pageSize, pageToken }, who?.token);

/** Every page of a timeline, in order. */
async function allPages(read: (token: string) => Promise<Answer<Page>>): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let token = "";
  let pages = 0;
  do {
    const res = await read(token);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    ids.push(...res.body.tweets.map((t) => t.id));
    token = res.body.nextPageToken;
    pages++;
  } while (token !== "" && pages < 500);
  return { ids, pages };
}

const homeIds = async (who: Account, pageSize = 100): Promise<string[]> => (await allPages((t) => home(who, pageSize, t))).ids;

const newestFirst = (ids: readonly string[]): string[] => [...ids].sort((a, b) => (BigInt(a) < BigInt(b) ? 1 : BigInt(a) > BigInt(b) ? -1 : 0));

// --- what the services did ------------------------------------------------------

/** Waits until the authors' events are published and both timeline consumers have handled everything. */
async function settled(...authors: Account[]): Promise<void> {
  await expect
    .poll(
      async () => {
        for (const a of authors) {
          const [row] = await router
            .primaryForUser(a.id)
            .query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.outbox WHERE user_id = ? AND sent_time IS NULL", [a.id]);
          if (Number(row!.n) > 0) return false;
        }
        for (const durable of [FANOUT_DURABLE, GRAPH_DURABLE]) {
          const info = await jsm.consumers.info(EVENT_STREAM, durable);
          if (info.num_pending > 0 || info.num_ack_pending > 0) return false;
        }
        return true;
      },
      { timeout: 15_000, interval: 50 },
    )
    .toBe(true);
}

async function metric(name: string, labels = ""): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${mesh.services.timeline.metricsPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (m === null || m[1] !== name || !(m[2] ?? "").includes(labels)) continue;
    sum += Number(m[3]);
  }
  return sum;
}

async function inRedisList(key: string, tweet: ApiTweet): Promise<boolean> {
  return (await redis.zscore(key, entryMember({ id: BigInt(tweet.id), authorId: BigInt(tweet.authorId) }))) !== null;
}

// ---------------------------------------------------------------------------

describe("GetHomeTimeline and GetUserTimeline", () => {
  it("home is the caller's own tweets and those of whom they follow, newest first; a user timeline is one user's", async () => {
    const [reader, b, c, stranger] = (await signUpMany(4)) as [Account, Account, Account, Account];
    await follow(reader, b);
    await follow(reader, c);
    expect((await home(reader)).body).toEqual({ tweets: [], nextPageToken: "" });
    const mine: ApiTweet[] = [];
    for (let i = 0; i < 4; i++) {
      for (const who of [b, c, reader, stranger]) mine.push(await post(who, `${who.handle} says ${i}`));
    }
    const expected = newestFirst(mine.filter((t) => t.authorId !== String(stranger.id)).map((t) => t.id));
    await expect.poll(() => homeIds(reader), { timeout: 5000 }).toEqual(expected);

    const page = (await home(reader, 5)).body;
    expect(page.tweets.map((t) => t.id)).toEqual(expected.slice(0, 5));
    expect(page.tweets[0]).toMatchObject({ author: { handle: expect.any(String) }, likedByViewer: false });
    expect(page.nextPageToken).not.toBe("");

    const own = await allPages((t) => userTimeline(b, 3, t));
    expect(own.ids).toEqual(newestFirst(mine.filter((t) => t.authorId === String(b.id)).map((t) => t.id)));
    expect(own.pages).toBe(2);
  });

  it("answers Unauthenticated without a token, InvalidArgument for a bad or someone else's token, NotFound for an unknown user", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    for (let i = 0; i < 3; i++) await post(a, `t${i}`);
    expect((await call(`${TL}/GetHomeTimeline`, {})).code).toBe("unauthenticated");
    const token = (await home(a, 1)).body.nextPageToken;
    expect(token).not.toBe("");
    expect((await home(a, 1, token)).status).toBe(200);
    expect((await home(b, 1, token)).code).toBe("invalid_argument");
    expect((await home(a, 1, "not-a-token")).code).toBe("invalid_argument");
    expect((await home(a, 1, (await userTimeline(a, 1)).body.nextPageToken)).code).toBe("invalid_argument");
    expect((await home(a, 101)).code).toBe("invalid_argument");
    expect((await userTimeline({ ...a, id: 123_456_789n })).code).toBe("not_found");
    expect((await userTimeline(b)).body).toEqual({ tweets: [], nextPageToken: "" });
  });

  it("pages are disjoint and complete while new tweets arrive, past the end of the Redis list into MySQL", async () => {
    const [reader, b, c] = (await signUpMany(3)) as [Account, Account, Account];
    await follow(reader, b);
    await follow(reader, c);
    await homeIds(reader);
    const posted: ApiTweet[] = [];
    for (let i = 0; i < 40; i++) posted.push(await post(i % 3 === 0 ? c : b, `older ${i}`));
    posted.push(await post(reader, "mine"));
    await settled(b, c, reader);
    await home(reader, 1);
    expect(await redis.zcard(KEYS.home(reader.id))).toBe(MAX_ENTRIES + 1); // the newest 30 and the sentinel

    const deepBefore = await metric("chirp_timeline_home_pages_total", 'source="redis_mysql"');
    // Writers keep posting while the reader pages, 7 at a time.
    let writing = true;
    const newer: ApiTweet[] = [];
    const writer = (async () => {
      for (let i = 0; writing; i++) newer.push(await post(i % 2 === 0 ? b : c, `newer ${i}`));
    })();
    const homePages = await allPages((t) => home(reader, 7, t));
    const userPages = await allPages((t) => userTimeline(b, 7, t));
    writing = false;
    await writer;

    expect(newer.length).toBeGreaterThan(0);
    const firstId = BigInt(homePages.ids[0]!);
    const expected = newestFirst([...posted, ...newer].filter((t) => BigInt(t.id) <= firstId).map((t) => t.id));
    expect(homePages.ids).toEqual(expected);
    expect(new Set(homePages.ids).size).toBe(homePages.ids.length);
    expect(await metric("chirp_timeline_home_pages_total", 'source="redis_mysql"')).toBeGreaterThan(deepBefore);

    const firstOwn = BigInt(userPages.ids[0]!);
    expect(userPages.ids).toEqual(newestFirst([...posted, ...newer].filter((t) => t.authorId === String(b.id) && BigInt(t.id) <= firstOwn).map((t) => t.id)));
  });
});

describe("fan-out", () => {
  it("does not fan out a hot author's tweets; they are merged into each follower's home at read time", async () => {
    const [star, ...fans] = (await signUpMany(HOT_FOLLOWERS + 2)) as [Account, ...Account[]];
    const [fan, other] = fans as [Account, Account];
    for (const f of fans) await follow(f, star);
    await follow(fan, other);
    const starTweets: ApiTweet[] = [];
    for (let i = 0; i < RECENT_ENTRIES + 6; i++) starTweets.push(await post(star, `star ${i}`));
    const otherTweets = [await post(other, "not hot 1"), await post(other, "not hot 2")];
    await settled(star, other);

    expect(await redis.sismember(KEYS.hot, String(star.id))).toBe(1);
    expect(await metric("chirp_timeline_fanout_tweets_total", 'path="hot"')).toBeGreaterThanOrEqual(starTweets.length);
    // Read (which builds the fan's list), then post more: those are not in the fan's list, yet on their page.
    await homeIds(fan);
    const later = await post(star, "star later");
    const laterOther = await post(other, "other later");
    await settled(star, other);
    expect(await inRedisList(KEYS.home(fan.id), later)).toBe(false);
    expect(await inRedisList(KEYS.home(fan.id), laterOther)).toBe(true);

    const expected = newestFirst([...starTweets, later, ...otherTweets, laterOther].map((t) => t.id));
    // Small pages walk through the hot author's recent list (10 entries) and on into MySQL.
    expect((await allPages((t) => home(fan, 4, t))).ids).toEqual(expected);
    expect(await redis.zcard(KEYS.recent(star.id))).toBe(RECENT_ENTRIES + 1);
    // The other fans: the star's tweets (and, for the one who posts, their own).
    for (const f of fans) {
      expect(await homeIds(f)).toEqual(f === fan || f === other ? expected : newestFirst([...starTweets, later].map((t) => t.id)));
    }
  });

  it("merges a hot reposter's repost into each follower's home at read time, shown as the original with repostedBy", async () => {
    const [star, author, ...fans] = (await signUpMany(HOT_FOLLOWERS + 3)) as [Account, Account, ...Account[]];
    for (const f of fans) await follow(f, star);
    const t = await post(author, "passed on by a star");
    await post(star, "the star posts once, so the fan-out marks them hot");
    await settled(star, author);
    expect(await redis.sismember(KEYS.hot, String(star.id))).toBe(1);
    const fan = fans[0]!;
    await homeIds(fan); // the fan's list exists
    await ok(`${T}/Repost`, { tweetId: t.id }, star.token);
    await settled(star);
    // Not fanned out (the star is hot): on the page all the same, from the star's recent list.
    const page = (await home(fan, 20)).body.tweets;
    expect(page.filter((x) => x.id === t.id).map((x) => [x.authorId, x.repostedBy?.handle])).toEqual([[String(author.id), star.handle]]);
    await ok(`${T}/Unrepost`, { tweetId: t.id }, star.token);
    await settled(star);
    expect((await homeIds(fan)).includes(t.id)).toBe(false);
  });

  it("skips a follower inactive for the configured period; their next read rebuilds the timeline from MySQL", async () => {
    const [author, active, sleeper] = (await signUpMany(3)) as [Account, Account, Account];
    await follow(active, author);
    await follow(sleeper, author);
    const first = await post(author, "before the nap");
    await expect.poll(() => homeIds(sleeper)).toEqual([first.id]);
    await expect.poll(() => homeIds(active)).toEqual([first.id]);

    // The sleeper stops reading; the active follower keeps reading.
    const deadline = Date.now() + INACTIVE_MS + 1000;
    while (Date.now() < deadline) {
      await homeIds(active);
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(await redis.exists(KEYS.home(sleeper.id))).toBe(0);
    const skippedBefore = await metric("chirp_timeline_fanout_deliveries_total", 'result="skipped"');
    const rebuildsBefore = await metric("chirp_timeline_rebuilds_total", 'what="home",result="stored"');
    const second = await post(author, "while asleep");
    await settled(author);
    expect(await metric("chirp_timeline_fanout_deliveries_total", 'result="skipped"')).toBeGreaterThan(skippedBefore);
    expect(await redis.exists(KEYS.home(sleeper.id))).toBe(0);
    expect(await inRedisList(KEYS.home(active.id), second)).toBe(true);

    expect(await homeIds(sleeper)).toEqual([second.id, first.id]);
    expect(await metric("chirp_timeline_rebuilds_total", 'what="home",result="stored"')).toBeGreaterThan(rebuildsBefore);
    expect(await inRedisList(KEYS.home(sleeper.id), second)).toBe(true);
  });

  it("loses nothing when its Redis database is flushed: every timeline reads the same, rebuilt from MySQL", async () => {
    const [a, b, star, ...fans] = (await signUpMany(3 + HOT_FOLLOWERS + 1)) as [Account, Account, Account, ...Account[]];
    await follow(a, b);
    await follow(b, a);
    for (const f of [a, ...fans]) await follow(f, star);
    for (let i = 0; i < 45; i++) await post([a, b, star][i % 3]!, `before the flush ${i}`);
    await settled(a, b, star);
    const readers = [a, b, ...fans];
    const before = await Promise.all(readers.map((r) => homeIds(r, 9)));
    expect(before[0]!.length).toBe(45);

    await redis.flushdb();
    for (const [i, r] of readers.entries()) expect(await homeIds(r, 9)).toEqual(before[i]);
    expect(await redis.exists(KEYS.home(a.id))).toBe(1);
    // And fan-out goes on into the rebuilt lists.
    const after = await post(b, "after the flush");
    await settled(b);
    expect(await inRedisList(KEYS.home(a.id), after)).toBe(true);
    expect((await homeIds(a))[0]).toBe(after.id);
  });

  it("an unfollow takes the user's tweets out of the home timeline and keeps new ones out", async () => {
    const [reader, gone, kept] = (await signUpMany(3)) as [Account, Account, Account];
    await follow(reader, gone);
    await follow(reader, kept);
    const old = [await post(gone, "gone 1"), await post(kept, "kept 1"), await post(gone, "gone 2")];
    await expect.poll(() => homeIds(reader)).toEqual(newestFirst(old.map((t) => t.id)));

    await unfollow(reader, gone);
    await settled(reader);
    expect(await inRedisList(KEYS.home(reader.id), old[0]!)).toBe(false);
    expect(await homeIds(reader)).toEqual([old[1]!.id]);
    const newer = [await post(gone, "gone 3"), await post(kept, "kept 2")];
    await settled(gone, kept);
    expect(await homeIds(reader)).toEqual([newer[1]!.id, old[1]!.id]);

    // Following again brings them back, older ones included.
    await follow(reader, gone);
    await settled(reader);
    expect(await homeIds(reader)).toEqual(newestFirst([...old, ...newer].map((t) => t.id)));
  });

  it("a deleted tweet disappears from every timeline", async () => {
    const [author, f1, f2] = (await signUpMany(3)) as [Account, Account, Account];
    await follow(f1, author);
    await follow(f2, author);
    const keep = await post(author, "stays");
    const doomed = await post(author, "goes");
    await expect.poll(() => homeIds(f1)).toEqual([doomed.id, keep.id]);
    await expect.poll(() => homeIds(f2)).toEqual([doomed.id, keep.id]);

    await del(author, doomed.id);
    // At once (the read drops deleted tweets), and from the lists once the event is handled.
    for (const r of [f1, f2, author]) expect(await homeIds(r)).toEqual([keep.id]);
    expect((await allPages((t) => userTimeline(author, 1, t))).ids).toEqual([keep.id]);
    await settled(author);
    for (const r of [f1, f2, author]) expect(await inRedisList(KEYS.home(r.id), doomed)).toBe(false);
  });
});

describe("StreamEvents", () => {
  function timelineClient(): Client<typeof TimelineService> {
    // What a browser uses: Connect over fetch (HTTP/1.1), JSON.
    return createClient(TimelineService, createConnectTransport({ baseUrl: mesh.gatewayUrl, fetch: fetchKeepingAbort }));
  }

  /** Opens the caller's stream; resolves after its first message (a keepalive: the stream is registered). */
  async function open(who: Account) {
    const abort = new AbortController();
    const received: Array<{ msg: StreamEventsResponse }> = [];
    let ended: unknown = "open";
    let first!: () => void;
    const ready = new Promise<void>((r) => (first = r));
    const done = (async () => {
      try {
        for await (const msg of timelineClient().streamEvents({}, { signal: abort.signal, headers: { authorization: `Bearer ${who.token}` } })) {
          received.push({ msg });
          first();
        }
        ended = "ended";
      } catch (err) {
        ended = err;
      } finally {
        first();
      }
    })();
    await withTimeout("the stream's first message", 10_000, ready);
    /** Waits for an event of `kind` that `match` accepts among those received after the first `mark` messages. */
    const waitFor = (kind: string, mark: number, match: (m: StreamEventsResponse) => boolean = () => true): Promise<StreamEventsResponse> =>
      eventually(`a ${kind} event on the stream`, () => received.slice(mark).find((r) => r.msg.event.case === kind && match(r.msg))?.msg, { timeoutMs: 10_000, intervalMs: 10 });
    return { abort, received, waitFor, done, ended: () => ended };
  }

  // That each one arrives, not how fast: speed belongs in bench/ (no benchmark measures push latency yet).
  it("pushes new followers, home tweets, mentions and likes, through the gateway over HTTP/1.1", async () => {
    const [me, fan, friend, chatty] = (await signUpMany(4)) as [Account, Account, Account, Account];
    const mine = await post(me, "something to like");
    await follow(me, friend);
    const stream = await open(me);
    expect(stream.received[0]!.msg.event.case).toBe("keepalive");

    let mark = stream.received.length;
    await follow(fan, me);
    await stream.waitFor("follow", mark, (m) => m.event.case === "follow" && m.event.value.follower?.id === fan.id);

    mark = stream.received.length;
    const tweet = await post(friend, "hello followers");
    await stream.waitFor("homeTweet", mark, (m) => m.event.case === "homeTweet" && m.event.value.tweet?.id === BigInt(tweet.id));

    mark = stream.received.length;
    const mention = await post(chatty, `hey @${me.handle}`);
    await stream.waitFor("mention", mark, (m) => m.event.case === "mention" && m.event.value.tweet?.id === BigInt(mention.id));

    mark = stream.received.length;
    await like(fan, mine.id);
    await stream.waitFor("like", mark, (m) => m.event.case === "like" && m.event.value.tweetId === BigInt(mine.id) && m.event.value.liker?.id === fan.id);

    // Following someone while connected: their tweets start arriving.
    await follow(me, chatty);
    await settled(me);
    mark = stream.received.length;
    const fromNew = await post(chatty, "now you follow me");
    await stream.waitFor("homeTweet", mark, (m) => m.event.case === "homeTweet" && m.event.value.tweet?.id === BigInt(fromNew.id));

    // Nothing of the chatty user's before the follow came as a home tweet, and nothing of strangers at all.
    const homeIdsPushed = stream.received.flatMap((r) => (r.msg.event.case === "homeTweet" ? [String(r.msg.event.value.tweet?.id)] : []));
    expect(homeIdsPushed).toEqual([tweet.id, fromNew.id]);
    // Idle: keepalives (every 500 ms here).
    await stream.waitFor("keepalive", stream.received.length);
    stream.abort.abort();
    await withTimeout("the stream to end after the client aborted", 15_000, stream.done);
  });

  it("ends cleanly when the client goes: the server drops the stream's subscription", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    const base = await metric("chirp_timeline_streams");
    const streams = [await open(a), await open(a), await open(b)];
    expect(await metric("chirp_timeline_streams")).toBe(base + 3);
    // Live events come to the process only while a stream is open: one subscription per event domain.
    expect(await metric("chirp_timeline_stream_subscriptions")).toBe(3);
    streams[0]!.abort.abort();
    await expect.poll(() => metric("chirp_timeline_streams"), { timeout: 3000 }).toBe(base + 2);
    // The other stream of the same user still gets events.
    const mark = streams[1]!.received.length;
    await follow(b, a);
    await streams[1]!.waitFor("follow", mark);
    for (const s of streams.slice(1)) s.abort.abort();
    await expect.poll(() => metric("chirp_timeline_streams"), { timeout: 3000 }).toBe(base);
    // None left open here (the file's other streams have ended too): no live events are sent to the process at all.
    await expect.poll(() => metric("chirp_timeline_streams"), { timeout: 3000 }).toBe(0);
    expect(await metric("chirp_timeline_stream_subscriptions")).toBe(0);
    await withTimeout("the streams to end after the client aborted", 15_000, Promise.all(streams.map((s) => s.done)));
    for (const s of streams) expect(s.ended()).not.toBe("open");
    const again = await open(a);
    expect(again.received[0]?.msg.event.case).toBe("keepalive");
    again.abort.abort();
    await withTimeout("the stream to end after the client aborted", 15_000, again.done);
  });

  it("also streams over gRPC (HTTP/2) and gRPC-Web through the gateway", async () => {
    const [me, fan] = (await signUpMany(2)) as [Account, Account];
    for (const transport of [createGrpcTransport({ baseUrl: mesh.gatewayUrl }), createGrpcWebTransport({ baseUrl: mesh.gatewayUrl, fetch: fetchKeepingAbort })]) {
      const abort = new AbortController();
      const kinds: string[] = [];
      try {
        const stream = createClient(TimelineService, transport).streamEvents({}, { signal: abort.signal, headers: { authorization: `Bearer ${me.token}` } });
        for await (const msg of stream) {
          kinds.push(msg.event.case ?? "");
          // Registered: a follow now must come through (then undone, for the next transport's turn).
          if (kinds.length === 1) await follow(fan, me).then(() => unfollow(fan, me));
          if (msg.event.case === "follow") abort.abort();
        }
      } catch (err) {
        if (!abort.signal.aborted) throw err;
      }
      expect(kinds[0]).toBe("keepalive");
      expect(kinds).toContain("follow");
    }
  });

  it("refuses an anonymous caller", async () => {
    const err = await (async () => {
      for await (const _ of timelineClient().streamEvents({})) {
        /* nothing */
      }
    })().catch((e: unknown) => e);
    expect(ConnectError.from(err).code).toBe(Code.Unauthenticated);
  });
});
