// The history `chirp seed` writes after the graph: tweets with hashtags,
// mentions of friends, URLs and a few photos, replies and quotes of earlier
// tweets, and likes and reposts by friends, all through the public API as a client
// would. The plan is drawn from a fixed-seed generator, so every run plans
// the same tweets; a run first reads each author's user timeline and posts
// only the planned tweets it does not find (by text, unique per author), so a
// second run posts nothing. Likes and reposts are idempotent by themselves.
//
// Dated over the last days (3 by default): when the tweet service itself is
// reachable, tweets and reposts go through its internal ImportTweet and
// ImportRepost, which mint each id at the planned time, so timelines, threads
// and trends read as a network that has been talking for a while. Through the
// gateway alone (the public API cannot backdate) they are posted now.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { PNG } from "pngjs";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { PostTweetRequestSchema, TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { parseId } from "../../lib/ids.js";
import { CALLER_ID_HEADER } from "../../lib/rpc/metadata.js";
import type { SocialGraph } from "./dataset.js";
import { createProgress, mapConcurrent } from "./progress.js";
import { withRetry } from "./retry.js";
import { createRng } from "./rng.js";

export interface HistoryOptions {
  readonly graph: SocialGraph;
  /** Tweets to plan over everyone (replies and quotes included). */
  readonly tweets: number;
  readonly accounts: ReadonlyArray<{ readonly id: bigint; readonly token: string }>;
  readonly handlePrefix: string;
  readonly gatewayUrl: string;
  readonly tweetClient: Client<typeof TweetService>;
  readonly timelineClient: Client<typeof TimelineService>;
  /**
   * The tweet service itself (its gRPC address, not the gateway): tweets and
   * reposts are then dated over the last `spanMs` through ImportTweet and
   * ImportRepost. Undefined: they are posted now, through the gateway.
   */
  readonly importer?: Client<typeof TweetService>;
  /** How far back the history reaches [3 days]. */
  readonly spanMs?: number;
  readonly concurrency: number;
  readonly log: NodeJS.WriteStream;
}

export const DEFAULT_HISTORY_SPAN_MS = 3 * 24 * 3_600_000;
/** The newest planned tweet is this long before the run starts. */
const HISTORY_END_MS = 60_000;
/** A repost comes at most this long after its tweet. */
const REPOST_DELAY_MAX_MS = 6 * 3_600_000;

export interface HistoryResult {
  readonly planned: number;
  /** Posted by this run (0 on a second run). */
  readonly posted: number;
  readonly likes: number;
  readonly reposts: number;
  /** Whether tweets and reposts were dated over the span (through the tweet service) or posted now. */
  readonly backdated: boolean;
}

/** One planned tweet; `replyTo`/`quote` are indexes of earlier planned tweets. */
export interface PlannedTweet {
  readonly author: number;
  readonly text: string;
  readonly replyTo?: number;
  readonly quote?: number;
  readonly photo: boolean;
  /** People (graph indexes) who like it. */
  readonly likers: readonly number[];
  /** People (graph indexes) who repost it. */
  readonly reposters: readonly number[];
  /** Where in the history's span it falls, in [0, 1); increasing along the plan. */
  readonly at: number;
}

const TOPICS = ["reed", "portland", "thesis", "coffee", "library", "finals", "hiking", "music", "film", "chess", "climbing", "soup"];
const WORDS = (
  "the a my our this that one new old late early quiet loud long short good odd best worst " +
  "class paper book lab lecture seminar party walk run game show talk song poem idea plan " +
  "today tonight tomorrow again finally maybe really still already just never always " +
  "reading writing thinking making fixing cooking watching planning missing finishing"
).split(" ");

/**
 * A reply or quote targets a tweet at least this many places earlier in the
 * plan; tweets are posted in chunks of at most this many, so the target is
 * posted by then. Fixed: the plan must not depend on how a run is made.
 */
export const PLAN_GAP = 64;

/**
 * The same plan for the same graph and count: authors drawn in proportion to
 * their degree plus one, replies and quotes of tweets at least `gap` places
 * earlier (posted by then, however many run at once), likes by friends.
 */
