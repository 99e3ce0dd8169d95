// All of the tweet service's SQL, and so all SQL on the tables it owns. Where
// rows live (migrations 0001, 0007; services/tweet/README.md):
//   tweets, tweet_likes  the author's shard (the tweet's shard)
//   tweet_lookup         the shard of hash(tweet id): tweet id -> author
//   likes                the liker's shard: the liker's index of tweet_likes
//   outbox               the shard of the transaction that writes it
// Every call is counted by shard and operation (chirp_tweet_db_calls_total),
// so a test or an operator can see which shards a request touched.
import { Counter } from "prom-client";
import { hashVindex } from "../../lib/shard/vindex.js";
import type { LikeAt } from "../../lib/liked-cache.js";
import type { ShardInfo } from "../../lib/shard/types.js";
import type { Announce } from "../../lib/events/outbox.js";
import type { Metrics } from "../../lib/metrics.js";
import type { Queryable, ShardClient, ShardRouter, SqlValue, Transaction } from "../../lib/shard/router.js";
import { adjustUserCount } from "../../lib/user-counts.js";
import { deferProfileRead, type ProfileRow } from "../../lib/user-profile.js";
import { keyBatches } from "../../lib/key-batches.js";
import { DB_TIME_FORMAT, dbTimeFromMicros, microsFromDbTime } from "../../lib/db/db-time.js";
import type { LikeCursor } from "./page-token.js";

const LIKED = 1;
const UNLIKED = 0;
const REPOST_TAKEN_BACK = 0;
const REPOST_LIVE = 1;
const REPOST_PENDING = 2;

/** The viewer's like and repost of `t` (two `?`: the viewer, twice). */
const VIEWER_COLUMNS = `(SELECT l.state FROM chirp.tweet_likes l WHERE l.tweet_id = t.id AND l.user_id = ?) AS liked,
  (SELECT r.state FROM chirp.tweet_reposts r WHERE r.tweet_id = t.id AND r.reposter_id = ?) AS reposted`;

/** A tweets row, parsed. Plain data: presentation is present.ts's job. */
export interface TweetRow {
  readonly id: bigint;
  readonly authorId: bigint;
  readonly text: string;
  /** 0 when not a reply. */
  readonly replyToTweetId: bigint;
  readonly mediaIds: readonly bigint[];
  readonly latitude: number | null;
  readonly longitude: number | null;
  readonly likeCount: number;
  /** Live direct replies (tweet_replies rows in state 1). */
  readonly replyCount: number;
  /** 0 when it quotes no tweet. */
  readonly quoteTweetId: bigint;
  /** Live tweets quoting it (tweet_quotes rows in state 1). */
  readonly quoteCount: number;
  /** A repost's original; 0 for a tweet of its own. */
  readonly repostOfTweetId: bigint;
  /** Live reposts (tweet_reposts rows in state 1). */
  readonly repostCount: number;
  readonly hashtags: readonly string[];
  readonly mentions: readonly bigint[];
  readonly urls: readonly string[];
  /** 1 when posted, +1 on every change. */
  readonly version: bigint;
  readonly deleted: boolean;
}

export type NewTweet = Omit<TweetRow, "likeCount" | "replyCount" | "quoteCount" | "repostCount" | "version" | "deleted"> & {
  /** The Snowflake id's time, in microseconds (create_time of the tweet and its lookup). */
  readonly createTimeMicros: bigint;
};

/** One version of a (tweet, liker) like edge, as the tweet's shard recorded it. */
export interface LikeEdge {
  readonly tweetId: bigint;
  readonly authorId: bigint;
  readonly userId: bigint;
  readonly liked: boolean;
  readonly version: bigint;
  /** When the current (or, unliked, the last) like was made. */
  readonly likeTimeMicros: bigint;
  /** When this version was written. */
  readonly changeTimeMicros: bigint;
}

/** One like or unlike waiting for its tweet's next transaction. */
interface LikeChange {
  readonly authorId: bigint;
  readonly userId: bigint;
  readonly liked: boolean;
  readonly announce: Announce<LikeEdge>;
}

/** The most likes and unlikes of one tweet applied in one transaction. */
const LIKE_BATCH_MAX = 64;

export type SetLikeResult =
  | { readonly kind: "missing" }
  | { readonly kind: "deleted"; readonly row: TweetRow }
  | {
      readonly kind: "done";
      readonly row: TweetRow;
      readonly edge: LikeEdge | undefined;
      readonly changed: boolean;
      /** Whether the liker has reposted it, read under the same lock (their cached state at the new version). */
      readonly reposted: boolean;
      /**
       * The row when the transaction ends: `row` is the tweet just after this
       * change (its count is the one the caller sees), and changes batched
       * after it in the same transaction (key-batches.ts) may follow.
       */
      readonly latest: TweetRow;
      /** Whether the liker likes the tweet at `latest`'s version. */
      readonly likedAtLatest: boolean;
    };

export type DeleteResult =
  | { readonly kind: "missing" }
  | { readonly kind: "deleted"; readonly row: TweetRow }
  | { readonly kind: "forbidden" }
  | { readonly kind: "done"; readonly row: TweetRow; readonly deleteTimeMicros: bigint };

export interface LikeListRow {
  readonly tweetId: bigint;
  readonly authorId: bigint;
  readonly likeTimeMicros: bigint;
}

/** A tweet written with its lookup row, and its author's profile row as that transaction left it (read in its COMMIT's round trip). */
export interface PostedTweet {
  readonly row: TweetRow;
  /** Undefined if the author has no users row (an account erased meanwhile). */
  readonly author: ProfileRow | undefined;
}

