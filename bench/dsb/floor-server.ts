/**
 * The floor: the least a correct design must do for each request of the mix,
 * as a bare node:http server (its own process, forked by the bench) over the
 * same Redis and MySQL servers, with no gateway, no token check, no RPC, no
 * protobuf, no validation, no metrics and no logs. Reads are served from
 * Redis as bytes prepared in advance; a write is made durable in MySQL and
 * fanned out in one pipeline. What it does per op (POST /op, the Op as JSON):
 *
 *   home      ZREVRANGE of the reader's home list (ten tweet ids), then one
 *             MGET of the tweets' prepared JSON (author included), written
 *             out as one array: two round trips to Redis.
 *   user      the same over the author's own list, for each call the Chirp
 *             target makes for the emulated offset (targets.ts): a page of
 *             min(offset, 100) to skip, then the page of ten.
 *   compose   one INSERT of the tweet (id, author, text) into a table of the
 *             floor's own (floor_tweets, made by the bench) on the author's shard primary (autocommit: durable
 *             and semi-sync replicated when it returns), then one pipeline:
 *             the tweet's prepared JSON, a ZADD into the author's list and
 *             into each follower's home list, each list trimmed.
 *
 * Prepared at start from the cluster's MySQL (progress on stderr): every
 * tweet's JSON with its author's profile, every user's own list and home
 * list (the newest HOME_CAP of the tweets of everyone they follow), under
 * keys of its own (`floor:*`). Chirp does more than this by design (counts,
 * likes per viewer, deletions, unfollows, flushes survived, tokens); the gap
 * to the floor is what that and the process and protocol layers cost.
 *
 * IPC: receives { userIds } first, answers { type: "ready", port } once
 * prepared. Exits when the IPC channel closes.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Redis } from "ioredis";
import { pino } from "pino";
import { createIdGenerator, parseId } from "../../lib/ids.js";
import { loadShardConfig } from "../../lib/shard/shard-config.js";
import { topologyFromEnv } from "../../lib/shard/config.js";
import { createShardRouter } from "../../lib/shard/router.js";
import { HOME_PAGE, MAX_PAGE, USER_PAGE } from "./targets.js";
import type { Op } from "./workload.js";

const redisUrl = process.env.REDIS_URL;
if (redisUrl === undefined) throw new Error("REDIS_URL is required");
const userIds = await new Promise<bigint[]>((resolve) => process.once("message", (m: { userIds: string[] }) => resolve(m.userIds.map((s) => BigInt(s)))));

const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
// Statement failures the router masks as Internal are logged on stderr.
const router = await createShardRouter({ ...topologyFromEnv(process.env as Record<string, string>, loadShardConfig("local")), log: pino({ level: "warn" }, pino.destination(2)) });
const ids = createIdGenerator(1019);

/** Entries kept per list: as many as a Chirp home list holds by default. */
const HOME_CAP = 800;
const key = {
  tweet: (id: bigint | string): string => `floor:t:${id}`,
  home: (user: bigint | string): string => `floor:h:${user}`,
  own: (user: bigint | string): string => `floor:u:${user}`,
};
const say = (line: string): void => void process.stderr.write(`[floor] ${line}\n`);

interface Author {
  readonly id: string;
  readonly handle: string;
  readonly displayName: string;
  readonly followerCount: string;
  readonly followingCount: string;
  readonly tweetCount: string;
}

// ---- preparation -----------------------------------------------------------

const authors = new Map<string, Author>();
/** followee -> followers, for the fan-out of a compose. */
const followersOf = new Map<string, string[]>();

const tweetJson = (id: string, author: Author | undefined, text: string, createTime: string): string =>
  JSON.stringify({ id, authorId: author?.id, text, createTime, author });

