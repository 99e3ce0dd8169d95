// The timeline service's view of the tweets table, which the tweet service
// owns: authors' tweets as timeline entries (a repost's with its original),
// newest first, through TweetService's internal
// ListAuthorTweets (one call per merge round, however many shards it spans).
// The tweet service walks its index tweets_by_author (author_id, id), so a
// walk reads no more rows than it returns. See
// services/timeline/README.md.
import type { Client } from "@connectrpc/connect";
import type { TweetService } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import type { Entry } from "./entries.js";

/** Above every Snowflake id: "no upper bound". */
export const NO_CURSOR = 0xffff_ffff_ffff_ffffn;

/** What one author's walk asks for: live tweets with id < before, newest first, at most limit. */
export interface AuthorWalk {
  readonly authorId: bigint;
  readonly before: bigint;
  readonly limit: number;
}

export interface AuthorTweets {
  /** One author's live tweets with id < before (and >= atLeast), newest first. */
  entries(authorId: bigint, before: bigint, limit: number, opts?: { atLeast?: bigint; primary?: boolean }): Promise<Entry[]>;
  /** Every walk's tweets, in no particular order. */
  walkAuthors(walks: readonly AuthorWalk[], primary: boolean): Promise<Entry[]>;
}

/** Walks per call: the request's limit (ListAuthorTweetsRequest.walks). */
const WALKS_PER_CALL = 10_000;

export function createAuthorTweets(tweets: Client<typeof TweetService>): AuthorTweets {
  const list = async (walks: ReadonlyArray<{ authorId: bigint; beforeId: bigint; atLeastId: bigint; limit: number }>, primary: boolean): Promise<Entry[]> => {
    const calls: Array<Promise<Entry[]>> = [];
    for (let i = 0; i < walks.length; i += WALKS_PER_CALL) {
      calls.push(
        tweets.listAuthorTweets({ walks: walks.slice(i, i + WALKS_PER_CALL), primary }).then((res) =>
          res.refs.map((r) =>
            r.repostOfTweetId === 0n || r.repostOfAuthorId === 0n
              ? { id: r.tweetId, authorId: r.authorId }
              : { id: r.tweetId, authorId: r.authorId, original: { id: r.repostOfTweetId, authorId: r.repostOfAuthorId } },
          ),
        ),
      );
    }
    return (await Promise.all(calls)).flat();
  };
  return {
    async entries(authorId, before, limit, opts = {}) {
      if (before === 0n) return [];
      const refs = await list([{ authorId, beforeId: noBound(before), atLeastId: opts.atLeast ?? 0n, limit }], opts.primary ?? false);
      return refs.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    },

    async walkAuthors(walks, primary) {
      // A walk below 0 finds nothing (and 0 would mean "no bound" on the wire).
      const open = walks.filter((w) => w.before > 0n);
      if (open.length === 0) return [];
      return list(
        open.map((w) => ({ authorId: w.authorId, beforeId: noBound(w.before), atLeastId: 0n, limit: w.limit })),
        primary,
      );
    },
  };
}

/** The RPC's "no upper bound" is 0. */
function noBound(before: bigint): bigint {
  return before === NO_CURSOR ? 0n : before;
}
