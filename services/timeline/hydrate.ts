// A page's tweets for its reader (hydration): BatchGetTweets' answer made in
// this process from the caches alone (lib/cached-tweets.ts, presented by the
// tweet service's own presenter, lib/tweet-presenter.ts) in one Redis round
// trip for the tweets, the reader's like states and the authors' profiles,
// with no call to the tweet service; a batch the caches do not hold whole is
// asked of the tweet service (BatchGetTweets), whose read fills them. Both
// give the same tweets: the caches are versioned and kept exact by the tweet
// service (docs/decisions/0031-timeline-pages-from-the-caches.md).
import type { HandlerContext } from "@connectrpc/connect";
import type { Tweet } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { batchGetTweets, cachedBatchGet } from "../../lib/cached-tweets.js";
import type { LikedCache } from "../../lib/liked-cache.js";
import type { Logger } from "../../lib/logger.js";
import type { MeshClients } from "../../lib/rpc/mesh-clients.js";
import type { TweetCache } from "../../lib/tweet-cache.js";
import type { UserCache } from "../../lib/user-cache.js";
import type { Entry } from "./entries.js";
import type { TimelineMetrics } from "./metrics.js";

/** At most 100 entries (BatchGetTweets' limit): a page's tweets, in the entries' order, each once; deleted and missing ones left out. */
export type HydrateBatch = (entries: readonly Entry[], hctx: HandlerContext) => Promise<Tweet[]>;

export function createHydrator(deps: {
  clients: MeshClients;
  /** Undefined (no Redis): every batch is asked of the tweet service. */
  tweetCache: Pick<TweetCache, "peek"> | undefined;
  likedCache: Pick<LikedCache, "read"> | undefined;
  userCache: Pick<UserCache, "peek"> | undefined;
  metrics: TimelineMetrics;
  log: Logger;
}): HydrateBatch {
  const via = { fromCaches: cachedBatchGet(deps), clients: deps.clients };
  return async (batch, hctx) => {
    // The entries' authors, and reposts' originals with theirs, so everything loads in one round trip.
    const originals = batch.flatMap((e) => (e.original === undefined ? [] : [{ tweetId: e.original.id, authorId: e.original.authorId }]));
    const { tweets, source } = await batchGetTweets(via, { tweetIds: batch.map((e) => e.id), authorIds: batch.map((e) => e.authorId), originals }, hctx);
    deps.metrics.hydrations.inc({ source });
    return tweets;
  };
}
