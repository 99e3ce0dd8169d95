// From the event stream to inboxes. Two durable consumers (one filter subject
// each, as nats-server 2.9 allows): `notification-tweets` reads the tweet
// events (mentions in TweetCreated, replies, quotes, likes, reposts, their
// undoing and deleted tweets), `notification-graph` the follows. Every change
// goes through store.apply, idempotent by its cause's unique key and version
// (causes.ts), so a redelivered or reordered event never notifies twice; a
// notification that appears writes NotificationCreated into the recipient's
// outbox in the same transaction, which the timeline service pushes live.
import { create } from "@bufbuild/protobuf";
import { Counter } from "prom-client";
import { NotificationKind } from "../../gen/chirp/notification/v1/notification_pb.js";
import type { ConsumedEvent } from "../../lib/events/consumer.js";
import { appendOutbox, type Announce } from "../../lib/events/outbox.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { parseId, type IdGenerator } from "../../lib/ids.js";
import type { Metrics } from "../../lib/metrics.js";
import { hides, type RelationCache } from "../../lib/relations.js";
import {
  followChange,
  likeChange,
  mentionRecipients,
  repostChange,
  tweetChange,
  tweetRemoval,
  type CauseChange,
} from "./causes.js";
import type { NotificationStore, Shown } from "./store.js";
import { microsFromTimestamp, timestampFromMicros } from "../../lib/db/db-time.js";

export const TWEETS_DURABLE = "notification-tweets";
export const GRAPH_DURABLE = "notification-graph";

export const TWEET_EVENTS = [
  EVENTS.tweetCreated,
  EVENTS.tweetDeleted,
  EVENTS.tweetLiked,
  EVENTS.tweetUnliked,
  EVENTS.tweetReplied,
  EVENTS.tweetQuoted,
  EVENTS.tweetReposted,
  EVENTS.tweetUnreposted,
] as const;
export const GRAPH_EVENTS = [EVENTS.userFollowed, EVENTS.userUnfollowed] as const;

export type TweetEvent = ConsumedEvent<(typeof TWEET_EVENTS)[number]>;
export type GraphEvent = ConsumedEvent<(typeof GRAPH_EVENTS)[number]>;

const KIND_LABEL: Partial<Record<NotificationKind, string>> = {
  [NotificationKind.FOLLOW]: "follow",
  [NotificationKind.LIKE]: "like",
  [NotificationKind.REPOST]: "repost",
  [NotificationKind.REPLY]: "reply",
  [NotificationKind.QUOTE]: "quote",
  [NotificationKind.MENTION]: "mention",
};

export interface NotificationMetrics {
  /** Notifications that appeared in an inbox (not redeliveries, not undos), by kind. */
  readonly created: Counter<"kind">;
  /** Changes applied, by outcome (decide(): show, hide, version, kind, none). */
  readonly applied: Counter<"result">;
}

export function notificationMetrics(metrics: Metrics): NotificationMetrics {
  return {
    created: new Counter({
      name: "chirp_notifications_created_total",
      help: "Notifications created (that appeared in an inbox), by kind (follow, like, repost, reply, quote, mention).",
      labelNames: ["kind"],
      registers: [metrics.registry],
    }),
    applied: new Counter({
      name: "chirp_notification_changes_total",
      help: "Cause changes applied by the notification consumers, by result (show, hide, version, kind, none: seen before or older; hidden: its actor is blocked or muted by the recipient, or blocks them).",
      labelNames: ["result"],
      registers: [metrics.registry],
    }),
  };
}

/** The outbox writer: NotificationCreated on the recipient's shard, in the transaction that shows it. */
export function announceCreated(ids: IdGenerator, requestId: string | undefined): Announce<Shown> {
  return (tx, { id, change }) =>
    appendOutbox(tx, ids, {
      type: EVENTS.notificationCreated,
      message: create(EVENTS.notificationCreated.schema, {
        notificationId: id,
        recipientId: change.recipientId,
        kind: change.kind,
        actorId: change.actorId,
        tweetId: change.subjectId,
        createTime: timestampFromMicros(change.timeMicros),
      }),
      userId: change.recipientId,
      requestId,
    });
}

/** Runs `fn` over `items`, at most `limit` at a time; the first failure is thrown once all settled. */
async function eachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item).catch((err: unknown) => void errors.push(err));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

export interface Notifier {
  handleTweetEvent(event: TweetEvent): Promise<void>;
  handleGraphEvent(event: GraphEvent): Promise<void>;
}

