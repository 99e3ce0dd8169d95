// The notification service in memory: the real notifier (events.ts) and
// routes over an in-memory stand-in of NotificationStore that keeps the same
// rules as store.ts (one row per cause, decide(), the deletion marks), and
// fake user and tweet services. The SQL and the consumers over NATS are in
// test/e2e/notifications.test.ts.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, createClient, createRouterTransport } from "@connectrpc/connect";
import { Registry } from "prom-client";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRedis, type TestRedis } from "../../test/support/redis.js";
import { NotificationKind } from "../../gen/chirp/notification/v1/notification_pb.js";
import { NotificationService } from "../../gen/chirp/notification/v1/notification_service_pb.js";
import { TweetSchema } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { UserSchema } from "../../gen/chirp/user/v1/user_pb.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { firstIdAt, ID_EPOCH_MS } from "../../lib/ids.js";
import type { Metrics } from "../../lib/metrics.js";
import type { MeshClients } from "../../lib/rpc/mesh-clients.js";
import { NO_RELATIONS, type RelationCache, type Relations } from "../../lib/relations.js";
import { CALLER_ID_HEADER } from "../../lib/rpc/metadata.js";
import { codeOf } from "../../lib/testing/in-memory.js";
import { ABSENT, Cause, decide, type CauseChange, type Decision } from "./causes.js";
import type { NotificationConfig } from "./config.js";
import type { NotificationContext } from "./context.js";
import { createNotifier, notificationMetrics, type GraphEvent, type TweetEvent } from "./events.js";
import { groupKey, type GroupSummary, type InboxRow } from "./group.js";
import { createInboxCache, type InboxCache } from "./inbox-cache.js";
import { routes } from "./routes.js";
import type { NotificationStore, Shown } from "./store.js";

interface Row {
  active: boolean;
  version: bigint;
  kind: NotificationKind;
  id: bigint;
  readonly recipientId: bigint;
  readonly cause: Cause;
  readonly subjectId: bigint;
  readonly actorId: bigint;
  timeMicros: bigint;
}

/** store.ts's rules over maps. */
function memoryStore(): NotificationStore & { rows: Map<string, Row> } {
  const rows = new Map<string, Row>();
  const sources = new Map<string, Set<bigint>>();
  const deleted = new Set<string>();
  const reads = new Map<bigint, bigint>();
  const applyOne = (change: CauseChange, newId: () => bigint, shownNow: Shown[]): Decision => {
    const key = `${change.recipientId}:${change.cause}:${change.subjectId}:${change.actorId}`;
    const row = rows.get(key);
    let d = decide(row ?? ABSENT, change);
    if (d === "show" && (change.cause === Cause.like || change.cause === Cause.repost) && deleted.has(`${change.recipientId}:${change.subjectId}`)) d = "version";
    const next: Row = row ?? { ...change, ...ABSENT, id: 0n, kind: change.kind };
    if (d === "show") {
      Object.assign(next, { active: true, version: change.version, kind: change.kind, id: newId(), timeMicros: change.timeMicros });
      shownNow.push({ id: next.id, change, pushable: false });
    }
    if (d === "hide") Object.assign(next, { active: false, version: change.version });
    if (d === "version") Object.assign(next, { version: change.version });
    if (d === "kind") Object.assign(next, { kind: change.kind });
    rows.set(key, next);
    return d;
  };
  const shown = (recipientId: bigint): Row[] => [...rows.values()].filter((r) => r.recipientId === recipientId && r.active).sort((a, b) => (b.id > a.id ? 1 : -1));
  return {
    rows,
    async applyMany(changes, newId, announce, committed) {
      // One "transaction" for all: decisions in order, what shows announced together.
      const decisions: Decision[] = [];
      const shownNow: Shown[] = [];
      for (const change of changes) decisions.push(applyOne(change, newId, shownNow));
      if (shownNow.length > 0) await announce(undefined as never, shownNow);
      await committed(changes, decisions);
    },
    async addSources(authorId, tweetId, recipientIds) {
      const key = `${authorId}:${tweetId}`;
      if (deleted.has(key)) return false;
      const set = sources.get(key) ?? new Set();
      for (const r of recipientIds) set.add(r);
      sources.set(key, set);
      return true;
    },
    async tweetDeleted(authorId, tweetId) {
      deleted.add(`${authorId}:${tweetId}`);
      return [...(sources.get(`${authorId}:${tweetId}`) ?? [])];
    },
    async dropSources(authorId, tweetId) {
      sources.delete(`${authorId}:${tweetId}`);
    },
    async hideReactions(authorId, tweetId) {
      let n = 0;
      for (const r of rows.values()) {
        if (r.recipientId === authorId && r.subjectId === tweetId && (r.cause === Cause.like || r.cause === Cause.repost) && r.active) {
          r.active = false;
          n++;
        }
      }
      return n;
    },
    async listRows(recipientId, beforeId, limit): Promise<InboxRow[]> {
      return shown(recipientId)
        .filter((r) => beforeId === undefined || r.id < beforeId)
        .slice(0, limit)
        .map((r) => ({ id: r.id, cause: r.cause, subjectId: r.subjectId, actorId: r.actorId, kind: r.kind, timeMicros: r.timeMicros }));
    },
    async listHeads(recipientId, beforeId, limit): Promise<InboxRow[]> {
      const rows = shown(recipientId);
      const grouped = (r: Row): boolean => r.cause === Cause.like || r.cause === Cause.repost;
      const head = (r: Row): boolean => !grouped(r) || !rows.some((m) => m.cause === r.cause && m.subjectId === r.subjectId && m.id > r.id);
      return (await this.listRows(recipientId, beforeId, rows.length + 1)).filter((r) => head(rows.find((x) => x.id === r.id)!)).slice(0, limit);
    },
    async groupSummaries(recipientId, keys, actors) {
      const out = new Map<string, GroupSummary>();
      for (const k of keys) {
        const members = shown(recipientId).filter((r) => r.cause === k.cause && r.subjectId === k.subjectId);
        if (members.length > 0) out.set(groupKey(k.cause, k.subjectId), { newestId: members[0]!.id, size: members.length, actorIds: members.slice(0, actors).map((r) => r.actorId) });
      }
      return out;
    },
    async readPosition(userId) {
      return reads.get(userId) ?? 0n;
    },
    async unreadCount(userId, cap) {
      const at = reads.get(userId) ?? 0n;
      return Math.min(cap, shown(userId).filter((r) => r.id > at).length);
    },
    async markRead(userId, upToId) {
      const newest = shown(userId)[0]?.id ?? 0n;
      const position = upToId === 0n || upToId > newest ? newest : upToId;
      if (position > (reads.get(userId) ?? 0n)) reads.set(userId, position);
    },
  };
}

