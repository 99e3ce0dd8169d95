// Tweets and likes through the gateway, with the whole mesh as `npm start`
// runs it (a tenant of the shared cluster, every service process, the gateway): users sign
// up through the public API and act with their tokens. Rows, counts and the
// outbox are read back from the shard primaries; the tweet cache is looked at
// in Redis; the shards a request touched are read from the tweet service's
// own metrics (chirp_tweet_db_calls_total). The last test stops nats-server, on
// a cluster of its own.
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs, timestampMs } from "@bufbuild/protobuf/wkt";
import { jetstream, type JetStreamClient } from "@nats-io/jetstream";
import { connect as connectNats, type NatsConnection } from "@nats-io/transport-node";
import { Redis } from "ioredis";
import { pino } from "pino";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TweetCreatedSchema, TweetLikedSchema, TweetUnlikedSchema, TweetDeletedSchema } from "../../gen/chirp/tweet/v1/events_pb.js";
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { UserSchema } from "../../gen/chirp/user/v1/user_pb.js";
import { createEventBus, type EventBus } from "../../lib/events/bus.js";
import { BUS_DEFAULTS } from "../../lib/events/config.js";
import { consume, type EventConsumer } from "../../lib/events/consumer.js";
import { EVENT_STREAM, EVENTS } from "../../lib/events/subjects.js";
import type { Mesh } from "../../devcluster/launch.js";
import { CALLER_ID_HEADER } from "../../lib/rpc/metadata.js";
import { vouchingInterceptor } from "../../lib/rpc/vouching-interceptor.js";
import { generateMeshSecret } from "../../lib/auth/assertion.js";

/** The mesh secret the system is launched with: direct calls to a service as a user carry an assertion made with it. */
const MESH_SECRET = generateMeshSecret();
import type { ShardRouter } from "../../lib/shard/router.js";
import { LIKES_INDEX_DURABLE } from "../../services/tweet/events.js";
import { gatewayApi, type Account } from "./support/api.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { parseNatsUrl } from "../../lib/events/nats-url.js";
import { parseId } from "../../lib/ids.js";

let system: TestSystem;
let mesh: Mesh;
let router: ShardRouter;
let redis: Redis;
let nc: NatsConnection;
let js: JetStreamClient;

beforeAll(async () => {
  system = await startSystem({ meshSecret: MESH_SECRET });
  ({ mesh, router } = system);
  redis = new Redis(system.infra.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
  nc = await connectNats({ ...parseNatsUrl(system.infra.natsUrl), maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  js = jetstream(nc);
});
afterAll(async () => {
  await nc?.close();
  redis?.disconnect();
  await system?.stop();
});

// --- the public API -------------------------------------------------------

interface ApiUser {
  id: string;
  handle: string;
  tweetCount: number;
}

interface ApiTweet {
  id: string;
  authorId: string;
  author?: ApiUser;
  text: string;
  createTime: string;
  likeCount: number;
  likedByViewer: boolean;
  mediaIds: string[];
  location?: { latitude: number; longitude: number };
  hashtags: string[];
  mentions: string[];
  replyToTweetId: string;
  urls: string[];
}

const { call, ok, signUp, signUpMany } = gatewayApi(() => mesh.gatewayUrl, "t");

const T = "chirp.tweet.v1.TweetService";
const post = (who: Account, body: Record<string, unknown>) => call<{ tweet: ApiTweet }>(`${T}/PostTweet`, body, who.token);
const postOk = async (who: Account, text: string, extra: Record<string, unknown> = {}): Promise<ApiTweet> =>
  (await ok<{ tweet: ApiTweet }>(`${T}/PostTweet`, { text, ...extra }, who.token)).tweet;
const getTweet = (id: string, who?: Account) => call<{ tweet: ApiTweet }>(`${T}/GetTweet`, { tweetId: id }, who?.token);
const like = (who: Account, id: string) => call<{ likeCount: number }>(`${T}/LikeTweet`, { tweetId: id }, who.token);
const unlike = (who: Account, id: string) => call<{ likeCount: number }>(`${T}/UnlikeTweet`, { tweetId: id }, who.token);
const del = (who: Account, id: string) => call(`${T}/DeleteTweet`, { tweetId: id }, who.token);

/** BatchGetTweets is internal: called on the tweet service itself, as the timeline service would. */
function tweetClient() {
  return createClient(TweetService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${mesh.services.tweet.grpcPort}`, interceptors: [vouchingInterceptor(MESH_SECRET)] }));
}
const as = (who: Account) => ({ headers: { [CALLER_ID_HEADER]: String(who.id) } });

// --- the shard databases ----------------------------------------------------

async function tweetRow(author: Account, id: string) {
  const [row] = await router
    .primaryForUser(author.id)
    .query<{ like_count: string; version: string; deleted: number; text: string }>(
      "SELECT like_count, version, delete_time IS NOT NULL AS deleted, text FROM chirp.tweets WHERE id = ?",
      [id],
    );
  return row === undefined ? undefined : { likeCount: Number(row.like_count), version: Number(row.version), deleted: Number(row.deleted) === 1, text: row.text };
}

/** What a user has written, on their shard: tweets, outbox rows, tweet_count; and tweet_lookup rows everywhere. */
async function writtenBy(user: Account): Promise<{ tweets: number; outbox: number; tweetCount: number; lookups: number }> {
  const db = router.primaryForUser(user.id);
  const [t] = await db.query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.tweets WHERE author_id = ?", [user.id]);
  const [o] = await db.query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.outbox WHERE user_id = ? AND subject LIKE 'chirp.tweet.%'", [user.id]);
  const [u] = await db.query<{ tweet_count: string }>("SELECT tweet_count FROM chirp.users WHERE id = ?", [user.id]);
  let lookups = 0;
  for (const shard of router.shards()) {
    const [l] = await router.primary(shard).query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.tweet_lookup WHERE author_id = ?", [user.id]);
    lookups += Number(l!.n);
  }
  return { tweets: Number(t!.n), outbox: Number(o!.n), tweetCount: Number(u!.tweet_count), lookups };
}

async function likeRows(author: Account, id: string): Promise<{ liked: number; unliked: number }> {
  const rows = await router
    .primaryForUser(author.id)
    .query<{ state: number; n: string }>("SELECT state, COUNT(*) AS n FROM chirp.tweet_likes WHERE tweet_id = ? GROUP BY state", [id]);
  const n = (s: number) => Number(rows.find((r) => Number(r.state) === s)?.n ?? 0);
  return { liked: n(1), unliked: n(0) };
}

// --- the tweet service's metrics ---------------------------------------------

type Samples = Map<string, number>;

async function scrape(name: string): Promise<Samples> {
  const text = await (await fetch(`http://127.0.0.1:${mesh.services.tweet.metricsPort}/metrics`)).text();
  const out: Samples = new Map();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const m = /^[^{]+\{([^}]*)\} ([0-9.e+-]+)$/.exec(line);
    if (m === null) continue;
    // Labels without the constant `component`, in a stable order.
    const labels = m[1]!
      .split(",")
      .filter((l) => !l.startsWith("component="))
      .sort()
      .join(",");
    out.set(labels, Number(m[2]));
  }
  return out;
}

function diff(before: Samples, after: Samples, skip: (labels: string) => boolean = () => false): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0);
    if (d !== 0 && !skip(k)) out[k] = d;
  }
  return out;
}

