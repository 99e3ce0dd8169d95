/**
 * The data sets and the request mix of the DeathStarBench social-network
 * workload, made from a seed so every run loads and asks for the same things.
 *
 * - reed98: the socfb-Reed98 graph (962 people), every friendship followed
 *   both ways, as DeathStarBench's loader does; 0-20 tweets per user.
 * - synthetic: a power-law graph of `users` people (10,240 for the sweep):
 *   each user follows as many people as a random Reed98 user has friends
 *   (so the mean is Reed98's, about 39), picked by Zipf(1) over a random
 *   popularity order; and the three most popular accounts are followed by
 *   everyone, as a celebrity account mostly is, so they have users - 1
 *   followers (over the timeline service's 10,000 hot-author threshold when
 *   users > 10,001). 0-20 tweets per user.
 *
 * Mix (DeathStarBench's wrk2 scripts, mixed-workload.lua): 60 % home
 * timeline, 30 % user timeline (10 tweets from an offset of 0-100), 10 %
 * compose. A compose is 256 characters with 1-6 @mentions of existing users
 * and 0-5 URLs, the rest random letters (compose-post.lua draws 0-5 of each;
 * here at least one mention, so every compose resolves a handle).
 *
 * The `social` mix is the same with repost (5 %) and reply (5 %) added and
 * the rest scaled to 90 %: a repost or a reply names a random tweet of the
 * loaded data set; a reply is written as a compose is.
 */
import { REED98_EDGES, degrees, readEdgeList } from "../../scripts/cli/dataset.js";
import { createRng } from "../../scripts/cli/rng.js";

export type OpKind = "home" | "user" | "compose" | "repost" | "reply";
export const OP_KINDS: readonly OpKind[] = ["home", "user", "compose", "repost", "reply"];
export const DSB_MIX: Readonly<Record<OpKind, number>> = { home: 0.6, user: 0.3, compose: 0.1, repost: 0, reply: 0 };
export const SOCIAL_MIX: Readonly<Record<OpKind, number>> = { home: 0.54, user: 0.27, compose: 0.09, repost: 0.05, reply: 0.05 };

export interface Dataset {
  readonly name: string;
  readonly users: number;
  readonly handlePrefix: string;
  /** Directed follow edges: follower[i] follows followee[i]. */
  readonly follower: Int32Array;
  readonly followee: Int32Array;
  /** Tweets each user has before the run. */
  readonly tweetsPerUser: Uint8Array;
  readonly description: string;
}


export const randomInt = (rng: () => number, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));

function tweetCounts(users: number, rng: () => number): Uint8Array {
  const counts = new Uint8Array(users);
  for (let u = 0; u < users; u++) counts[u] = randomInt(rng, 0, 20);
  return counts;
}

export function reed98(seed = 1): Dataset {
  const graph = readEdgeList(REED98_EDGES);
  const n = graph.edges.length * 2;
  const follower = new Int32Array(n);
  const followee = new Int32Array(n);
  graph.edges.forEach(([a, b], i) => {
    follower[2 * i] = a;
    followee[2 * i] = b;
    follower[2 * i + 1] = b;
    followee[2 * i + 1] = a;
  });
  return {
    name: "reed98",
    users: graph.userCount,
    handlePrefix: "reed98_",
    follower,
    followee,
    tweetsPerUser: tweetCounts(graph.userCount, createRng(seed)),
    description: `socfb-Reed98: ${graph.userCount} users, ${graph.edges.length} friendships followed both ways (${n} follows), 0-20 tweets per user`,
  };
}

export const CELEBRITIES = 3;

