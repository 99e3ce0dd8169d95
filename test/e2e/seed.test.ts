// `chirp seed` loads a socfb-Reed98 graph through the public API (the
// gateway, with the mesh as `npm start` runs it): every user ends with the
// exact follower and following counts of the graph, a history of tweets,
// replies, quotes, likes and reposts dated over the last days (through the
// tweet service's ImportTweet) is there to read, and a second run changes
// nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REED98_EDGES, degrees, readEdgeList } from "../../scripts/cli/dataset.js";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { findTweetService, seed, type SeedResult } from "../../scripts/cli/seed.js";
import { parseId } from "../../lib/ids.js";
import { seedHistory } from "../../scripts/cli/seed-history.js";
import type { Mesh } from "../../devcluster/launch.js";
import { startSystem, type TestSystem } from "../support/system.js";
import { generateMeshSecret } from "../../lib/auth/assertion.js";
import { vouchingInterceptor } from "../../lib/rpc/vouching-interceptor.js";

/** The system's mesh secret: the backdated import acts as each user at the tweet service with it. */
const MESH_SECRET = generateMeshSecret();

const DAY = 24 * 3_600_000;
/** The subgraph and history the test seeds: enough for replies, quotes, reposts and likes among them (the plan is fixed per size). */
const USERS = 60;
const TWEETS = 90;
let system: TestSystem;
let mesh: Mesh;

beforeAll(async () => {
  system = await startSystem({ router: false, meshSecret: MESH_SECRET });
  mesh = system.mesh;
});

afterAll(async () => {
  await system?.stop();
});

describe("chirp seed", () => {
  // The first USERS people of socfb-Reed98 and every friendship among them: the
  // whole graph (962 people, 18,812 friendships, 962 argon2 sign-ups) is
  // minutes of work for what these checks show; `npx chirp seed` and
  // `npm run bench` load all of it. The dataset itself is checked whole in
  // scripts/cli/dataset.test.ts.
  const graph = readEdgeList(REED98_EDGES, USERS);
  const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

  let first: SeedResult;

  it("gives every user of a socfb-Reed98 subgraph the exact counts of the graph, and a history to read", async () => {
    expect(graph.userCount).toBe(USERS);
    expect(graph.edges).toHaveLength(54);
    const tweetAddress = await findTweetService(["127.0.0.1:1", `127.0.0.1:${mesh.services.tweet.grpcPort}`]);
    expect(tweetAddress).toBe(`127.0.0.1:${mesh.services.tweet.grpcPort}`);
    first = await seed({ gatewayUrl: mesh.gatewayUrl, graph, handlePrefix: "reed98_", concurrency: 32, tweets: TWEETS, ...(tweetAddress === undefined ? {} : { tweetAddress, meshSecret: MESH_SECRET }), log: quiet });
    expect(first.users).toHaveLength(graph.userCount);
    expect(first.follows).toBe(2 * graph.edges.length);
    expect(first.mismatches).toEqual([]);
    expect([first.history?.planned, first.history?.posted]).toEqual([TWEETS, TWEETS]);
    // Someone with friends sees tweets, replies and quotes among them at home.
    const transport = createConnectTransport({ baseUrl: mesh.gatewayUrl, httpVersion: "1.1" });
    const timelines = createClient(TimelineService, transport);
    const reader = first.users[first.counts.reduce((best, c) => (c.expected > best.expected ? c : best)).n]!;
    const home = await timelines.getHomeTimeline({ pageSize: 100 }, { headers: { authorization: `Bearer ${reader.token}` } });
    expect(home.tweets.length).toBeGreaterThan(0);
    const all = await Promise.all(
      first.users.map((u) => timelines.getUserTimeline({ userId: u.id, pageSize: 100 }, { headers: { authorization: `Bearer ${u.token}` } })),
    );
    const tweets = all.flatMap((p) => p.tweets);
    // Each user's own tweets (their reposts show the originals, by others).
    const own = tweets.filter((t) => t.repostId === 0n);
    expect(own).toHaveLength(TWEETS);
    expect(own.some((t) => t.replyToTweetId !== 0n)).toBe(true);
    expect(tweets.some((t) => t.quoteTweetId !== 0n && t.quoteTweet !== undefined)).toBe(true);
    expect(tweets.some((t) => t.hashtags.length > 0)).toBe(true);
    expect(tweets.some((t) => t.likeCount > 0)).toBe(true);
    expect(tweets.some((t) => t.repostCount > 0)).toBe(true);
    // Dated over the last three days (the default span), each reply after its parent, each repost after its tweet.
    const times = own.map((t) => parseId(t.id).timeMs);
    const now = Date.now();
    expect(Math.min(...times)).toBeLessThan(now - 2 * DAY);
    expect(Math.max(...times)).toBeGreaterThan(now - DAY);
    expect(Math.max(...times)).toBeLessThan(now - 30_000);
    for (const t of own) if (t.replyToTweetId !== 0n) expect(t.id > t.replyToTweetId).toBe(true);
    const reposts = tweets.filter((t) => t.repostId !== 0n);
    expect(reposts.length).toBeGreaterThan(0);
    for (const t of reposts) expect(t.repostId > t.id && parseId(t.repostId).timeMs < now - 30_000).toBe(true);
  });

  it("posts no planned tweet twice when the history is written again", async () => {
    const transport = createConnectTransport({ baseUrl: mesh.gatewayUrl, httpVersion: "1.1", useBinaryFormat: true });
    const again = await seedHistory({
      graph,
      tweets: TWEETS,
      accounts: first.users,
      handlePrefix: "reed98_",
      gatewayUrl: mesh.gatewayUrl,
      tweetClient: createClient(TweetService, transport),
      timelineClient: createClient(TimelineService, transport),
      importer: createClient(TweetService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${mesh.services.tweet.grpcPort}`, interceptors: [vouchingInterceptor(MESH_SECRET)] })),
      concurrency: 16,
      log: quiet,
    });
    expect([again.planned, again.posted]).toEqual([TWEETS, 0]);
  });

  it("is idempotent: a second run finds the same accounts and changes no count", async () => {
    const small = readEdgeList(REED98_EDGES, 50);
    const again = await seed({ gatewayUrl: mesh.gatewayUrl, graph: small, handlePrefix: "reed98_", concurrency: 16, log: quiet });
    // Users 0-49 already exist with all their friendships in the first load:
    // signing up again logs in, and re-following the friendships among them
    // must leave every count at the first load's degree.
    const full = degrees(graph);
    expect(again.users).toHaveLength(50);
    expect(again.counts.map((c) => [c.followers, c.following])).toEqual(again.counts.map((c) => [full[c.n], full[c.n]]));
  });
});
