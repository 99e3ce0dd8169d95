// A deleted account's tweets, likes and reposts (docs/decisions/0025-account-deletion-by-events.md),
// erased from its UserDeleted event by the tweet service's own consumer, in
// batches, through the paths UnlikeTweet, DeleteTweet and Unrepost take:
//
//   1. likes: each live like in the liker's index is taken back under the
//      tweet row's lock (like_count exact, TweetUnliked, the cached version);
//   2. tweets: every tweet of the user's, deleted ones too, in id order: the
//      delete (TweetDeleted takes it off every timeline and out of search),
//      its cached tombstone, then its side on others' tweets: a reply or
//      quote edge (reply_count, quote_count), a repost edge (repost_count).
//
// Every step is idempotent (an unliked like, a deleted tweet, a taken-back
// edge change nothing), and step 2 walks the deleted tweets too, so a
// redelivery after a crash part way completes what the crash cut short.
import { announceLikeChange } from "./events.js";
import type { Replies } from "./replies.js";
import type { Reposts } from "./reposts.js";
import type { TweetRow, TweetStore } from "./store.js";
import type { LikeCursor } from "./page-token.js";
import type { TweetWrites } from "./writes.js";
import type { IdGenerator } from "../../lib/ids.js";

/** Rows taken per batch. */
export const ERASE_BATCH = 100;

export interface TweetErased {
  likes: number;
  tweets: number;
}

export interface TweetErasure {
  /**
   * Takes back every like of `userId`'s and deletes every tweet of theirs
   * (reposts, replies and quotes with their edges). `onBatch` (tests) runs
   * after each batch and may throw to stop there, as a crash would.
   */
  erase(userId: bigint, opts?: { batch?: number; onBatch?: (what: keyof TweetErased, n: number) => void }): Promise<TweetErased>;
}

export function createTweetErasure(deps: {
  store: TweetStore;
  writes: TweetWrites;
  replies: Replies;
  reposts: Reposts;
  ids: IdGenerator;
  /** After a committed change: the cache holds the row's version. */
  publish: (row: TweetRow) => Promise<void>;
}): TweetErasure {
  const { store, ids } = deps;

  const unlike = async (userId: bigint, tweetId: bigint, authorId: bigint): Promise<void> => {
    const result = await store.setLike(authorId, tweetId, userId, false, announceLikeChange(ids, undefined));
    if (result.kind === "missing") return;
    await deps.publish(result.kind === "done" ? result.latest : result.row);
  };

  const remove = async (userId: bigint, tweet: { id: bigint; repostOfTweetId: bigint }): Promise<void> => {
    const result = await deps.writes.remove(userId, tweet.id, userId, undefined);
    if (result.kind === "missing" || result.kind === "forbidden") return;
    await deps.publish(result.row);
    if (tweet.repostOfTweetId !== 0n) {
      await deps.reposts.settle({ id: tweet.id, authorId: userId, repostOfTweetId: tweet.repostOfTweetId }, false);
    } else if (result.row.replyToTweetId !== 0n || result.row.quoteTweetId !== 0n) {
      await deps.replies.recordEdges(result.row, false);
    }
  };

  return {
    async erase(userId, opts = {}) {
      const batch = opts.batch ?? ERASE_BATCH;
      const done: TweetErased = { likes: 0, tweets: 0 };
      let likeCursor: LikeCursor | undefined;
      for (;;) {
        const likes = await store.listLikes(userId, likeCursor, batch, true);
        for (const l of likes) await unlike(userId, l.tweetId, l.authorId);
        done.likes += likes.length;
        if (likes.length > 0) opts.onBatch?.("likes", likes.length);
        if (likes.length < batch) break;
        const last = likes[likes.length - 1]!;
        likeCursor = { likeTimeMicros: last.likeTimeMicros, tweetId: last.tweetId };
      }
      let after = 0n;
      for (;;) {
        const tweets = await store.authorTweetIds(userId, after, batch);
        for (const t of tweets) await remove(userId, t);
        done.tweets += tweets.length;
        if (tweets.length > 0) opts.onBatch?.("tweets", tweets.length);
        if (tweets.length < batch) break;
        after = tweets[tweets.length - 1]!.id;
      }
      return done;
    },
  };
}