const A = 1n; // the recipient
const B = 2n;
const C = 3n;
const D = 4n;
const TWEET = 100n; // a's tweet
const GONE = 101n; // a's tweet, deleted

function setup(opts: { cache?: InboxCache } = {}) {
  const store = memoryStore();
  let seq = 0;
  const ids = { next: () => firstIdAt(ID_EPOCH_MS + 1000) + BigInt(++seq) };
  const metrics = notificationMetrics({ registry: new Registry(), component: "test" } as Metrics);
  const announced: bigint[] = [];
  // Whom each user blocks or is blocked by, and mutes (lib/relations.ts).
  const hidden = new Map<bigint, Relations>();
  const relations = { get: async (id: bigint) => hidden.get(id) ?? NO_RELATIONS } as unknown as RelationCache;
  // announceCreated writes to the outbox through the transaction; the memory store hands it none, so count shows instead.
  const notifier = createNotifier({ store: { ...store, applyMany: (c, id, _announce, committed) => store.applyMany(c, id, async (_tx, s) => void announced.push(...s.map((x) => x.id)), committed) }, ids: ids as never, metrics, fanOut: 2, relations, ...(opts.cache === undefined ? {} : { inboxChanged: (ids: readonly bigint[]) => opts.cache!.invalidate(ids) }) });
  const users = new Map([A, B, C, D].map((id) => [id, create(UserSchema, { id, handle: `u${id}` })]));
  const tweets = new Map([TWEET, 200n, 201n, 300n].map((id) => [id, create(TweetSchema, { id, text: `tweet ${id}` })]));
  const clients = {
    user: { batchGetUsers: async (req: { userIds: bigint[] }) => ({ users: req.userIds.flatMap((id) => users.get(id) ?? []) }) },
    tweet: { batchGetTweets: async (req: { tweetIds: bigint[] }) => ({ tweets: req.tweetIds.flatMap((id) => tweets.get(id) ?? []) }) },
  } as unknown as MeshClients;
  // The reads that reach the database (the inbox cache's misses).
  let dbReads = 0;
  const counted: NotificationStore = {
    ...store,
    listRows: (...a) => (dbReads++, store.listRows(...a)),
    readPosition: (...a) => (dbReads++, store.readPosition(...a)),
    unreadCount: (...a) => (dbReads++, store.unreadCount(...a)),
  };
  const ctx = { store: counted, clients, relations, inboxCache: opts.cache, notification: {} as NotificationConfig } as unknown as NotificationContext;
  const client = createClient(NotificationService, createRouterTransport((r) => r.service(NotificationService, routes(ctx))));
  const as = (userId: bigint) => ({ headers: { [CALLER_ID_HEADER]: String(userId) } });
  const inbox = async (userId: bigint, grouped = false): Promise<string[]> =>
    (await client.listNotifications({ grouped }, as(userId))).notifications.map(
      (n) => `${NotificationKind[n.kind]} ${n.actors.map((u) => u.handle).join(",")}${n.actorCount > 1 ? ` x${n.actorCount}` : ""}${n.tweet === undefined ? "" : ` ${n.tweet.id}`}`,
    );
  return { store, notifier, metrics, announced, client, as, inbox, tweets, hidden, dbReads: () => dbReads };
}

