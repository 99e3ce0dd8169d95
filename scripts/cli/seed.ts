// `npx chirp seed`: loads a social graph through the public API, as a client
// would: one account per person (SignUp, or LogIn when it already exists), and
// every friendship followed both ways (as DeathStarBench's social-network
// loader does). It then checks that every user's follower and following
// counts match the graph, and writes a history of tweets, replies, quotes,
// photos and likes (seed-history.ts). Idempotent: a second run changes nothing.
import { Code, ConnectError, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { GraphService } from "../../gen/chirp/graph/v1/graph_service_pb.js";
import { TimelineService } from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_DATA_DIR } from "../../devcluster/index.js";
import { MESH_SECRET_FILE } from "../../lib/auth/keys.js";
import { DEFAULT_PORTS, MULTI_SERVICE_PORTS } from "../../lib/mesh.js";
import { vouchingInterceptor } from "../../lib/rpc/vouching-interceptor.js";
import { USER_DEFAULTS } from "../../services/user/config.js";
import { EXIT_FAILURE, EXIT_OK, UsageError, rejectUnknownFlags, takeOption } from "./args.js";
import { REED98_EDGES, degrees, readEdgeList, type SocialGraph } from "./dataset.js";
import { createProgress, mapConcurrent } from "./progress.js";
import { sleep, withRetry } from "./retry.js";
import { seedHistory, type HistoryResult } from "./seed-history.js";

export const SEED_PASSWORD = "chirp-seed-password";

export const usage = "chirp seed [--users N] [--tweets N] [--days N] [--gateway URL] [--tweet-addr HOST:PORT] [--dataset FILE] [--handle-prefix P] [--concurrency N]";

export const help = [
  `usage: ${usage}`,
  "",
  "Loads a social graph through the public API, as a client would: one account per person",
  "(SignUp, or LogIn when it exists) and every friendship followed both ways; then checks",
  "every user's follower and following counts; then writes a history: tweets with hashtags,",
  "mentions, URLs and a few photos, replies, quotes, likes and reposts by friends, dated over the",
  "last days through the tweet service's internal ImportTweet and ImportRepost (posted now through",
  "the gateway when the tweet service cannot be reached). Idempotent: a second run changes nothing.",
  "Accounts are <prefix><n> with password chirp-seed-password.",
  "",
  "options:",
  "  --users N             only people 0..N-1 and the friendships among them [all 962]",
  "  --tweets N            tweets in the history, replies and quotes included; 0: none [3000]",
  "  --days N              how many days back the history reaches, 1-300 [3]",
  "  --gateway URL         the gateway [$CHIRP_GATEWAY_URL or http://127.0.0.1:8080]",
  "  --tweet-addr H:P      the tweet service's gRPC address, to backdate the history [$CHIRP_TWEET_ADDR,",
  "                        else whichever answers of 127.0.0.1:50050 (npm start) and :50053 (--mesh)]",
  "  --dataset FILE        an edge list (one `a b` pair a line) [data/socfb-Reed98/socfb-Reed98.edges]",
  "  --handle-prefix P     handle prefix; prefix + digits at most 15 characters [reed98_]",
  "  --concurrency N       calls in flight, 1-256 [16]",
  "",
  "exits 1 when any count does not match the graph.",
].join("\n");

export interface SeedOptions {
  readonly gatewayUrl: string;
  readonly graph: SocialGraph;
  /** Handles are `<prefix><n>`; keep prefix + digits within 15 characters. */
  readonly handlePrefix: string;
  readonly concurrency: number;
  /** Tweets in the history (seed-history.ts); 0 or unset: none. */
  readonly tweets?: number;
  /**
   * The tweet service's gRPC address ("host:port"): the history is then
   * dated over the last `historySpanMs` (ImportTweet). Unset: posted now.
   */
  readonly tweetAddress?: string;
  /** The mesh secret the backdated import vouches for each user with (required with tweetAddress). */
  readonly meshSecret?: string;
  readonly historySpanMs?: number;
  readonly log?: NodeJS.WriteStream;
  /**
   * The user service's CHIRP_USER_CLAIM_GRACE_MS (default 30 s): how long a
   * claim left by a sign-up of ours that failed midway blocks the handle.
   */
  readonly claimGraceMs?: number;
}

