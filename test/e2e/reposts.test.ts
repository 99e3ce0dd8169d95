// Reposts through the gateway (issue 19, item 2), with the system as
// `npm start` runs it on a tenant of the shared cluster: Repost and Unrepost
// act as the caller, are idempotent and keep repostCount exact; a repost
// reaches the reposter's followers' home timelines with repostedBy, once per
// page, and the reposter's user timeline; Unrepost, deleting the original and
// unfollowing the reposter take it out; each change publishes one event.
import { fromBinary } from "@bufbuild/protobuf";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TweetRepostedSchema, TweetUnrepostedSchema } from "../../gen/chirp/tweet/v1/events_pb.js";
import type { Mesh } from "../../devcluster/launch.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { parseMember } from "../../services/timeline/entries.js";
import { KEYS } from "../../services/timeline/lists.js";
import { connectEvents, type EventReader } from "../support/events.js";
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
  redis = new Redis(system.infra.redisUrl, { maxRetriesPerRequest: 1 });
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
  repostCount?: number;
  repostedByViewer?: boolean;
  repostedBy?: { id: string; handle: string };
  repostId?: string;
}

const { call, ok, signUpMany } = gatewayApi(() => mesh.gatewayUrl, "rp");
const T = "chirp.tweet.v1.TweetService";
const TL = "chirp.timeline.v1.TimelineService";
const G = "chirp.graph.v1.GraphService";
const postOk = async (who: Account, text: string): Promise<ApiTweet> => (await ok<{ tweet: ApiTweet }>(`${T}/PostTweet`, { text }, who.token)).tweet;
const repost = async (who: Account, id: string): Promise<number> => (await ok<{ repostCount?: number }>(`${T}/Repost`, { tweetId: id }, who.token)).repostCount ?? 0;
const unrepost = async (who: Account, id: string): Promise<number> => (await ok<{ repostCount?: number }>(`${T}/Unrepost`, { tweetId: id }, who.token)).repostCount ?? 0;
const getTweet = async (id: string, who?: Account): Promise<ApiTweet> => (await ok<{ tweet: ApiTweet }>(`${T}/GetTweet`, { tweetId: id }, who?.token)).tweet;
const home = async (who: Account): Promise<ApiTweet[]> => (await ok<{ tweets?: ApiTweet[] }>(`${TL}/GetHomeTimeline`, { pageSize: 50 }, who.token)).tweets ?? [];
const userTimeline = async (of: Account, who: Account): Promise<ApiTweet[]> =>
  (await ok<{ tweets?: ApiTweet[] }>(`${TL}/GetUserTimeline`, { userId: String(of.id), pageSize: 50 }, who.token)).tweets ?? [];
/** Where `id` shows on a page: who reposted it ("" for its own entry), once per appearance. */
const shown = (page: ApiTweet[], id: string): string[] => page.filter((t) => t.id === id).map((t) => t.repostedBy?.handle ?? "");

describe("Repost and Unrepost", () => {
  it("act as the caller, are idempotent and keep repostCount exact under concurrent calls; repostedByViewer is the caller's", async () => {
    const [author, ...fans] = await signUpMany(6);
    const t = await postOk(author!, "share me");
    await Promise.all(fans.flatMap((f) => [repost(f, t.id), repost(f, t.id)]));
    expect(await getTweet(t.id)).toMatchObject({ repostCount: 5 });
    expect((await getTweet(t.id, fans[0])).repostedByViewer).toBe(true);
    expect((await getTweet(t.id, author)).repostedByViewer ?? false).toBe(false);
    await Promise.all(fans.slice(0, 2).flatMap((f) => [unrepost(f, t.id), unrepost(f, t.id)]));
    expect(await repost(fans[2]!, t.id)).toBe(3);
    expect(await unrepost(author!, t.id)).toBe(3);
    expect((await getTweet(t.id, fans[0])).repostedByViewer ?? false).toBe(false);
    expect((await getTweet(t.id, fans[3])).repostedByViewer).toBe(true);
  });

  it("is NotFound for an unknown or deleted tweet, and needs a caller", async () => {
    const [a] = (await signUpMany(1)) as [Account];
    const t = await postOk(a, "gone");
    await ok(`${T}/DeleteTweet`, { tweetId: t.id }, a.token);
    for (const id of [t.id, "999999999999"]) expect((await call(`${T}/Repost`, { tweetId: id }, a.token)).code).toBe("not_found");
    expect((await call(`${T}/Repost`, { tweetId: t.id })).code).toBe("unauthenticated");
  });
});