const at = timestampFromMs(Date.UTC(2026, 5, 1));
const ev = <T>(subject: string, message: object): T => ({ subject, message, requestId: undefined }) as T;
const follow = (follower: bigint, followee: bigint, v: bigint, on = true): GraphEvent =>
  on
    ? ev(EVENTS.userFollowed.subject, { followerId: follower, followeeId: followee, edgeVersion: v, followTime: at })
    : ev(EVENTS.userUnfollowed.subject, { followerId: follower, followeeId: followee, edgeVersion: v, unfollowTime: at });
const like = (liker: bigint, tweetId: bigint, v: bigint, on = true): TweetEvent =>
  ev(on ? EVENTS.tweetLiked.subject : EVENTS.tweetUnliked.subject, { tweetId, authorId: A, likerId: liker, likeVersion: v, likeTime: at, unlikeTime: at });
const repost = (reposter: bigint, repostId: bigint, on = true): TweetEvent =>
  ev(on ? EVENTS.tweetReposted.subject : EVENTS.tweetUnreposted.subject, { tweetId: TWEET, authorId: A, reposterId: reposter, repostId });
const reply = (id: bigint, author: bigint, parent = TWEET): TweetEvent =>
  ev(EVENTS.tweetReplied.subject, { replyId: id, replyAuthorId: author, parentId: parent, parentAuthorId: A, createTime: at });
const created = (id: bigint, author: bigint, mentions: bigint[]): TweetEvent =>
  ev(EVENTS.tweetCreated.subject, { tweetId: id, authorId: author, mentions, createTime: at, repostOfTweetId: 0n });
const deleted = (id: bigint, author: bigint): TweetEvent => ev(EVENTS.tweetDeleted.subject, { tweetId: id, authorId: author });

async function deliver(n: ReturnType<typeof setup>["notifier"], events: Array<TweetEvent | GraphEvent>): Promise<void> {
  for (const e of events) {
    if (e.subject.startsWith("chirp.graph.")) await n.handleGraphEvent(e as GraphEvent);
    else await n.handleTweetEvent(e as TweetEvent);
  }
}