export interface TweetStore {
  /** The shard that holds a tweet id's lookup row. */
  lookupShard(tweetId: bigint): ShardInfo;
  /** The shard that holds a user's tweets (and their likes' edges). */
  tweetShard(authorId: bigint): ShardInfo;
  insertLookup(tweetId: bigint, authorId: bigint, createTimeMicros: bigint): Promise<void>;
  /** Authors of the ids that have a lookup row: a replica first, the primary for the rest. */
  lookupAuthors(tweetIds: readonly bigint[]): Promise<Map<bigint, bigint>>;
  /** The tweet, the author's tweet_count and the event, in one transaction on the author's shard. */
  createTweet(t: NewTweet, announce: Announce<TweetRow>): Promise<TweetRow>;
  /** Whether the tweet id's lookup row lives on its author's shard now (createTweetWithLookup can write both). */
  besideAuthor(tweetId: bigint, authorId: bigint): boolean;
  /**
   * createTweet with the tweet's lookup row in the same transaction, for an
   * id whose lookup row lives on the author's shard (besideAuthor). "apart"
   * when it no longer does by the time the rows go (a reshard moved one of
   * them meanwhile): nothing was written, write the lookup row first instead.
   */
  createTweetWithLookup(t: NewTweet, announce: Announce<TweetRow>): Promise<PostedTweet | "apart">;
  /** Rows (deleted ones too) of tweets on one shard, from its primary, with whether `viewer` likes each. */
  readTweets(shard: ShardInfo, ids: readonly bigint[], viewer: bigint | undefined): Promise<Array<{ row: TweetRow; liked: boolean; reposted: boolean }>>;
  /** Which of `ids` (all on `shard`) `viewer` likes, from the primary. */
  /**
   * The viewer's like of each live or deleted tweet among `ids`, with the
   * tweet's version, read together: from the primary, or with "replica" from
   * a replica (a pair as exact, for the version it names).
   */
  likesAt(shard: ShardInfo, viewer: bigint, ids: readonly bigint[], from?: "primary" | "replica"): Promise<LikeAt[]>;
  setLike(authorId: bigint, tweetId: bigint, userId: bigint, liked: boolean, announce: Announce<LikeEdge>): Promise<SetLikeResult>;
  deleteTweet(authorId: bigint, tweetId: bigint, callerId: bigint, announce: Announce<{ row: TweetRow; deleteTimeMicros: bigint }>): Promise<DeleteResult>;
  /** Brings the liker's index row to `edge` unless it holds that version or a newer one. */
  applyLikerSide(edge: LikeEdge): Promise<"applied" | "current">;
  /** One page of a user's likes, newest first, strictly after `after`. */
  listLikes(userId: bigint, after: LikeCursor | undefined, limit: number, primary: boolean): Promise<LikeListRow[]>;
  /**
   * Each walk's live tweets, newest first by id, as (id, author) pairs in no
   * particular order: per shard, one statement per chunk of walks (UNION ALL
   * of per-author backward walks of the index tweets_by_author), so no more
   * rows are read than returned, plus deleted ones skipped.
   */
  walkAuthors(walks: readonly AuthorWalk[], primary: boolean): Promise<TweetRefRow[]>;
  /**
   * Brings a reply or quote edge (the replied-to or quoted tweet -> the new
   * tweet) to live or deleted on the target's shard, with the target's
   * reply_count or quote_count and version, under the target row's lock. A
   * deleted edge stays deleted. "missing": no target row.
   */
  setRefEdge(kind: RefKind, targetAuthorId: bigint, targetId: bigint, ref: TweetRefRow, live: boolean, announce: Announce<RefEdge>): Promise<RefEdgeResult>;
  /**
   * A repost's first step, on the original's shard under its row lock: the
   * reposter's edge is made pending with `newRepostId` unless it is live
   * ("live": nothing to do) or already pending ("pending" with its own id:
   * a retry writes that same repost tweet).
   */
  beginRepost(originalAuthorId: bigint, originalId: bigint, reposterId: bigint, newRepostId: bigint): Promise<BeginRepostResult>;
  /** The reposter's edge, from the primary; undefined when there is none. */
  repostEdge(originalAuthorId: bigint, originalId: bigint, reposterId: bigint): Promise<RepostEdgeRow | undefined>;
  /**
   * A repost's last step (or an unrepost): the edge naming `repostId` goes
   * live from pending, or is taken back from pending or live, with
   * repost_count and the version, under the original's row lock; a change to
   * or from live is announced. `liked` and `reposted`: the reposter's like
   * and repost, read under the same lock (their cached state at the new
   * version).
   */
  settleRepost(
    originalAuthorId: bigint,
    originalId: bigint,
    reposterId: bigint,
    repostId: bigint,
    live: boolean,
    announce: Announce<RepostChange>,
  ): Promise<
    | { readonly kind: "missing" }
    | { readonly kind: "done"; readonly target: TweetRow; readonly changed: boolean; readonly liked: boolean; readonly reposted: boolean }
  >;
  /**
   * A page of the author's tweets, deleted ones too, ascending by id after
   * `afterId`, from the primary (index tweets_by_author): account erasure
   * walks them all, so a redelivery completes the steps after a delete.
   */
  authorTweetIds(authorId: bigint, afterId: bigint, limit: number): Promise<Array<{ id: bigint; repostOfTweetId: bigint }>>;
  /** Live direct replies of a tweet with id > after, oldest first (the parent's shard). */
  listReplies(parentAuthorId: bigint, parentId: bigint, after: bigint, limit: number, primary: boolean): Promise<TweetRefRow[]>;
}

export type RefEdgeResult = { readonly kind: "missing" } | { readonly kind: "done"; readonly target: TweetRow; readonly changed: boolean };