// ---------------------------------------------------------------------------

describe("PostTweet", () => {
  it("stores the NFC text with its hashtags, resolved mentions (unknown handles ignored), URLs, location and reply; counts it for the author", async () => {
    const [alice, bob] = (await signUpMany(2)) as [Account, Account];
    const first = await postOk(alice, "first");
    const text = `Cafe\u0301 with @${bob.handle.toUpperCase()} and @nobody_here_x #Chirp #chirp #2026 https://example.com/menu.`;
    const tweet = await postOk(alice, `  ${text}  `, { location: { latitude: 48.85, longitude: 2.35 }, replyToTweetId: first.id });
    expect(tweet).toMatchObject({
      authorId: String(alice.id),
      author: { id: String(alice.id), handle: alice.handle },
      text: text.normalize("NFC"),
      likeCount: 0,
      likedByViewer: false,
      hashtags: ["Chirp"],
      mentions: [String(bob.id)],
      urls: ["https://example.com/menu"],
      location: { latitude: 48.85, longitude: 2.35 },
      replyToTweetId: first.id,
      mediaIds: [],
    });
    expect(tweet.text).toContain("Caf\u00e9");
    expect(Date.parse(tweet.createTime)).toBeGreaterThan(Date.now() - 60_000);
    // Two TweetCreated and the reply's TweetReplied (to alice's own tweet, so on her shard too).
    expect(await writtenBy(alice)).toEqual({ tweets: 2, outbox: 3, tweetCount: 2, lookups: 2 });

    const read = (await getTweet(tweet.id)).body.tweet;
    expect(read).toEqual({ ...tweet, author: read.author });
    expect(read.author?.tweetCount).toBe(2);
  });

  it("answers with its author as they are after the post: its count, under concurrent posts too, and a profile changed just before", async () => {
    const [u] = (await signUpMany(1)) as [Account];
    const U = "chirp.user.v1.UserService";
    const profile = async () => (await ok<{ user: { tweetCount: number; bio: string } }>(`${U}/GetUser`, { userId: String(u.id) })).user;
    expect((await postOk(u, "one")).author?.tweetCount).toBe(1);
    // Cached (a read filled it), then changed: the profile as changed, with the post's count.
    await ok(`${U}/UpdateProfile`, { bio: "new bio" }, u.token);
    expect(await profile()).toMatchObject({ tweetCount: 1, bio: "new bio" });
    const fills = await scrape("chirp_user_cache_fills_total");
    expect((await postOk(u, "two")).author).toMatchObject({ tweetCount: 2, bio: "new bio" });
    // The post cached its author as its transaction left them (the writer's fill, lib/user-cache.ts settle),
    // and the answer's author needed no read of its own.
    expect(diff(fills, await scrape("chirp_user_cache_fills_total"))).toEqual({ 'result="writer_stored"': 1 });
    const cached = await redis.getBuffer(`chirp:user:{${u.id}}`);
    expect(cached === null ? undefined : fromBinary(UserSchema, cached)).toMatchObject({ tweetCount: 2, bio: "new bio" });
    expect(await profile()).toMatchObject({ tweetCount: 2, bio: "new bio" });
    expect((await postOk(u, "three")).author?.tweetCount).toBe(3);
    // Five at once: each answer counts its own post and none after the last.
    const counts = (await Promise.all([4, 5, 6, 7, 8].map((n) => postOk(u, `post ${n}`)))).map((t) => t.author?.tweetCount ?? 0);
    for (const c of counts) expect(c >= 4 && c <= 8).toBe(true);
    expect(Math.max(...counts)).toBe(8);
    expect((await profile()).tweetCount).toBe(8);
  });

  it("counts user-perceived characters: 280 emoji sequences fit, 281 do not", async () => {
    const [u] = (await signUpMany(1)) as [Account];
    const family = "\u{1F468}\u200D\u{1F469}\u200D\u{1F467}\u200D\u{1F466}";
    expect((await post(u, { text: family.repeat(280) })).status).toBe(200);
    expect((await post(u, { text: family.repeat(281) })).code).toBe("invalid_argument");
    expect((await post(u, { text: "e\u0301".repeat(280) })).status).toBe(200);
    expect((await post(u, { text: "e\u0301".repeat(281) })).code).toBe("invalid_argument");
  });

  it("refuses bad input with InvalidArgument / NotFound / Unauthenticated and writes nothing", async () => {
    const [u, other] = (await signUpMany(2)) as [Account, Account];
    const gone = await postOk(other, "soon gone");
    expect((await del(other, gone.id)).status).toBe(200);
    const answers: Record<string, string | undefined> = {
      empty: (await post(u, { text: "" })).code,
      blank: (await post(u, { text: " \n\t " })).code,
      "281 chars": (await post(u, { text: "x".repeat(281) })).code,
      "2801 code points": (await post(u, { text: "x".repeat(2801) })).code,
      "controls only": (await post(u, { text: "\u0001\u0002\u0003" })).code,
      "format only": (await post(u, { text: "\u200B\u200D\u2060" })).code,
      "control inside": (await post(u, { text: "hello\u0000world" })).code,
      latitude: (await post(u, { text: "hi", location: { latitude: 90.5, longitude: 0 } })).code,
      longitude: (await post(u, { text: "hi", location: { latitude: 0, longitude: -181 } })).code,
      "NaN location": (await post(u, { text: "hi", location: { latitude: "NaN", longitude: 0 } })).code,
      "five media": (await post(u, { text: "hi", mediaIds: ["1", "2", "3", "4", "5"] })).code,
      "repeated media": (await post(u, { text: "hi", mediaIds: ["7", "7"] })).code,
      "zero media id": (await post(u, { text: "hi", mediaIds: ["0"] })).code,
      "bad reply id": (await post(u, { text: "hi", replyToTweetId: "12abc" })).code,
      "unknown reply": (await post(u, { text: "hi", replyToTweetId: "123456789" })).code,
      "deleted reply": (await post(u, { text: "hi", replyToTweetId: gone.id })).code,
      "unknown field": (await post(u, { text: "hi", authorId: String(other.id) })).code,
      anonymous: (await call(`${T}/PostTweet`, { text: "hi" })).code,
    };
    expect(answers).toEqual({
      empty: "invalid_argument",
      blank: "invalid_argument",
      "281 chars": "invalid_argument",
      "2801 code points": "invalid_argument",
      "controls only": "invalid_argument",
      "format only": "invalid_argument",
      "control inside": "invalid_argument",
      latitude: "invalid_argument",
      longitude: "invalid_argument",
      "NaN location": "invalid_argument",
      "five media": "invalid_argument",
      "repeated media": "invalid_argument",
      "zero media id": "invalid_argument",
      "bad reply id": "invalid_argument",
      "unknown reply": "not_found",
      "deleted reply": "not_found",
      "unknown field": "invalid_argument",
      anonymous: "unauthenticated",
    });
    // A request beyond the gateway's 1 MiB read limit never reaches the service.
    const huge = await call(`${T}/PostTweet`, { text: "x".repeat(2 * 1024 * 1024) }, u.token);
    expect(huge.status).not.toBe(200);
    expect(["resource_exhausted", "invalid_argument"]).toContain(huge.code);
    expect(await writtenBy(u)).toEqual({ tweets: 0, outbox: 0, tweetCount: 0, lookups: 0 });
  });

  it("attaches media through the media service: someone else's upload is PermissionDenied, an unknown one NotFound, one on another tweet FailedPrecondition, and nothing is written", async () => {
    const [owner, thief] = (await signUpMany(2)) as [Account, Account];
    const png = PNG.sync.write({ width: 4, height: 3, data: Buffer.alloc(4 * 3 * 4, 0x80) });
    const upload = async (who: Account): Promise<string> => {
      // The browser's way in: POST /media with the file as the body.
      const res = await fetch(`${mesh.gatewayUrl}/media`, {
        method: "POST",
        headers: { "content-type": "image/png", authorization: `Bearer ${who.token}` },
        body: png,
      });
      const json = (await res.json()) as { id: string };
      expect(res.status, JSON.stringify(json)).toBe(201);
      return json.id;
    };
    const mediaId = await upload(owner);
    expect((await post(thief, { text: "mine now", mediaIds: [mediaId] })).code).toBe("permission_denied");
    expect((await post(thief, { text: "no such", mediaIds: ["999999999999"] })).code).toBe("not_found");
    expect(await writtenBy(thief)).toEqual({ tweets: 0, outbox: 0, tweetCount: 0, lookups: 0 });

    const second = await upload(owner);
    const tweet = await postOk(owner, "", { mediaIds: [mediaId, second] });
    expect(tweet.text).toBe("");
    expect(tweet.mediaIds).toEqual([mediaId, second]);
    expect((tweet as ApiTweet & { media: Array<{ id: string }> }).media.map((m) => m.id)).toEqual([mediaId, second]);
    const read = (await getTweet(tweet.id, thief)).body.tweet as ApiTweet & { media: Array<{ id: string; ownerId: string; width: number }> };
    expect(read.media.map((m) => [m.id, m.ownerId, m.width])).toEqual([
      [mediaId, String(owner.id), 4],
      [second, String(owner.id), 4],
    ]);
    const batch = await tweetClient().batchGetTweets({ tweetIds: [BigInt(tweet.id)] });
    expect(batch.tweets[0]?.media.map((m) => String(m.id))).toEqual([mediaId, second]);
    // Already on that tweet: another tweet cannot take it.
    expect((await post(owner, { text: "again", mediaIds: [mediaId] })).code).toBe("failed_precondition");
    expect((await writtenBy(owner)).tweets).toBe(1);
  });
});