export interface SeededUser {
  readonly id: bigint;
  readonly token: string;
}

export interface SeedResult {
  readonly users: readonly SeededUser[];
  readonly follows: number;
  /** Every user's counts as GetUser reports them after the load. */
  readonly counts: ReadonlyArray<UserCounts>;
  /** Users whose counts differ from the graph's (empty when all match). */
  readonly mismatches: ReadonlyArray<UserCounts>;
  readonly history: HistoryResult | undefined;
}

export interface UserCounts {
  readonly n: number;
  readonly followers: number;
  readonly following: number;
  /** The graph's degree: what both counts should be. */
  readonly expected: number;
}

export async function seed(options: SeedOptions): Promise<SeedResult> {
  const log = options.log ?? process.stderr;
  const transport = createConnectTransport({ baseUrl: options.gatewayUrl, httpVersion: "1.1", useBinaryFormat: true });
  const users = createClient(UserService, transport);
  const graphs = createClient(GraphService, transport);
  const { graph, concurrency } = options;
  const ids = Array.from({ length: graph.userCount }, (_, n) => n);

  const accountsProgress = createProgress("accounts", ids.length, log);
  const claimGraceMs = options.claimGraceMs ?? USER_DEFAULTS.claimGraceMs;
  const note = (message: string): void => void log.write(`${log.isTTY === true ? "\r\x1b[K" : ""}${message}\n`);
  const accounts = await mapConcurrent(ids, concurrency, async (n) => {
    const account = await signUpOrLogIn(users, `${options.handlePrefix}${n}`, n, claimGraceMs, note);
    accountsProgress.tick();
    return account;
  });
  accountsProgress.done();

  const follows = graph.edges.flatMap(([a, b]) => [
    [a, b],
    [b, a],
  ]);
  const followProgress = createProgress("follows", follows.length, log);
  await mapConcurrent(follows, concurrency, async ([from, to]) => {
    const follower = accounts[from!]!;
    await withRetry(() => graphs.follow({ userId: accounts[to!]!.id }, { headers: bearer(follower.token) }));
    followProgress.tick();
  });
  followProgress.done();

  const expected = degrees(graph);
  const checkProgress = createProgress("check", ids.length, log);
  const counts = await mapConcurrent(ids, concurrency, async (n) => {
    const { user } = await withRetry(() => users.getUser({ lookup: { case: "userId", value: accounts[n]!.id } }));
    checkProgress.tick();
    return { n, followers: user?.followerCount ?? -1, following: user?.followingCount ?? -1, expected: expected[n]! };
  });
  const mismatches = counts.filter((c) => c.followers !== c.expected || c.following !== c.expected);
  checkProgress.done(mismatches.length === 0 ? "every count matches" : `${mismatches.length} users differ`);

  const history =
    (options.tweets ?? 0) === 0
      ? undefined
      : await seedHistory({
          graph,
          tweets: options.tweets!,
          accounts,
          handlePrefix: options.handlePrefix,
          gatewayUrl: options.gatewayUrl,
          tweetClient: createClient(TweetService, transport),
          timelineClient: createClient(TimelineService, transport),
          ...(options.tweetAddress === undefined ? {} : { importer: tweetServiceClient(options.tweetAddress, options.meshSecret) }),
          ...(options.historySpanMs === undefined ? {} : { spanMs: options.historySpanMs }),
          concurrency,
          log,
        });
  return { users: accounts, follows: follows.length, counts, mismatches, history };
}

/** After the claim grace, how long to keep trying before giving up on a handle our own failed sign-up claimed. */
const CLAIM_WAIT_SLACK_MS = 10_000;

/**
 * Signs up, or logs in to an account an earlier run created. One more case:
 * a SignUp of ours that failed with a retryable error can have left its
 * handle claimed without an account (its outcome was unknown to the service
 * too). Its retry then meets AlreadyExists, and LogIn finds no account. That
 * claim is taken over by a sign-up once it is a claim grace old, so we wait
 * and sign up again, for at most the grace (from our last failed attempt)
 * plus some slack.
 */
