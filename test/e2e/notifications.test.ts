// Notifications through the gateway (issue 20, items 1 and 2), with the system
// as `npm start` runs it on a tenant of the shared cluster: follows, likes,
// reposts, replies, quotes and mentions of a user become notifications in
// their inbox once each, newest first, in keyset pages, flat or grouped; the
// unread count follows MarkRead; an undone cause disappears; nobody sees
// another's inbox; StreamEvents pushes each new one; bad input is
// InvalidArgument. Web Push (item 3): each new notification reaches every
// subscription of its recipient at a local HTTPS push service, which decrypts
// it with the subscription's keys and checks the VAPID signature; a
// subscription answered 410 is dropped; a push service that never answers
// does not hold up another's deliveries.
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect as connectNats } from "@nats-io/transport-node";
import { createConnectTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TimelineService, type StreamEventsResponse } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetCreatedSchema, TweetLikedSchema } from "../../gen/chirp/tweet/v1/events_pb.js";
import { parseNatsUrl } from "../../lib/events/nats-url.js";
import { EVENT_STREAM, EVENTS } from "../../lib/events/subjects.js";
import { TWEETS_DURABLE } from "../../services/notification/events.js";
import type { Mesh } from "../../devcluster/launch.js";
import { eventually, withTimeout } from "../support/eventually.js";
import { fetchKeepingAbort } from "../support/fetch.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { gatewayApi, type Account } from "./support/api.js";
import { makeCertificate, startPushService, type Browser, type PushService } from "./support/push-service.js";

let system: TestSystem;
let mesh: Mesh;
let tls: ReturnType<typeof makeCertificate>;
let pushService: PushService;
/** Another push service (origin), which never answers in the test that needs it. */
let stuckService: PushService;

beforeAll(async () => {
  // The push service's certificate must exist before the system starts: node reads NODE_EXTRA_CA_CERTS at start.
  tls = makeCertificate();
  [system, pushService, stuckService] = await Promise.all([
    startSystem({
      env: {
        CHIRP_PUSH_ALLOW_PRIVATE_ENDPOINTS: "1",
        NODE_EXTRA_CA_CERTS: tls.certFile,
        // Few delivery slots, so that one stuck push service could take them all if it were let.
        CHIRP_PUSH_CONCURRENCY: "4",
        CHIRP_PUSH_PER_ORIGIN: "2",
        CHIRP_PUSH_RETRY_MIN_MS: "200",
        CHIRP_PUSH_TIMEOUT_MS: "30000",
      },
    }),
    startPushService(tls),
    startPushService(tls),
  ]);
  mesh = system.mesh;
});
afterAll(async () => {
  // Held pushes end first, so the system's consumers drain at once.
  stuckService?.releaseHanging();
  await system?.stop();
  await Promise.all([pushService?.close(), stuckService?.close()]);
  tls?.remove();
});

interface ApiNotification {
  id: string;
  kind: string;
  actor?: { id: string; handle: string };
  tweet?: { id: string };
  read?: boolean;
  actors?: Array<{ handle: string }>;
  actorCount?: number;
}
interface Page {
  notifications?: ApiNotification[];
  nextPageToken?: string;
}

const { call, ok, signUpMany } = gatewayApi(() => mesh.gatewayUrl, "nt");
const N = "chirp.notification.v1.NotificationService";
const T = "chirp.tweet.v1.TweetService";
const G = "chirp.graph.v1.GraphService";

const post = async (who: Account, body: Record<string, unknown>): Promise<string> => (await ok<{ tweet: { id: string } }>(`${T}/PostTweet`, body, who.token)).tweet.id;
const list = async (who: Account, body: Record<string, unknown> = {}): Promise<Page> => ok<Page>(`${N}/ListNotifications`, { pageSize: 100, ...body }, who.token);
const unread = async (who: Account): Promise<number> => (await ok<{ count?: number }>(`${N}/GetUnreadCount`, {}, who.token)).count ?? 0;
/** "KIND by handle on tweet", short: what a user would read in the inbox. */
const shown = (n: ApiNotification, names: Map<string, string>): string =>
  `${n.kind.replace("NOTIFICATION_KIND_", "").toLowerCase()} ${n.actor?.handle ?? "?"}${n.tweet === undefined ? "" : ` ${names.get(n.tweet.id) ?? n.tweet.id}`}`;

