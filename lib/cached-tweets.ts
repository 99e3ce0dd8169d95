// Tweets loaded from the caches alone (lib/tweet-cache.ts, lib/liked-cache.ts),
// for a service other than the tweet service that shows tweets (the timeline
// service's pages): one MGET of the tweets and one HMGET of the viewer's like
// states, in one round trip, and no database. It answers only what the
// caches answer as exactly as the tweet service would: a tweet or a
// tombstone at a version, and the viewer's like and repost state at that same
// version (or none needed: nobody likes or has reposted it at that version).
// Anything else (a tweet not cached, a like state not known at the tweet's
// version, Redis away) rejects with NotCached, and the caller asks the tweet
// service, whose read fills the caches for the next time.
import { nobodyLikes, type LikeAt, type LikedCache } from "./liked-cache.js";
import type { TweetCache } from "./tweet-cache.js";
import type { LoadByIds, LoadedTweet } from "./tweet-presenter.js";

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