describe("a repost in timelines", () => {
  it("reaches the reposters' followers once per page with repostedBy, and the reposter's own timeline; unrepost, unfollow and delete take it out", async () => {
    const [author, r1, r2, fan] = (await signUpMany(4)) as [Account, Account, Account, Account];
    for (const r of [r1, r2]) await ok(`${G}/Follow`, { userId: String(r.id) }, fan.token);
    await home(fan); // the fan's list exists: fan-out writes into it
    const t = await postOk(author, "worth passing on");
    await repost(r1, t.id);
    await repost(r2, t.id);
    // Once, shown for the newest repost.
    await expect.poll(async () => shown(await home(fan), t.id), { timeout: 15_000, interval: 200 }).toEqual([r2.handle]);
    // Each repost's entry carries the original and its author (one round trip loads both), fanned out and rebuilt from MySQL alike.
    const originalsInHome = async (): Promise<string[]> =>
      (await redis.zrange(KEYS.home(fan.id), "0", "-1")).flatMap((m) => {
        const e = parseMember(m);
        return e?.original === undefined ? [] : [`${e.authorId}:${e.original.id}:${e.original.authorId}`];
      });
    const expected = [r1, r2].map((r) => `${r.id}:${t.id}:${author.id}`).sort();
    expect((await originalsInHome()).sort()).toEqual(expected);
    await redis.del(KEYS.home(fan.id));
    expect(shown(await home(fan), t.id)).toEqual([r2.handle]);
    expect((await originalsInHome()).sort()).toEqual(expected);
    const mine = await userTimeline(r1, fan);
    expect(shown(mine, t.id)).toEqual([r1.handle]);
    expect(mine.find((x) => x.id === t.id)).toMatchObject({ authorId: String(author.id), text: "worth passing on", repostCount: 2 });

    await unrepost(r2, t.id);
    await expect.poll(async () => shown(await home(fan), t.id), { timeout: 15_000, interval: 200 }).toEqual([r1.handle]);
    await ok(`${G}/Unfollow`, { userId: String(r1.id) }, fan.token);
    await expect.poll(async () => shown(await home(fan), t.id), { timeout: 15_000, interval: 200 }).toEqual([]);

    await ok(`${G}/Follow`, { userId: String(r1.id) }, fan.token);
    await expect.poll(async () => shown(await home(fan), t.id), { timeout: 15_000, interval: 200 }).toEqual([r1.handle]);
    await ok(`${T}/DeleteTweet`, { tweetId: t.id }, author.token);
    expect(shown(await home(fan), t.id)).toEqual([]);
    expect(shown(await userTimeline(r1, fan), t.id)).toEqual([]);
  });

  it("publishes TweetReposted and TweetUnreposted once each, to the original's author", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    const t = await postOk(a, "evented repost");
    await repost(b, t.id);
    await repost(b, t.id);
    await unrepost(b, t.id);
    await unrepost(b, t.id);
    const seen = async (): Promise<string[]> =>
      (await events.read("chirp.tweet.v1.*")).flatMap((msg) => {
        const schema = msg.subject === EVENTS.tweetReposted.subject ? TweetRepostedSchema : msg.subject === EVENTS.tweetUnreposted.subject ? TweetUnrepostedSchema : undefined;
        if (schema === undefined) return [];
        const m = fromBinary(schema, msg.data);
        return m.tweetId === BigInt(t.id) ? [`${msg.subject.split(".").at(-1)} by ${m.reposterId === b.id} of ${m.authorId === a.id}`] : [];
      });
    await expect.poll(seen, { timeout: 15_000, interval: 200 }).toEqual(["tweet_reposted by true of true", "tweet_unreposted by true of true"]);
  });
});
