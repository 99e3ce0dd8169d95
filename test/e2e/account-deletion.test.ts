// DeleteAccount through the gateway (issue 21, item 4), with the system as
// `npm start` runs it on a tenant of the shared cluster. A wrong password
// changes nothing. The right one ends every session at once (the token is
// refused within a second) and removes the profile, so the handle and the
// email can be signed up again; each service then erases its part from the
// UserDeleted event: the user's tweets (with their reply, quote and repost
// edges) leave others' home timelines and search, their likes and reposts
// are taken back and their follows ended both ways with every count on the
// other side exact, their blocks, mutes, media, inbox, push subscriptions and
// sessions go, and the notifications they caused in others' inboxes disappear.
import { createECDH, randomBytes } from "node:crypto";
import { PNG } from "pngjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "../support/eventually.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { TEST_PASSWORD, gatewayApi, type Account } from "./support/api.js";

let system: TestSystem;

beforeAll(async () => {
  // A push subscription on loopback (nothing listens there: nothing is ever delivered).
  system = await startSystem({ env: { CHIRP_PUSH_ALLOW_PRIVATE_ENDPOINTS: "1" } });
});
afterAll(async () => {
  await system?.stop();
});

const U = "chirp.user.v1.UserService";
const G = "chirp.graph.v1.GraphService";
const T = "chirp.tweet.v1.TweetService";
const TL = "chirp.timeline.v1.TimelineService";
const S = "chirp.search.v1.SearchService";
const N = "chirp.notification.v1.NotificationService";
const { call, ok, signUpMany } = gatewayApi(() => system.mesh.gatewayUrl, "ad");

interface ApiTweet {
  id: string;
  authorId: string;
  likeCount?: number;
  replyCount?: number;
  quoteCount?: number;
  repostCount?: number;
  repostedBy?: { id: string };
}
interface ApiUser {
  id: string;
  handle: string;
  followerCount?: number;
  followingCount?: number;
  tweetCount?: number;
}

const id = (a: Account): string => String(a.id);
const post = async (who: Account, body: Record<string, unknown>): Promise<ApiTweet> => (await ok<{ tweet: ApiTweet }>(`${T}/PostTweet`, body, who.token)).tweet;
const tweet = async (tweetId: string): Promise<ApiTweet> => (await ok<{ tweet: ApiTweet }>(`${T}/GetTweet`, { tweetId })).tweet;
const counts = async (who: Account): Promise<[number, number]> => {
  const { user } = await ok<{ user: ApiUser }>(`${U}/GetUser`, { userId: id(who) });
  return [user.followerCount ?? 0, user.followingCount ?? 0];
};
/** Who is behind each entry of the home timeline: the author, or the reposter. */
const homeFaces = async (who: Account): Promise<string[]> =>
  ((await ok<{ tweets?: ApiTweet[] }>(`${TL}/GetHomeTimeline`, { pageSize: 100 }, who.token)).tweets ?? []).map((t) => t.repostedBy?.id ?? t.authorId);
const searchIds = async (query: string): Promise<string[]> => ((await ok<{ tweets?: ApiTweet[] }>(`${S}/SearchTweets`, { query, pageSize: 50 })).tweets ?? []).map((t) => t.id);
const inboxActors = async (who: Account): Promise<string[]> =>
  ((await ok<{ notifications?: Array<{ actors?: ApiUser[]; actor?: ApiUser }> }>(`${N}/ListNotifications`, { pageSize: 100 }, who.token)).notifications ?? []).flatMap(
    (n) => [...(n.actors ?? []), ...(n.actor === undefined ? [] : [n.actor])].map((u) => u.id),
  );
const unread = async (who: Account): Promise<number> => (await ok<{ count?: number }>(`${N}/GetUnreadCount`, {}, who.token)).count ?? 0;

/** Rows a user still has in a table (the primary of the user's shard). */
async function rowsOf(table: string, column: string, userId: bigint, extra = ""): Promise<number> {
  const rows = await system.router.primaryForUser(userId).query<{ n: string }>(`SELECT COUNT(*) AS n FROM chirp.${table} WHERE ${column} = ?${extra}`, [userId]);
  return Number(rows[0]!.n);
}