describe("GetTweet, DeleteTweet and BatchGetTweets", () => {
  it("answer NotFound for ids that never existed, InvalidArgument for malformed ids", async () => {
    const [u] = (await signUpMany(1)) as [Account];
    expect((await getTweet("987654321987")).code).toBe("not_found");
    expect((await getTweet("0")).code).toBe("invalid_argument");
    expect((await getTweet("-5")).code).toBe("invalid_argument");
    expect((await getTweet("tweet")).code).toBe("invalid_argument");
    expect((await getTweet("18446744073709551616")).code).toBe("invalid_argument");
    expect((await like(u, "987654321987")).code).toBe("not_found");
    expect((await del(u, "987654321987")).code).toBe("not_found");
  });

  it("delete is for the author only; afterwards the tweet is NotFound everywhere and uncounted", async () => {
    const [author, other] = (await signUpMany(2)) as [Account, Account];
    const tweet = await postOk(author, "delete me");
    expect((await like(other, tweet.id)).body.likeCount).toBe(1);
    expect((await getTweet(tweet.id, other)).body.tweet.likedByViewer).toBe(true); // cached now
    expect((await del(other, tweet.id)).code).toBe("permission_denied");
    expect((await tweetRow(author, tweet.id))?.deleted).toBe(false);

    expect((await del(author, tweet.id)).status).toBe(200);
    expect(await tweetRow(author, tweet.id)).toMatchObject({ deleted: true, text: "" });
    expect((await writtenBy(author)).tweetCount).toBe(0);
    expect((await getTweet(tweet.id)).code).toBe("not_found");
    expect((await getTweet(tweet.id, other)).code).toBe("not_found");
    expect((await like(other, tweet.id)).code).toBe("not_found");
    expect((await unlike(other, tweet.id)).code).toBe("not_found");
    expect((await del(author, tweet.id)).code).toBe("not_found");
    expect((await del(other, tweet.id)).code).toBe("not_found");
    const batch = await tweetClient().batchGetTweets({ tweetIds: [BigInt(tweet.id)] }, as(other));
    expect(batch.tweets).toEqual([]);
    // The cache holds the tombstone, not the tweet.
    const entry = await redis.getBuffer(`chirp:tweet:{${tweet.id}}`);
    expect(entry?.toString("latin1")).toMatch(/^[0-9]+:D$/);
  });

  it("BatchGetTweets returns live tweets in request order, each once, hydrated for the caller", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    const t1 = await postOk(a, "one");
    const t2 = await postOk(b, "two");
    const t3 = await postOk(a, "three");
    await like(b, t3.id);
    await del(a, t1.id);
    const res = await tweetClient().batchGetTweets({ tweetIds: [t3.id, t1.id, 999_999_999n, t2.id, t3.id].map(BigInt) }, as(b));
    expect(res.tweets.map((t) => [String(t.id), t.text, t.likeCount, t.likedByViewer, t.author?.handle])).toEqual([
      [t3.id, "three", 1, true, a.handle],
      [t2.id, "two", 0, false, b.handle],
    ]);
    const tooMany = await tweetClient()
      .batchGetTweets({ tweetIds: Array.from({ length: 101 }, (_, i) => BigInt(i + 1)) })
      .catch((e: unknown) => e);
    expect(ConnectError.from(tooMany).code).toBe(Code.InvalidArgument);
  });

  it("ListAuthorTweets walks each author's live tweets newest first within its bounds, across shards", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    const aIds: bigint[] = [];
    for (const text of ["a1", "a2", "a3", "a4"]) aIds.push(BigInt((await postOk(a, text)).id));
    const b1 = BigInt((await postOk(b, "b1")).id);
    await del(a, String(aIds[2]));
    const walk = async (walks: Array<{ authorId: bigint; beforeId?: bigint; atLeastId?: bigint; limit: number }>) =>
      (await tweetClient().listAuthorTweets({ walks, primary: true })).refs.map((r) => [r.tweetId, r.authorId]).sort((x, y) => (x[0]! < y[0]! ? 1 : -1));
    // Newest first within the limit; the deleted one is skipped.
    expect(await walk([{ authorId: BigInt(a.id), limit: 2 }])).toEqual([
      [aIds[3], BigInt(a.id)],
      [aIds[1], BigInt(a.id)],
    ]);
    // before (exclusive) and atLeast (inclusive); two authors, wherever their shards are, in one call.
    expect(await walk([{ authorId: BigInt(a.id), beforeId: aIds[3], atLeastId: aIds[1], limit: 10 }, { authorId: BigInt(b.id), limit: 10 }])).toEqual([
      [b1, BigInt(b.id)],
      [aIds[1], BigInt(a.id)],
    ]);
    for (const bad of [{ walks: [] }, { walks: [{ authorId: BigInt(a.id), limit: 0 }] }, { walks: [{ authorId: 0n, limit: 1 }] }]) {
      const err = await tweetClient()
        .listAuthorTweets(bad)
        .catch((e: unknown) => e);
      expect(ConnectError.from(err).code).toBe(Code.InvalidArgument);
    }
  });

  it("PostTweet mints an id whose lookup row lives on the author's shard and writes both rows in one transaction there", async () => {
    const authors = (await signUpMany(2)) as [Account, Account];
    const skipConsumer = (labels: string) => labels.includes('op="applyLikerSide"');
    for (const author of authors) {
      const shard = router.shardForUser(author.id).name;
      const before = await scrape("chirp_tweet_db_calls_total");
      const posted = [await postOk(author, "one"), await postOk(author, "two"), await postOk(author, "three")];
      // No lookup row of its own: one transaction per post, on the author's shard.
      expect(diff(before, await scrape("chirp_tweet_db_calls_total"), skipConsumer)).toEqual({ [`op="createTweetWithLookup",shard="${shard}"`]: 3 });
      for (const tweet of posted) {
        expect(router.shardForUser(tweet.id).name).toBe(shard);
        const [row] = await router.primary(shard).query<{ author_id: string }>("SELECT author_id FROM chirp.tweet_lookup WHERE tweet_id = ?", [tweet.id]);
        expect(String(row?.author_id)).toBe(String(author.id));
      }
      // Ids still grow with time.
      expect(posted.map((t) => BigInt(t.id))).toEqual(posted.map((t) => BigInt(t.id)).sort((x, y) => (x < y ? -1 : 1)));
    }
  });

  it("GetTweet touches only the tweet's shard once the lookup is cached, and no database at all for an anonymous cached read", async () => {
    const [author, viewer] = (await signUpMany(2)) as [Account, Account];
    const tweet = await postOk(author, "where do I live");
    const tweetShard = router.shardForUser(author.id).name;
    const skipConsumer = (labels: string) => labels.includes('op="applyLikerSide"');
    await getTweet(tweet.id, viewer); // warm

    const measure = async (who?: Account) => {
      const [calls, lookups] = [await scrape("chirp_tweet_db_calls_total"), await scrape("chirp_tweet_lookups_total")];
      expect((await getTweet(tweet.id, who)).status).toBe(200);
      return {
        db: diff(calls, await scrape("chirp_tweet_db_calls_total"), skipConsumer),
        lookups: diff(lookups, await scrape("chirp_tweet_lookups_total")),
      };
    };
    // Signed in: the lookup from memory, the tweet from Redis, the viewer's like (learned by the warm read) from their Redis hash.
    expect(await measure(viewer)).toEqual({ db: {}, lookups: { 'source="memory"': 1 } });
    // Anonymous: nothing to ask a database.
    expect(await measure()).toEqual({ db: {}, lookups: { 'source="memory"': 1 } });
    // Cache entry gone: one read of the tweet (and the like) on the tweet's shard, which fills the cache again.
    await redis.del(`chirp:tweet:{${tweet.id}}`);
    expect(await measure(viewer)).toEqual({ db: { [`op="readTweets",shard="${tweetShard}"`]: 1 }, lookups: { 'source="memory"': 1 } });
    expect((await measure(viewer)).db).toEqual({});
    // Nobody likes or has reposted it: no viewer's state is read, even with their states gone (a flush).
    await redis.del(`chirp:liked:{${viewer.id}}`);
    expect((await measure(viewer)).db).toEqual({});
    expect((await measure(author)).db).toEqual({});
    // Likes and deletes find the shard the same way: one transaction there, nothing else.
    const before = await scrape("chirp_tweet_db_calls_total");
    expect((await like(viewer, tweet.id)).status).toBe(200);
    expect(diff(before, await scrape("chirp_tweet_db_calls_total"), skipConsumer)).toEqual({ [`op="like",shard="${tweetShard}"`]: 1 });
    // The liker's next read knows their like at the tweet's new version; anyone else's state is read once at it, then known.
    expect(await measure(viewer)).toEqual({ db: {}, lookups: { 'source="memory"': 1 } });
    expect((await measure(author)).db).toEqual({ [`op="likesAt",shard="${tweetShard}"`]: 1 });
    expect((await measure(author)).db).toEqual({});
    // The viewer's like states gone (a flush): their like is read from the tweet's shard once, then known again.
    await redis.del(`chirp:liked:{${viewer.id}}`);
    expect((await measure(viewer)).db).toEqual({ [`op="likesAt",shard="${tweetShard}"`]: 1 });
    expect((await measure(viewer)).db).toEqual({});
  });
});

