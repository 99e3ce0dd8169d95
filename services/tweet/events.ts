// The tweet events: written to the outbox in the transaction of the change
// they announce (on the tweet's shard, so the row's user_id is the author's),
// and the likers' index kept from TweetLiked/TweetUnliked by a durable
// consumer of this service.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Counter } from "prom-client";
import type { TweetLiked, TweetUnliked } from "../../gen/chirp/tweet/v1/events_pb.js";
import { consume, type EventConsumer } from "../../lib/events/consumer.js";
import type { EventBus } from "../../lib/events/bus.js";
import { appendOutbox, type Announce } from "../../lib/events/outbox.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { parseId, type IdGenerator } from "../../lib/ids.js";
import type { Logger } from "../../lib/logger.js";
import type { Metrics } from "../../lib/metrics.js";
import { microsFromTimestamp, timestampFromMicros } from "../../lib/db/db-time.js";
import type { LikeEdge, RefEdge, RepostChange, TweetRow, TweetStore } from "./store.js";

/** The durable consumer that keeps `likes` (the likers' index); shared by every tweet instance. */
export const LIKES_INDEX_DURABLE = "tweet-likes-index";

/** `repostOfAuthorId`: a repost's original's author, carried so timelines can load both at once. */
export function announceTweetCreated(ids: IdGenerator, requestId: string | undefined, repostOfAuthorId = 0n): Announce<TweetRow> {
  return (tx, row) =>
    appendOutbox(tx, ids, {
      type: EVENTS.tweetCreated,
      message: create(EVENTS.tweetCreated.schema, {
        tweetId: row.id,
        authorId: row.authorId,
        text: row.text,
        hashtags: [...row.hashtags],
        mentions: [...row.mentions],
        mediaIds: [...row.mediaIds],
        replyToTweetId: row.replyToTweetId,
        quoteTweetId: row.quoteTweetId,
        repostOfTweetId: row.repostOfTweetId,
        repostOfAuthorId: row.repostOfTweetId === 0n ? 0n : repostOfAuthorId,
        createTime: timestampFromMs(parseId(row.id).timeMs),
        urls: [...row.urls],
      }),
      userId: row.authorId,
      requestId,
    });
}

/** TweetReplied or TweetQuoted, on the replied-to or quoted tweet's shard (its author is the one to tell). */
export function announceRefEdge(ids: IdGenerator, requestId: string | undefined): Announce<RefEdge> {
  return (tx, edge) => {
    const createTime = timestampFromMs(parseId(edge.ref.id).timeMs);
    return edge.kind === "reply"
      ? appendOutbox(tx, ids, {
          type: EVENTS.tweetReplied,
          message: create(EVENTS.tweetReplied.schema, {
            replyId: edge.ref.id,
            replyAuthorId: edge.ref.authorId,
            parentId: edge.targetId,
            parentAuthorId: edge.targetAuthorId,
            createTime,
          }),
          userId: edge.targetAuthorId,
          requestId,
        })
      : appendOutbox(tx, ids, {
          type: EVENTS.tweetQuoted,
          message: create(EVENTS.tweetQuoted.schema, {
            quoteId: edge.ref.id,
            quoteAuthorId: edge.ref.authorId,
            quotedId: edge.targetId,
            quotedAuthorId: edge.targetAuthorId,
            createTime,
          }),
          userId: edge.targetAuthorId,
          requestId,
        });
  };
}

/** TweetReposted or TweetUnreposted, on the original's shard (its author is the one to tell). */
export function announceRepostChange(ids: IdGenerator, requestId: string | undefined): Announce<RepostChange> {
  return (tx, change) => {
    const common = { tweetId: change.tweetId, authorId: change.authorId, reposterId: change.reposterId, repostId: change.repostId };
    return change.live
      ? appendOutbox(tx, ids, { type: EVENTS.tweetReposted, message: create(EVENTS.tweetReposted.schema, common), userId: change.authorId, requestId })
      : appendOutbox(tx, ids, { type: EVENTS.tweetUnreposted, message: create(EVENTS.tweetUnreposted.schema, common), userId: change.authorId, requestId });
  };
}

