// Replies and threads through the gateway (issue 19, item 1), with the system
// as `npm start` runs it on a tenant of the shared cluster: reply counts kept
// exact under concurrent replies and deletes, replies to unknown or deleted
// tweets refused, GetThread's ancestors (across shards, through deleted ones),
// the tweet and its replies paged oldest first, and the replies consumer that
// completes an edge PostTweet could not write.
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TweetCreatedSchema, TweetQuotedSchema, TweetRepliedSchema } from "../../gen/chirp/tweet/v1/events_pb.js";
import type { Mesh } from "../../devcluster/launch.js";
import { EVENT_STREAM, EVENTS } from "../../lib/events/subjects.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { REFS_INDEX_DURABLE } from "../../services/tweet/replies.js";
import { connectEvents, type EventReader } from "../support/events.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { gatewayApi, type Account } from "./support/api.js";

let system: TestSystem;
let mesh: Mesh;
let router: ShardRouter;
let events: EventReader;

beforeAll(async () => {
  system = await startSystem();
  ({ mesh, router } = system);
  events = await connectEvents(system.infra.natsUrl);
});
afterAll(async () => {
  await events?.close();
  await system?.stop();
});

interface ApiTweet {
  id: string;
  authorId: string;
  author?: { handle: string };
  text?: string;
  replyToTweetId?: string;
  replyCount?: number;
  quoteTweetId?: string;
  quoteCount?: number;
  quoteTweet?: ApiTweet;
}
interface Thread {
  ancestors?: ApiTweet[];
  tweet: ApiTweet;
  replies?: ApiTweet[];
  nextPageToken?: string;
}

const { call, ok, signUpMany } = gatewayApi(() => mesh.gatewayUrl, "th");
const T = "chirp.tweet.v1.TweetService";
const postOk = async (who: Account, text: string, replyTo?: string): Promise<ApiTweet> =>
  (await ok<{ tweet: ApiTweet }>(`${T}/PostTweet`, { text, ...(replyTo === undefined ? {} : { replyToTweetId: replyTo }) }, who.token)).tweet;
const del = (who: Account, id: string) => ok(`${T}/DeleteTweet`, { tweetId: id }, who.token);
const thread = (id: string, who?: Account, page: { pageSize?: number; pageToken?: string } = {}) =>
  ok<Thread>(`${T}/GetThread`, { tweetId: id, ...page }, who?.token);
const replyCountOf = async (id: string, who?: Account): Promise<number> =>
  (await ok<{ tweet: ApiTweet }>(`${T}/GetTweet`, { tweetId: id }, who?.token)).tweet.replyCount ?? 0;

/** The parent's row and its live edges, from its primary. */
async function parentRow(author: Account, id: string): Promise<{ count: number; live: number }> {
  const db = router.primaryForUser(author.id);
  const [row] = await db.query<{ reply_count: number }>("SELECT reply_count FROM chirp.tweets WHERE id = ?", [id]);
  const [edges] = await db.query<{ n: number }>("SELECT COUNT(*) AS n FROM chirp.tweet_replies WHERE parent_id = ? AND state = 1", [id]);
  return { count: Number(row?.reply_count), live: Number(edges?.n) };
}

describe("replies", () => {
  it("keep the parent's replyCount exact under concurrent replies and deletes, on the next read after each call", async () => {
    const users = await signUpMany(5);
    const author = users[0]!;
    const parent = await postOk(author, "reply to me");
    const replies = await Promise.all(users.flatMap((u) => [1, 2, 3].map((n) => postOk(u, `reply ${n} by ${u.handle}`, parent.id))));
    expect(replies.every((r) => r.replyToTweetId === parent.id)).toBe(true);
    expect(await replyCountOf(parent.id, users[1])).toBe(15);
    expect(await replyCountOf(parent.id)).toBe(15);
    await Promise.all(replies.slice(0, 6).map((r) => del(users.find((u) => String(u.id) === r.authorId)!, r.id)));
    expect(await replyCountOf(parent.id, users[2])).toBe(9);
    expect(await parentRow(author, parent.id)).toEqual({ count: 9, live: 9 });
  });

  it("to an unknown or deleted tweet is NotFound, and writes nothing", async () => {
    const [a] = (await signUpMany(1)) as [Account];
    const gone = await postOk(a, "soon gone");
    await del(a, gone.id);
    const before = (await ok<{ user: { tweetCount: number } }>("chirp.user.v1.UserService/GetUser", { userId: String(a.id) }, a.token)).user.tweetCount;
    for (const target of [gone.id, "999999999999"]) {
      const res = await call(`${T}/PostTweet`, { text: "hello?", replyToTweetId: target }, a.token);
      expect([res.status, (res.body as { code?: string }).code]).toEqual([404, "not_found"]);
    }
    const after = (await ok<{ user: { tweetCount: number } }>("chirp.user.v1.UserService/GetUser", { userId: String(a.id) }, a.token)).user.tweetCount;
    expect(after).toBe(before);
  });
});