export type BeginRepostResult =
  | { readonly kind: "missing" }
  | { readonly kind: "deleted" }
  | { readonly kind: "live"; readonly row: TweetRow }
  | { readonly kind: "pending"; readonly repostId: bigint };

export interface RepostEdgeRow {
  readonly state: "pending" | "live" | "taken-back";
  readonly repostId: bigint;
}

/** A repost that took effect or was taken back: announced (TweetReposted, TweetUnreposted) in its transaction. */
export interface RepostChange {
  readonly live: boolean;
  readonly tweetId: bigint;
  readonly authorId: bigint;
  readonly reposterId: bigint;
  readonly repostId: bigint;
}

/** A tweet's reference to another: a reply (to its parent) or a quote (of the quoted tweet). */
export type RefKind = "reply" | "quote";

/** An edge that went live: announced (TweetReplied, TweetQuoted) in its transaction. */
export interface RefEdge {
  readonly kind: RefKind;
  readonly targetId: bigint;
  readonly targetAuthorId: bigint;
  readonly ref: TweetRefRow;
}

/** Each edge table's names (migrations 0010, 0011). */
const EDGES = {
  reply: { table: "chirp.tweet_replies", target: "parent_id", targetAuthor: "parent_author_id", ref: "reply_id", refAuthor: "reply_author_id", count: "reply_count" },
  quote: { table: "chirp.tweet_quotes", target: "quoted_id", targetAuthor: "quoted_author_id", ref: "quote_id", refAuthor: "quote_author_id", count: "quote_count" },
} as const;

const EDGE_LIVE = 1;
const EDGE_DELETED = 0;

/** Above every Snowflake id: a walk's "no upper bound". */
export const NO_UPPER_BOUND = 0xffff_ffff_ffff_ffffn;

/** One author's live tweets with atLeast <= id < before, newest first, at most limit. */
export interface AuthorWalk {
  readonly authorId: bigint;
  readonly before: bigint;
  readonly atLeast: bigint;
  readonly limit: number;
}

export interface TweetRefRow {
  readonly id: bigint;
  readonly authorId: bigint;
  /** walkAuthors: the original of a repost (absent for a tweet of the author's own). */
  readonly repostOfTweetId?: bigint;
}

/** Walks per statement; the statement is padded to a power of two so few distinct texts get prepared. */
const WALK_CHUNK = 64;

interface RawTweet {
  id: string;
  author_id: string;
  text: string;
  reply_to_tweet_id: string | null;
  media_ids: string;
  latitude: number | null;
  longitude: number | null;
  like_count: string;
  reply_count: string;
  quote_tweet_id: string | null;
  quote_count: string;
  repost_of_tweet_id: string | null;
  repost_count: string;
  hashtags: string;
  mentions: string;
  urls: string;
  version: string;
  deleted: number | string;
  liked?: number | string | null;
  reposted?: number | string | null;
}

const TWEET_COLUMNS = `t.id, t.author_id, t.text, t.reply_to_tweet_id, t.media_ids, t.latitude, t.longitude, t.like_count,
  t.reply_count, t.quote_tweet_id, t.quote_count, t.repost_of_tweet_id, t.repost_count, t.hashtags, t.mentions, t.urls, t.version, t.delete_time IS NOT NULL AS deleted`;