describe("ImportTweet and ImportRepost (internal: chirp seed's history)", () => {
  const at = (msAgo: number) => timestampFromMs(Date.now() - msAgo);
  const HOUR = 3_600_000;
  const userTimeline = async (who: Account) =>
    (await ok<{ tweets: Array<ApiTweet & { repostId?: string; repostedBy?: ApiUser }> }>("chirp.timeline.v1.TimelineService/GetUserTimeline", { userId: String(who.id), pageSize: 10 }, who.token)).tweets;

  it("writes a tweet, reply and repost at past times: ids, create times and timelines put them there, and counts are exact", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    const now = await postOk(a, "posted now");
    const old = (await tweetClient().importTweet({ tweet: { text: "two hours ago #imported" }, createTime: at(2 * HOUR) }, as(a))).tweet!;
    expect(Math.abs(parseId(old.id).timeMs - (Date.now() - 2 * HOUR))).toBeLessThan(60_000);
    expect(timestampMs(old.createTime!)).toBe(parseId(old.id).timeMs);
    expect(old.hashtags).toEqual(["imported"]);
    const reply = (await tweetClient().importTweet({ tweet: { text: "a reply an hour ago", replyToTweetId: old.id }, createTime: at(HOUR) }, as(b))).tweet!;
    expect((await tweetClient().importRepost({ tweetId: old.id, createTime: at(HOUR / 2) }, as(b))).repostCount).toBe(1);
    // Again: no change, no second repost.
    expect((await tweetClient().importRepost({ tweetId: old.id, createTime: at(HOUR / 4) }, as(b))).repostCount).toBe(1);
    expect((await userTimeline(a)).map((t) => t.text)).toEqual(["posted now", "two hours ago #imported"]);
    // b's own timeline: the repost (half an hour ago) above the reply (an hour ago).
    expect((await userTimeline(b)).map((t) => [t.text, t.repostedBy?.id ?? ""])).toEqual([
      ["two hours ago #imported", String(b.id)],
      ["a reply an hour ago", ""],
    ]);
    const got = (await tweetClient().getTweet({ tweetId: old.id })).tweet!;
    expect([got.replyCount, got.repostCount]).toEqual([1, 1]);
    expect((await writtenBy(a)).tweetCount).toBe(2);
    expect(BigInt(now.id) > old.id && old.id < reply.id).toBe(true);
  });

  it("refuses a future or pre-epoch time, a reply or repost older than its tweet, and no caller; nothing is written", async () => {
    const [a] = (await signUpMany(1)) as [Account];
    const old = (await tweetClient().importTweet({ tweet: { text: "an hour ago" }, createTime: at(HOUR) }, as(a))).tweet!;
    const before = await writtenBy(a);
    const refusals: Array<[() => Promise<unknown>, Code]> = [
      [() => tweetClient().importTweet({ tweet: { text: "tomorrow" }, createTime: at(-24 * HOUR) }, as(a)), Code.InvalidArgument],
      [() => tweetClient().importTweet({ tweet: { text: "1999" }, createTime: timestampFromMs(Date.UTC(1999, 0, 1)) }, as(a)), Code.InvalidArgument],
      [() => tweetClient().importTweet({ tweet: { text: "no time" } }, as(a)), Code.InvalidArgument],
      [() => tweetClient().importTweet({ tweet: { text: "too early", replyToTweetId: old.id }, createTime: at(2 * HOUR) }, as(a)), Code.InvalidArgument],
      [() => tweetClient().importTweet({ tweet: { text: "too early", quoteTweetId: old.id }, createTime: at(2 * HOUR) }, as(a)), Code.InvalidArgument],
      [() => tweetClient().importTweet({ tweet: { text: "" }, createTime: at(HOUR) }, as(a)), Code.InvalidArgument],
      [() => tweetClient().importTweet({ tweet: { text: "anyone" }, createTime: at(HOUR) }), Code.Unauthenticated],
      [() => tweetClient().importRepost({ tweetId: old.id, createTime: at(2 * HOUR) }, as(a)), Code.InvalidArgument],
      [() => tweetClient().importRepost({ tweetId: 999_999_999n, createTime: at(HOUR) }, as(a)), Code.NotFound],
    ];
    for (const [call, code] of refusals) expect(ConnectError.from(await call().catch((e: unknown) => e)).code).toBe(code);
    expect(await writtenBy(a)).toEqual(before);
  });
});

