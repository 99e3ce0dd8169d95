// A page's tweets for its reader (hydration). First from the caches alone,
// in this process (lib/cached-tweets.ts, presented by lib/tweet-presenter.ts,
// the tweet service's own presenter): one Redis round trip for the tweets,
// the reader's like states and the authors' profiles, and no call to the
// tweet service. A batch the caches do not hold whole is asked of the tweet
// service (BatchGetTweets), whose read fills them. Both give the same
// tweets: the caches are versioned and kept exact by the tweet service
// (docs/decisions/0031-timeline-pages-from-the-caches.md).
import type { HandlerContext } from "@connectrpc/connect";
import type { Tweet } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { callerOf } from "../../lib/auth/caller.js";
import { cachedTweetLoader, NotCached } from "../../lib/cached-tweets.js";
import type { LikedCache } from "../../lib/liked-cache.js";
import type { Logger } from "../../lib/logger.js";
import { onBehalfOf, type MeshClients } from "../../lib/rpc/mesh-clients.js";
import type { TweetCache } from "../../lib/tweet-cache.js";
import { createTweetPresenter, type LoadedTweet } from "../../lib/tweet-presenter.js";
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
  const { clients, tweetCache, metrics: m } = deps;

  const fromTweetService: HydrateBatch = async (batch, hctx) => {
    // Reposts' originals and their authors are named too, so they load in the same round trip as the page's own tweets.
    const originals = batch.flatMap((e) => (e.original === undefined ? [] : [{ tweetId: e.original.id, authorId: e.original.authorId }]));
    const { tweets } = await clients.tweet.batchGetTweets(
      { tweetIds: batch.map((e) => e.id), authorIds: batch.map((e) => e.authorId), originals },
      onBehalfOf(hctx),
    );
    m.hydrations.inc({ source: "tweet_service" });
    return tweets;
  };
  if (tweetCache === undefined) return fromTweetService;

  const load = cachedTweetLoader({ tweets: tweetCache, liked: deps.likedCache });
  const presenter = createTweetPresenter({ loadByIds: load, clients, userCache: deps.userCache, log: deps.log });

  /** What BatchGetTweets does for these entries (services/tweet/routes.ts), with the caches as its only loader. */
  const fromCaches: HydrateBatch = async (batch, hctx) => {
    const ids = [...new Set(batch.map((e) => e.id))];
    const originals = [...new Map(batch.flatMap((e) => (e.original === undefined ? [] : [[e.original.id, e.original.authorId] as const]))).entries()];
    // Started in the same tick as the tweets' read: the profiles' MGET goes out in its round trip.
    const authors = deps.userCache === undefined ? undefined : presenter.prefetchAuthors([...batch.map((e) => e.authorId), ...originals.map(([, a]) => a)], hctx);
    const loaded = await load([...ids, ...originals.map(([id]) => id).filter((id) => !ids.includes(id))], callerOf(hctx));
    const inOrder = ids.flatMap((id): LoadedTweet[] => {
      const t = loaded.get(id);
      return t === undefined ? [] : [t];
    });
    const tweets = await presenter.present(inOrder, hctx, [], authors, originals.length === 0 ? undefined : loaded);
    m.hydrations.inc({ source: "cache" });
    return tweets;
  };

  return async (batch, hctx) => {
    try {
      return await fromCaches(batch, hctx);
    } catch (err) {
      if (!(err instanceof NotCached)) throw err;
      return fromTweetService(batch, hctx);
    }
  };
}
