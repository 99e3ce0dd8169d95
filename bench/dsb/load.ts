/**
 * Bulk loader: writes a data set straight into the shard databases, as the
 * rows the services themselves would have written, placed by the shard
 * router's vindexes, in multi-row INSERTs (so a 10x data set loads in a minute
 * instead of the hours SignUp, Follow and PostTweet would take).
 *
 * What the services would write, and what this writes (migrations 0001-0007):
 *   SignUp      users (with the final follower/following/tweet counts),
 *               user_handles (shard of binary_md5(handle)), user_emails
 *               (shard of binary_md5(email)). Bypassed: argon2id per user
 *               (every bulk user shares one hash of BENCH_PASSWORD, made here
 *               with the user service's parameters, so LogIn works), the
 *               claim protocol, and the UserCreated outbox row (no consumer).
 *   Follow      follows on the follower's shard and followers on the
 *               followee's: state 1, version 1, the same follow_time,
 *               sync_pending 0 (both sides in line). Bypassed: the
 *               UserFollowed events (no home list exists yet to update).
 *   PostTweet   tweet_lookup (shard of hash(tweet id)) and tweets (the
 *               author's shard) with hashtags/mentions/urls as the service's
 *               own parser finds them. Bypassed: TweetCreated events, so no
 *               fan-out and no search indexing; home lists are built from
 *               MySQL on each user's first read, which is the service's own
 *               rebuild path (reads.ts rebuildHome).
 * Ids are Snowflakes with times in the past (users 30 days ago, tweets over
 * the last 7 days) and node numbers no live process leases now, so they
 * never collide with ids the mesh mints during the run.
 */
import { hash, argon2id } from "argon2";
import { USER_DEFAULTS } from "../../services/user/config.js";
import { ID_EPOCH_MS } from "../../lib/ids.js";
import type { ShardInfo } from "../../lib/shard/types.js";
import { ShardMap } from "../../lib/shard/keyrange.js";
import type { ShardRouter, SqlValue } from "../../lib/shard/router.js";
import { binaryMd5Vindex, lowerAscii } from "../../lib/shard/vindex.js";
import { parseTweetText } from "../../services/tweet/text.js";
import { createProgress } from "../../scripts/cli/progress.js";
import { createRng } from "../../scripts/cli/rng.js";
import { bulkTweetText, followCounts, handleOf, type Dataset } from "./workload.js";

export const BENCH_PASSWORD = "chirp-bench-password";

const USER_NODE = 1021n;
const TWEET_NODE = 1020n;
const DAY_MS = 86_400_000;

export interface LoadedTweet {
  readonly id: bigint;
  readonly author: number;
}

export interface Loaded {
  /** User n's id. */
  readonly userIds: readonly bigint[];
  /** Every bulk tweet, ascending id. */
  readonly tweets: readonly LoadedTweet[];
  readonly followers: Int32Array;
  readonly following: Int32Array;
  readonly rows: number;
  readonly ms: number;
}

const snowflake = (timeMs: number, node: bigint, seq: number): bigint =>
  (BigInt(timeMs - ID_EPOCH_MS) << 22n) | (node << 12n) | BigInt(seq & 4095);

const dbTime = (ms: number): string => new Date(ms).toISOString().replace("T", " ").replace("Z", "");
const timeOfId = (id: bigint): number => Number(id >> 22n) + ID_EPOCH_MS;

/** Rows per INSERT statement. */
const BATCH = 1000;