export function createTweetStore(router: ShardRouter, metrics?: Metrics): TweetStore {
  const calls = metrics
    ? new Counter({
        name: "chirp_tweet_db_calls_total",
        help: "Statements and transactions the tweet service ran, by shard and operation.",
        labelNames: ["shard", "op"] as const,
        registers: [metrics.registry],
      })
    : undefined;
  const counted = (shard: ShardInfo, op: string): void => calls?.inc({ shard: shard.name, op });
  const primary = (shard: ShardInfo, op: string): ShardClient => {
    counted(shard, op);
    return router.primary(shard);
  };
  const reader = (shard: ShardInfo, op: string): ShardClient => {
    counted(shard, op);
    return router.reader(shard);
  };
  const transaction = <T>(shard: ShardInfo, op: string, fn: (tx: Transaction) => Promise<T>): Promise<T> => {
    counted(shard, op);
    return router.transaction(shard, fn);
  };
  // The lookup row is sharded by the tweet id with the same `hash` vindex as user ids.
  const lookupShard = (tweetId: bigint): ShardInfo => router.shardForUser(tweetId);
  const tweetShard = (authorId: bigint): ShardInfo => router.shardForUser(authorId);

  /**
   * The tweet's transaction (createTweet), with its lookup row when
   * `withLookup` (createTweetWithLookup): the rows, the count and the event
   * go with the COMMIT, one round trip after the BEGIN's (a duplicate id
   * still fails the transaction, at the COMMIT's round trip).
   */
  const writeTweet = (t: NewTweet, announce: Announce<TweetRow>, withLookup: boolean): Promise<{ row: TweetRow; author?: Promise<ProfileRow | undefined> } | "apart"> =>
    transaction(tweetShard(t.authorId), withLookup ? "createTweetWithLookup" : "createTweet", async (tx) => {
      if (withLookup) {
        // By the router's current map, which routes this transaction's statements.
        if (lookupShard(t.id).name !== tweetShard(t.authorId).name) return "apart";
        tx.defer("INSERT INTO chirp.tweet_lookup (tweet_id, author_id, create_time) VALUES (?, ?, ?)", [t.id, t.authorId, dbTimeFromMicros(t.createTimeMicros)]);
      }
      tx.defer(
        `INSERT INTO chirp.tweets (id, author_id, text, reply_to_tweet_id, quote_tweet_id, repost_of_tweet_id, media_ids, latitude, longitude,
           like_count, hashtags, mentions, urls, version, create_time)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, 1, ?)`,
        [
          t.id,
          t.authorId,
          t.text,
          t.replyToTweetId === 0n ? null : t.replyToTweetId,
          t.quoteTweetId === 0n ? null : t.quoteTweetId,
          t.repostOfTweetId === 0n ? null : t.repostOfTweetId,
          idsJson(t.mediaIds),
          t.latitude,
          t.longitude,
          JSON.stringify(t.hashtags),
          idsJson(t.mentions),
          JSON.stringify(t.urls),
          dbTimeFromMicros(t.createTimeMicros),
        ],
      );
      await adjustUserCount(tx, t.authorId, "tweet_count", 1);
      const row: TweetRow = { ...withoutTime(t), likeCount: 0, replyCount: 0, quoteCount: 0, repostCount: 0, version: 1n, deleted: false };
      await announce(tx, row);
      // A fresh post's author, as this transaction leaves them: PostTweet answers with it and caches it (writes.ts).
      if (!withLookup) return { row };
      const author = deferProfileRead(tx, t.authorId);
      // Awaited once the transaction has returned; its own failure is the transaction's to report.
      author.catch(() => {});
      return { row, author };
    });

  /**
   * Likes and unlikes of one tweet, in one transaction under the tweet row's
   * lock, in order: each change's result is the row just after it, as if
   * they had run one by one. Changes that arrive while one runs wait and run
   * together next (key-batches.ts), so a tweet many like at once takes its
   * row lock and its semi-sync commit a few times instead of once per like.
   */
  const setLikes = (tweetId: bigint, changes: readonly LikeChange[]): Promise<SetLikeResult[]> => {
    const { authorId } = changes[0]!;
    const op = changes.every((c) => !c.liked) ? "unlike" : "like";
    return transaction(tweetShard(authorId), op, async (tx) => {
      // The tweet row's lock first, always: every change of this tweet's
      // likes queues here, so the edges, the count and the version move
      // together and concurrent likers cannot deadlock on the edge rows.
      const locked = await lockTweet(tx, tweetId);
      if (locked === undefined) return changes.map(() => ({ kind: "missing" }) as const);
      const { row, now } = locked;
      if (row.deleted) return changes.map(() => ({ kind: "deleted", row }) as const);
      const users = [...new Set(changes.map((c) => c.userId))];
      const reposters = await repostersAmong(tx, tweetId, users);
      const edges = await likeEdgesForUpdate(tx, tweetId, users);
      let current = row;
      const steps: Array<{ row: TweetRow; edge: LikeEdge | undefined; changed: boolean; userId: bigint }> = [];
      const written = new Map<bigint, LikeEdge>();
      const announced: Array<{ change: LikeChange; edge: LikeEdge }> = [];
      for (const change of changes) {
        const edgeNow = edges.get(change.userId);
        if ((edgeNow?.liked ?? false) === change.liked) {
          const edge = edgeNow && { tweetId, authorId, userId: change.userId, liked: edgeNow.liked, version: edgeNow.version, likeTimeMicros: edgeNow.likeTimeMicros, changeTimeMicros: now };
          steps.push({ row: current, edge, changed: false, userId: change.userId });
          continue;
        }
        const edge: LikeEdge = {
          tweetId,
          authorId,
          userId: change.userId,
          liked: change.liked,
          version: (edgeNow?.version ?? 0n) + 1n,
          likeTimeMicros: change.liked ? now : (edgeNow?.likeTimeMicros ?? now),
          changeTimeMicros: now,
        };
        edges.set(change.userId, edge);
        written.set(change.userId, edge);
        announced.push({ change, edge });
        current = { ...current, likeCount: Math.max(0, current.likeCount + (change.liked ? 1 : -1)), version: current.version + 1n };
        steps.push({ row: current, edge, changed: true, userId: change.userId });
      }
      if (written.size > 0) {
        const rows = [...written.values()];
        await tx.execute(
          `INSERT INTO chirp.tweet_likes (tweet_id, user_id, author_id, state, version, like_time, update_time)
           VALUES ${rows.map(() => "(?, ?, ?, ?, ?, ?, ?)").join(", ")}
           ON DUPLICATE KEY UPDATE state = VALUES(state), version = VALUES(version), like_time = VALUES(like_time), update_time = VALUES(update_time)`,
          rows.flatMap((e) => [tweetId, e.userId, authorId, e.liked ? LIKED : UNLIKED, e.version, dbTimeFromMicros(e.likeTimeMicros), dbTimeFromMicros(now)]),
        );
        const net = announced.reduce((sum, a) => sum + (a.edge.liked ? 1 : -1), 0);
        await tx.execute("UPDATE chirp.tweets SET like_count = GREATEST(0, like_count + ?), version = version + ? WHERE id = ?", [
          net,
          announced.length,
          tweetId,
        ]);
        for (const { change, edge } of announced) await change.announce(tx, edge);
      }
      return steps.map((step) => ({
        kind: "done",
        row: step.row,
        edge: step.edge,
        changed: step.changed,
        reposted: reposters.has(step.userId),
        latest: current,
        likedAtLatest: edges.get(step.userId)?.liked ?? false,
      }) as const);
    });
  };
  const likeBatch = keyBatches<bigint, LikeChange, SetLikeResult>((tweetId, changes) => setLikes(tweetId, changes), { maxBatch: LIKE_BATCH_MAX });

  const lookupOn = async (shard: ShardInfo, ids: readonly bigint[], from: "reader" | "primary"): Promise<Array<[bigint, bigint]>> => {
    const client = from === "reader" ? reader(shard, "lookup") : primary(shard, "lookup");
    const rows = await client.query<{ tweet_id: string; author_id: string }>(
      `SELECT tweet_id, author_id FROM chirp.tweet_lookup WHERE tweet_id IN (${marks(ids.length)})`,
      ids,
    );
    return rows.map((r) => [BigInt(r.tweet_id), BigInt(r.author_id)]);
  };

  const walkChunk = async (shard: ShardInfo, walks: readonly AuthorWalk[], limit: number, usePrimary: boolean): Promise<TweetRefRow[]> => {
    const size = padTo(walks.length);
    const part = `(SELECT id, author_id, repost_of_tweet_id FROM chirp.tweets
      WHERE author_id = ? AND id < ? AND id >= ? AND delete_time IS NULL ORDER BY id DESC LIMIT ${sqlLimit(limit, 10_000)})`;
    const params: SqlValue[] = [];
    for (let j = 0; j < size; j++) {
      // Padding walks name author 0, which has no tweets.
      const w = walks[j];
      params.push(w?.authorId ?? 0n, w?.before ?? 0n, w?.atLeast ?? 0n);
    }
    const db = usePrimary ? primary(shard, "walkAuthors") : reader(shard, "walkAuthors");
    const rows = await db.query<{ id: string; author_id: string; repost_of_tweet_id: string | null }>(size === 1 ? part : Array(size).fill(part).join(" UNION ALL "), params);
    return rows.map((r) =>
      r.repost_of_tweet_id === null ? { id: BigInt(r.id), authorId: BigInt(r.author_id) } : { id: BigInt(r.id), authorId: BigInt(r.author_id), repostOfTweetId: BigInt(r.repost_of_tweet_id) },
    );
  };

  return {
    lookupShard,
    tweetShard,

    async insertLookup(tweetId, authorId, createTimeMicros) {
      await primary(lookupShard(tweetId), "insertLookup").execute(
        "INSERT INTO chirp.tweet_lookup (tweet_id, author_id, create_time) VALUES (?, ?, ?)",
        [tweetId, authorId, dbTimeFromMicros(createTimeMicros)],
      );
    },

    async lookupAuthors(tweetIds) {
      const found = new Map<bigint, bigint>();
      if (tweetIds.length === 0) return found;
      const unique = [...new Set(tweetIds)];
      await router.scatter(unique, lookupShard, async (shard, ids) => {
        for (const [id, author] of await lookupOn(shard, ids, "reader")) found.set(id, author);
        // A tweet posted a moment ago may not have replicated yet.
        const missing = ids.filter((id) => !found.has(id));
        if (missing.length > 0) for (const [id, author] of await lookupOn(shard, missing, "primary")) found.set(id, author);
        return [];
      });
      return found;
    },

    async createTweet(t, announce) {
      // Without its lookup row, the transaction never answers "apart".
      return ((await writeTweet(t, announce, false)) as { row: TweetRow }).row;
    },

    // Computed, not remembered: PostTweet asks about ids it passes over (writes.ts mint), which
    // would only crowd the router's map of ids to shards.
    besideAuthor: (tweetId, authorId) => router.shardForKeyspaceId(hashVindex(tweetId)).name === tweetShard(authorId).name,

    async createTweetWithLookup(t, announce) {
      const written = await writeTweet(t, announce, true);
      if (written === "apart") return "apart";
      return { row: written.row, author: await written.author! };
    },

    async readTweets(shard, ids, viewer) {
      if (ids.length === 0) return [];
      const likedColumn = viewer === undefined ? "" : `, ${VIEWER_COLUMNS}`;
      const params: SqlValue[] = viewer === undefined ? [...ids] : [viewer, viewer, ...ids];
      const rows = await primary(shard, "readTweets").query<RawTweet>(
        `SELECT ${TWEET_COLUMNS}${likedColumn} FROM chirp.tweets t WHERE t.id IN (${marks(ids.length)})`,
        params,
      );
      return rows.map((r) => ({ row: parseTweet(r), liked: Number(r.liked ?? 0) === LIKED, reposted: Number(r.reposted ?? 0) === REPOST_LIVE }));
    },

    async likesAt(shard, viewer, ids, from = "primary") {
      if (ids.length === 0) return [];
      // One statement, one read view: the state is the one at that version.
      const rows = await (from === "primary" ? primary(shard, "likesAt") : reader(shard, "likesAtReplica")).query<{ id: string; version: string; liked: number | null; reposted: number | null }>(
        `SELECT t.id, t.version, ${VIEWER_COLUMNS} FROM chirp.tweets t WHERE t.id IN (${marks(ids.length)})`,
        [viewer, viewer, ...ids],
      );
      return rows.map((r) => ({
        tweetId: BigInt(r.id),
        version: BigInt(r.version),
        liked: Number(r.liked ?? 0) === LIKED,
        reposted: Number(r.reposted ?? 0) === REPOST_LIVE,
      }));
    },

    setLike(authorId, tweetId, userId, liked, announce) {
      return likeBatch(tweetId, { authorId, userId, liked, announce });
    },

    async deleteTweet(authorId, tweetId, callerId, announce) {
      return transaction(tweetShard(authorId), "delete", async (tx) => {
        const locked = await lockTweet(tx, tweetId);
        if (locked === undefined) return { kind: "missing" } as const;
        const { row, now } = locked;
        // A deleted tweet is NotFound for everyone, its author included.
        if (row.deleted) return { kind: "deleted", row } as const;
        if (row.authorId !== callerId) return { kind: "forbidden" } as const;
        // The content goes with the tweet; the row stays as its tombstone
        // (the id, the author, a higher version), and its likes stay for the
        // likers' index, whose reads skip deleted tweets.
        await tx.execute(
          `UPDATE chirp.tweets SET delete_time = ?, version = version + 1, text = '', media_ids = '[]', latitude = NULL,
             longitude = NULL, hashtags = '[]', mentions = '[]', urls = '[]'
           WHERE id = ?`,
          [dbTimeFromMicros(now), tweetId],
        );
        await adjustUserCount(tx, row.authorId, "tweet_count", -1);
        const after: TweetRow = {
          ...row,
          text: "",
          mediaIds: [],
          latitude: null,
          longitude: null,
          hashtags: [],
          mentions: [],
          urls: [],
          version: row.version + 1n,
          deleted: true,
        };
        await announce(tx, { row: after, deleteTimeMicros: now });
        return { kind: "done", row: after, deleteTimeMicros: now } as const;
      });
    },

    async applyLikerSide(edge) {
      const state = edge.liked ? LIKED : UNLIKED;
      const likeTime = dbTimeFromMicros(edge.likeTimeMicros);
      // One statement, so no lock is held across round trips. The version is
      // assigned last: the IF()s before it compare with the row's old version
      // (MySQL and MariaDB evaluate these assignments left to right).
      const result = await primary(router.shardForUser(edge.userId), "applyLikerSide").execute(
        `INSERT INTO chirp.likes (user_id, tweet_id, author_id, state, version, like_time, create_time) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON DUPLICATE KEY UPDATE
           author_id = IF(? > version, ?, author_id),
           state = IF(? > version, ?, state),
           like_time = IF(? > version, ?, like_time),
           version = GREATEST(version, ?)`,
        [
          ...[edge.userId, edge.tweetId, edge.authorId, state, edge.version, likeTime, likeTime],
          ...[edge.version, edge.authorId, edge.version, state, edge.version, likeTime, edge.version],
        ],
      );
      // 1: inserted, 2: updated, 0: the row already held this version or a newer one.
      return result.affectedRows > 0 ? "applied" : "current";
    },

    async listLikes(userId, after, limit, fromPrimary) {
      const shard = router.shardForUser(userId);
      const db = fromPrimary ? primary(shard, "listLikes") : reader(shard, "listLikes");
      const params: SqlValue[] = [userId];
      let keyset = "";
      if (after !== undefined) {
        const t = dbTimeFromMicros(after.likeTimeMicros);
        // One index range (like_time <= t) plus a filter for ties, so the index
        // (user_id, state, like_time, tweet_id) is read backwards and stops at the LIMIT.
        keyset = " AND like_time <= CAST(? AS DATETIME(6)) AND (like_time < CAST(? AS DATETIME(6)) OR tweet_id < ?)";
        params.push(t, t, after.tweetId);
      }
      const rows = await db.query<{ tweet_id: string; author_id: string; like_time: string }>(
        `SELECT tweet_id, author_id, DATE_FORMAT(like_time, '${DB_TIME_FORMAT}') AS like_time
         FROM chirp.likes WHERE user_id = ? AND state = ${LIKED}${keyset}
         ORDER BY like_time DESC, tweet_id DESC LIMIT ${sqlLimit(limit)}`,
        params,
      );
      return rows.map((r) => ({ tweetId: BigInt(r.tweet_id), authorId: BigInt(r.author_id), likeTimeMicros: microsFromDbTime(r.like_time) }));
    },

    async setRefEdge(kind, targetAuthorId, targetId, ref, live, announce) {
      const e = EDGES[kind];
      return transaction(tweetShard(targetAuthorId), `${kind}${live ? "" : "-removed"}`, async (tx) => {
        // The target row's lock first, as for likes: its count, version and edges move together.
        const locked = await lockTweet(tx, targetId);
        if (locked === undefined) return { kind: "missing" } as const;
        const { row } = locked;
        const [edge] = await tx.query<{ state: number }>(`SELECT state FROM ${e.table} WHERE ${e.target} = ? AND ${e.ref} = ? FOR UPDATE`, [targetId, ref.id]);
        const state = edge === undefined ? undefined : Number(edge.state);
        if (live ? state !== undefined : state === EDGE_DELETED) return { kind: "done", target: row, changed: false } as const;
        if (state === undefined) {
          await tx.execute(`INSERT INTO ${e.table} (${e.target}, ${e.targetAuthor}, ${e.ref}, ${e.refAuthor}, state) VALUES (?, ?, ?, ?, ?)`, [
            targetId,
            targetAuthorId,
            ref.id,
            ref.authorId,
            live ? EDGE_LIVE : EDGE_DELETED,
          ]);
          // A deletion seen before its tweet (events in any order) counted nothing.
          if (!live) return { kind: "done", target: row, changed: false } as const;
        } else {
          await tx.execute(`UPDATE ${e.table} SET state = ? WHERE ${e.target} = ? AND ${e.ref} = ?`, [EDGE_DELETED, targetId, ref.id]);
        }
        await tx.execute(`UPDATE chirp.tweets SET ${e.count} = ${e.count} ${live ? "+" : "-"} 1, version = version + 1 WHERE id = ?`, [targetId]);
        if (live) await announce(tx, { kind, targetId, targetAuthorId, ref });
        const delta = live ? 1 : -1;
        const target: TweetRow =
          kind === "reply"
            ? { ...row, replyCount: Math.max(0, row.replyCount + delta), version: row.version + 1n }
            : { ...row, quoteCount: Math.max(0, row.quoteCount + delta), version: row.version + 1n };
        return { kind: "done", target, changed: true } as const;
      });
    },

    async beginRepost(originalAuthorId, originalId, reposterId, newRepostId) {
      return transaction(tweetShard(originalAuthorId), "beginRepost", async (tx) => {
        const locked = await lockTweet(tx, originalId);
        if (locked === undefined) return { kind: "missing" } as const;
        if (locked.row.deleted) return { kind: "deleted" } as const;
        const edge = await repostEdgeIn(tx, originalId, reposterId, true);
        if (edge?.state === "live") return { kind: "live", row: locked.row } as const;
        if (edge?.state === "pending") return { kind: "pending", repostId: edge.repostId } as const;
        await tx.execute(
          `INSERT INTO chirp.tweet_reposts (tweet_id, tweet_author_id, reposter_id, repost_id, state) VALUES (?, ?, ?, ?, ${REPOST_PENDING})
           ON DUPLICATE KEY UPDATE repost_id = VALUES(repost_id), state = ${REPOST_PENDING}`,
          [originalId, originalAuthorId, reposterId, newRepostId],
        );
        return { kind: "pending", repostId: newRepostId } as const;
      });
    },

    async repostEdge(originalAuthorId, originalId, reposterId) {
      return repostEdgeIn(primary(tweetShard(originalAuthorId), "repostEdge"), originalId, reposterId, false);
    },

    async settleRepost(originalAuthorId, originalId, reposterId, repostId, live, announce) {
      return transaction(tweetShard(originalAuthorId), live ? "repost" : "unrepost", async (tx) => {
        const locked = await lockTweet(tx, originalId);
        if (locked === undefined) return { kind: "missing" } as const;
        const { row } = locked;
        const liked = await likedBy(tx, originalId, reposterId);
        const edge = await repostEdgeIn(tx, originalId, reposterId, true);
        const unchanged = { kind: "done", target: row, changed: false, liked, reposted: edge?.state === "live" } as const;
        if (edge === undefined || edge.repostId !== repostId) return unchanged;
        if (live ? edge.state !== "pending" : edge.state === "taken-back") return unchanged;
        await tx.execute("UPDATE chirp.tweet_reposts SET state = ? WHERE tweet_id = ? AND reposter_id = ?", [
          live ? REPOST_LIVE : REPOST_TAKEN_BACK,
          originalId,
          reposterId,
        ]);
        // A pending edge taken back was never counted.
        if (!live && edge.state === "pending") return unchanged;
        await tx.execute(`UPDATE chirp.tweets SET repost_count = repost_count ${live ? "+" : "-"} 1, version = version + 1 WHERE id = ?`, [originalId]);
        await announce(tx, { live, tweetId: originalId, authorId: originalAuthorId, reposterId, repostId });
        const target: TweetRow = { ...row, repostCount: Math.max(0, row.repostCount + (live ? 1 : -1)), version: row.version + 1n };
        return { kind: "done", target, changed: true, liked, reposted: live } as const;
      });
    },

    async listReplies(parentAuthorId, parentId, after, limit, usePrimary) {
      const shard = tweetShard(parentAuthorId);
      const db = usePrimary ? primary(shard, "listReplies") : reader(shard, "listReplies");
      const rows = await db.query<{ reply_id: string; reply_author_id: string }>(
        `SELECT reply_id, reply_author_id FROM chirp.tweet_replies
         WHERE parent_id = ? AND reply_id > ? AND state = ${EDGE_LIVE} ORDER BY reply_id LIMIT ${sqlLimit(limit)}`,
        [parentId, after],
      );
      return rows.map((r) => ({ id: BigInt(r.reply_id), authorId: BigInt(r.reply_author_id) }));
    },

    async authorTweetIds(authorId, afterId, limit) {
      const rows = await primary(tweetShard(authorId), "authorTweetIds").query<{ id: string; repost_of_tweet_id: string | null }>(
        `SELECT id, repost_of_tweet_id FROM chirp.tweets WHERE author_id = ? AND id > ? ORDER BY id LIMIT ${sqlLimit(limit)}`,
        [authorId, afterId],
      );
      return rows.map((r) => ({ id: BigInt(r.id), repostOfTweetId: BigInt(r.repost_of_tweet_id ?? 0) }));
    },

    async walkAuthors(walks, usePrimary) {
      const groups = new Map<ShardInfo, AuthorWalk[]>();
      for (const w of walks) {
        const shard = router.shardForUser(w.authorId);
        const group = groups.get(shard);
        if (group === undefined) groups.set(shard, [w]);
        else group.push(w);
      }
      const statements: Array<Promise<TweetRefRow[]>> = [];
      for (const [shard, group] of groups) {
        // One LIMIT per statement (it is written into the SQL): a shard's walks are grouped by limit.
        const byLimit = new Map<number, AuthorWalk[]>();
        for (const w of group) {
          const same = byLimit.get(w.limit);
          if (same === undefined) byLimit.set(w.limit, [w]);
          else same.push(w);
        }
        for (const [limit, same] of byLimit) {
          for (let i = 0; i < same.length; i += WALK_CHUNK) statements.push(walkChunk(shard, same.slice(i, i + WALK_CHUNK), limit, usePrimary));
        }
      }
      return (await Promise.all(statements)).flat();
    },
  };
}