describe("GetThread", () => {
  it("gives the ancestors root first across shards, a deleted one as a tombstone, the tweet, and its replies oldest first in pages", async () => {
    // Enough people that the chain crosses both shards.
    const people = await signUpMany(6);
    expect(new Set(people.map((p) => router.shardForUser(p.id).name)).size).toBeGreaterThan(1);
    const root = await postOk(people[0]!, "root");
    const r1 = await postOk(people[1]!, "first answer", root.id);
    const r2 = await postOk(people[2]!, "second level", r1.id);
    const focal = await postOk(people[3]!, "the tweet", r2.id);
    await del(people[1]!, r1.id);
    const replies: ApiTweet[] = [];
    for (const p of people) replies.push(await postOk(p, `answer from ${p.handle}`, focal.id));

    const first = await thread(focal.id, people[4], { pageSize: 4 });
    expect(first.ancestors!.map((a) => [a.id, a.text ?? ""])).toEqual([
      [root.id, "root"],
      [r1.id, ""],
      [r2.id, "second level"],
    ]);
    // The tombstone: its id, nothing else (the gateway's JSON spells out the zero values).
    expect(first.ancestors![1]).toMatchObject({ id: r1.id, authorId: "0", text: "" });
    expect("createTime" in first.ancestors![1]!).toBe(false);
    expect(first.ancestors![1]!.author).toBeUndefined();
    expect(first.ancestors![2]!.author?.handle).toBe(people[2]!.handle);
    expect([first.tweet.id, first.tweet.replyCount]).toEqual([focal.id, 6]);
    expect(first.replies!.map((r) => r.id)).toEqual(replies.slice(0, 4).map((r) => r.id));
    expect(first.replies![0]!.author?.handle).toBe(people[0]!.handle);
    const second = await thread(focal.id, people[4], { pageSize: 4, pageToken: first.nextPageToken! });
    expect(second.replies!.map((r) => r.id)).toEqual(replies.slice(4).map((r) => r.id));
    expect(second.nextPageToken ?? "").toBe("");

    // Anonymous, a deleted reply drops out; the root has no ancestors.
    await del(people[5]!, replies[5]!.id);
    const anon = await thread(focal.id, undefined, { pageSize: 10 });
    expect(anon.replies!.map((r) => r.id)).toEqual(replies.slice(0, 5).map((r) => r.id));
    expect(anon.tweet.replyCount).toBe(5);
    expect((await thread(root.id)).ancestors ?? []).toEqual([]);
  });

  it("is NotFound for a deleted or unknown tweet, and refuses another thread's token", async () => {
    const [a] = (await signUpMany(1)) as [Account];
    const t = await postOk(a, "short-lived");
    const other = await postOk(a, "other");
    for (const n of [1, 2]) await postOk(a, `r${n}`, other.id);
    const page = await thread(other.id, a, { pageSize: 1 });
    expect(page.nextPageToken).toBeTruthy();
    const wrong = await call(`${T}/GetThread`, { tweetId: t.id, pageToken: page.nextPageToken }, a.token);
    expect((wrong.body as { code?: string }).code).toBe("invalid_argument");
    await del(a, t.id);
    for (const id of [t.id, "999999999999"]) expect((await call(`${T}/GetThread`, { tweetId: id }, a.token)).status).toBe(404);
  });
});

describe("quotes", () => {
  it("embed the quoted tweet one level deep everywhere it is read, and count on it", async () => {
    const [a, b, c] = (await signUpMany(3)) as [Account, Account, Account];
    const original = await postOk(a, "worth quoting");
    const quote = (await ok<{ tweet: ApiTweet }>(`${T}/PostTweet`, { text: "so true", quoteTweetId: original.id }, b.token)).tweet;
    expect([quote.quoteTweetId, quote.quoteTweet?.id, quote.quoteTweet?.text, quote.quoteTweet?.author?.handle]).toEqual([original.id, original.id, "worth quoting", a.handle]);
    // A quote of the quote: its quoted tweet is shown without its own quote.
    const second = (await ok<{ tweet: ApiTweet }>(`${T}/PostTweet`, { text: "quoting b", quoteTweetId: quote.id }, c.token)).tweet;
    expect([second.quoteTweet?.id, second.quoteTweet?.quoteTweetId, second.quoteTweet?.quoteTweet]).toEqual([quote.id, original.id, undefined]);
    const got = (await ok<{ tweet: ApiTweet }>(`${T}/GetTweet`, { tweetId: original.id }, c.token)).tweet;
    expect(got.quoteCount).toBe(1);
    const timeline = await ok<{ tweets: ApiTweet[] }>("chirp.timeline.v1.TimelineService/GetUserTimeline", { userId: String(b.id) }, c.token);
    expect(timeline.tweets.find((t) => t.id === quote.id)?.quoteTweet?.text).toBe("worth quoting");

    // The quoted tweet deleted: the id stays, the embedded tweet goes; deleting the quote uncounts it.
    await del(a, original.id);
    const after = (await ok<{ tweet: ApiTweet }>(`${T}/GetTweet`, { tweetId: quote.id }, c.token)).tweet;
    expect([after.quoteTweetId, after.quoteTweet]).toEqual([original.id, undefined]);
    await del(c, second.id);
    expect((await ok<{ tweet: ApiTweet }>(`${T}/GetTweet`, { tweetId: quote.id }, c.token)).tweet.quoteCount ?? 0).toBe(0);
  });

  it("of an unknown or deleted tweet is NotFound", async () => {
    const [a] = (await signUpMany(1)) as [Account];
    const gone = await postOk(a, "gone soon");
    await del(a, gone.id);
    for (const target of [gone.id, "999999999999"]) {
      const res = await call(`${T}/PostTweet`, { text: "look", quoteTweetId: target }, a.token);
      expect([res.status, res.code]).toEqual([404, "not_found"]);
    }
  });
});