describe("LikeTweet and UnlikeTweet", () => {
  it("are idempotent, and keep the edge rows and the count in step", async () => {
    const [author, fan] = (await signUpMany(2)) as [Account, Account];
    const tweet = await postOk(author, "like me");
    expect((await like(fan, tweet.id)).body.likeCount).toBe(1);
    expect((await like(fan, tweet.id)).body.likeCount).toBe(1);
    expect((await like(author, tweet.id)).body.likeCount).toBe(2);
    expect(await likeRows(author, tweet.id)).toEqual({ liked: 2, unliked: 0 });
    expect((await unlike(fan, tweet.id)).body.likeCount).toBe(1);
    expect((await unlike(fan, tweet.id)).body.likeCount).toBe(1);
    expect((await unlike(author, tweet.id)).body.likeCount).toBe(0);
    expect((await unlike(author, tweet.id)).body.likeCount).toBe(0);
    expect(await likeRows(author, tweet.id)).toEqual({ liked: 0, unliked: 2 });
    expect(await tweetRow(author, tweet.id)).toMatchObject({ likeCount: 0, version: 5 }); // 1 + four changes
    expect((await call(`${T}/LikeTweet`, { tweetId: tweet.id })).code).toBe("unauthenticated");
  });

  it("count exactly under 100 concurrent likers, then 100 concurrent unlikes", async () => {
    const [author, ...fans] = (await signUpMany(101)) as [Account, ...Account[]];
    const tweet = await postOk(author, "go viral");
    const likes = await Promise.all(fans.map((f) => like(f, tweet.id)));
    expect(likes.filter((r) => r.status !== 200).map((r) => r.code)).toEqual([]);
    expect(new Set(likes.map((r) => r.body.likeCount)).size).toBe(100); // each saw its own count: 1..100
    expect(await tweetRow(author, tweet.id)).toMatchObject({ likeCount: 100, version: 101 });
    expect(await likeRows(author, tweet.id)).toEqual({ liked: 100, unliked: 0 });
    expect((await getTweet(tweet.id)).body.tweet.likeCount).toBe(100);

    const unlikes = await Promise.all(fans.map((f) => unlike(f, tweet.id)));
    expect(unlikes.filter((r) => r.status !== 200).map((r) => r.code)).toEqual([]);
    expect(await tweetRow(author, tweet.id)).toMatchObject({ likeCount: 0, version: 201 });
    expect((await getTweet(tweet.id)).body.tweet.likeCount).toBe(0);
  });

  it("a like, unlike or delete is visible on the next read after it returns, while other readers keep refilling the cache", async () => {
    const [author, ...fans] = (await signUpMany(11)) as [Account, ...Account[]];
    const tweet = await postOk(author, "watch the count");
    let stop = false;
    let background = 0;
    // Readers racing every change: each miss takes a lease and fills the cache from the primary.
    const readers = Array.from({ length: 4 }, async (_, i) => {
      while (!stop) {
        if (i % 2 === 0) await redis.del(`chirp:tweet:{${tweet.id}}`); // force misses and fills
        await getTweet(tweet.id, i === 1 ? fans[0] : undefined);
        background++;
      }
    });
    try {
      let expected = 0;
      for (let round = 0; round < 3; round++) {
        for (const f of fans) {
          expect((await like(f, tweet.id)).body.likeCount).toBe(++expected);
          const seen = await getTweet(tweet.id, f);
          expect([seen.body.tweet.likeCount, seen.body.tweet.likedByViewer]).toEqual([expected, true]);
          const batch = await tweetClient().batchGetTweets({ tweetIds: [BigInt(tweet.id)] });
          expect(batch.tweets[0]?.likeCount).toBe(expected);
        }
        for (const f of fans) {
          expect((await unlike(f, tweet.id)).body.likeCount).toBe(--expected);
          const seen = await getTweet(tweet.id);
          expect(seen.body.tweet.likeCount).toBe(expected);
          expect((await getTweet(tweet.id, f)).body.tweet.likedByViewer).toBe(false);
        }
      }
      expect((await del(author, tweet.id)).status).toBe(200);
      expect((await getTweet(tweet.id)).code).toBe("not_found");
      expect((await tweetClient().batchGetTweets({ tweetIds: [BigInt(tweet.id)] })).tweets).toEqual([]);
    } finally {
      stop = true;
      await Promise.all(readers);
    }
    expect(background).toBeGreaterThan(10);
  });
});