/** The reposter's edge of a tweet; `forUpdate` inside a transaction holding the tweet row's lock. */
async function repostEdgeIn(db: Queryable, tweetId: bigint, reposterId: bigint, forUpdate: boolean): Promise<RepostEdgeRow | undefined> {
  const [edge] = await db.query<{ state: number; repost_id: string }>(
    `SELECT state, repost_id FROM chirp.tweet_reposts WHERE tweet_id = ? AND reposter_id = ?${forUpdate ? " FOR UPDATE" : ""}`,
    [tweetId, reposterId],
  );
  if (edge === undefined) return undefined;
  const state = Number(edge.state);
  return { state: state === REPOST_LIVE ? "live" : state === REPOST_PENDING ? "pending" : "taken-back", repostId: BigInt(edge.repost_id) };
}

/** Whether `userId`'s repost of the tweet is live (inside `tx`, under the tweet row's lock). */
async function repostedBy(tx: Queryable, tweetId: bigint, userId: bigint): Promise<boolean> {
  const [edge] = await tx.query<{ state: number }>("SELECT state FROM chirp.tweet_reposts WHERE tweet_id = ? AND reposter_id = ?", [tweetId, userId]);
  return edge !== undefined && Number(edge.state) === REPOST_LIVE;
}

/** Which of `users` have a live repost of the tweet (inside `tx`, under the tweet row's lock). */
async function repostersAmong(tx: Queryable, tweetId: bigint, users: readonly bigint[]): Promise<Set<bigint>> {
  const rows = await tx.query<{ reposter_id: string; state: number }>(
    `SELECT reposter_id, state FROM chirp.tweet_reposts WHERE tweet_id = ? AND reposter_id IN (${marks(users.length)})`,
    [tweetId, ...users],
  );
  return new Set(rows.filter((r) => Number(r.state) === REPOST_LIVE).map((r) => BigInt(r.reposter_id)));
}