export function synthetic(users: number, seed = 1): Dataset {
  const rng = createRng(seed);
  const reedDegrees = degrees(readEdgeList(REED98_EDGES));
  // Popularity order: rank r is user order[r].
  const order = Array.from({ length: users }, (_, i) => i);
  for (let i = users - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  // Zipf(1) over ranks CELEBRITIES.. (the celebrities are added to everyone).
  const cdf = new Float64Array(users);
  let total = 0;
  for (let r = 0; r < users; r++) {
    total += r < CELEBRITIES ? 0 : 1 / (r + 1);
    cdf[r] = total;
  }
  const zipf = (): number => {
    const x = rng() * total;
    let lo = 0;
    let hi = users - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return order[lo]!;
  };
  const follower: number[] = [];
  const followee: number[] = [];
  for (let u = 0; u < users; u++) {
    const chosen = new Set<number>();
    for (let c = 0; c < CELEBRITIES; c++) if (order[c] !== u) chosen.add(order[c]!);
    const want = chosen.size + Math.min(users - 1 - chosen.size, reedDegrees[Math.floor(rng() * reedDegrees.length)]!);
    while (chosen.size < want) {
      const v = zipf();
      if (v !== u) chosen.add(v);
    }
    for (const v of chosen) {
      follower.push(u);
      followee.push(v);
    }
  }
  return {
    name: `synthetic-${users}`,
    users,
    handlePrefix: "syn_",
    follower: Int32Array.from(follower),
    followee: Int32Array.from(followee),
    tweetsPerUser: tweetCounts(users, rng),
    description:
      `synthetic power-law graph: ${users} users, ${follower.length} follows (out-degree drawn from Reed98's degrees, ` +
      `followees Zipf(1) over a random popularity order, the top ${CELEBRITIES} followed by everyone), 0-20 tweets per user`,
  };
}

export function followCounts(d: Dataset): { followers: Int32Array; following: Int32Array } {
  const followers = new Int32Array(d.users);
  const following = new Int32Array(d.users);
  for (let i = 0; i < d.follower.length; i++) {
    following[d.follower[i]!]!++;
    followers[d.followee[i]!]!++;
  }
  return { followers, following };
}

export const handleOf = (d: Dataset, n: number): string => `${d.handlePrefix}${n}`;

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const WORDS = ["the", "a", "chirp", "bench", "timeline", "coffee", "today", "graph", "shard", "news", "music", "game", "run", "city", "night", "code", "data", "rain", "sun", "friends"];

function letters(rng: () => number, n: number): string {
  let s = "";
  for (let i = 0; i < n; i++) s += LETTERS[Math.floor(rng() * LETTERS.length)];
  return s;
}

/** Text of a bulk-loaded tweet: 6-20 words, a hashtag in one of three. */
export function bulkTweetText(rng: () => number): string {
  const words = Array.from({ length: randomInt(rng, 6, 20) }, () => WORDS[Math.floor(rng() * WORDS.length)]!);
  if (rng() < 1 / 3) words.push(`#${WORDS[Math.floor(rng() * WORDS.length)]!}`);
  return words.join(" ");
}

export const COMPOSE_CHARS = 256;

/** A compose-post text: exactly 256 characters, 1-6 mentions of other existing users, 0-5 URLs. */
export function composeText(rng: () => number, d: Dataset, author: number): { text: string; mentions: number; urls: number } {
  const parts: string[] = [];
  const mentions = randomInt(rng, 1, 6);
  for (let i = 0; i < mentions; i++) {
    let who = Math.floor(rng() * d.users);
    if (who === author) who = (who + 1) % d.users;
    parts.push(`@${handleOf(d, who)}`);
  }
  const urls = randomInt(rng, 0, 5);
  for (let i = 0; i < urls; i++) parts.push(`https://chirp.example/${letters(rng, 12)}`);
  const tail = parts.join(" ");
  // Random letters first (DSB's text), then the mentions and URLs after a space.
  const head = letters(rng, Math.max(1, COMPOSE_CHARS - tail.length - 1));
  return { text: `${head} ${tail}`.slice(0, COMPOSE_CHARS), mentions, urls };
}

/** One request of the mix, decided before it is sent. */
export type Op =
  | { readonly kind: "home"; readonly user: number }
  | { readonly kind: "user"; readonly viewer: number; readonly author: number; readonly offset: number }
  | { readonly kind: "compose"; readonly user: number; readonly text: string }
  /** `tweet`: a tweet id of the data set, as a decimal string (ops cross to the floor as JSON). */
  | { readonly kind: "repost"; readonly user: number; readonly tweet: string }
  | { readonly kind: "reply"; readonly user: number; readonly tweet: string; readonly text: string };

/**
 * Requests of the mix, uniformly over users as DeathStarBench's scripts pick
 * them. `readers` (default everyone): who reads home timelines and views user
 * timelines; authors of user timelines and composes are anyone.
 */
export function createOpPicker(
  d: Dataset,
  seed: number,
  readers?: readonly number[],
  mix: Readonly<Record<OpKind, number>> = DSB_MIX,
  /** The data set's tweet ids, for reposts and replies. */
  tweets: readonly bigint[] = [],
): () => Op {
  const rng = createRng(seed);
  const home = mix.home;
  const user = home + mix.user;
  const repost = user + mix.repost;
  const reply = repost + mix.reply;
  if ((mix.repost > 0 || mix.reply > 0) && tweets.length === 0) throw new Error("a mix with reposts or replies needs the data set's tweets");
  const reader = readers === undefined ? () => Math.floor(rng() * d.users) : () => readers[Math.floor(rng() * readers.length)]!;
  const tweet = (): string => String(tweets[Math.floor(rng() * tweets.length)]);
  return () => {
    const x = rng();
    if (x < home) return { kind: "home", user: reader() };
    if (x < user) return { kind: "user", viewer: reader(), author: Math.floor(rng() * d.users), offset: randomInt(rng, 0, 100) };
    const author = Math.floor(rng() * d.users);
    if (x < repost) return { kind: "repost", user: author, tweet: tweet() };
    if (x < reply) return { kind: "reply", user: author, tweet: tweet(), text: composeText(rng, d, author).text };
    return { kind: "compose", user: author, text: composeText(rng, d, author).text };
  };
}