describe("ListLikedTweets", () => {
  type Page = { tweets: ApiTweet[]; nextPageToken: string };
  const list = (userId: bigint, pageSize: number, pageToken = "", who?: Account) =>
    call<Page>(`${T}/ListLikedTweets`, { userId: String(userId), pageSize, pageToken }, who?.token);

  it("pages the likes newest first (kept from the like events), skips deleted and unliked tweets, and refuses bad tokens", async () => {
    const [fan, a, b] = (await signUpMany(3)) as [Account, Account, Account];
    const tweets = [await postOk(a, "a1"), await postOk(b, "b1"), await postOk(a, "a2"), await postOk(b, "b2"), await postOk(a, "a3")];
    for (const t of tweets) expect((await like(fan, t.id)).status).toBe(200);
    expect((await unlike(fan, tweets[1]!.id)).status).toBe(200);
    expect((await del(a, tweets[2]!.id)).status).toBe(200);
    const walk = async (pageSize: number): Promise<string[]> => {
      const seen: string[] = [];
      let token = "";
      for (;;) {
        const page = await list(fan.id, pageSize, token, fan);
        expect(page.status).toBe(200);
        for (const t of page.body.tweets) expect(t.likedByViewer).toBe(true);
        seen.push(...page.body.tweets.map((t) => t.text));
        token = page.body.nextPageToken;
        if (token === "") return seen;
      }
    };
    // The likers' index is kept from events: poll until it has caught up.
    await expect.poll(() => walk(10), { timeout: 15_000, interval: 100 }).toEqual(["a3", "b2", "a1"]);
    expect(await walk(1)).toEqual(["a3", "b2", "a1"]);
    expect(await walk(2)).toEqual(["a3", "b2", "a1"]);

    const { nextPageToken } = (await list(fan.id, 1)).body;
    expect(nextPageToken).not.toBe("");
    expect((await list(fan.id, 1, "garbage!")).code).toBe("invalid_argument");
    expect((await list(a.id, 1, nextPageToken)).code).toBe("invalid_argument");
    expect((await list(fan.id, 101)).code).toBe("invalid_argument");
    expect((await list(fan.id + 1_000_000n, 10)).code).toBe("not_found");
    expect((await list(b.id, 10)).body).toEqual({ tweets: [], nextPageToken: "" });
  });
});

