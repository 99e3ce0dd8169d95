// What an event means for inboxes, and how a change of one cause is applied:
// pure functions, so the rules that make the consumer idempotent are tested
// without a database (causes.test.ts).
//
// A notification's identity is its cause, (recipient, cause, subject, actor):
// the unique key of its row. A follow is the follower's edge, a like the
// liker's like of the tweet, a repost the reposter's repost of the tweet; a
// reply, a quote and a mention are the new tweet (one notification per tweet
// per recipient, whichever of the three it is: a reply that also mentions its
// parent's author notifies once, as a reply). Each change carries a version
// (the edge's or the like's version, the repost's id, 1 for a tweet), and a
// row keeps the version that last changed it, so events applied in any order,
// any number of times, end in the state of the newest.
import { NotificationKind } from "../../gen/chirp/notification/v1/notification_pb.js";

export const Cause = { follow: 1, like: 2, repost: 3, tweet: 4 } as const;
export type Cause = (typeof Cause)[keyof typeof Cause];

/** The unique key of one notification row. */
export interface CauseKey {
  readonly recipientId: bigint;
  readonly cause: Cause;
  /** Follow: 0; like, repost: the tweet; a tweet: the new tweet. */
  readonly subjectId: bigint;
  readonly actorId: bigint;
}

/** One change of a cause, as an event announces it. */
export interface CauseChange extends CauseKey {
  /** true: it happened (show it); false: it was undone (hide it). */
  readonly active: boolean;
  readonly version: bigint;
  readonly kind: NotificationKind;
  /** When it happened, microseconds since the epoch. */
  readonly timeMicros: bigint;
}

/** A row as stored (a missing row is read as version 0, undone). */
export interface StoredCause {
  readonly active: boolean;
  readonly version: bigint;
  readonly kind: NotificationKind;
}

export const ABSENT: StoredCause = { active: false, version: 0n, kind: NotificationKind.UNSPECIFIED };

/**
 * What to do with a row when `change` arrives:
 * - `show`: it becomes visible with a new inbox id: a new notification (the
 *   only outcome that notifies, counts and is pushed);
 * - `hide`: it was visible and is undone;
 * - `version`: record the newer version, visibility unchanged (an undo of
 *   something never shown; a second follow whose unfollow was lost);
 * - `kind`: the same tweet, seen as a stronger kind (a mention that is also a reply);
 * - `none`: an event seen before, or older than the row.
 */
export type Decision = "show" | "hide" | "version" | "kind" | "none";

/** Reply over quote over mention: what one tweet is, to one recipient. */
const TWEET_KIND_RANK: Partial<Record<NotificationKind, number>> = {
  [NotificationKind.MENTION]: 1,
  [NotificationKind.QUOTE]: 2,
  [NotificationKind.REPLY]: 3,
};

export function decide(stored: StoredCause, change: Pick<CauseChange, "active" | "version" | "kind">): Decision {
  // At an equal version the undo wins: a repost and its unrepost carry the same repost id.
  const newer = change.version > stored.version || (change.version === stored.version && !change.active && stored.active);
  if (newer) {
    if (change.active) return stored.active ? "version" : "show";
    return stored.active ? "hide" : "version";
  }
  if (change.active && stored.active && change.version === stored.version && (TWEET_KIND_RANK[change.kind] ?? 0) > (TWEET_KIND_RANK[stored.kind] ?? 0)) {
    return "kind";
  }
  return "none";
}

/** Likes and reposts of one tweet group together in the grouped view. */
export function groupable(cause: Cause): boolean {
  return cause === Cause.like || cause === Cause.repost;
}

// --- events -> changes --------------------------------------------------------

export interface FollowEdge {
  readonly followerId: bigint;
  readonly followeeId: bigint;
  readonly edgeVersion: bigint;
}

export function followChange(e: FollowEdge, active: boolean, timeMicros: bigint): CauseChange | undefined {
  if (e.followerId === e.followeeId) return undefined;
  return {
    recipientId: e.followeeId,
    cause: Cause.follow,
    subjectId: 0n,
    actorId: e.followerId,
    active,
    // An event written before edges had versions counts as the first.
    version: e.edgeVersion === 0n ? 1n : e.edgeVersion,
    kind: NotificationKind.FOLLOW,
    timeMicros,
  };
}

export function likeChange(e: { tweetId: bigint; authorId: bigint; likerId: bigint; likeVersion: bigint }, active: boolean, timeMicros: bigint): CauseChange | undefined {
  if (e.likerId === e.authorId) return undefined;
  return {
    recipientId: e.authorId,
    cause: Cause.like,
    subjectId: e.tweetId,
    actorId: e.likerId,
    active,
    version: e.likeVersion === 0n ? 1n : e.likeVersion,
    kind: NotificationKind.LIKE,
    timeMicros,
  };
}

export function repostChange(e: { tweetId: bigint; authorId: bigint; reposterId: bigint; repostId: bigint }, active: boolean, timeMicros: bigint): CauseChange | undefined {
  if (e.reposterId === e.authorId) return undefined;
  // A new repost after an unrepost is a new repost id: higher, so it shows again.
  return { recipientId: e.authorId, cause: Cause.repost, subjectId: e.tweetId, actorId: e.reposterId, active, version: e.repostId, kind: NotificationKind.REPOST, timeMicros };
}

/** A new tweet telling `recipientId` (its replied-to or quoted author, or someone it mentions). */
export function tweetChange(tweetId: bigint, authorId: bigint, recipientId: bigint, kind: NotificationKind, timeMicros: bigint): CauseChange | undefined {
  if (recipientId === authorId || recipientId === 0n) return undefined;
  return { recipientId, cause: Cause.tweet, subjectId: tweetId, actorId: authorId, active: true, version: 1n, kind, timeMicros };
}

/** The same tweet's notification to `recipientId`, undone (the tweet was deleted). */
export function tweetRemoval(tweetId: bigint, authorId: bigint, recipientId: bigint): CauseChange {
  return { recipientId, cause: Cause.tweet, subjectId: tweetId, actorId: authorId, active: false, version: 1n, kind: NotificationKind.UNSPECIFIED, timeMicros: 0n };
}

/** The mentions of a new tweet that notify: each mentioned user once, never its author. */
export function mentionRecipients(authorId: bigint, mentions: readonly bigint[]): bigint[] {
  return [...new Set(mentions)].filter((id) => id !== authorId && id !== 0n);
}