describe("the notifier and the inbox, in memory", () => {
  it("notifies each cause once however often and in whatever order its events come, and never for oneself", async () => {
    const s = setup();
    const events = [
      follow(B, A, 1n),
      like(B, TWEET, 1n),
      like(C, TWEET, 1n),
      like(A, TWEET, 1n), // oneself
      repost(D, 900n),
      reply(200n, C),
      created(200n, C, [A]), // the reply also mentions a: still one notification, the reply
      created(201n, D, [A, D]),
    ];
    await deliver(s.notifier, [...events, ...[...events].reverse()]);
    expect(await s.inbox(A)).toEqual(
      expect.arrayContaining(["FOLLOW u2", "LIKE u2 100", "LIKE u3 100", "REPOST u4 100", "REPLY u3 200", "MENTION u4 201"]),
    );
    expect(await s.inbox(A)).toHaveLength(6);
    expect(s.announced).toHaveLength(6);
    expect((await s.metrics.created.get()).values.reduce((sum, v) => sum + v.value, 0)).toBe(6);
    for (const who of [B, C, D]) expect(await s.inbox(who)).toEqual([]);
  });

  it("takes a notification away for good when its cause is undone, even if the undo comes first", async () => {
    const s = setup();
    // The unlike, unfollow and unrepost before what they undo.
    await deliver(s.notifier, [like(B, TWEET, 2n, false), like(B, TWEET, 1n), follow(C, A, 2n, false), follow(C, A, 1n), repost(D, 900n, false), repost(D, 900n)]);
    expect(await s.inbox(A)).toEqual([]);
    // A like after the unlike (a newer version) and a new repost (a new id) show again.
    await deliver(s.notifier, [like(B, TWEET, 3n), repost(D, 901n)]);
    expect(await s.inbox(A)).toEqual(["REPOST u4 100", "LIKE u2 100"]);
  });

  it("hides what a deleted tweet caused and the reactions to a deleted tweet, in either order", async () => {
    const s = setup();
    await deliver(s.notifier, [reply(200n, C), created(201n, D, [A]), like(B, GONE, 1n)]);
    s.tweets.set(GONE, create(TweetSchema, { id: GONE }));
    expect(await s.inbox(A)).toHaveLength(3);
    await deliver(s.notifier, [deleted(200n, C), deleted(201n, D), deleted(GONE, A)]);
    expect(await s.inbox(A)).toEqual([]);
    // Events arriving after the deletion stay hidden.
    await deliver(s.notifier, [reply(200n, C), created(201n, D, [A]), like(C, GONE, 1n), repost(D, 902n)]);
    expect(await s.inbox(A)).toEqual(["REPOST u4 100"]);
  });

  it("groups likes and reposts of a tweet on request, and marks what was read", async () => {
    const s = setup();
    await deliver(s.notifier, [like(B, TWEET, 1n), follow(D, A, 1n), like(C, TWEET, 1n), like(D, TWEET, 1n)]);
    expect(await s.inbox(A, true)).toEqual(["LIKE u4,u3,u2 x3 100", "FOLLOW u4"]);
    expect(await s.inbox(A)).toHaveLength(4);
    expect((await s.client.getUnreadCount({}, s.as(A))).count).toBe(4);
    const [newest, second] = (await s.client.listNotifications({}, s.as(A))).notifications;
    await s.client.markRead({ upToId: second!.id }, s.as(A));
    expect((await s.client.getUnreadCount({}, s.as(A))).count).toBe(1);
    const after = (await s.client.listNotifications({}, s.as(A))).notifications;
    expect(after.map((n) => n.read)).toEqual([false, true, true, true]);
    await s.client.markRead({}, s.as(A));
    expect((await s.client.getUnreadCount({}, s.as(A))).count).toBe(0);
    expect(newest!.id > second!.id).toBe(true);
  });

  it("pages the grouped view past a group bigger than a page: every page full, each group once", async () => {
    const s = setup();
    const others = Array.from({ length: 30 }, (_, i) => like(1000n + BigInt(i), TWEET, 1n));
    await deliver(s.notifier, [follow(D, A, 1n), ...others, like(B, TWEET, 1n), like(C, TWEET, 1n), follow(C, A, 1n)]);
    const pages: string[][] = [];
    let token = "";
    do {
      const page = await s.client.listNotifications({ grouped: true, pageSize: 1, pageToken: token }, s.as(A));
      pages.push(page.notifications.map((n) => `${NotificationKind[n.kind]} ${n.actor?.handle} x${n.actorCount}`));
      token = page.nextPageToken;
    } while (token !== "" && pages.length < 10);
    expect(pages).toEqual([["FOLLOW u3 x1"], ["LIKE u3 x32"], ["FOLLOW u4 x1"]]);
  });

  it("leaves out the actors the recipient blocks, is blocked by or mutes, already notified ones too; a group keeps the others", async () => {
    const s = setup();
    await deliver(s.notifier, [follow(B, A, 1n), follow(C, A, 1n), like(B, TWEET, 1n), like(C, TWEET, 1n), reply(200n, D)]);
    s.hidden.set(A, { blocks: new Set([B]), mutes: new Set([D]) });
    expect(await s.inbox(A)).toEqual(["LIKE u3 100", "FOLLOW u3"]);
    expect(await s.inbox(A, true)).toEqual(["LIKE u3 x2 100", "FOLLOW u3"]);
  });

  it("notifies nothing of what a blocked or muted user does meanwhile (never shown, announced or pushed); their undos still apply", async () => {
    const s = setup();
    s.hidden.set(A, { blocks: new Set([B]), mutes: new Set([C]) });
    await deliver(s.notifier, [follow(B, A, 1n), like(C, TWEET, 1n), created(200n, B, [A]), like(D, TWEET, 1n)]);
    expect(await s.inbox(A)).toEqual(["LIKE u4 100"]);
    expect(s.announced).toHaveLength(1);
    // Unmuted: C's like made meanwhile stays untold, and its undo keeps an older copy of it from coming back.
    s.hidden.set(A, { blocks: new Set([B]), mutes: new Set() });
    await deliver(s.notifier, [like(C, TWEET, 2n, false), like(C, TWEET, 1n)]);
    expect(await s.inbox(A)).toEqual(["LIKE u4 100"]);
    await deliver(s.notifier, [like(C, TWEET, 3n)]);
    expect(await s.inbox(A, true)).toEqual(["LIKE u3,u4 x2 100"]);
  });

  it("leaves out an entry whose tweet or actor is gone", async () => {
    const s = setup();
    await deliver(s.notifier, [like(B, TWEET, 1n), like(C, 300n, 1n)]);
    s.tweets.delete(300n);
    expect(await s.inbox(A)).toEqual(["LIKE u2 100"]);
  });

  it("needs a caller, the push RPCs too (push-routes.test.ts has the rest of them)", async () => {
    const s = setup();
    expect(await codeOf(s.client.listNotifications({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(s.client.getUnreadCount({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(s.client.markRead({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(s.client.getPushConfig({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(s.client.registerPush({ endpoint: "https://push.example/1", p256dh: "k", auth: "a" }))).toBe(Code.Unauthenticated);
    expect(await codeOf(s.client.unregisterPush({ endpoint: "https://push.example/1" }))).toBe(Code.Unauthenticated);
  });
});

describe("cache-first reads (a real redis-server)", () => {
  let r: TestRedis;
  beforeAll(async () => {
    r = await startTestRedis();
  });
  afterAll(async () => {
    await r?.stop();
  });

  it("serves first pages and unread counts from Redis, and shows every change at once: a notification, an undo, MarkRead, a deleted tweet, a FLUSHALL", async () => {
    const s = setup({ cache: createInboxCache({ redis: r.redis, ttlMs: 60_000, log: pino({ level: "silent" }) }) });
    const count = async (who: bigint): Promise<number> => (await s.client.getUnreadCount({}, s.as(who))).count;
    await deliver(s.notifier, [like(B, TWEET, 1n), follow(C, A, 1n)]);
    const answers = async () => [await s.inbox(A), await s.inbox(A, true), await count(A)];
    expect(await answers()).toEqual([["FOLLOW u3", "LIKE u2 100"], ["FOLLOW u3", "LIKE u2 100"], 2]);
    const misses = s.dbReads();
    expect(await answers()).toEqual([["FOLLOW u3", "LIKE u2 100"], ["FOLLOW u3", "LIKE u2 100"], 2]);
    expect(s.dbReads()).toBe(misses);
    // A smaller page of the cached rows, and the next page from its token, as the database would give them.
    const first = await s.client.listNotifications({ pageSize: 1 }, s.as(A));
    expect(first.notifications.map((n) => NotificationKind[n.kind])).toEqual(["FOLLOW"]);
    const rest = await s.client.listNotifications({ pageSize: 1, pageToken: first.nextPageToken }, s.as(A));
    expect(rest.notifications.map((n) => NotificationKind[n.kind])).toEqual(["LIKE"]);
    expect(rest.nextPageToken).toBe("");

    await deliver(s.notifier, [like(D, TWEET, 1n)]);
    expect(await answers()).toEqual([["LIKE u4 100", "FOLLOW u3", "LIKE u2 100"], ["LIKE u4,u2 x2 100", "FOLLOW u3"], 3]);
    await deliver(s.notifier, [like(B, TWEET, 2n, false)]);
    expect(await answers()).toEqual([["LIKE u4 100", "FOLLOW u3"], ["LIKE u4 100", "FOLLOW u3"], 2]);
    await s.client.markRead({}, s.as(A));
    expect(await count(A)).toBe(0);
    expect((await s.client.listNotifications({}, s.as(A))).notifications.map((n) => n.read)).toEqual([true, true]);
    await deliver(s.notifier, [deleted(TWEET, A)]);
    expect(await answers()).toEqual([["FOLLOW u3"], ["FOLLOW u3"], 0]);
    // A redelivered event changes nothing and is shown once.
    await deliver(s.notifier, [follow(C, A, 1n), follow(C, A, 1n)]);
    expect(await answers()).toEqual([["FOLLOW u3"], ["FOLLOW u3"], 0]);
    await r.redis.flushall();
    expect(await answers()).toEqual([["FOLLOW u3"], ["FOLLOW u3"], 0]);
    // Nobody is served another's cached inbox.
    expect(await s.inbox(B)).toEqual([]);
    expect(await count(B)).toBe(0);
  });
});