describe("DeleteAccount", () => {
  it("with a wrong password changes nothing; with the right one erases the account everywhere, and its handle and email are free again", async () => {
    const [dee, amy, bo, cy] = await signUpMany(4);
    const tag = `#gone${process.pid}`;
    // Dee follows Amy and is followed by Amy and Bo; Dee blocks Cy, Cy mutes Dee.
    await ok(`${G}/Follow`, { userId: id(amy!) }, dee!.token);
    await ok(`${G}/Follow`, { userId: id(dee!) }, amy!.token);
    await ok(`${G}/Follow`, { userId: id(dee!) }, bo!.token);
    await ok(`${G}/Block`, { userId: id(cy!) }, dee!.token);
    await ok(`${G}/Mute`, { userId: id(dee!) }, cy!.token);
    const amys = await post(amy!, { text: "amy's tweet" });
    // A tweet with a photo, a reply, a quote, a like and a repost of Amy's tweet.
    const png = PNG.sync.write({ width: 4, height: 4, data: Buffer.alloc(64, 90) } as Parameters<typeof PNG.sync.write>[0]);
    const upload = await fetch(`${system.mesh.gatewayUrl}/media`, { method: "POST", body: png, headers: { "content-type": "image/png", authorization: `Bearer ${dee!.token}` } });
    expect(upload.status).toBe(201);
    const mediaId = ((await upload.json()) as { id: string }).id;
    const own = await post(dee!, { text: `dee was here ${tag}`, mediaIds: [mediaId] });
    const reply = await post(dee!, { text: `a reply ${tag}`, replyToTweetId: amys.id });
    const quote = await post(dee!, { text: `a quote ${tag}`, quoteTweetId: amys.id });
    await ok(`${T}/LikeTweet`, { tweetId: amys.id }, dee!.token);
    await ok(`${T}/Repost`, { tweetId: amys.id }, dee!.token);
    // Amy likes Dee's tweet: a notification in Dee's inbox.
    await ok(`${T}/LikeTweet`, { tweetId: own.id }, amy!.token);

    // Everything above is in place before the deletion, where it will have to go from.
    await eventually("Dee's tweets in Amy's and Bo's home timelines", async () =>
      (await Promise.all([homeFaces(amy!), homeFaces(bo!)])).every((faces) => faces.filter((f) => f === id(dee!)).length >= 2),
    );
    await eventually("Dee's tweets searchable", async () => (await searchIds(tag)).length === 3);
    await eventually("Dee in Amy's inbox (follow, reply, quote, like, repost)", async () => (await inboxActors(amy!)).filter((a) => a === id(dee!)).length >= 4);
    await eventually("Amy's like in Dee's inbox", async () => (await unread(dee!)) >= 2);
    const browser = createECDH("prime256v1");
    browser.generateKeys();
    await ok(
      `${N}/RegisterPush`,
      { endpoint: "https://127.0.0.1:1/push/dee", p256dh: browser.getPublicKey().toString("base64url"), auth: randomBytes(16).toString("base64url") },
      dee!.token,
    );
    expect(await rowsOf("push_subscriptions", "user_id", dee!.id)).toBe(1);
    const before = await tweet(amys.id);
    expect([before.likeCount, before.replyCount, before.quoteCount, before.repostCount]).toEqual([1, 1, 1, 1]);
    expect(await counts(amy!)).toEqual([1, 1]);
    expect(await counts(bo!)).toEqual([0, 1]);
    expect(await counts(dee!)).toEqual([2, 1]);

    // A wrong password: PermissionDenied, and nothing changed.
    expect((await call(`${U}/DeleteAccount`, { password: "not the password" }, dee!.token)).code).toBe("permission_denied");
    expect((await call(`${U}/DeleteAccount`, { password: "" }, dee!.token)).code).toBe("invalid_argument");
    expect((await call(`${U}/DeleteAccount`, { password: TEST_PASSWORD })).code).toBe("unauthenticated");
    expect((await ok<{ user: ApiUser }>(`${U}/GetUser`, { handle: dee!.handle }, dee!.token)).user.id).toBe(id(dee!));
    expect(await counts(amy!)).toEqual([1, 1]);
    expect((await tweet(own.id)).id).toBe(own.id);

    await ok(`${U}/DeleteAccount`, { password: TEST_PASSWORD }, dee!.token);
    // The token is refused at once; the profile is gone, and so is the log-in.
    await eventually("Dee's token refused", async () => (await call(`${U}/GetUser`, { userId: id(amy!) }, dee!.token)).code === "unauthenticated", {
      timeoutMs: 1000,
      intervalMs: 20,
    });
    expect((await call(`${U}/DeleteAccount`, { password: TEST_PASSWORD }, dee!.token)).code).toBe("unauthenticated");
    expect((await call(`${U}/GetUser`, { userId: id(dee!) })).code).toBe("not_found");
    expect((await call(`${U}/GetUser`, { handle: dee!.handle })).code).toBe("not_found");
    expect((await call(`${U}/LogIn`, { handle: dee!.handle, password: TEST_PASSWORD })).code).toBe("unauthenticated");
    const exported = await fetch(`${system.mesh.gatewayUrl}/account/export`, { headers: { authorization: `Bearer ${dee!.token}` } });
    expect(exported.status).toBe(401);

    // Each service's erasure: others' counts exact, the tweets gone from every read.
    await eventually("Amy's tweet's counts corrected", async () => {
      const t = await tweet(amys.id);
      return [t.likeCount ?? 0, t.replyCount ?? 0, t.quoteCount ?? 0, t.repostCount ?? 0].every((n) => n === 0) && t;
    });
    await eventually("follow counts corrected both ways", async () => (await counts(amy!)).join() === "0,0" && (await counts(bo!)).join() === "0,0");
    for (const t of [own, reply, quote]) expect((await call(`${T}/GetTweet`, { tweetId: t.id })).code).toBe("not_found");
    await eventually("Dee's tweets out of home timelines", async () =>
      (await Promise.all([homeFaces(amy!), homeFaces(bo!)])).every((faces) => !faces.includes(id(dee!))),
    );
    await eventually("Dee's tweets out of search", async () => (await searchIds(tag)).length === 0);
    expect(await inboxActors(amy!)).not.toContain(id(dee!));
    // Not only hidden: each was undone by its cause's undo (Amy's inbox held only Dee's).
    await eventually("Dee's notifications undone in Amy's inbox", async () => (await unread(amy!)) === 0);
    expect((await ok<{ users?: ApiUser[] }>(`${G}/ListFollowers`, { userId: id(amy!) })).users ?? []).toEqual([]);
    expect(((await ok<{ users?: ApiUser[] }>(`${G}/ListMuted`, {}, cy!.token)).users ?? []).map((u) => u.id)).not.toContain(id(dee!));
    // Nothing of Dee's is left in the tables the services own.
    await eventually("Dee's rows erased", async () => {
      const left = {
        users: await rowsOf("users", "id", dee!.id),
        sessions: await rowsOf("user_sessions", "user_id", dee!.id),
        liveTweets: await rowsOf("tweets", "author_id", dee!.id, " AND delete_time IS NULL"),
        follows: await rowsOf("follows", "follower_id", dee!.id, " AND state = 1"),
        followers: await rowsOf("followers", "followee_id", dee!.id, " AND state = 1"),
        blocks: await rowsOf("blocks", "blocker_id", dee!.id, " AND state = 1"),
        media: await rowsOf("media", "owner_id", dee!.id),
        inbox: await rowsOf("notifications", "recipient_id", dee!.id),
        push: await rowsOf("push_subscriptions", "user_id", dee!.id),
      };
      return Object.values(left).every((n) => n === 0) || (JSON.stringify(left) as never);
    });

    expect((await fetch(`${system.mesh.gatewayUrl}/media/${mediaId}`)).status).toBe(404);
    // Every public read of the deleted user answers as for a user that never was; nobody can follow them.
    for (const method of [`${G}/ListFollowers`, `${G}/ListFollowing`, `${T}/ListLikedTweets`]) {
      // ListLikedTweets reads the likers' index, which takes the likes back from their events.
      await eventually(`${method} of the deleted user NotFound`, async () => (await call(method, { userId: id(dee!) })).code === "not_found");
    }
    expect((await call(`${G}/Follow`, { userId: id(dee!) }, amy!.token)).code).toBe("not_found");
    expect((await call(`${T}/LikeTweet`, { tweetId: own.id }, amy!.token)).code).toBe("not_found");
    const timeline = await call<{ tweets?: ApiTweet[] }>(`${TL}/GetUserTimeline`, { userId: id(dee!) });
    expect(timeline.code === "not_found" || (timeline.body.tweets ?? []).length === 0).toBe(true);

    // The handle and the email are free: a new account (a new id) takes them at once.
    const again = await ok<{ user: ApiUser; token: string }>(`${U}/SignUp`, {
      handle: dee!.handle,
      displayName: "new dee",
      email: `${dee!.handle}@example.com`,
      password: TEST_PASSWORD,
    });
    expect(again.user.id).not.toBe(id(dee!));
    expect([again.user.followerCount ?? 0, again.user.followingCount ?? 0, again.user.tweetCount ?? 0]).toEqual([0, 0, 0]);
    expect((await ok<{ user: ApiUser }>(`${U}/GetUser`, { handle: dee!.handle })).user.id).toBe(again.user.id);
  });
});