export function announceTweetDeleted(ids: IdGenerator, requestId: string | undefined): Announce<{ row: TweetRow; deleteTimeMicros: bigint }> {
  return (tx, { row, deleteTimeMicros }) =>
    appendOutbox(tx, ids, {
      type: EVENTS.tweetDeleted,
      message: create(EVENTS.tweetDeleted.schema, {
        tweetId: row.id,
        authorId: row.authorId,
        deleteTime: timestampFromMicros(deleteTimeMicros),
        replyToTweetId: row.replyToTweetId,
        quoteTweetId: row.quoteTweetId,
        repostOfTweetId: row.repostOfTweetId,
      }),
      userId: row.authorId,
      requestId,
    });
}

export function announceLikeChange(ids: IdGenerator, requestId: string | undefined): Announce<LikeEdge> {
  return (tx, edge) => {
    const common = { tweetId: edge.tweetId, authorId: edge.authorId, likerId: edge.userId, likeVersion: edge.version };
    return edge.liked
      ? appendOutbox(tx, ids, {
          type: EVENTS.tweetLiked,
          message: create(EVENTS.tweetLiked.schema, { ...common, likeTime: timestampFromMicros(edge.likeTimeMicros) }),
          userId: edge.authorId,
          requestId,
        })
      : appendOutbox(tx, ids, {
          type: EVENTS.tweetUnliked,
          message: create(EVENTS.tweetUnliked.schema, { ...common, unlikeTime: timestampFromMicros(edge.changeTimeMicros) }),
          userId: edge.authorId,
          requestId,
        });
  };
}

/**
 * The edge version an event announces; undefined for one without a version
 * (nothing to order it by: it is skipped).
 */
export function likeEdgeOfEvent(
  event: { subject: typeof EVENTS.tweetLiked.subject; message: TweetLiked } | { subject: typeof EVENTS.tweetUnliked.subject; message: TweetUnliked },
): LikeEdge | undefined {
  const m = event.message;
  if (m.likeVersion === 0n) return undefined;
  const common = { tweetId: m.tweetId, authorId: m.authorId, userId: m.likerId, version: m.likeVersion };
  if (event.subject === EVENTS.tweetLiked.subject) {
    const t = microsFromTimestamp(event.message.likeTime);
    return { ...common, liked: true, likeTimeMicros: t, changeTimeMicros: t };
  }
  // An unlike does not say when the like it ends was made; the index keeps
  // its own like time and uses this one only for a row it has never seen
  // (which is then unliked, so never listed).
  const t = microsFromTimestamp(event.message.unlikeTime);
  return { ...common, liked: false, likeTimeMicros: t, changeTimeMicros: t };
}

/**
 * Keeps `likes` on each liker's shard in line with tweet_likes: every
 * TweetLiked/TweetUnliked is applied by its version, so repeats, redeliveries
 * and any order end in the state of the newest version.
 */
export function startLikesIndex(opts: { bus: EventBus; store: TweetStore; log: Logger; metrics?: Metrics }): EventConsumer {
  const applied = opts.metrics
    ? new Counter({
        name: "chirp_tweet_likes_index_total",
        help: "Like events applied to the likers' index, by result (applied, current: already as new, skipped: no version).",
        labelNames: ["result"] as const,
        registers: [opts.metrics.registry],
      })
    : undefined;
  return consume({
    bus: opts.bus,
    durable: LIKES_INDEX_DURABLE,
    subjects: [EVENTS.tweetLiked, EVENTS.tweetUnliked],
    log: opts.log,
    ...(opts.metrics === undefined ? {} : { metrics: opts.metrics }),
    handler: async (event) => {
      const edge = likeEdgeOfEvent(event);
      if (edge === undefined) {
        applied?.inc({ result: "skipped" });
        return;
      }
      applied?.inc({ result: await opts.store.applyLikerSide(edge) });
    },
  });
}
