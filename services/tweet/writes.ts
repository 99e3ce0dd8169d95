// Writing and deleting a tweet row, for PostTweet and DeleteTweet and for a
// repost's own tweet. A fresh id is minted with its lookup row on the
// author's shard (mint), and one transaction there writes the lookup row, the
// tweet, tweet_count and the event. Otherwise (a retried id, a reshard that
// put the two apart) the lookup row goes first (a crash between the two
// leaves a lookup row whose tweet reads as NotFound, never a tweet no id can
// reach), then the transaction without it. The author's tweet_count changes,
// so their cached profile is cleared before the call returns
// (lib/user-cache.ts): also after a failure, which may have come after the
// COMMIT. A fresh id's transaction also reads the author's row after its
// change (in its COMMIT's round trip) under a writer's lease taken before:
// that profile is the answer's, and it goes into the cache in place of the
// clearing unless a reader or another change came between (settle). An
// imported tweet (ImportTweet, at a past time) claims its id first by writing
// the lookup row (claimAt).
import { ConnectError, Code } from "@connectrpc/connect";
import type { IdGenerator } from "../../lib/ids.js";
import { mysqlErrorCode } from "../../lib/db/mysql-errors.js";
import type { UserCache } from "../../lib/user-cache.js";
import { profileOf } from "../../lib/user-profile.js";
import type { User } from "../../gen/chirp/user/v1/user_pb.js";
import { announceTweetCreated, announceTweetDeleted } from "./events.js";
import type { AuthorLookup } from "./lookup.js";
import type { DeleteResult, NewTweet, PostedTweet, TweetRow, TweetStore } from "./store.js";

/** A tweet to write whose mentions may still be resolving: they are waited for alongside its lookup row. */
export type PendingTweet = Omit<NewTweet, "mentions"> & { readonly mentions: NewTweet["mentions"] | Promise<NewTweet["mentions"]> };

export interface TweetWrites {
  /**
   * A fresh id for a tweet of `authorId`'s whose lookup row lives on the
   * author's shard (the sequence numbers of this millisecond in between are
   * passed over), so create() writes the lookup row in the tweet's own
   * transaction: a semi-sync commit and a round trip fewer per post. After
   * MINT_TRIES ids, any id (the lookup row then goes first, on its own shard).
   */
  mint(authorId: bigint): bigint;
  /**
   * The tweet, written once. `again`: this id may have been written before
   * (a repost's retry), and a step already done is skipped; the answer is
   * then undefined when the row was there.
   */
  create(t: PendingTweet, requestId: string | undefined, opts?: CreateOptions): Promise<CreatedTweet | undefined>;
  /**
   * An id of the past millisecond `timeMs` for a tweet of `authorId`'s,
   * claimed by writing its lookup row (a unique key: an id minted before by
   * an earlier holder of this node number is passed over). Create the tweet
   * with `again`, which skips the lookup row.
   */
  claimAt(authorId: bigint, timeMs: number): Promise<bigint>;
  /** The author's tweet deleted by `callerId` (who must be the author). */
  remove(authorId: bigint, tweetId: bigint, callerId: bigint, requestId: string | undefined): Promise<DeleteResult>;
}

export interface CreateOptions {
  readonly again?: boolean;
  readonly repostOfAuthorId?: bigint;
  /**
   * Runs once the tweet committed, at the same time as the author's profile
   * is settled in the cache, so that both go to Redis in one round trip (a
   * cache fill of the tweet, say). It must not fail. Only a fresh id beside
   * its author is written that way: on the other path (a retried id, a
   * reshard that put the two apart) it is not run, and the caller does its
   * part itself after create() returns.
   */
  readonly alongside?: (row: TweetRow) => Promise<void>;
}

/** A tweet create() wrote. */
export interface CreatedTweet {
  readonly row: TweetRow;
  /** Its author as its transaction left them, when that transaction read them (a fresh id beside its author): cached already. */
  readonly author?: User;
}

/** Ids tried for one on the author's shard: about as many as there are shards are needed on average. */
const MINT_TRIES = 256;

/** Ids tried for one past millisecond before giving up (each taken one is a rare coincidence). */
const CLAIM_ATTEMPTS = 8;

