// Writing and deleting a tweet row, for PostTweet and DeleteTweet and for a
// repost's own tweet: the lookup row first (a crash between the two leaves a
// lookup row whose tweet reads as NotFound, never a tweet no id can reach),
// then one transaction on the author's shard (the row, tweet_count, the
// event). The author's tweet_count changes, so their cached profile is
// cleared before the call returns (lib/user-cache.ts): also after a failure,
// which may have come after the COMMIT.
import { ConnectError, Code } from "@connectrpc/connect";
import type { IdGenerator } from "../../lib/ids.js";
import { mysqlErrorCode } from "../../lib/db/mysql-errors.js";
import type { UserCache } from "../../lib/user-cache.js";
import { announceTweetCreated, announceTweetDeleted } from "./events.js";
import type { AuthorLookup } from "./lookup.js";
import type { DeleteResult, NewTweet, TweetRow, TweetStore } from "./store.js";

export interface TweetWrites {
  /**
   * The tweet, written once. `again`: this id may have been written before
   * (a repost's retry), and a step already done is skipped; the answer is
   * then undefined when the row was there.
   */
  create(t: NewTweet, requestId: string | undefined, opts?: { again?: boolean }): Promise<TweetRow | undefined>;
  /** The author's tweet deleted by `callerId` (who must be the author). */
  remove(authorId: bigint, tweetId: bigint, callerId: bigint, requestId: string | undefined): Promise<DeleteResult>;
}

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

  return {
    async create(t, requestId, opts = {}) {
      const once = async <T>(write: () => Promise<T>): Promise<T | undefined> => {
        try {
          return await write();
        } catch (err) {
          if (opts.again === true && isDuplicate(err)) return undefined;
          throw err;
        }
      };
      await once(() => store.insertLookup(t.id, t.authorId, t.createTimeMicros));
      await lookup.remember(t.id, t.authorId);
      return invalidatingAuthor(
        t.authorId,
        () => once(() => store.createTweet(t, announceTweetCreated(ids, requestId))),
        (row) => row !== undefined,
      );
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