/** Waits until the inbox reads `expected` (newest first) and returns it. */
async function inboxIs(who: Account, names: Map<string, string>, expected: string[]): Promise<ApiNotification[]> {
  let last: ApiNotification[] = [];
  await eventually(`the inbox of ${who.handle} to be ${JSON.stringify(expected)}`, async () => {
    last = (await list(who)).notifications ?? [];
    const now = last.map((n) => shown(n, names));
    return JSON.stringify(now) === JSON.stringify(expected) ? now : undefined;
  }, { timeoutMs: 15_000, intervalMs: 100 });
  return last;
}

describe("the notification inbox", () => {
  let a: Account, b: Account, c: Account, d: Account, e: Account, x: Account;
  const names = new Map<string, string>();
  let t = "";

  beforeAll(async () => {
    [a, b, c, d, e, x] = (await signUpMany(6)) as [Account, Account, Account, Account, Account, Account];
  });

  it("turns a follow, likes, a repost, a reply, a quote and a mention into one notification each, newest first; none for oneself", async () => {
    await ok(`${G}/Follow`, { userId: String(a.id) }, b.token);
    t = await post(a, { text: "notify me" });
    names.set(t, "t");
    await ok(`${T}/LikeTweet`, { tweetId: t }, a.token); // one's own: nothing
    await inboxIs(a, names, ["follow " + b.handle]);
    await ok(`${T}/LikeTweet`, { tweetId: t }, b.token);
    await ok(`${T}/LikeTweet`, { tweetId: t }, c.token);
    await ok(`${T}/Repost`, { tweetId: t }, b.token);
    await inboxIs(a, names, [`repost ${b.handle} t`, `like ${c.handle} t`, `like ${b.handle} t`, `follow ${b.handle}`]);
    // A reply that also mentions a is one notification, the reply.
    names.set(await post(c, { text: `@${a.handle} agreed`, replyToTweetId: t }), "reply");
    await inboxIs(a, names, [`reply ${c.handle} reply`, `repost ${b.handle} t`, `like ${c.handle} t`, `like ${b.handle} t`, `follow ${b.handle}`]);
    names.set(await post(d, { text: "look at this", quoteTweetId: t }), "quote");
    names.set(await post(e, { text: `hi @${a.handle} and @${e.handle}` }), "mention");
    const all = await inboxIs(a, names, [
      `mention ${e.handle} mention`,
      `quote ${d.handle} quote`,
      `reply ${c.handle} reply`,
      `repost ${b.handle} t`,
      `like ${c.handle} t`,
      `like ${b.handle} t`,
      `follow ${b.handle}`,
    ]);
    expect(new Set(all.map((n) => n.id)).size).toBe(7);
    // Nobody else was told anything of it: e mentioned themselves, c and b acted.
    for (const who of [b, c, e]) expect((await list(who)).notifications ?? []).toEqual([]);
  });

  it("pages newest first with keyset tokens, and groups likes and reposts of a tweet in the grouped view", async () => {
    const all = (await list(a)).notifications ?? [];
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await list(a, { pageSize: 3, pageToken });
      expect((page.notifications ?? []).length).toBeLessThanOrEqual(3);
      seen.push(...(page.notifications ?? []).map((n) => n.id));
      pageToken = page.nextPageToken ?? "";
      pages++;
    } while (pageToken !== "" && pages < 10);
    expect(seen).toEqual(all.map((n) => n.id));
    expect(pages).toBe(3);

    const grouped = (await list(a, { grouped: true })).notifications ?? [];
    expect(grouped.map((n) => `${shown(n, names)} x${n.actorCount ?? 0}`)).toEqual([
      `mention ${e.handle} mention x1`,
      `quote ${d.handle} quote x1`,
      `reply ${c.handle} reply x1`,
      `repost ${b.handle} t x1`,
      `like ${c.handle} t x2`,
      `follow ${b.handle} x1`,
    ]);
    expect(grouped[4]!.actors?.map((u) => u.handle)).toEqual([c.handle, b.handle]);
    // The grouped view pages too, each group once.
    const first = await list(a, { grouped: true, pageSize: 4 });
    const second = await list(a, { grouped: true, pageSize: 4, pageToken: first.nextPageToken });
    expect([...(first.notifications ?? []), ...(second.notifications ?? [])].map((n) => n.id)).toEqual(grouped.map((n) => n.id));
    expect(second.nextPageToken ?? "").toBe("");
  });

  it("counts unread notifications, and MarkRead moves the read position", async () => {
    expect(await unread(a)).toBe(7);
    expect(((await list(a)).notifications ?? []).every((n) => n.read !== true)).toBe(true);
    await ok(`${N}/MarkRead`, {}, a.token);
    expect(await unread(a)).toBe(0);
    expect(((await list(a)).notifications ?? []).every((n) => n.read === true)).toBe(true);
    await ok(`${G}/Follow`, { userId: String(a.id) }, x.token);
    await eventually("the new follow to count as unread", async () => ((await unread(a)) === 1 ? true : undefined), { timeoutMs: 15_000, intervalMs: 100 });
    const [newest, next] = (await list(a)).notifications ?? [];
    expect(newest).toMatchObject({ kind: "NOTIFICATION_KIND_FOLLOW", actor: { handle: x.handle } });
    expect(newest!.read ?? false).toBe(false);
    expect(next!.read).toBe(true);
    // Up to a given id: the newer one stays unread.
    await ok(`${N}/MarkRead`, { upToId: next!.id }, a.token);
    expect(await unread(a)).toBe(1);
    await ok(`${N}/MarkRead`, { upToId: newest!.id }, a.token);
    expect(await unread(a)).toBe(0);
  });

  it("shows nobody another's inbox, and needs a caller", async () => {
    const theirs = (await list(x)).notifications ?? [];
    expect(theirs).toEqual([]);
    expect(await unread(x)).toBe(0);
    const token = (await list(a, { pageSize: 2 })).nextPageToken ?? "";
    expect(token).not.toBe("");
    // a's page token is refused in x's inbox, and in the other view.
    expect((await call(`${N}/ListNotifications`, { pageToken: token }, x.token)).code).toBe("invalid_argument");
    expect((await call(`${N}/ListNotifications`, { pageToken: token, grouped: true }, a.token)).code).toBe("invalid_argument");
    for (const m of ["ListNotifications", "GetUnreadCount", "MarkRead"]) expect((await call(`${N}/${m}`, {})).code).toBe("unauthenticated");
  });

  it("is InvalidArgument for a bad page size or token, or a push subscription that is not one", async () => {
    for (const body of [{ pageSize: 101 }, { pageSize: -1 }, { pageToken: "not-a-token" }, { pageToken: "x".repeat(1025) }]) {
      expect((await call(`${N}/ListNotifications`, body, a.token)).code, JSON.stringify(body).slice(0, 40)).toBe("invalid_argument");
    }
    expect((await call(`${N}/RegisterPush`, { endpoint: "", p256dh: "k", auth: "a" }, a.token)).code).toBe("invalid_argument");
    expect((await call(`${N}/RegisterPush`, { endpoint: "https://push.example/1", p256dh: "k", auth: "a" }, a.token)).code).toBe("invalid_argument");
    const { p256dh, auth } = pushService.subscribe("accept");
    // https only, even with private endpoints allowed.
    expect((await call(`${N}/RegisterPush`, { endpoint: "http://127.0.0.1:1/push/x", p256dh, auth }, a.token)).code).toBe("invalid_argument");
  });

  it("takes a notification away when its cause is undone: unlike, unfollow, unrepost, deleted tweets", async () => {
    await ok(`${T}/UnlikeTweet`, { tweetId: t }, c.token);
    await ok(`${G}/Unfollow`, { userId: String(a.id) }, b.token);
    await ok(`${T}/Unrepost`, { tweetId: t }, b.token);
    for (const [who, name] of [[d, "quote"], [e, "mention"]] as const) {
      const id = [...names].find(([, n]) => n === name)![0];
      await ok(`${T}/DeleteTweet`, { tweetId: id }, who.token);
    }
    await inboxIs(a, names, [`follow ${x.handle}`, `reply ${c.handle} reply`, `like ${b.handle} t`]);
    // The liked tweet deleted: its likes go; the reply (c's own tweet) stays.
    await ok(`${T}/DeleteTweet`, { tweetId: t }, a.token);
    await inboxIs(a, names, [`follow ${x.handle}`, `reply ${c.handle} reply`]);
    // A follow again is a new notification, at the top.
    await ok(`${G}/Follow`, { userId: String(a.id) }, b.token);
    await inboxIs(a, names, [`follow ${b.handle}`, `follow ${x.handle}`, `reply ${c.handle} reply`]);
    expect(await unread(a)).toBe(1);
  });
});