async function prepare(): Promise<void> {
  const started = Date.now();
  const shards = router.shards();
  const all = async <T extends object>(sql: string): Promise<T[]> => (await Promise.all(shards.map((s) => router.primary(s).query<T>(sql)))).flat();
  const users = await all<{ id: string; handle: string; display_name: string; follower_count: string; following_count: string; tweet_count: string }>(
    "SELECT id, handle, display_name, follower_count, following_count, tweet_count FROM chirp.users",
  );
  for (const u of users) {
    const id = String(u.id);
    authors.set(id, { id, handle: u.handle, displayName: u.display_name, followerCount: String(u.follower_count), followingCount: String(u.following_count), tweetCount: String(u.tweet_count) });
  }
  const follows = await all<{ follower_id: string; followee_id: string }>("SELECT follower_id, followee_id FROM chirp.follows WHERE state = 1");
  const followeesOf = new Map<string, string[]>();
  for (const f of follows) {
    const [follower, followee] = [String(f.follower_id), String(f.followee_id)];
    (followeesOf.get(follower) ?? followeesOf.set(follower, []).get(follower)!).push(followee);
    (followersOf.get(followee) ?? followersOf.set(followee, []).get(followee)!).push(follower);
  }
  const tweets = await all<{ id: string; author_id: string; text: string }>("SELECT id, author_id, text FROM chirp.tweets WHERE delete_time IS NULL");
  say(`read ${users.length} users, ${follows.length} follows, ${tweets.length} tweets in ${Date.now() - started} ms; writing Redis`);

  const byAuthor = new Map<string, Array<{ id: string; score: number }>>();
  let p = redis.pipeline();
  let queued = 0;
  const flush = async (force = false): Promise<void> => {
    if (queued === 0 || (!force && queued < 2000)) return;
    for (const [err] of (await p.exec()) ?? []) if (err) throw err;
    p = redis.pipeline();
    queued = 0;
  };
  for (const t of tweets) {
    const id = String(t.id);
    const author = String(t.author_id);
    const score = parseId(BigInt(id)).timeMs;
    p.set(key.tweet(id), tweetJson(id, authors.get(author), t.text, new Date(score).toISOString()));
    queued++;
    (byAuthor.get(author) ?? byAuthor.set(author, []).get(author)!).push({ id, score });
    await flush();
  }
  const write = async (listKey: string, entries: ReadonlyArray<{ id: string; score: number }>): Promise<void> => {
    p.del(listKey);
    const newest = [...entries].sort((a, b) => b.score - a.score || (a.id < b.id ? 1 : -1)).slice(0, HOME_CAP);
    if (newest.length > 0) p.zadd(listKey, ...newest.flatMap((e) => [e.score, e.id]));
    queued += 1 + newest.length;
    await flush();
  };
  let done = 0;
  for (const user of userIds.map(String)) {
    await write(key.own(user), byAuthor.get(user) ?? []);
    await write(key.home(user), (followeesOf.get(user) ?? []).flatMap((f) => byAuthor.get(f) ?? []));
    if (++done % 200 === 0) say(`lists of ${done} of ${userIds.length} users written`);
  }
  await flush(true);
  say(`prepared in ${Date.now() - started} ms`);
}

// ---- requests ------------------------------------------------------------

/** The tweets of a list from `offset`, as one JSON array of their prepared bytes; `more`: the list goes on past the page. */
async function page(listKey: string, offset: number, size: number): Promise<{ json: string; more: boolean }> {
  const idsOnPage = await redis.zrevrange(listKey, offset, offset + size);
  if (idsOnPage.length === 0) return { json: "[]", more: false };
  const found = await redis.mget(idsOnPage.slice(0, size).map(key.tweet));
  return { json: `[${found.filter((t) => t !== null).join(",")}]`, more: idsOnPage.length > size };
}

/** A post (or a repost, with no text; or a reply), fanned out; `counter`: the referenced tweet's count, bumped in the same pipeline. */
async function compose(author: bigint, text: string, counter?: string): Promise<string> {
  const id = ids.next();
  const shard = router.shardForUser(author);
  await router.primary(shard).execute("INSERT INTO chirp.floor_tweets (id, author_id, text) VALUES (?, ?, ?)", [String(id), String(author), text]);
  const score = parseId(id).timeMs;
  const json = tweetJson(String(id), authors.get(String(author)), text, new Date(score).toISOString());
  const p = redis.pipeline().set(key.tweet(id), json);
  if (counter !== undefined) p.incr(counter);
  for (const listKey of [key.own(author), ...(followersOf.get(String(author)) ?? []).map(key.home)]) {
    p.zadd(listKey, score, String(id)).zremrangebyrank(listKey, 0, -(HOME_CAP + 1));
  }
  for (const [err] of (await p.exec()) ?? []) if (err) throw err;
  return json;
}

async function run(op: Op): Promise<{ calls: number; body: string }> {
  switch (op.kind) {
    case "home":
      return { calls: 1, body: (await page(key.home(userIds[op.user]!), 0, HOME_PAGE)).json };
    case "user": {
      const own = key.own(userIds[op.author]!);
      if (op.offset === 0) return { calls: 1, body: (await page(own, 0, USER_PAGE)).json };
      const skip = Math.min(op.offset, MAX_PAGE);
      const skipped = await page(own, 0, skip);
      // As the Chirp target: a second call only when there is a next page.
      if (!skipped.more) return { calls: 1, body: skipped.json };
      return { calls: 2, body: (await page(own, skip, USER_PAGE)).json };
    }
    case "compose":
      return { calls: 1, body: await compose(userIds[op.user]!, op.text) };
    case "repost":
      return { calls: 1, body: await compose(userIds[op.user]!, "", `floor:reposts:${op.tweet}`) };
    case "reply":
      return { calls: 1, body: await compose(userIds[op.user]!, op.text, `floor:replies:${op.tweet}`) };
  }
}

await prepare();
const reported = new Set<string>();

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    run(JSON.parse(Buffer.concat(chunks).toString()) as Op).then(
      ({ calls, body }) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(`{"calls":${calls},"body":${body}}`);
      },
      (err: unknown) => {
        // Each distinct failure once on stderr: a floor that fails is no floor.
        const message = String(err);
        if (!reported.has(message)) {
          reported.add(message);
          say(`request failed: ${message}`);
        }
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(message);
      },
    );
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => process.send?.({ type: "ready", port: (server.address() as AddressInfo).port }));
process.on("disconnect", () => {
  server.close();
  redis.disconnect();
  void router.close().finally(() => process.exit(0));
});