export function createNotifier(deps: {
  store: NotificationStore;
  ids: IdGenerator;
  metrics: NotificationMetrics;
  fanOut: number;
  /** Recipients' blocks and mutes (lib/relations.ts): what a user they block, are blocked by or mute does notifies them of nothing. */
  relations?: RelationCache;
  /**
   * After a change to these users' inboxes committed: clears what the inbox
   * cache holds of them (inbox-cache.ts). Throws when it could not: the
   * event is then redelivered, and clears them again.
   */
  inboxChanged?: (userIds: readonly bigint[]) => Promise<void>;
}): Notifier {
  const { store, ids, metrics: m } = deps;

  const apply = async (change: CauseChange | undefined, requestId: string | undefined): Promise<void> => {
    if (change === undefined) return;
    // Not shown, counted or pushed (live or Web Push); undos still apply, so nothing older comes back.
    if (change.active && deps.relations !== undefined && hides(await deps.relations.get(change.recipientId), change.actorId)) {
      m.applied.inc({ result: "hidden" });
      return;
    }
    const result = await store.apply(change, () => ids.next(), announceCreated(ids, requestId));
    // Whatever the result: a change seen before ("none") may be a redelivery
    // after the first delivery committed and then failed to clear the cache.
    await deps.inboxChanged?.([change.recipientId]);
    m.applied.inc({ result });
    if (result === "show") m.created.inc({ kind: KIND_LABEL[change.kind] ?? "other" });
  };

  /** A new tweet's notifications (reply, quote or mentions): its sources first, so its deletion finds them. */
  const tweetNotifies = async (changes: Array<CauseChange | undefined>, requestId: string | undefined): Promise<void> => {
    const live = changes.filter((c): c is CauseChange => c !== undefined);
    const first = live[0];
    if (first === undefined) return;
    if (!(await store.addSources(first.actorId, first.subjectId, live.map((c) => c.recipientId)))) return; // deleted already
    await eachLimited(live, deps.fanOut, (c) => apply(c, requestId));
  };

  return {
    async handleTweetEvent(event) {
      const rid = event.requestId;
      switch (event.subject) {
        case EVENTS.tweetCreated.subject: {
          const t = event.message;
          if (t.repostOfTweetId !== 0n) return; // a repost has no text: TweetReposted notifies
          const at = microsFromTimestamp(t.createTime);
          await tweetNotifies(
            mentionRecipients(t.authorId, t.mentions).map((r) => tweetChange(t.tweetId, t.authorId, r, NotificationKind.MENTION, at)),
            rid,
          );
          return;
        }
        case EVENTS.tweetReplied.subject: {
          const r = event.message;
          await tweetNotifies([tweetChange(r.replyId, r.replyAuthorId, r.parentAuthorId, NotificationKind.REPLY, microsFromTimestamp(r.createTime))], rid);
          return;
        }
        case EVENTS.tweetQuoted.subject: {
          const q = event.message;
          await tweetNotifies([tweetChange(q.quoteId, q.quoteAuthorId, q.quotedAuthorId, NotificationKind.QUOTE, microsFromTimestamp(q.createTime))], rid);
          return;
        }
        case EVENTS.tweetLiked.subject:
          return apply(likeChange(event.message, true, microsFromTimestamp(event.message.likeTime)), rid);
        case EVENTS.tweetUnliked.subject:
          return apply(likeChange(event.message, false, microsFromTimestamp(event.message.unlikeTime)), rid);
        case EVENTS.tweetReposted.subject:
          return apply(repostChange(event.message, true, BigInt(parseId(event.message.repostId).timeMs) * 1000n), rid);
        case EVENTS.tweetUnreposted.subject:
          return apply(repostChange(event.message, false, BigInt(parseId(event.message.repostId).timeMs) * 1000n), rid);
        case EVENTS.tweetDeleted.subject: {
          const { tweetId, authorId } = event.message;
          const recipients = await store.tweetDeleted(authorId, tweetId);
          await eachLimited(recipients, deps.fanOut, (r) => apply(tweetRemoval(tweetId, authorId, r), rid));
          const hidden = await store.hideReactions(authorId, tweetId);
          await deps.inboxChanged?.([authorId]);
          if (hidden > 0) m.applied.inc({ result: "hide" }, hidden);
          await store.dropSources(authorId, tweetId);
          return;
        }
      }
    },
    async handleGraphEvent(event) {
      if (event.subject === EVENTS.userFollowed.subject) {
        await apply(followChange(event.message, true, microsFromTimestamp(event.message.followTime)), event.requestId);
      } else {
        await apply(followChange(event.message, false, microsFromTimestamp(event.message.unfollowTime)), event.requestId);
      }
    },
  };
}