describe("a tweet mentioning several users", () => {
  it("tells each once, those on one shard in one transaction; a redelivered TweetCreated changes nothing, before or after the tweet's deletion, nor does a late like of it", async () => {
    const [author, ...mentioned] = (await signUpMany(7)) as [Account, ...Account[]];
    // Six users on four shards: at least two share one (their changes go in one transaction).
    const shards = new Map<string, number>();
    for (const m of mentioned) shards.set(system.router.shardForUser(m.id).name, (shards.get(system.router.shardForUser(m.id).name) ?? 0) + 1);
    expect(Math.max(...shards.values())).toBeGreaterThanOrEqual(2);
    const names = new Map<string, string>();
    const tweetId = await post(author, { text: `${mentioned.map((m) => `@${m.handle}`).join(" ")} hello` });
    names.set(tweetId, "m");
    const inboxes = async (): Promise<string[][]> => Promise.all(mentioned.map(async (m) => ((await list(m)).notifications ?? []).map((n) => `${n.id} ${shown(n, names)}`)));
    for (const m of mentioned) await inboxIs(m, names, [`mention ${author.handle} m`]);
    const first = await inboxes();
    expect(await Promise.all(mentioned.map(unread))).toEqual(mentioned.map(() => 1));

    // The same event delivered again (a new message id: to the consumer, a redelivery), and waited for.
    const nc = await connectNats({ ...parseNatsUrl(system.infra.natsUrl), maxReconnectAttempts: 0 });
    try {
      const js = jetstream(nc);
      const jsm = await jetstreamManager(nc);
      const event = toBinary(
        TweetCreatedSchema,
        create(TweetCreatedSchema, { tweetId: BigInt(tweetId), authorId: author.id, text: "hello", mentions: mentioned.map((m) => m.id), createTime: timestampNow() }),
      );
      const redeliver = async (n: number, also: Array<[string, Uint8Array]> = []): Promise<void> => {
        let seq = 0;
        for (const [i, [subject, payload]] of [[EVENTS.tweetCreated.subject, event] as [string, Uint8Array], ...also].entries()) {
          seq = (await js.publish(subject, payload, { msgID: `notifications-e2e-${tweetId}-${n}-${i}` })).seq;
        }
        await eventually(`the events of delivery ${n} handled`, async () => ((await jsm.consumers.info(EVENT_STREAM, TWEETS_DURABLE)).ack_floor.stream_seq >= seq ? true : undefined), {
          timeoutMs: 15_000,
          intervalMs: 50,
        });
      };
      await redeliver(1);
      expect(await inboxes()).toEqual(first);
      expect(await Promise.all(mentioned.map(unread))).toEqual(mentioned.map(() => 1));

      // Deleted: every mention goes (one transaction per shard again), and a late TweetCreated brings none back.
      await ok(`${T}/DeleteTweet`, { tweetId }, author.token);
      for (const m of mentioned) await inboxIs(m, names, []);
      // With it, a late like of the deleted tweet: recorded against its deletion mark, never shown to the author.
      const like = create(TweetLikedSchema, { tweetId: BigInt(tweetId), authorId: author.id, likerId: mentioned[0]!.id, likeVersion: 1n, likeTime: timestampNow() });
      await redeliver(2, [[EVENTS.tweetLiked.subject, toBinary(TweetLikedSchema, like)]]);
      expect(await inboxes()).toEqual(mentioned.map(() => []));
      // (A read would leave it out anyway, its tweet gone: the row and the count say it was never shown.)
      expect(await unread(author)).toBe(0);
      const rows = await system.router
        .primaryForUser(author.id)
        .query<{ state: number; version: string }>("SELECT state, version FROM chirp.notifications WHERE recipient_id = ? AND subject_id = ?", [author.id, tweetId]);
      expect(rows.map((r) => [Number(r.state), String(r.version)])).toEqual([[0, "1"]]);
      expect(await Promise.all(mentioned.map(unread))).toEqual(mentioned.map(() => 0));
    } finally {
      await nc.close();
    }
  });
});