/** The like edges of `users` on the tweet, locked for the rest of `tx` (under the tweet row's lock). */
async function likeEdgesForUpdate(
  tx: Queryable,
  tweetId: bigint,
  users: readonly bigint[],
): Promise<Map<bigint, { liked: boolean; version: bigint; likeTimeMicros: bigint }>> {
  const rows = await tx.query<{ user_id: string; state: number; version: string; like_time: string }>(
    `SELECT user_id, state, version, DATE_FORMAT(like_time, '${DB_TIME_FORMAT}') AS like_time
     FROM chirp.tweet_likes WHERE tweet_id = ? AND user_id IN (${marks(users.length)}) FOR UPDATE`,
    [tweetId, ...users],
  );
  return new Map(
    rows.map((r) => [BigInt(r.user_id), { liked: Number(r.state) === LIKED, version: BigInt(r.version), likeTimeMicros: microsFromDbTime(r.like_time) }]),
  );
}

/** Whether `userId` likes the tweet (inside `tx`, under the tweet row's lock). */
async function likedBy(tx: Queryable, tweetId: bigint, userId: bigint): Promise<boolean> {
  const [edge] = await tx.query<{ state: number }>("SELECT state FROM chirp.tweet_likes WHERE tweet_id = ? AND user_id = ?", [tweetId, userId]);
  return edge !== undefined && Number(edge.state) === LIKED;
}

