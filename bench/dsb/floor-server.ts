/**
 * The floor: a bare node:http server (its own process, forked by the bench)
 * that does the Redis and MySQL work of each request of the mix with the
 * services' own functions, in one process, and nothing else: no gateway, no
 * token check, no RPC hops, no protobuf on the wire, no validation, no
 * metrics or logs. What it does per op (POST /op, the Op as JSON):
 *
 *   home      the timeline service's home read from Redis (lists.ts readHome:
 *             the page with its TTL renewal, the following-set check, the hot
 *             authors; then which page authors are still followed and the hot
 *             authors' recent lists), then hydration as the tweet service
 *             does it: the tweet cache script, a primary read per shard for
 *             misses (with the viewer's likes) and a cache fill, the viewer's
 *             likes of the hits, and the authors' users rows (replicas).
 *   user      the same SELECTs on the author's shard the timeline service
 *             runs for the same emulated offset (targets.ts), each page
 *             hydrated as above; an empty first page reads the users row.
 *   compose   the tweet service's PostTweet writes: the text parsed by its
 *             parser, each mention's handle row and users row read, the
 *             tweet_lookup INSERT, the transaction (tweets INSERT, tweet_count
 *             UPDATE, outbox INSERT), the cache publish, the author's row.
 *             The outbox row is written already marked sent, so the relay
 *             leaves it alone: no fan-out runs for floor tweets.
 *
 * IPC: receives { userIds } first, answers { type: "ready", port }. Exits
 * when the IPC channel closes.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Redis } from "ioredis";
import { pino } from "pino";
import { EVENTS } from "../../services/lib/events/subjects.js";
import { createIdGenerator, parseId } from "../../services/lib/ids.js";
import { loadShardConfig } from "../../services/lib/shard-config.js";
import { topologyFromEnv } from "../../services/lib/shard/config.js";
import { createShardRouter } from "../../services/lib/shard/router.js";
import { lowerAscii } from "../../services/lib/shard/vindex.js";
import { TIMELINE_DEFAULTS } from "../../services/timeline/config.js";
import { newestFirst, type Entry } from "../../services/timeline/entries.js";
import { KEYS, createTimelineLists } from "../../services/timeline/lists.js";
import { NO_CURSOR, createTimelineStore } from "../../services/timeline/store.js";
import { createTweetCache, type CachedTweet } from "../../services/tweet/cache.js";
import { TWEET_DEFAULTS } from "../../services/tweet/config.js";
import { presentTweetCore } from "../../services/tweet/present.js";
import { createTweetStore } from "../../services/tweet/store.js";
import { parseTweetText } from "../../services/tweet/text.js";
import { toBinary } from "@bufbuild/protobuf";
import { HOME_PAGE, MAX_PAGE, USER_PAGE } from "./targets.js";
import type { Op } from "./workload.js";

const redisUrl = process.env.REDIS_URL;
if (redisUrl === undefined) throw new Error("REDIS_URL is required");
const userIds = await new Promise<bigint[]>((resolve) => process.once("message", (m: { userIds: string[] }) => resolve(m.userIds.map((s) => BigInt(s)))));

const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
const router = await createShardRouter({ ...topologyFromEnv(process.env as Record<string, string>, loadShardConfig("local")) });
const lists = createTimelineLists(redis);
const timelineStore = createTimelineStore(router);
const tweetStore = createTweetStore(router);
const cache = createTweetCache({ redis, ttlMs: TWEET_DEFAULTS.cacheTtlMs, leaseMs: TWEET_DEFAULTS.cacheFillLeaseMs, log: pino({ level: "silent" }) });
const ids = createIdGenerator(1019);
const ttlMs = TIMELINE_DEFAULTS.inactiveMs;
const SLACK = 4;

interface UserOut {
  id: string;
  handle: string;
  display_name: string;
  follower_count: string;
  following_count: string;
  tweet_count: string;
}

async function usersByIds(wanted: readonly bigint[]): Promise<UserOut[]> {
  if (wanted.length === 0) return [];
  return router.scatter(
    [...new Set(wanted)],
    (id) => router.shardForUser(id),
    (shard, onShard) =>
      router
        .reader(shard)
        .query<UserOut>(
          `SELECT id, handle, display_name, bio, email, create_time, follower_count, following_count, tweet_count FROM chirp.users WHERE id IN (${onShard.map(() => "?").join(", ")})`,
          onShard,
        ),
  );
}

/** Hydration as the tweet service's load + present: cache, per-shard primary reads of misses with the viewer's likes, fills, likes of hits, authors. */
async function hydrate(entries: readonly Entry[], viewer: bigint): Promise<unknown[]> {
  if (entries.length === 0) return [];
  const authorOf = new Map(entries.map((e) => [e.id, e.authorId]));
  const cached = await cache.read([...authorOf.keys()]);
  const out = new Map<bigint, { id: string; authorId: bigint; text: string; liked: boolean }>();
  await router.scatter(
    [...authorOf.keys()],
    (id) => router.shardForUser(authorOf.get(id)!),
    async (shard, onShard) => {
      const hits: Array<{ id: bigint; authorId: bigint; text: string }> = [];
      const misses: bigint[] = [];
      for (const id of onShard) {
        const c = cached.get(id);
        if (c === undefined || c.kind === "miss") misses.push(id);
        else if (c.kind === "tweet") hits.push(c.tweet);
      }
      const [rows, liked] = await Promise.all([tweetStore.readTweets(shard, misses, viewer), tweetStore.likesAt(shard, viewer, hits.map((t) => t.id))]);
      const likedIds = new Set(liked.filter((l) => l.liked).map((l) => l.tweetId));
      for (const t of hits) out.set(t.id, { id: String(t.id), authorId: t.authorId, text: t.text, liked: likedIds.has(t.id) });
      const fills: Promise<void>[] = [];
      for (const { row, liked: rowLiked } of rows) {
        if (!row.deleted) out.set(row.id, { id: String(row.id), authorId: row.authorId, text: row.text, liked: rowLiked });
        const lease = cached.get(row.id);
        if (lease?.kind === "miss" && lease.lease !== undefined) {
          const entry: CachedTweet = row.deleted ? { kind: "deleted", version: row.version } : { kind: "tweet", version: row.version, tweet: presentTweetCore(row) };
          fills.push(cache.fill(row.id, lease.lease, entry));
        }
      }
      await Promise.all(fills);
      return [];
    },
  );
  const authors = new Map((await usersByIds([...out.values()].map((t) => t.authorId))).map((u) => [String(u.id), u]));
  return entries.flatMap((e) => {
    const t = out.get(e.id);
    return t === undefined ? [] : [{ ...t, authorId: String(t.authorId), author: authors.get(String(t.authorId)) }];
  });
}