async function signUpOrLogIn(
  users: Client<typeof UserService>,
  handle: string,
  n: number,
  claimGraceMs: number,
  note: (message: string) => void,
): Promise<SeededUser> {
  const request = { handle, displayName: `Reed98 user ${n}`, email: `${handle}@example.com`, password: SEED_PASSWORD };
  // When a SignUp of ours first and last failed in a way that may have left a claim.
  let firstFailedAt: number | undefined;
  let lastFailedAt: number | undefined;
  const failed = (): void => {
    lastFailedAt = performance.now();
    firstFailedAt ??= lastFailedAt;
  };
  let waiting = false;
  for (;;) {
    try {
      const res = await withRetry(() => users.signUp(request), failed);
      return { id: res.user!.id, token: res.token };
    } catch (err) {
      if (ConnectError.from(err).code !== Code.AlreadyExists) throw err;
    }
    try {
      const res = await withRetry(() => users.logIn({ handle, password: SEED_PASSWORD }));
      return { id: res.user!.id, token: res.token };
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Unauthenticated) throw err;
    }
    if (lastFailedAt === undefined || firstFailedAt === undefined) {
      throw new Error(`@${handle} exists but was not created by chirp seed (its password differs)`);
    }
    // Taken, and no account with our password: most likely our own failed attempt's claim.
    const readyAt = lastFailedAt + claimGraceMs;
    const now = performance.now();
    // Bounded even if attempts keep failing (each failure pushes readyAt on).
    if (now > readyAt + CLAIM_WAIT_SLACK_MS || now > firstFailedAt + 2 * claimGraceMs + CLAIM_WAIT_SLACK_MS) {
      throw new Error(
        `@${handle} is still taken ${((now - lastFailedAt) / 1000).toFixed(0)} s after a sign-up of ours failed midway, ` +
          `longer than the ${claimGraceMs / 1000} s claim grace: it was not created by chirp seed, or the user service's ` +
          "CHIRP_USER_CLAIM_GRACE_MS is longer (set the same value where chirp seed runs)",
      );
    }
    if (!waiting) {
      waiting = true;
      note(`@${handle}: a sign-up of ours failed midway and left the handle claimed; signing up again once the ${claimGraceMs / 1000} s claim grace has passed`);
    }
    await sleep(now < readyAt ? readyAt - now + 250 : 1000);
  }
}

/**
 * A client of the tweet service itself (gRPC), for its internal methods;
 * with the mesh secret, its calls as a user carry an assertion (decision 22).
 */
function tweetServiceClient(address: string, meshSecret?: string): Client<typeof TweetService> {
  return createClient(TweetService, createGrpcTransport({ baseUrl: `http://${address}`, ...(meshSecret === undefined ? {} : { interceptors: [vouchingInterceptor(meshSecret)] }) }));
}

/**
 * The mesh secret of a local `npm start` (CHIRP_MESH_SECRET, else the file
 * it keeps beside the token key): the backdated import acts as each user at
 * the tweet service, which takes a caller only from an assertion.
 */
export function localMeshSecret(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env["CHIRP_MESH_SECRET"] !== undefined && env["CHIRP_MESH_SECRET"] !== "") return env["CHIRP_MESH_SECRET"];
  for (const file of [join(DEFAULT_DATA_DIR, MESH_SECRET_FILE), join(DEFAULT_DATA_DIR, "..", MESH_SECRET_FILE)]) {
    if (existsSync(file)) return readFileSync(file, "utf8").trim();
  }
  return undefined;
}