/** The NotificationCreated events written to `who`'s outbox (one per notification that had a push subscription to go to). */
async function storedNotificationEvents(who: Account): Promise<number> {
  const [row] = await system.router
    .primaryForUser(who.id)
    .query<{ n: number }>("SELECT COUNT(*) AS n FROM chirp.outbox WHERE user_id = ? AND subject = ?", [who.id, EVENTS.notificationCreated.subject]);
  return Number(row?.n ?? 0);
}

describe("StreamEvents", () => {
  it("pushes each new notification to the recipient's open stream", async () => {
    const [me, fan] = (await signUpMany(2)) as [Account, Account];
    const client = createClient(TimelineService, createConnectTransport({ baseUrl: mesh.gatewayUrl, fetch: fetchKeepingAbort }));
    const abort = new AbortController();
    const received: StreamEventsResponse[] = [];
    let first!: () => void;
    const ready = new Promise<void>((r) => (first = r));
    const done = (async () => {
      try {
        for await (const msg of client.streamEvents({}, { signal: abort.signal, headers: { authorization: `Bearer ${me.token}` } })) {
          received.push(msg);
          first();
        }
      } catch {
        // aborted at the end
      } finally {
        first();
      }
    })();
    try {
      await withTimeout("the stream's first message", 10_000, ready);
      await ok(`${G}/Follow`, { userId: String(fan.id) }, me.token);
      const mine = await post(me, { text: "push it" });
      await ok(`${G}/Follow`, { userId: String(me.id) }, fan.token);
      await ok(`${T}/LikeTweet`, { tweetId: mine }, fan.token);
      const pushed = await eventually(
        "a follow and a like notification on the stream",
        () => {
          const got = received.flatMap((m) => (m.event.case === "notification" ? [m.event.value] : []));
          return got.length >= 2 ? got : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 20 },
      );
      // The follow and the like travel through different consumers: either may come first.
      expect(pushed.map((n): [number, string | undefined, bigint] => [n.kind, n.actor?.handle, n.tweet?.id ?? 0n]).sort((p, q) => p[0] - q[0])).toEqual([
        [1, fan.handle, 0n],
        [2, fan.handle, BigInt(mine)],
      ]);
      const inbox = (await list(me)).notifications ?? [];
      expect(pushed.map((n) => String(n.id)).sort()).toEqual(inbox.map((n) => n.id).sort());
      // With no Web Push subscription they came as live copies only: no NotificationCreated was stored.
      expect(await storedNotificationEvents(me)).toBe(0);
    } finally {
      abort.abort();
      await done;
    }
  });
});

