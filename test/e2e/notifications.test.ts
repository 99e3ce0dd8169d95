// Notifications through the gateway (issue 20, items 1 and 2), with the system
// as `npm start` runs it on a tenant of the shared cluster: follows, likes,
// reposts, replies, quotes and mentions of a user become notifications in
// their inbox once each, newest first, in keyset pages, flat or grouped; the
// unread count follows MarkRead; an undone cause disappears; nobody sees
// another's inbox; StreamEvents pushes each new one; bad input is
// InvalidArgument.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TimelineService, type StreamEventsResponse } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import type { Mesh } from "../../devcluster/launch.js";
import { eventually, withTimeout } from "../support/eventually.js";
import { fetchKeepingAbort } from "../support/fetch.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { gatewayApi, type Account } from "./support/api.js";

let system: TestSystem;
let mesh: Mesh;

beforeAll(async () => {
  system = await startSystem({ router: false });
  mesh = system.mesh;
});
afterAll(async () => {
  await system?.stop();
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

  it("is InvalidArgument for a bad page size or token; the push RPCs are Unimplemented", async () => {
    for (const body of [{ pageSize: 101 }, { pageSize: -1 }, { pageToken: "not-a-token" }, { pageToken: "x".repeat(1025) }]) {
      expect((await call(`${N}/ListNotifications`, body, a.token)).code, JSON.stringify(body).slice(0, 40)).toBe("invalid_argument");
    }
    expect((await call(`${N}/RegisterPush`, { endpoint: "", p256dh: "k", auth: "a" }, a.token)).code).toBe("invalid_argument");
    expect((await call(`${N}/GetPushConfig`, {}, a.token)).code).toBe("unimplemented");
    expect((await call(`${N}/RegisterPush`, { endpoint: "https://push.example/1", p256dh: "k", auth: "a" }, a.token)).code).toBe("unimplemented");
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
    } finally {
      abort.abort();
      await done;
    }
  });
});