async function home(user: bigint): Promise<unknown[]> {
  const limit = HOME_PAGE + 1 + SLACK;
  const read = await lists.readHome(user, undefined, limit, ttlMs);
  if (read.page.state !== "built") throw new Error("home list not built (the bench warms every list before the floor runs)");
  const hot = read.hotFollowed.filter((h) => h !== user);
  const authors = [...new Set(read.page.entries.map((e) => e.authorId).filter((a) => a !== user))];
  const [followed, recent] = await Promise.all([lists.followedAmong(user, authors), lists.readPages(hot.map(KEYS.recent), undefined, limit)]);
  const candidates = read.page.entries.filter((e) => e.authorId === user || followed === undefined || followed.has(e.authorId));
  for (const r of recent) if (r.state === "built") candidates.push(...r.entries);
  return hydrate(newestFirst(candidates).slice(0, HOME_PAGE), user);
}

async function userPage(viewer: bigint, author: bigint, before: bigint, size: number): Promise<{ tweets: unknown[]; next: bigint | undefined }> {
  const found = await timelineStore.authorTweets(author, before, size + 1, { primary: viewer === author });
  const entries = found.slice(0, size).map((id) => ({ id, authorId: author }));
  if (entries.length === 0 && before === NO_CURSOR) await usersByIds([author]);
  return { tweets: await hydrate(entries, viewer), next: found.length > size ? entries.at(-1)!.id : undefined };
}