describe("events", () => {
  it("a reply publishes TweetReplied and a quote TweetQuoted, once each, naming the author to tell; a delete publishes neither", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    const t = await postOk(a, "react to this");
    const reply = await postOk(b, "a reply", t.id);
    const quote = (await ok<{ tweet: ApiTweet }>(`${T}/PostTweet`, { text: "a quote", quoteTweetId: t.id }, b.token)).tweet;
    await del(b, reply.id);
    const seen = async (): Promise<string[]> =>
      (await events.read("chirp.tweet.v1.*"))
        .flatMap((msg) => {
          if (msg.subject === EVENTS.tweetReplied.subject) {
            const m = fromBinary(TweetRepliedSchema, msg.data);
            return m.parentId === BigInt(t.id) ? [`replied ${m.replyId === BigInt(reply.id)} by ${m.replyAuthorId === b.id} to ${m.parentAuthorId === a.id}`] : [];
          }
          if (msg.subject === EVENTS.tweetQuoted.subject) {
            const m = fromBinary(TweetQuotedSchema, msg.data);
            return m.quotedId === BigInt(t.id) ? [`quoted ${m.quoteId === BigInt(quote.id)} by ${m.quoteAuthorId === b.id} of ${m.quotedAuthorId === a.id}`] : [];
          }
          return [];
        })
        .sort();
    await expect.poll(seen, { timeout: 15_000, interval: 200 }).toEqual(["quoted true by true of true", "replied true by true to true"]);
  });
});

/** Once the durable `tweet-refs-index` has acked the TweetCreated of `tweetId` (its ack floor is past it in the stream). */
async function refsIndexHandled(tweetId: string): Promise<void> {
  const seqOf = async (): Promise<number | undefined> =>
    (await events.read(EVENTS.tweetCreated.subject)).find((m) => fromBinary(TweetCreatedSchema, m.data).tweetId === BigInt(tweetId))?.seq;
  await expect.poll(seqOf, { timeout: 15_000, interval: 100 }).toBeDefined();
  const seq = (await seqOf())!;
  const jsm = await events.js.jetstreamManager();
  await expect.poll(async () => (await jsm.consumers.info(EVENT_STREAM, REFS_INDEX_DURABLE)).ack_floor.stream_seq >= seq, { timeout: 15_000, interval: 100 }).toBe(true);
}

describe("the replies consumer", () => {
  it("completes an edge PostTweet did not write, once however often the event comes", async () => {
    const [author, fan] = (await signUpMany(2)) as [Account, Account];
    const parent = await postOk(author, "parent");
    const reply = await postOk(fan, "a reply whose edge gets lost", parent.id);
    // The consumer handles the reply's own TweetCreated first (finding the edge written): were
    // it to come after the DELETE below, it would complete the edge before the test's event.
    await refsIndexHandled(reply.id);
    // As if PostTweet had failed after the reply's commit: no edge, no count.
    const db = router.primaryForUser(author.id);
    await db.execute("DELETE FROM chirp.tweet_replies WHERE parent_id = ?", [parent.id]);
    await db.execute("UPDATE chirp.tweets SET reply_count = 0 WHERE id = ?", [parent.id]);
    expect(await parentRow(author, parent.id)).toEqual({ count: 0, live: 0 });
    const event = toBinary(
      TweetCreatedSchema,
      create(TweetCreatedSchema, { tweetId: BigInt(reply.id), authorId: fan.id, replyToTweetId: BigInt(parent.id), text: "a reply whose edge gets lost" }),
    );
    for (const n of [1, 2]) await events.js.publish(EVENTS.tweetCreated.subject, event, { msgID: `threads-e2e-${reply.id}-${n}` });
    await expect.poll(() => parentRow(author, parent.id), { timeout: 15_000, interval: 100 }).toEqual({ count: 1, live: 1 });
    await new Promise((r) => setTimeout(r, 1000)); // the repeat arrives meanwhile and must not count again
    expect(await parentRow(author, parent.id)).toEqual({ count: 1, live: 1 });
  });
});