describe("the likers' index (likes, kept from like events)", () => {
  const likesRow = async (fan: Account, tweetId: string) => {
    const [row] = await router
      .primaryForUser(fan.id)
      .query<{ state: number; version: string }>("SELECT state, version FROM chirp.likes WHERE user_id = ? AND tweet_id = ?", [fan.id, tweetId]);
    return row === undefined ? undefined : { state: Number(row.state), version: Number(row.version) };
  };

  it("applies a missed newer version and ignores stale or repeated events delivered out of order", async () => {
    const [author, fan] = (await signUpMany(2)) as [Account, Account];
    const tweet = await postOk(author, "liked, unliked, liked");
    for (const step of [like, unlike, like]) expect((await step(fan, tweet.id)).status).toBe(200); // v1, v2, v3
    await expect.poll(() => likesRow(fan, tweet.id), { timeout: 15_000, interval: 100 }).toEqual({ state: 1, version: 3 });
    // The index misses v3: back to v2 (unliked), as if its event had not been applied yet.
    await router.primaryForUser(fan.id).execute("UPDATE chirp.likes SET state = 0, version = 2 WHERE user_id = ? AND tweet_id = ?", [fan.id, tweet.id]);
    const at = { seconds: BigInt(Math.floor(Date.now() / 1000)), nanos: 0 };
    const common = { tweetId: BigInt(tweet.id), authorId: author.id, likerId: fan.id };
    const liked = (v: bigint) => toBinary(TweetLikedSchema, create(TweetLikedSchema, { ...common, likeVersion: v, likeTime: at }));
    const unliked = (v: bigint) => toBinary(TweetUnlikedSchema, create(TweetUnlikedSchema, { ...common, likeVersion: v, unlikeTime: at }));
    // Newest first, then the older ones, then the newest again.
    const deliveries: Array<[string, Uint8Array]> = [
      [EVENTS.tweetLiked.subject, liked(3n)],
      [EVENTS.tweetUnliked.subject, unliked(2n)],
      [EVENTS.tweetLiked.subject, liked(1n)],
      [EVENTS.tweetLiked.subject, liked(3n)],
    ];
    for (const [i, [subject, payload]] of deliveries.entries()) await js.publish(subject, payload, { msgID: `tweets-e2e-${tweet.id}-${i}` });
    await expect.poll(() => likesRow(fan, tweet.id), { timeout: 15_000, interval: 100 }).toEqual({ state: 1, version: 3 });
    await new Promise((r) => setTimeout(r, 1500)); // the stale ones arrive meanwhile and must not undo it
    expect(await likesRow(fan, tweet.id)).toEqual({ state: 1, version: 3 });
    const listed = await ok<{ tweets: ApiTweet[] }>(`${T}/ListLikedTweets`, { userId: String(fan.id) });
    expect(listed.tweets.map((t) => t.id)).toEqual([tweet.id]);
  });

  it("an unlike that arrives before its like leaves the tweet unlisted", async () => {
    const [author, fan] = (await signUpMany(2)) as [Account, Account];
    const tweet = await postOk(author, "never seen liked");
    const at = { seconds: BigInt(Math.floor(Date.now() / 1000)), nanos: 0 };
    const common = { tweetId: BigInt(tweet.id), authorId: author.id, likerId: fan.id };
    await js.publish(EVENTS.tweetUnliked.subject, toBinary(TweetUnlikedSchema, create(TweetUnlikedSchema, { ...common, likeVersion: 2n, unlikeTime: at })), {
      msgID: `tweets-e2e-${tweet.id}-u2`,
    });
    await expect.poll(() => likesRow(fan, tweet.id), { timeout: 15_000, interval: 100 }).toEqual({ state: 0, version: 2 });
    await js.publish(EVENTS.tweetLiked.subject, toBinary(TweetLikedSchema, create(TweetLikedSchema, { ...common, likeVersion: 1n, likeTime: at })), {
      msgID: `tweets-e2e-${tweet.id}-l1`,
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await likesRow(fan, tweet.id)).toEqual({ state: 0, version: 2 });
  });
});

describe("events", () => {
  it("post, like, unlike and delete each publish one event with the like edge's version; a repeat publishes nothing", async () => {
    const [author, fan] = (await signUpMany(2)) as [Account, Account];
    const tweet = await postOk(author, "#evented");
    await like(fan, tweet.id);
    await like(fan, tweet.id);
    await unlike(fan, tweet.id);
    await like(fan, tweet.id);
    await del(author, tweet.id);
    const mine = async () => {
      const consumer = await js.consumers.get(EVENT_STREAM, { filter_subjects: "chirp.tweet.v1.*" });
      const seen: string[] = [];
      for (;;) {
        const batch = await consumer.fetch({ max_messages: 500, expires: 1000 });
        let got = 0;
        for await (const msg of batch) {
          got++;
          const id = BigInt(tweet.id);
          if (msg.subject === EVENTS.tweetCreated.subject) {
            const m = fromBinary(TweetCreatedSchema, msg.data);
            if (m.tweetId === id) seen.push(`created ${m.hashtags.join()}`);
          } else if (msg.subject === EVENTS.tweetLiked.subject) {
            const m = fromBinary(TweetLikedSchema, msg.data);
            if (m.tweetId === id) seen.push(`liked v${m.likeVersion} by ${m.likerId === fan.id ? "fan" : m.likerId}`);
          } else if (msg.subject === EVENTS.tweetUnliked.subject) {
            const m = fromBinary(TweetUnlikedSchema, msg.data);
            if (m.tweetId === id) seen.push(`unliked v${m.likeVersion}`);
          } else if (msg.subject === EVENTS.tweetDeleted.subject) {
            const m = fromBinary(TweetDeletedSchema, msg.data);
            if (m.tweetId === id) seen.push("deleted");
          }
        }
        if (got === 0) break;
      }
      await consumer.delete().catch(() => {});
      return seen;
    };
    await expect.poll(mine, { timeout: 15_000, interval: 250 }).toEqual(["created evented", "liked v1 by fan", "unliked v2", "liked v3 by fan", "deleted"]);
  });
});

describe("a NATS outage", () => {
  // This one kills nats-server, so it runs on a cluster of its own: the
  // file's helpers (mesh, router) point at it while it runs.
  let own: TestSystem;
  let shared: { mesh: Mesh; router: ShardRouter } | undefined;
  beforeAll(async () => {
    own = await startSystem({ cluster: "own" });
    shared = { mesh, router };
    ({ mesh, router } = own);
  });
  afterAll(async () => {
    if (shared !== undefined) ({ mesh, router } = shared);
    await own?.stop();
  });

  it("does not stop posting; once nats-server is back, every event reaches a durable consumer exactly once", async () => {
    const [author, fan] = (await signUpMany(2)) as [Account, Account];
    const warmup = await postOk(author, "before the outage");
    // The likers' index is a durable consumer too: it must have caught up before and after.
    const consumerLog = pino({ level: "silent" });
    const bus: EventBus = createEventBus({ config: { ...BUS_DEFAULTS, natsUrl: own.infra.natsUrl }, log: consumerLog, reconnectMinMs: 50, reconnectMaxMs: 500 });
    const counts = new Map<string, number>();
    const eventIds = new Map<string, number>();
    let consumer: EventConsumer | undefined;
    try {
      consumer = consume({
        bus,
        durable: `tweets-e2e-${process.pid}`,
        subjects: [EVENTS.tweetCreated],
        log: consumerLog,
        deliverPolicy: "new",
        handler: async (event) => {
          const id = String(event.message.tweetId);
          counts.set(id, (counts.get(id) ?? 0) + 1);
          eventIds.set(event.eventId, (eventIds.get(event.eventId) ?? 0) + 1);
        },
      });
      await consumer.started();
      const probe = await postOk(author, "probe");
      await expect.poll(() => counts.get(probe.id), { timeout: 15_000, interval: 50 }).toBe(1);

      const nats = own.infra.own!.processes.find((p) => p.name === "nats")!;
      process.kill(nats.pid!, "SIGKILL");
      const during: ApiTweet[] = [];
      for (let i = 0; i < 10; i++) during.push(await postOk(author, `during the outage #${i}`));
      // Likes too: they commit with their events in the outbox.
      expect((await like(fan, warmup.id)).body.likeCount).toBe(1);
      const [pending] = await router
        .primaryForUser(author.id)
        .query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.outbox WHERE user_id = ? AND sent_time IS NULL", [author.id]);
      expect(Number(pending!.n)).toBeGreaterThanOrEqual(10);
      expect([...counts.keys()].filter((id) => during.some((t) => t.id === id))).toEqual([]);

      await own.infra.own!.restartNats();
      await expect.poll(() => during.filter((t) => counts.get(t.id) === 1).length, { timeout: 30_000, interval: 100 }).toBe(during.length);
      // Room for any duplicate to show up, then: each exactly once.
      await new Promise((r) => setTimeout(r, 2000));
      expect(during.map((t) => counts.get(t.id))).toEqual(during.map(() => 1));
      expect([...eventIds.values()].every((n) => n === 1)).toBe(true);
      // And the likers' index caught up with the like made during the outage.
      await expect
        .poll(async () => (await list(fan)).map((t) => t.id), { timeout: 30_000, interval: 200 })
        .toEqual([warmup.id]);
    } finally {
      await consumer?.stop();
      await bus.close();
    }
    expect(LIKES_INDEX_DURABLE).toBe("tweet-likes-index");
  });

  async function list(who: Account): Promise<ApiTweet[]> {
    return (await ok<{ tweets: ApiTweet[] }>(`${T}/ListLikedTweets`, { userId: String(who.id) }, who.token)).tweets;
  }
});