export async function bulkLoad(router: ShardRouter, d: Dataset, opts: { seed?: number; log?: NodeJS.WriteStream } = {}): Promise<Loaded> {
  const log = opts.log ?? process.stderr;
  const started = performance.now();
  const rng = createRng((opts.seed ?? 1) * 7919);
  const now = Date.now();
  const userIds = Array.from({ length: d.users }, (_, n) => snowflake(now - 30 * DAY_MS + n, USER_NODE, n));
  const { followers, following } = followCounts(d);

  // Tweets: times spread over the last week, ids in time order.
  const drafts: Array<{ time: number; author: number }> = [];
  for (let u = 0; u < d.users; u++) for (let k = 0; k < d.tweetsPerUser[u]!; k++) drafts.push({ time: now - Math.floor(rng() * 7 * DAY_MS) - 60_000, author: u });
  drafts.sort((a, b) => a.time - b.time);
  const tweets = drafts.map((t, i) => ({ id: snowflake(t.time, TWEET_NODE, i), author: t.author, text: bulkTweetText(rng) }));

  const passwordHash = await hash(BENCH_PASSWORD.normalize("NFKC"), {
    type: argon2id,
    memoryCost: USER_DEFAULTS.passwordHash.memoryKib,
    timeCost: USER_DEFAULTS.passwordHash.timeCost,
    parallelism: USER_DEFAULTS.passwordHash.parallelism,
  });
  const emailMap = new ShardMap(router.shards());
  const emailShard = (email: string): ShardInfo => emailMap.shardFor(binaryMd5Vindex(email));

  let rows = 0;
  const insert = async <T>(label: string, items: readonly T[], shardOf: (item: T) => ShardInfo, head: string, cols: number, values: (item: T) => SqlValue[]) => {
    const progress = createProgress(label, items.length, log);
    const groups = router.byShard(items, shardOf);
    // Shards in parallel; within a shard, one statement at a time.
    await Promise.all(
      [...groups.values()].map(async ({ shard, items: onShard }) => {
        const tuple = `(${new Array(cols).fill("?").join(", ")})`;
        for (let i = 0; i < onShard.length; i += BATCH) {
          const chunk = onShard.slice(i, i + BATCH);
          await router.primary(shard).execute(`${head} VALUES ${new Array(chunk.length).fill(tuple).join(", ")}`, chunk.flatMap(values));
          progress.tick(chunk.length);
          rows += chunk.length;
        }
      }),
    );
    progress.done();
  };

  const people = Array.from({ length: d.users }, (_, n) => n);
  await insert("user_handles", people, (n) => router.shardForHandle(lowerAscii(handleOf(d, n))), "INSERT INTO chirp.user_handles (handle_lower, user_id, create_time)", 3, (n) => [
    lowerAscii(handleOf(d, n)),
    userIds[n]!,
    dbTime(timeOfId(userIds[n]!)),
  ]);
  await insert("user_emails", people, (n) => emailShard(`${lowerAscii(handleOf(d, n))}@bench.example`), "INSERT INTO chirp.user_emails (email_lower, user_id, create_time)", 3, (n) => [
    `${lowerAscii(handleOf(d, n))}@bench.example`,
    userIds[n]!,
    dbTime(timeOfId(userIds[n]!)),
  ]);
  await insert(
    "users",
    people,
    (n) => router.shardForUser(userIds[n]!),
    "INSERT INTO chirp.users (id, handle, display_name, bio, email, password_hash, create_time, follower_count, following_count, tweet_count)",
    10,
    (n) => [
      userIds[n]!,
      handleOf(d, n),
      `Bench user ${n}`,
      "",
      `${handleOf(d, n)}@bench.example`,
      passwordHash,
      dbTime(timeOfId(userIds[n]!)),
      followers[n]!,
      following[n]!,
      d.tweetsPerUser[n]!,
    ],
  );

  // A follow time per edge: 29 days ago (after every bulk sign-up) plus its index in ms.
  const edges = Array.from({ length: d.follower.length }, (_, i) => i);
  const followTime = (i: number): string => dbTime(now - 29 * DAY_MS + i);
  await insert(
    "follows (follower side)",
    edges,
    (i) => router.shardForUser(userIds[d.follower[i]!]!),
    "INSERT INTO chirp.follows (follower_id, followee_id, state, version, follow_time, create_time, update_time, sync_pending)",
    8,
    (i) => {
      const t = followTime(i);
      return [userIds[d.follower[i]!]!, userIds[d.followee[i]!]!, 1, 1, t, t, t, 0];
    },
  );
  await insert(
    "followers (followee side)",
    edges,
    (i) => router.shardForUser(userIds[d.followee[i]!]!),
    "INSERT INTO chirp.followers (followee_id, follower_id, state, version, follow_time, create_time)",
    6,
    (i) => [userIds[d.followee[i]!]!, userIds[d.follower[i]!]!, 1, 1, followTime(i), followTime(i)],
  );
  await insert("tweet_lookup", tweets, (t) => router.shardForUser(t.id), "INSERT INTO chirp.tweet_lookup (tweet_id, author_id, create_time)", 3, (t) => [
    t.id,
    userIds[t.author]!,
    dbTime(timeOfId(t.id)),
  ]);
  await insert(
    "tweets",
    tweets,
    (t) => router.shardForUser(userIds[t.author]!),
    "INSERT INTO chirp.tweets (id, author_id, text, media_ids, like_count, hashtags, mentions, urls, version, create_time)",
    10,
    (t) => {
      const parsed = parseTweetText(t.text, false);
      return [t.id, userIds[t.author]!, parsed.text, "[]", 0, JSON.stringify(parsed.hashtags), "[]", JSON.stringify(parsed.urls), 1, dbTime(timeOfId(t.id))];
    },
  );
  return { userIds, tweets: tweets.map(({ id, author }) => ({ id, author })), followers, following, rows, ms: performance.now() - started };
}