export function createTweetWrites(deps: { store: TweetStore; lookup: AuthorLookup; ids: IdGenerator; userCache: UserCache | undefined }): TweetWrites {
  const { store, lookup, ids, userCache } = deps;

  /** Runs a write that may change the author's tweet_count; `changed` says whether its result did. */
  const invalidatingAuthor = async <T>(authorId: bigint, run: () => Promise<T>, changed: (result: T) => boolean): Promise<T> => {
    let result: T;
    try {
      result = await run();
    } catch (err) {
      await userCache?.invalidate([authorId]).catch(() => {});
      throw err;
    }
    if (changed(result)) await userCache?.invalidate([authorId]);
    return result;
  };

  /**
   * Runs the post's transaction, which reads its author back (createTweetWithLookup),
   * then settles the author's cached profile under the writer's `lease`: the
   * row read goes in, or the entry is cleared (lib/user-cache.ts). Cleared on
   * a failure too, which may have come after the COMMIT. "apart" wrote nothing.
   */
  const settlingAuthor = async (
    authorId: bigint,
    lease: string | undefined,
    run: () => Promise<PostedTweet | "apart">,
    alongside: ((row: TweetRow) => Promise<void>) | undefined,
  ): Promise<CreatedTweet | "apart"> => {
    let posted: PostedTweet | "apart";
    try {
      posted = await run();
    } catch (err) {
      await userCache?.invalidate([authorId]).catch(() => {});
      throw err;
    }
    if (posted === "apart") return posted;
    const { row } = posted;
    if (posted.author === undefined) {
      await Promise.all([userCache?.invalidate([authorId]), alongside?.(row)]);
      return { row };
    }
    const author = profileOf(posted.author);
    await Promise.all([userCache?.settle(lease, author), alongside?.(row)]);
    return { row, author };
  };

  /** Runs the tweet's transaction with its id's author cached meanwhile (remember never fails). */
  const remembering = async <T>(t: { readonly id: bigint; readonly authorId: bigint }, run: () => Promise<T>): Promise<T> => {
    const remembered = lookup.remember(t.id, t.authorId);
    try {
      return await run();
    } finally {
      await remembered;
    }
  };

  return {
    mint(authorId) {
      let id = ids.next();
      for (let tries = 1; tries < MINT_TRIES && !store.besideAuthor(id, authorId); tries++) id = ids.next();
      return id;
    },

    async create(t, requestId, opts = {}) {
      const once = async <T>(write: () => Promise<T>): Promise<T | undefined> => {
        try {
          return await write();
        } catch (err) {
          if (opts.again === true && isDuplicate(err)) return undefined;
          throw err;
        }
      };
      const announce = announceTweetCreated(ids, requestId, opts.repostOfAuthorId);
      // The mentions may still be resolving (PostTweet): they are waited for with the lookup row,
      // or before the transaction that writes it too. No transaction waits holding a connection.
      // A fresh id whose lookup row lives on the author's shard (mint): one transaction writes
      // the lookup row, the tweet, the count and the event. Its author is cached while it runs:
      // a lookup cached before the commit names a tweet that reads as NotFound until then (or
      // for good, if it fails), as a lookup row would.
      if (opts.again !== true && store.besideAuthor(t.id, t.authorId)) {
        // The writer's lease is set before the transaction's read of the author goes out.
        const [mentions, lease] = await Promise.all([t.mentions, userCache?.writerLease(t.authorId)]);
        const tweet: NewTweet = { ...t, mentions };
        const posted = await remembering(t, () => settlingAuthor(t.authorId, lease, () => store.createTweetWithLookup(tweet, announce), opts.alongside));
        // "apart": a reshard moved one of them meanwhile; the lookup row first, below.
        if (posted !== "apart") return posted;
      }
      const [mentions] = await Promise.all([t.mentions, once(() => store.insertLookup(t.id, t.authorId, t.createTimeMicros))]);
      const tweet: NewTweet = { ...t, mentions };
      // The lookup row is written: cached while the tweet's transaction runs.
      const row = await remembering(t, () =>
        invalidatingAuthor(
          t.authorId,
          () => once(() => store.createTweet(tweet, announce)),
          (written) => written !== undefined,
        ),
      );
      return row === undefined ? undefined : { row };
    },

    async claimAt(authorId, timeMs) {
      for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
        const id = ids.at(timeMs);
        try {
          await store.insertLookup(id, authorId, BigInt(timeMs) * 1000n);
          return id;
        } catch (err) {
          if (!isDuplicate(err)) throw err;
        }
      }
      throw new ConnectError(`no free tweet id at ${new Date(timeMs).toISOString()}; try another millisecond`, Code.Aborted);
    },

    remove(authorId, tweetId, callerId, requestId) {
      return invalidatingAuthor(
        authorId,
        () => store.deleteTweet(authorId, tweetId, callerId, announceTweetDeleted(ids, requestId)),
        (r) => r.kind === "done",
      );
    },
  };
}

/** Whether `err` is a duplicate key (the router answers it AlreadyExists): a write an earlier attempt already made. */
function isDuplicate(err: unknown): boolean {
  if (err instanceof ConnectError) return err.code === Code.AlreadyExists || mysqlErrorCode(err.cause) === "ER_DUP_ENTRY";
  return mysqlErrorCode(err) === "ER_DUP_ENTRY";
}