export function planHistory(graph: SocialGraph, tweets: number, handlePrefix: string, gap = PLAN_GAP): PlannedTweet[] {
  const r = createRng(0x5eed + graph.userCount * 31 + tweets);
  // Times from a generator of their own: the rest of the plan stays what earlier versions planned.
  const jitter = createRng(0x7143 + tweets);
  const friends: number[][] = Array.from({ length: graph.userCount }, () => []);
  for (const [a, b] of graph.edges) {
    friends[a]!.push(b);
    friends[b]!.push(a);
  }
  const weights = friends.map((f) => f.length + 1);
  const total = weights.reduce((x, y) => x + y, 0);
  const pickAuthor = (): number => {
    let x = r() * total;
    for (let n = 0; n < weights.length; n++) if ((x -= weights[n]!) < 0) return n;
    return weights.length - 1;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const texts = new Set<string>();
  const plan: PlannedTweet[] = [];
  for (let i = 0; i < tweets; i++) {
    const author = pickAuthor();
    const kindRoll = r();
    const earlier = i - gap;
    const replyTo = earlier > 0 && kindRoll < 0.2 ? Math.floor(r() * earlier) : undefined;
    const quote = replyTo === undefined && earlier > 0 && kindRoll < 0.27 ? Math.floor(r() * earlier) : undefined;
    const words = Array.from({ length: 4 + Math.floor(r() * 8) }, () => pick(WORDS));
    if (r() < 0.45) words.push(`#${pick(TOPICS)}`);
    const mine = friends[author]!;
    if (mine.length > 0 && r() < 0.25) words.splice(1, 0, `@${handlePrefix}${pick(mine)}`);
    if (r() < 0.1) words.push(`https://example.com/${pick(TOPICS)}/${Math.floor(r() * 1000)}`);
    let text = words.join(" ");
    // Unique per author: a second run finds each planned tweet by its text.
    while (texts.has(`${author}\n${text}`)) text += ` ${pick(WORDS)}`;
    texts.add(`${author}\n${text}`);
    const likers = mine.filter(() => r() < 0.15).slice(0, 8);
    const photo = r() < 0.02;
    const reposters = mine.filter(() => r() < 0.04).slice(0, 4);
    const at = (i + jitter()) / tweets;
    plan.push({ author, text, ...(replyTo === undefined ? {} : { replyTo }), ...(quote === undefined ? {} : { quote }), photo, likers, reposters, at });
  }
  return plan;
}

export async function seedHistory(opts: HistoryOptions): Promise<HistoryResult> {
  const { accounts, concurrency } = opts;
  const plan = planHistory(opts.graph, opts.tweets, opts.handlePrefix);
  const chunk = Math.min(concurrency, PLAN_GAP);
  const bearer = (n: number) => ({ headers: { authorization: `Bearer ${accounts[n]!.token}` } });
  const asCaller = (n: number) => ({ headers: { [CALLER_ID_HEADER]: String(accounts[n]!.id) } });
  const importer = opts.importer;
  const span = opts.spanMs ?? DEFAULT_HISTORY_SPAN_MS;
  const end = Date.now() - HISTORY_END_MS;
  /** Not before `after` (the tweets it names, as written), and in the past. */
  const dated = (planned: number, after: number): number => Math.floor(Math.min(Math.max(planned, after + 1000), Date.now() - 1000));

  // What earlier runs posted: each author's tweets by text.
  const authors = [...new Set(plan.map((t) => t.author))];
  const found = new Map<string, bigint>();
  const readProgress = createProgress("history: existing", authors.length, opts.log);
  await mapConcurrent(authors, concurrency, async (n) => {
    let pageToken = "";
    do {
      const page = await withRetry(() => opts.timelineClient.getUserTimeline({ userId: accounts[n]!.id, pageSize: 100, pageToken }, bearer(n)));
      for (const t of page.tweets) if (t.authorId === accounts[n]!.id) found.set(`${n}\n${t.text}`, t.id);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    readProgress.tick();
  });
  readProgress.done(`${found.size} found`);

  const ids: Array<bigint | undefined> = plan.map((t) => found.get(`${t.author}\n${t.text}`));
  const missing = plan.flatMap((_, i) => (ids[i] === undefined ? [i] : []));
  const postProgress = createProgress("history: tweets", missing.length, opts.log);
  // In chunks of at most PLAN_GAP: a reply or quote targets a tweet at least that many places earlier, so it is posted by then.
  for (let start = 0; start < missing.length; start += chunk) {
    await Promise.all(
      missing.slice(start, start + chunk).map(async (i) => {
        const t = plan[i]!;
        const mediaIds = t.photo ? [await uploadPhoto(opts.gatewayUrl, accounts[t.author]!.token, i)] : [];
        const target = (k: number | undefined): bigint => (k === undefined ? 0n : (ids[k] ?? 0n));
        const request = create(PostTweetRequestSchema, { text: t.text, mediaIds, replyToTweetId: target(t.replyTo), quoteTweetId: target(t.quote) });
        const post = async (req: typeof request): Promise<bigint> => {
          if (importer === undefined) return (await withRetry(() => opts.tweetClient.postTweet(req, bearer(t.author)))).tweet!.id;
          const after = Math.max(0, ...[req.replyToTweetId, req.quoteTweetId].filter((id) => id !== 0n).map((id) => parseId(id).timeMs));
          const createTime = timestampFromMs(dated(end - span + t.at * span, after));
          return (await withRetry(() => importer.importTweet({ tweet: req, createTime }, asCaller(t.author)))).tweet!.id;
        };
        try {
          ids[i] = await post(request);
        } catch (err) {
          // A target deleted by someone since: post it as a plain tweet.
          if (ConnectError.from(err).code !== Code.NotFound) throw err;
          ids[i] = await post(create(PostTweetRequestSchema, { text: t.text, mediaIds }));
        }
        postProgress.tick();
      }),
    );
  }
  postProgress.done();

  const likes = plan.flatMap((t, i) => t.likers.map((n) => [n, ids[i]!] as const));
  const likeProgress = createProgress("history: likes", likes.length, opts.log);
  await mapConcurrent(likes, concurrency, async ([n, tweetId]) => {
    await withRetry(() => opts.tweetClient.likeTweet({ tweetId }, bearer(n)));
    likeProgress.tick();
  });
  likeProgress.done();

  const reposts = plan.flatMap((t, i) => t.reposters.map((n, k) => [n, ids[i]!, (k + 1) / (t.reposters.length + 1)] as const));
  const repostProgress = createProgress("history: reposts", reposts.length, opts.log);
  await mapConcurrent(reposts, concurrency, async ([n, tweetId, delay]) => {
    if (importer === undefined) await withRetry(() => opts.tweetClient.repost({ tweetId }, bearer(n)));
    else {
      // Some time after the tweet (up to 6 hours), each reposter of it a little later than the one before.
      const tweetMs = parseId(tweetId).timeMs;
      const createTime = timestampFromMs(dated(tweetMs + delay * Math.min(REPOST_DELAY_MAX_MS, end - tweetMs), tweetMs));
      await withRetry(() => importer.importRepost({ tweetId, createTime }, asCaller(n)));
    }
    repostProgress.tick();
  });
  repostProgress.done();
  return { planned: plan.length, posted: missing.length, likes: likes.length, reposts: reposts.length, backdated: importer !== undefined };
}

/** A small generated photo (a gradient, different per tweet), uploaded through POST /media. */
async function uploadPhoto(gatewayUrl: string, token: string, i: number): Promise<bigint> {
  const [width, height] = [64, 48];
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      data[o] = (x * 4 + i * 37) & 255;
      data[o + 1] = (y * 5 + i * 11) & 255;
      data[o + 2] = (i * 53) & 255;
      data[o + 3] = 255;
    }
  }
  const body = PNG.sync.write({ width, height, data });
  return withRetry(async () => {
    const res = await fetch(`${gatewayUrl}/media`, { method: "POST", body, headers: { "content-type": "image/png", authorization: `Bearer ${token}` } });
    if (!res.ok) throw new ConnectError(`POST /media: ${res.status} ${await res.text()}`, res.status === 503 ? Code.Unavailable : Code.Internal);
    return BigInt(((await res.json()) as { id: string }).id);
  });
}
