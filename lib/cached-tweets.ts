// Tweets loaded from the caches alone (lib/tweet-cache.ts, lib/liked-cache.ts),
// for a service other than the tweet service that shows tweets (the timeline
// service's pages, the notification inbox, search results): one MGET of the
// tweets and one HMGET of the viewer's like states, in one round trip, and no
// database; and BatchGetTweets' answer made from them (cachedBatchGet), or
// asked of the tweet service when they lack something (batchGetTweets). It answers only what the
// caches answer as exactly as the tweet service would: a tweet or a
// tombstone at a version, and the viewer's like and repost state at that same
// version (or none needed: nobody likes or has reposted it at that version).
// Anything else (a tweet not cached, a like state not known at the tweet's
// version, Redis away) rejects with NotCached, and the caller asks the tweet
// service, whose read fills the caches for the next time.
import type { HandlerContext } from "@connectrpc/connect";
import type { Tweet } from "../gen/chirp/tweet/v1/tweet_pb.js";
import { nobodyLikes, type LikeAt, type LikedCache } from "./liked-cache.js";
import type { Logger } from "./logger.js";
import { onBehalfOf, type MeshClients } from "./rpc/mesh-clients.js";
import type { TweetCache } from "./tweet-cache.js";
import { answerBatch, createTweetPresenter, type LoadBatch, type LoadByIds, type LoadedTweet, type TweetBatch } from "./tweet-presenter.js";
import type { UserCache } from "./user-cache.js";

/** The caches do not hold all of a load: ask the tweet service instead. */
export class NotCached extends Error {
  override readonly name = "NotCached";
}

export function cachedTweetLoader(deps: { tweets: Pick<TweetCache, "peek">; liked: Pick<LikedCache, "read"> | undefined }): LoadByIds {
  const { tweets, liked } = deps;
  return async (ids, viewer) => {
    const [entries, likes] = await Promise.all([
      tweets.peek(ids),
      viewer === undefined || liked === undefined ? new Map<bigint, LikeAt>() : liked.read(viewer, ids),
    ]);
    const out = new Map<bigint, LoadedTweet>();
    for (const id of ids) {
      const entry = entries.get(id);
      if (entry === undefined) throw new NotCached(`tweet ${id} is not cached`);
      // A tombstone: deleted, left out, as the tweet service does.
      if (entry.kind === "deleted") continue;
      const tweet = entry.tweet;
      if (viewer === undefined || nobodyLikes(tweet)) {
        out.set(id, { core: tweet, liked: false, reposted: false });
        continue;
      }
      const state = likes.get(id);
      if (state?.version !== entry.version) throw new NotCached(`the viewer's like of tweet ${id} is not known at its version`);
      out.set(id, { core: tweet, liked: state.liked, reposted: state.reposted });
    }
    return out;
  };
}

/** BatchGetTweets' answer to `req` for the caller of `hctx`, from the caches alone; rejects with NotCached when they lack something. */
export type CachedBatchGet = (req: TweetBatch, hctx: HandlerContext) => Promise<Tweet[]>;

/**
 * BatchGetTweets' answer as the tweet service makes it (answerBatch, with
 * its presenter), with the caches as the only loader: the ids in order, each
 * once, reposts shown as their originals, deleted and unknown tweets left
 * out. Undefined without a tweet cache (no Redis).
 */
export function cachedBatchGet(deps: {
  tweetCache: Pick<TweetCache, "peek"> | undefined;
  likedCache: Pick<LikedCache, "read"> | undefined;
  userCache: Pick<UserCache, "peek"> | undefined;
  clients: Pick<MeshClients, "user" | "media">;
  log: Logger;
}): CachedBatchGet | undefined {
  if (deps.tweetCache === undefined) return undefined;
  const load = cachedTweetLoader({ tweets: deps.tweetCache, liked: deps.likedCache });
  const presenter = createTweetPresenter({ loadByIds: load, clients: deps.clients, userCache: deps.userCache, log: deps.log });
  const loadBatch: LoadBatch = (ids, originals, viewer) => load([...ids, ...[...originals.keys()].filter((id) => !ids.includes(id))], viewer);
  return (req, hctx) => answerBatch(presenter, loadBatch, req, hctx);
}

/**
 * BatchGetTweets, from the caches when they hold the whole answer
 * (`fromCaches`), else asked of the tweet service, whose read fills them
 * (as the caller: `onBehalfOf(hctx)`). Says which answered.
 */
export async function batchGetTweets(
  via: { readonly fromCaches: CachedBatchGet | undefined; readonly clients: Pick<MeshClients, "tweet"> },
  req: TweetBatch,
  hctx: HandlerContext,
): Promise<{ tweets: Tweet[]; source: "cache" | "tweet_service" }> {
  if (via.fromCaches !== undefined) {
    try {
      return { tweets: await via.fromCaches(req, hctx), source: "cache" };
    } catch (err) {
      if (!(err instanceof NotCached)) throw err;
    }
  }
  const { tweets } = await via.clients.tweet.batchGetTweets(
    { tweetIds: [...req.tweetIds], authorIds: [...(req.authorIds ?? [])], originals: [...(req.originals ?? [])] },
    onBehalfOf(hctx),
  );
  return { tweets, source: "tweet_service" };
}