async function userTimeline(viewer: bigint, author: bigint, offset: number): Promise<{ calls: number; tweets: unknown[] }> {
  if (offset === 0) return { calls: 1, tweets: (await userPage(viewer, author, NO_CURSOR, USER_PAGE)).tweets };
  const skip = await userPage(viewer, author, NO_CURSOR, Math.min(offset, MAX_PAGE));
  if (skip.next === undefined) return { calls: 1, tweets: [] };
  return { calls: 2, tweets: (await userPage(viewer, author, skip.next, USER_PAGE)).tweets };
}

async function compose(author: bigint, raw: string): Promise<unknown> {
  const text = parseTweetText(raw, false);
  const mentions = (
    await Promise.all(
      text.mentionHandles.map(async (h) => {
        const [row] = await router.readerForHandle(lowerAscii(h)).query<{ user_id: string }>("SELECT user_id FROM chirp.user_handles WHERE handle_lower = ?", [lowerAscii(h)]);
        if (row === undefined) return [];
        const [user] = await usersByIds([BigInt(row.user_id)]);
        return user === undefined ? [] : [BigInt(user.id)];
      }),
    )
  ).flat();
  const id = ids.next();
  const createTimeMicros = BigInt(parseId(id).timeMs) * 1000n;
  await tweetStore.insertLookup(id, author, createTimeMicros);
  const row = await tweetStore.createTweet(
    { id, authorId: author, text: text.text, replyToTweetId: 0n, mediaIds: [], latitude: null, longitude: null, hashtags: text.hashtags, mentions: [...new Set(mentions)], urls: text.urls, createTimeMicros },
    async (tx, r) => {
      const message = create(EVENTS.tweetCreated.schema, {
        tweetId: r.id,
        authorId: r.authorId,
        text: r.text,
        hashtags: [...r.hashtags],
        mentions: [...r.mentions],
        createTime: timestampFromMs(parseId(r.id).timeMs),
        urls: [...r.urls],
      });
      // appendOutbox's INSERT, with sent_time set so the relay skips it.
      await tx.execute("INSERT INTO chirp.outbox (event_id, user_id, subject, payload, headers, sent_time) VALUES (?, ?, ?, ?, ?, UTC_TIMESTAMP(6))", [
        ids.next(),
        r.authorId,
        EVENTS.tweetCreated.subject,
        Buffer.from(toBinary(EVENTS.tweetCreated.schema, message)),
        null,
      ]);
    },
  );
  await cache.publish(id, { kind: "tweet", version: row.version, tweet: presentTweetCore(row) });
  const [user] = await usersByIds([author]);
  return { id: String(id), author: user };
}

async function run(op: Op): Promise<{ calls: number; body: unknown }> {
  switch (op.kind) {
    case "home":
      return { calls: 1, body: await home(userIds[op.user]!) };
    case "user": {
      const r = await userTimeline(userIds[op.viewer]!, userIds[op.author]!, op.offset);
      return { calls: r.calls, body: r.tweets };
    }
    case "compose":
      return { calls: 1, body: await compose(userIds[op.user]!, op.text) };
  }
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    run(JSON.parse(Buffer.concat(chunks).toString()) as Op).then(
      ({ calls, body }) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ calls, body }));
      },
      (err: unknown) => {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(err));
      },
    );
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => process.send?.({ type: "ready", port: (server.address() as AddressInfo).port }));
process.on("disconnect", () => {
  server.close();
  redis.disconnect();
  void router.close().finally(() => process.exit(0));
});