/** The tweet's row, locked for the rest of `tx`, and the database's time now; undefined when there is no row. */
async function lockTweet(tx: Queryable, tweetId: bigint): Promise<{ row: TweetRow; now: bigint } | undefined> {
  const [raw] = await tx.query<RawTweet & { now_time: string }>(
    `SELECT ${TWEET_COLUMNS}, DATE_FORMAT(UTC_TIMESTAMP(6), '${DB_TIME_FORMAT}') AS now_time
     FROM chirp.tweets t WHERE t.id = ? FOR UPDATE`,
    [tweetId],
  );
  return raw === undefined ? undefined : { row: parseTweet(raw), now: microsFromDbTime(raw.now_time) };
}

function parseTweet(r: RawTweet): TweetRow {
  return {
    id: BigInt(r.id),
    authorId: BigInt(r.author_id),
    text: r.text,
    replyToTweetId: r.reply_to_tweet_id === null ? 0n : BigInt(r.reply_to_tweet_id),
    mediaIds: parseIds(r.media_ids),
    latitude: r.latitude,
    longitude: r.longitude,
    likeCount: Math.max(0, Number(r.like_count)),
    replyCount: Math.max(0, Number(r.reply_count)),
    quoteTweetId: r.quote_tweet_id === null ? 0n : BigInt(r.quote_tweet_id),
    quoteCount: Math.max(0, Number(r.quote_count)),
    repostOfTweetId: r.repost_of_tweet_id === null ? 0n : BigInt(r.repost_of_tweet_id),
    repostCount: Math.max(0, Number(r.repost_count)),
    hashtags: parseStrings(r.hashtags),
    mentions: parseIds(r.mentions),
    urls: parseStrings(r.urls),
    version: BigInt(r.version),
    deleted: Number(r.deleted) === 1,
  };
}

