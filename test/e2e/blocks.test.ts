// Blocks and mutes through the gateway (issue 21, items 1-2), with the system
// as `npm start` runs it on a tenant of the shared cluster. Block ends the
// follows both ways (counts exact) and refuses following, replying, quoting,
// reposting and liking either way; neither user sees the other's tweets in
// home timelines, search, threads or notifications; a FLUSHALL loses none of
// it. Mute changes only the muter's home timeline and notifications. Both are
// idempotent; bad input is refused.
import { fromBinary } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserBlockedSchema, UserUnblockedSchema } from "../../gen/chirp/graph/v1/events_pb.js";
import type { Mesh } from "../../devcluster/launch.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { connectEvents, type EventReader } from "../support/events.js";
import { eventually } from "../support/eventually.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { gatewayApi, type Account } from "./support/api.js";

let system: TestSystem;
let mesh: Mesh;
let events: EventReader;
let redis: Redis;

beforeAll(async () => {
  system = await startSystem({ router: false });
  mesh = system.mesh;
  events = await connectEvents(system.infra.natsUrl);
  redis = new Redis(system.infra.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  redis?.disconnect();
  await events?.close();
  await system?.stop();
});

interface ApiTweet {
  id: string;
  authorId: string;
  text?: string;
  quoteTweet?: { id: string };
  repostedBy?: { id: string };
}
interface ApiUser {
  id: string;
  handle: string;
  followerCount?: number;
  followingCount?: number;
}

const { call, ok, signUpMany } = gatewayApi(() => mesh.gatewayUrl, "bk");
const G = "chirp.graph.v1.GraphService";
const T = "chirp.tweet.v1.TweetService";
const TL = "chirp.timeline.v1.TimelineService";
const S = "chirp.search.v1.SearchService";
const N = "chirp.notification.v1.NotificationService";
const U = "chirp.user.v1.UserService";

const id = (a: Account): string => String(a.id);
const graph = (method: string, who: Account, other: Account) => ok(`${G}/${method}`, { userId: id(other) }, who.token);
const graphCode = async (method: string, who: Account, other: Account | string): Promise<string | undefined> =>
  (await call(`${G}/${method}`, { userId: typeof other === "string" ? other : id(other) }, who.token)).code;
const post = async (who: Account, body: Record<string, unknown>): Promise<ApiTweet> => (await ok<{ tweet: ApiTweet }>(`${T}/PostTweet`, body, who.token)).tweet;
const home = async (who: Account): Promise<ApiTweet[]> => (await ok<{ tweets?: ApiTweet[] }>(`${TL}/GetHomeTimeline`, { pageSize: 50 }, who.token)).tweets ?? [];
const homeIds = async (who: Account): Promise<string[]> => (await home(who)).map((t) => t.id);
const counts = async (who: Account): Promise<[number, number]> => {
  const { user } = await ok<{ user: ApiUser }>(`${U}/GetUser`, { userId: id(who) });
  return [user.followerCount ?? 0, user.followingCount ?? 0];
};
const handles = async (method: string, who: Account, body: Record<string, unknown> = {}): Promise<string[]> =>
  ((await ok<{ users?: ApiUser[] }>(`${G}/${method}`, body, who.token)).users ?? []).map((u) => u.handle);
const search = async (query: string, who?: Account): Promise<string[]> =>
  ((await ok<{ tweets?: ApiTweet[] }>(`${S}/SearchTweets`, { query }, who?.token)).tweets ?? []).map((t) => t.id);
/** "KIND handle,handle": the inbox as its reader sees it. */
const inbox = async (who: Account): Promise<string[]> =>
  (
    (await ok<{ notifications?: Array<{ kind: string; actors?: Array<{ handle: string }> }> }>(`${N}/ListNotifications`, { pageSize: 100 }, who.token)).notifications ?? []
  ).map((n) => `${n.kind.replace("NOTIFICATION_KIND_", "")} ${(n.actors ?? []).map((u) => u.handle).join(",")}`);
/** A counter of the notification service's, summed over the series whose labels include `labels`. */
async function metric(name: string, labels: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${mesh.services.notification.metricsPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (m !== null && m[1] === name && (m[2] ?? "").includes(labels)) sum += Number(m[3]);
  }
  return sum;
}
const tag = (): string => `w${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;

describe("Block and Unblock", () => {
  it("end the follows both ways with exact counts, refuse following either way while blocked, are idempotent and listed; UserBlocked and UserUnblocked go out once each", async () => {
    const [a, b, c] = (await signUpMany(3)) as [Account, Account, Account];
    await graph("Follow", a, b);
    await graph("Follow", b, a);
    await graph("Follow", c, a);
    expect(await counts(a)).toEqual([2, 1]);
    await Promise.all([graph("Block", a, b), graph("Block", a, b)]);
    await graph("Block", a, b);
    expect(await counts(a)).toEqual([1, 0]);
    expect(await counts(b)).toEqual([0, 0]);
    expect(await handles("ListFollowers", a, { userId: id(a) })).toEqual([c.handle]);
    expect(await handles("ListFollowing", b, { userId: id(b) })).toEqual([]);
    for (const [x, y] of [[a, b], [b, a]] as const) expect(await graphCode("Follow", x, y)).toBe("permission_denied");
    expect(await counts(b)).toEqual([0, 0]);
    expect(await handles("ListBlocked", a)).toEqual([b.handle]);
    expect(await handles("ListBlocked", b)).toEqual([]);

    await graph("Unblock", a, b);
    await graph("Unblock", a, b);
    expect(await handles("ListBlocked", a)).toEqual([]);
    // Follows are not restored, and may be made again.
    expect(await counts(a)).toEqual([1, 0]);
    await graph("Follow", b, a);
    expect(await counts(a)).toEqual([2, 0]);

    const seen = async (): Promise<string[]> =>
      (await events.read("chirp.graph.v1.*")).flatMap((msg) => {
        const schema = msg.subject === EVENTS.userBlocked.subject ? UserBlockedSchema : msg.subject === EVENTS.userUnblocked.subject ? UserUnblockedSchema : undefined;
        if (schema === undefined) return [];
        const m = fromBinary(schema, msg.data);
        return m.blockerId === a.id && m.blockedId === b.id ? [`${msg.subject.split(".").at(-1)} v${m.blockVersion}`] : [];
      });
    // Read once both are out (each read waits a second for more): exactly one of each, in order.
    const got = await eventually("UserBlocked and UserUnblocked published", async () => {
      const all = await seen();
      return all.length >= 2 && all;
    });
    expect(got).toEqual(["user_blocked v1", "user_unblocked v2"]);
  });

  it("pages ListBlocked newest first with tokens bound to the caller", async () => {
    const [a, ...others] = (await signUpMany(4)) as [Account, ...Account[]];
    for (const o of others) await graph("Block", a, o);
    const first = await ok<{ users: ApiUser[]; nextPageToken: string }>(`${G}/ListBlocked`, { pageSize: 2 }, a.token);
    expect(first.users.map((u) => u.handle)).toEqual([others[2]!.handle, others[1]!.handle]);
    const second = await ok<{ users: ApiUser[]; nextPageToken?: string }>(`${G}/ListBlocked`, { pageSize: 2, pageToken: first.nextPageToken }, a.token);
    expect(second.users.map((u) => u.handle)).toEqual([others[0]!.handle]);
    expect(second.nextPageToken ?? "").toBe("");
    // Another caller's token, or another list's, is refused.
    expect((await call(`${G}/ListBlocked`, { pageToken: first.nextPageToken }, others[0]!.token)).code).toBe("invalid_argument");
    expect((await call(`${G}/ListMuted`, { pageToken: first.nextPageToken }, a.token)).code).toBe("invalid_argument");
  });

  it("refuses bad input: oneself, an unknown user, no caller, a bad token or page size", async () => {
    const [a] = (await signUpMany(1)) as [Account];
    for (const m of ["Block", "Unblock", "Mute", "Unmute"]) {
      expect(await graphCode(m, a, a)).toBe("invalid_argument");
      expect(await graphCode(m, a, "999999999999")).toBe("not_found");
      expect(await graphCode(m, a, "0")).toBe("invalid_argument");
      expect((await call(`${G}/${m}`, { userId: "2" })).code).toBe("unauthenticated");
    }
    for (const m of ["ListBlocked", "ListMuted"]) {
      expect((await call(`${G}/${m}`, {})).code).toBe("unauthenticated");
      expect((await call(`${G}/${m}`, { pageToken: "not a token" }, a.token)).code).toBe("invalid_argument");
      expect((await call(`${G}/${m}`, { pageSize: 101 }, a.token)).code).toBe("invalid_argument");
    }
  });

  it("refuses replying to, quoting, reposting and liking the other's tweets, either way; taking a like back is fine", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    const ta = await post(a, { text: "the blocker's" });
    const tb = await post(b, { text: "the blocked one's" });
    await ok(`${T}/LikeTweet`, { tweetId: tb.id }, a.token);
    await graph("Block", a, b);
    for (const [who, t] of [[b, ta], [a, tb]] as const) {
      expect((await call(`${T}/LikeTweet`, { tweetId: t.id }, who.token)).code).toBe("permission_denied");
      expect((await call(`${T}/Repost`, { tweetId: t.id }, who.token)).code).toBe("permission_denied");
      expect((await call(`${T}/PostTweet`, { text: "re", replyToTweetId: t.id }, who.token)).code).toBe("permission_denied");
      expect((await call(`${T}/PostTweet`, { text: "qt", quoteTweetId: t.id }, who.token)).code).toBe("permission_denied");
    }
    expect((await ok<{ likeCount?: number }>(`${T}/UnlikeTweet`, { tweetId: tb.id }, a.token)).likeCount ?? 0).toBe(0);
    // Their own tweets stay theirs to act on.
    await ok(`${T}/LikeTweet`, { tweetId: ta.id }, a.token);
    await graph("Unblock", a, b);
    await ok(`${T}/LikeTweet`, { tweetId: ta.id }, b.token);
  });

  it("hides each one's tweets from the other in home timelines (reposts too), search, threads and notifications, also after a FLUSHALL", async () => {
    const [a, b, c] = (await signUpMany(3)) as [Account, Account, Account];
    const word = tag();
    await graph("Follow", a, b);
    await graph("Follow", b, a);
    await graph("Follow", a, c);
    await Promise.all([home(a), home(b)]); // the lists exist: fan-out writes into them
    const ta = await post(a, { text: `from a ${word}` });
    const tb = await post(b, { text: `from b ${word}` });
    const root = await post(c, { text: "a thread" });
    const replyA = await post(a, { text: "a replies", replyToTweetId: root.id });
    const replyB = await post(b, { text: `b replies @${a.handle}`, replyToTweetId: root.id });
    await ok(`${T}/Repost`, { tweetId: tb.id }, c.token);
    const quote = await post(c, { text: "c quotes b", quoteTweetId: tb.id });
    await ok(`${T}/LikeTweet`, { tweetId: ta.id }, b.token);
    await eventually("each sees the other's tweet (a through c's repost), c's quote, and the search index has both", async () => {
      const [ha, hb, found] = await Promise.all([home(a), homeIds(b), search(word)]);
      const shownTb = ha.find((t) => t.id === tb.id);
      return shownTb?.repostedBy?.id === id(c) && ha.find((t) => t.id === quote.id)?.quoteTweet?.id === tb.id && hb.includes(ta.id) && found.length === 2;
    });
    await eventually("a is told of b's follow, like and mention", async () => {
      const got = await inbox(a);
      return ["FOLLOW", "LIKE", "MENTION"].every((k) => got.includes(`${k} ${b.handle}`)) && got;
    });

    await graph("Block", a, b);
    const hidden = async (): Promise<void> => {
      // Home timelines: b's tweet, and c's repost of it, are gone from a's; a's from b's; c's quote shows without b's tweet.
      const ha = await home(a);
      expect(ha.map((t) => t.id)).not.toContain(tb.id);
      expect(ha.filter((t) => t.authorId === id(b))).toEqual([]);
      expect(ha.find((t) => t.id === quote.id)).toBeDefined();
      expect(ha.find((t) => t.id === quote.id)?.quoteTweet).toBeUndefined();
      expect(ha.map((t) => t.id)).toContain(root.id);
      expect((await home(b)).filter((t) => t.authorId === id(a))).toEqual([]);
      // Search: each misses the other's tweet; anyone else finds both.
      expect(await search(word, a)).toEqual([ta.id]);
      expect(await search(word, b)).toEqual([tb.id]);
      expect((await search(word, c)).sort()).toEqual([ta.id, tb.id].sort());
      // Threads: the other's replies are left out, their tweet refused.
      const thread = async (who: Account) =>
        ((await ok<{ replies?: ApiTweet[] }>(`${T}/GetThread`, { tweetId: root.id }, who.token)).replies ?? []).map((t) => t.id);
      expect(await thread(a)).toEqual([replyA.id]);
      expect(await thread(b)).toEqual([replyB.id]);
      expect(await thread(c)).toEqual([replyA.id, replyB.id]);
      expect((await call(`${T}/GetThread`, { tweetId: tb.id }, a.token)).code).toBe("permission_denied");
      expect((await call(`${T}/GetThread`, { tweetId: ta.id }, b.token)).code).toBe("permission_denied");
      const ancestors = (await ok<{ ancestors?: ApiTweet[] }>(`${T}/GetThread`, { tweetId: replyA.id }, a.token)).ancestors ?? [];
      expect(ancestors.map((t) => t.id)).toEqual([root.id]);
      // Notifications: nothing of b's in a's inbox, from before the block either.
      expect((await inbox(a)).filter((n) => n.includes(b.handle))).toEqual([]);
    };
    await hidden();
    // The timelines' lists themselves lose the entries too, through the unfollow events.
    await eventually("the unfollows reached a's home list", async () => (await redis.zrange(`chirp:tl:home:{${id(a)}}`, "0", "-1")).every((m) => !m.endsWith(`:${id(b)}`)));
    // Everything in Redis can go: the blocks are rebuilt from MySQL.
    await redis.flushdb();
    await hidden();
    expect((await call(`${T}/LikeTweet`, { tweetId: ta.id }, b.token)).code).toBe("permission_denied");
    expect(await graphCode("Follow", b, a)).toBe("permission_denied");

    // Unblocked: search and threads show both again (follows are not restored).
    await graph("Unblock", a, b);
    expect((await search(word, a)).sort()).toEqual([ta.id, tb.id].sort());
    expect((await ok<{ tweet: ApiTweet }>(`${T}/GetThread`, { tweetId: tb.id }, a.token)).tweet.id).toBe(tb.id);
  });
});

describe("Mute and Unmute", () => {
  it("take the muted user's tweets out of the muter's home timeline (existing ones too) and notifications, and nowhere else; idempotent and listed", async () => {
    const [a, m] = (await signUpMany(2)) as [Account, Account];
    await graph("Follow", a, m);
    await graph("Follow", m, a);
    await Promise.all([home(a), home(m)]);
    const before = await post(m, { text: "said before the mute" });
    const mine = await post(a, { text: "a's own" });
    await eventually("each sees the other's tweet", async () => (await homeIds(a)).includes(before.id) && (await homeIds(m)).includes(mine.id));

    await eventually("a is told of m's follow", async () => (await inbox(a)).includes(`FOLLOW ${m.handle}`));
    const hiddenBefore = await metric("chirp_notification_changes_total", 'result="hidden"');
    await Promise.all([graph("Mute", a, m), graph("Mute", a, m)]);
    await graph("Mute", a, m);
    expect(await homeIds(a)).toEqual([mine.id]);
    const after = await post(m, { text: `said after the mute @${a.handle}` });
    await ok(`${T}/LikeTweet`, { tweetId: mine.id }, m.token);
    // The muted user notices nothing: still followed both ways, their home and likes as before.
    expect(await counts(m)).toEqual([1, 1]);
    await eventually("m's own home has their new tweet and a's", async () => {
      const ids = await homeIds(m);
      return ids.includes(after.id) && ids.includes(mine.id);
    });
    // m's mention and like reached the notification service, which told a nothing of them.
    await eventually("m's mention and like passed over", async () => (await metric("chirp_notification_changes_total", 'result="hidden"')) - hiddenBefore >= 2);
    expect(await inbox(a)).toEqual([]);
    expect(await homeIds(a)).toEqual([mine.id]);
    expect(await handles("ListMuted", a)).toEqual([m.handle]);
    expect(await handles("ListMuted", m)).toEqual([]);

    await graph("Unmute", a, m);
    await graph("Unmute", a, m);
    expect(await handles("ListMuted", a)).toEqual([]);
    await eventually("m's tweets back in a's home", async () => (await homeIds(a)).join() === [after.id, mine.id, before.id].join());
    // The follow from before the mute shows again; what m did meanwhile was never a notification.
    expect(await inbox(a)).toEqual([`FOLLOW ${m.handle}`]);
  });
});