describe("Web Push", () => {
  /** The decrypted payloads that reached `browser`. */
  const pushedTo = (browser: Browser): Array<{ id: string; kind: string; actor: { handle: string }; tweet?: { id: string; text: string } }> =>
    pushService.received.filter((r) => browser.endpoint.endsWith(`/push/${r.subscription}`)).map((r) => JSON.parse(r.plaintext));
  const register = (who: Account, browser: Browser): Promise<unknown> =>
    ok(`${N}/RegisterPush`, { endpoint: browser.endpoint, p256dh: browser.p256dh, auth: browser.auth }, who.token);
  const subscriptions = async (who: Account): Promise<number> => {
    const [row] = await system.router.primaryForUser(who.id).query<{ n: number }>("SELECT COUNT(*) AS n FROM chirp.push_subscriptions WHERE user_id = ?", [who.id]);
    return Number(row?.n ?? 0);
  };

  it("delivers each new notification to every subscription of its recipient, encrypted to its keys, signed with the VAPID key, with a TTL", async () => {
    const [me, fan] = (await signUpMany(2)) as [Account, Account];
    const { vapidPublicKey } = await ok<{ vapidPublicKey: string }>(`${N}/GetPushConfig`, {}, me.token);
    expect(Buffer.from(vapidPublicKey, "base64url")).toHaveLength(65);
    const laptop = pushService.subscribe("accept");
    const phone = pushService.subscribe("accept");
    await register(me, laptop);
    await register(me, phone);
    await register(me, phone); // again: still one subscription
    expect(await subscriptions(me)).toBe(2);

    await ok(`${G}/Follow`, { userId: String(me.id) }, fan.token);
    const tweet = await post(me, { text: "push me please" });
    await ok(`${T}/LikeTweet`, { tweetId: tweet }, fan.token);
    for (const browser of [laptop, phone]) {
      const got = await eventually(`a follow and a like pushed to ${browser.endpoint}`, () => {
        const p = pushedTo(browser);
        return p.length >= 2 ? p : undefined;
      }, { timeoutMs: 15_000, intervalMs: 20 });
      expect(got.map((n) => `${n.kind} ${n.actor.handle} ${n.tweet?.text ?? ""}`).sort()).toEqual([`follow ${fan.handle} `, `like ${fan.handle} push me please`]);
    }
    expect(pushService.errors).toEqual([]);
    const inbox = (await list(me)).notifications ?? [];
    expect(pushedTo(laptop).map((n) => n.id).sort()).toEqual(inbox.map((n) => n.id).sort());
    expect(await storedNotificationEvents(me)).toBe(2);
    for (const r of pushService.received.filter((x) => [laptop, phone].some((b) => b.endpoint.endsWith(x.subscription)))) {
      expect(r.vapidKey).toBe(vapidPublicKey);
      expect(r.claims.sub).toMatch(/^(mailto:|https:)/);
      expect(r.claims.exp * 1000).toBeGreaterThan(Date.now());
      expect(r.claims.exp * 1000).toBeLessThanOrEqual(Date.now() + 24 * 3600_000);
      expect(Number(r.headers.ttl)).toBeGreaterThan(0);
      expect(Number(r.headers.ttl)).toBeLessThanOrEqual(86_400);
      expect(r.headers.topic).toMatch(/^[A-Za-z0-9_-]{1,32}$/);
    }
    // UnregisterPush removes one.
    await ok(`${N}/UnregisterPush`, { endpoint: phone.endpoint }, me.token);
    expect(await subscriptions(me)).toBe(1);
  });

  it("drops a subscription its push service answers 410 Gone", async () => {
    const [me, fan] = (await signUpMany(2)) as [Account, Account];
    const old = pushService.subscribe("gone");
    await register(me, old);
    expect(await subscriptions(me)).toBe(1);
    await ok(`${G}/Follow`, { userId: String(me.id) }, fan.token);
    await eventually("the gone subscription to be dropped", async () => ((await subscriptions(me)) === 0 ? true : undefined), { timeoutMs: 15_000, intervalMs: 50 });
    expect(pushService.requests(old)).toBe(1);
    // Counted once the drop returned (the row, then its cache entry): a moment after the row is gone.
    const dropped = /^chirp_push_dropped_total\{reason="gone"[^}]*\} [1-9]/m;
    await eventually(
      "the drop counted",
      async () => (dropped.test(await (await fetch(`http://127.0.0.1:${mesh.services.notification.metricsPort}/metrics`)).text()) ? true : undefined),
      { timeoutMs: 5_000, intervalMs: 20 },
    );
  });

  it("does not let a push service that never answers delay another push service's deliveries", async () => {
    const [stuck, other, fan] = (await signUpMany(3)) as [Account, Account, Account];
    const hung = stuckService.subscribe("hang");
    const fine = pushService.subscribe("accept");
    await register(stuck, hung);
    await register(other, fine);
    // More notifications for the stuck push service than the consumer has slots (4).
    const tweets = await Promise.all(Array.from({ length: 6 }, (_, i) => post(stuck, { text: `stuck ${i}` })));
    for (const t of tweets) await ok(`${T}/LikeTweet`, { tweetId: t }, fan.token);
    await eventually("the stuck push service to hold requests", () => (stuckService.hanging.now >= 2 ? true : undefined), { timeoutMs: 15_000, intervalMs: 20 });
    await ok(`${G}/Follow`, { userId: String(other.id) }, fan.token);
    await eventually("the other recipient's push", () => (pushedTo(fine).length === 1 ? true : undefined), { timeoutMs: 15_000, intervalMs: 20 });
    // It came while the stuck service still held its requests, and never more than the per-origin limit (2) of them.
    expect(stuckService.hanging.now).toBe(2);
    expect(stuckService.hanging.max).toBe(2);
    expect(pushedTo(fine)[0]).toMatchObject({ kind: "follow", actor: { handle: fan.handle } });
    // The stuck service goes away: its subscription is dropped on the retries.
    stuckService.setMode(hung, "gone");
    stuckService.releaseHanging();
    await eventually("the stuck subscription to be dropped", async () => ((await subscriptions(stuck)) === 0 ? true : undefined), { timeoutMs: 15_000, intervalMs: 50 });
  });
});