/** The first of `addresses` where a tweet service answers (a NotFound for tweet 1 will do); undefined when none does. */
export async function findTweetService(addresses: readonly string[]): Promise<string | undefined> {
  for (const address of addresses) {
    try {
      await tweetServiceClient(address).getTweet({ tweetId: 1n }, { timeoutMs: 2000 });
      return address;
    } catch (err) {
      if (ConnectError.from(err).code === Code.NotFound) return address;
    }
  }
  return undefined;
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export async function run(args: string[]): Promise<number> {
  const gatewayUrl = takeOption(args, "gateway", process.env["CHIRP_GATEWAY_URL"] ?? "http://127.0.0.1:8080");
  const dataset = takeOption(args, "dataset", REED98_EDGES);
  const prefix = takeOption(args, "handle-prefix", "reed98_");
  const concurrency = Number(takeOption(args, "concurrency", "16"));
  const limit = takeOption(args, "users", "");
  const tweets = Number(takeOption(args, "tweets", "3000"));
  const days = Number(takeOption(args, "days", "3"));
  const tweetAddr = takeOption(args, "tweet-addr", process.env["CHIRP_TWEET_ADDR"]?.split(",")[0] ?? "");
  rejectUnknownFlags(args);
  if (args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}`);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 256) throw new UsageError("--concurrency must be 1-256");
  const limitUsers = limit === "" ? Number.POSITIVE_INFINITY : Number(limit);
  if (!(limitUsers > 0)) throw new UsageError("--users must be a positive number");
  if (!Number.isInteger(tweets) || tweets < 0 || tweets > 10_000_000) throw new UsageError("--tweets must be 0-10000000");
  if (!(days >= 1 && days <= 300)) throw new UsageError("--days must be 1-300");

  const graph = readEdgeList(dataset, limitUsers);
  if (`${prefix}${graph.userCount - 1}`.length > 15) throw new UsageError("--handle-prefix is too long for 15-character handles");
  process.stderr.write(`seeding ${graph.name}: ${graph.userCount} users, ${graph.edges.length} friendships, via ${gatewayUrl}\n`);
  // The same variable the user service reads (npm start passes one environment to both).
  const grace = Number(process.env["CHIRP_USER_CLAIM_GRACE_MS"] ?? "");
  const claimGraceMs = Number.isInteger(grace) && grace > 0 ? grace : undefined;
  const meshSecret = localMeshSecret();
  const tweetAddress = tweets === 0 || meshSecret === undefined ? undefined : await findTweetService(tweetAddr === "" ? [`127.0.0.1:${MULTI_SERVICE_PORTS.grpc}`, `127.0.0.1:${DEFAULT_PORTS.tweet.grpc}`] : [tweetAddr]);
  if (tweets > 0) {
    process.stderr.write(
      tweetAddress === undefined
        ? meshSecret === undefined
          ? `no mesh secret (CHIRP_MESH_SECRET, or the one npm start keeps in ${DEFAULT_DATA_DIR}): the history is posted now, through the gateway\n`
          : `the tweet service is not reachable${tweetAddr === "" ? "" : ` at ${tweetAddr}`}: the history is posted now, through the gateway (--tweet-addr to date it over ${days} days)\n`
        : `history dated over the last ${days} days, through the tweet service at ${tweetAddress}\n`,
    );
  }
  const result = await seed({
    gatewayUrl,
    graph,
    handlePrefix: prefix,
    concurrency,
    tweets,
    ...(tweetAddress === undefined || meshSecret === undefined ? {} : { tweetAddress, meshSecret, historySpanMs: days * 24 * 3_600_000 }),
    ...(claimGraceMs === undefined ? {} : { claimGraceMs }),
  });
  for (const m of result.mismatches.slice(0, 10)) {
    process.stderr.write(`  ${prefix}${m.n}: ${m.followers} followers, ${m.following} following; the graph says ${m.expected}\n`);
  }
  process.stdout.write(
    `${graph.userCount} users, ${result.follows} follows; ${result.mismatches.length === 0 ? "all counts match" : `${result.mismatches.length} users with wrong counts`}` +
      (result.history === undefined ? "" : `; ${result.history.planned} tweets in the history (${result.history.posted} written ${result.history.backdated ? `dated over ${days} days` : "now"}), ${result.history.likes} likes, ${result.history.reposts} reposts`) +
      "\n",
  );
  return result.mismatches.length === 0 ? EXIT_OK : EXIT_FAILURE;
}
