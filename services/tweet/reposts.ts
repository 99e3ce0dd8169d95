// Reposts. A repost is a tweet of the reposter's with no content of its own
// that names the original (repost_of_tweet_id), so fan-out, user timelines,
// hot-author merging and deletes treat it as any tweet of theirs; reads show
// the original in its place with reposted_by set (reads.ts). The count and
// "did this user repost it" live in the repost edge on the ORIGINAL's shard
// (tweet_reposts, migration 0012), under the original row's lock:
//
//   1. beginRepost: the edge becomes pending with the repost's id, fixed from
//      then on (a retry, or a concurrent call, writes that same repost).
//   2. the repost tweet is written on the reposter's shard (once: a second
//      write of the same id is a duplicate key, which means done).
//   3. settleRepost: pending -> live, repost_count + 1, TweetReposted.
//
// If the call dies between 2 and 3, the tweets consumer settles it from the
// repost's TweetCreated. An unrepost deletes the repost tweet (its
// TweetDeleted takes it out of every timeline), then takes the edge back.
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { requireCaller } from "../../lib/auth/caller.js";
import { parseId, type IdGenerator } from "../../lib/ids.js";
import { requestIdOf } from "../../lib/rpc/metadata.js";
import type { RelationCache } from "../../lib/relations.js";
import { refuseIfBlocked } from "./blocks.js";
import { announceRepostChange } from "./events.js";
import type { LikedCache } from "../../lib/liked-cache.js";
import type { AuthorLookup } from "./lookup.js";
import type { TweetReader } from "./reads.js";
import type { TweetRow, TweetStore } from "./store.js";
import type { TweetWrites } from "./writes.js";

export interface Reposts {
  /**
   * The repost count after the caller's repost of `tweetId`, made now or
   * (ImportRepost) at the past millisecond `atMs`, not before the tweet's.
   */
  repost(tweetId: bigint, hctx: HandlerContext, atMs?: number): Promise<number>;
  /** The repost count after the caller's repost, if any, is taken back. */
  unrepost(tweetId: bigint, hctx: HandlerContext): Promise<number>;
  /** From a repost tweet's TweetCreated (live) or TweetDeleted: completes its edge, as the call would have. */
  settle(repost: { readonly id: bigint; readonly authorId: bigint; readonly repostOfTweetId: bigint }, live: boolean): Promise<"changed" | "current" | "missing">;
}

export function createReposts(deps: {
  store: TweetStore;
  ids: IdGenerator;
  lookup: AuthorLookup;
  liked: LikedCache | undefined;
  /** After a committed change: the cache holds the row's version before this resolves. */
  publish: (row: TweetRow) => Promise<void>;
  /** The repost's own tweet is written and deleted as PostTweet and DeleteTweet do. */
  writes: TweetWrites;
  reader: TweetReader;
  /** A repost while a block stands between the reposter and the original's author is PermissionDenied. */
  relations: RelationCache;
}): Reposts {
  const { store, lookup, reader, writes } = deps;
  const notFound = (): ConnectError => new ConnectError("tweet not found", Code.NotFound);

  /** The live tweet a repost call is about (from the cache): a repost of a repost reposts the original. */
  const original = async (tweetId: bigint): Promise<{ id: bigint; authorId: bigint }> => {
    const authorId = (await lookup.authorsOf([tweetId])).get(tweetId);
    if (authorId === undefined) throw notFound();
    const found = (await reader.load([{ id: tweetId, authorId }], undefined)).get(tweetId);
    if (found === undefined) throw notFound();
    return found.core.repostOfTweetId === 0n ? { id: tweetId, authorId } : original(found.core.repostOfTweetId);
  };

  /** The tweet's repost count as read now (from the cache); NotFound when it is gone. */
  const currentCount = async (tweet: { id: bigint; authorId: bigint }): Promise<number> => {
    const found = (await reader.load([tweet], undefined)).get(tweet.id);
    if (found === undefined) throw notFound();
    return found.core.repostCount;
  };

  /** Settles the edge naming `repostId`, publishes the original's version and the reposter's own state. */
  const settle = async (orig: { id: bigint; authorId: bigint }, reposterId: bigint, repostId: bigint, live: boolean, requestId?: string) => {
    const result = await store.settleRepost(orig.authorId, orig.id, reposterId, repostId, live, announceRepostChange(deps.ids, requestId));
    if (result.kind === "missing") return result;
    // Also when nothing changed: a retry after a failed publish completes it.
    await deps.publish(result.target);
    await deps.liked?.write(reposterId, [{ tweetId: orig.id, version: result.target.version, liked: result.liked, reposted: result.reposted }]);
    return result;
  };

  return {
    async repost(tweetId, hctx, atMs) {
      const callerId = requireCaller(hctx);
      const orig = await original(tweetId);
      await refuseIfBlocked(deps.relations, callerId, [orig.authorId], hctx);
      let repostId: bigint;
      if (atMs === undefined) repostId = deps.ids.next();
      else {
        if (parseId(orig.id).timeMs > atMs) throw new ConnectError("create_time: a repost cannot predate its tweet", Code.InvalidArgument);
        // A backdated id is claimed (writes.ts) only when this call will use it: not for a repost already made or begun.
        const edge = await store.repostEdge(orig.authorId, orig.id, callerId);
        if (edge?.state === "live") return currentCount(orig);
        repostId = edge?.state === "pending" ? edge.repostId : await writes.claimAt(callerId, atMs);
      }
      const begun = await store.beginRepost(orig.authorId, orig.id, callerId, repostId);
      if (begun.kind === "missing" || begun.kind === "deleted") throw notFound();
      if (begun.kind === "live") return begun.row.repostCount;
      const createTimeMicros = BigInt(parseId(begun.repostId).timeMs) * 1000n;
      const none = { text: "", replyToTweetId: 0n, quoteTweetId: 0n, mediaIds: [], latitude: null, longitude: null, hashtags: [], mentions: [], urls: [] };
      const repostTweet = { ...none, id: begun.repostId, authorId: callerId, repostOfTweetId: orig.id, createTimeMicros };
      await writes.create(repostTweet, requestIdOf(hctx), { again: true, repostOfAuthorId: orig.authorId });
      const settled = await settle(orig, callerId, begun.repostId, true, requestIdOf(hctx));
      if (settled.kind === "missing") throw notFound();
      return settled.target.repostCount;
    },

    async unrepost(tweetId, hctx) {
      const callerId = requireCaller(hctx);
      const authorId = (await lookup.authorsOf([tweetId])).get(tweetId);
      if (authorId === undefined) throw notFound();
      const edge = await store.repostEdge(authorId, tweetId, callerId);
      if (edge === undefined || edge.state === "taken-back") return currentCount({ id: tweetId, authorId });
      const removed = await writes.remove(callerId, edge.repostId, callerId, requestIdOf(hctx));
      if (removed.kind === "done" || removed.kind === "deleted") await deps.publish(removed.row);
      const settled = await settle({ id: tweetId, authorId }, callerId, edge.repostId, false, requestIdOf(hctx));
      if (settled.kind === "missing") throw notFound();
      return settled.target.repostCount;
    },

    async settle(repost, live) {
      const authorId = (await lookup.authorsOf([repost.repostOfTweetId])).get(repost.repostOfTweetId);
      if (authorId === undefined) return "missing";
      const result = await settle({ id: repost.repostOfTweetId, authorId }, repost.authorId, repost.id, live);
      return result.kind === "missing" ? "missing" : result.changed ? "changed" : "current";
    },
  };
}