function withoutTime(t: NewTweet): Omit<TweetRow, "likeCount" | "replyCount" | "quoteCount" | "repostCount" | "version" | "deleted"> {
  const { createTimeMicros: _, ...rest } = t;
  return rest;
}

// JSON arrays kept as text; ids as decimal strings (a JSON number loses precision past 2^53).
function idsJson(ids: readonly bigint[]): string {
  return JSON.stringify(ids.map(String));
}

function parseIds(json: string): bigint[] {
  return parseStrings(json).map((s) => BigInt(s));
}

function parseStrings(json: string): string[] {
  if (json === "") return [];
  const value: unknown = JSON.parse(json);
  return Array.isArray(value) ? value.map(String) : [];
}

function marks(n: number): string {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`bad IN list size ${n}`);
  return new Array<string>(n).fill("?").join(", ");
}

// LIMIT is written into the statement: MySQL 8.0.22+ refuses a bound LIMIT
// sent as a double over the binary protocol. The value is an integer checked
// here, never client text.
function padTo(n: number): number {
  let size = 1;
  while (size < n) size *= 2;
  return size;
}

function sqlLimit(n: number, max = 1000): number {
  if (!Number.isInteger(n) || n < 1 || n > max) throw new RangeError(`bad limit ${n}`);
  return n;
}
