// From the event stream to inboxes. Two durable consumers (one filter subject
// each, as nats-server 2.9 allows): `notification-tweets` reads the tweet
// events (mentions in TweetCreated, replies, quotes, likes, reposts, their
// undoing and deleted tweets), `notification-graph` the follows. Every change
// goes through store.apply, idempotent by its cause's unique key and version
// (causes.ts), so a redelivered or reordered event never notifies twice; a
// notification that appears is announced twice: its NotificationCreated goes
// into the recipient's outbox in the same transaction when the recipient has a
// Web Push subscription (the push consumer's only input, push.ts), and a live
// copy (LIVE_EVENTS) is published once the transaction commits, which the
// timeline service pushes to the recipient's open streams. Nearly every
// recipient has no push subscription: storing, relaying and delivering an
// event per notification for them was a fifth of a post's CPU.
import { create } from "@bufbuild/protobuf";
import { Counter } from "prom-client";
import { NotificationKind } from "../../gen/chirp/notification/v1/notification_pb.js";
import type { ConsumedEvent } from "../../lib/events/consumer.js";
import type { PublishLive } from "../../lib/events/live.js";
import { appendOutboxMany } from "../../lib/events/outbox.js";
import { EVENTS, LIVE_EVENTS } from "../../lib/events/subjects.js";
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
import { APPLY_BATCH, type AnnounceShown, type NotificationStore } from "./store.js";
import { microsFromTimestamp, timestampFromMicros } from "../../lib/db/db-time.js";
import { encodeMessage } from "../../lib/proto-codec.js";

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

/**
 * A transaction's notifications shown, announced: the NotificationCreated of
 * each whose recipient has a Web Push subscription into the outbox, on the
 * recipients' shard, in that transaction (one multi-row INSERT: each is
 * still its own event); and, once it commits, a live copy of every one.
 */
export function announceCreated(ids: IdGenerator, requestId: string | undefined, publishLive: PublishLive | undefined): AnnounceShown {
  return async (tx, shown) => {
    const events = shown.map(({ id, change, pushable }) => ({
      pushable,
      message: create(EVENTS.notificationCreated.schema, {
        notificationId: id,
        recipientId: change.recipientId,
        kind: change.kind,
        actorId: change.actorId,
        tweetId: change.subjectId,
        createTime: timestampFromMicros(change.timeMicros),
      }),
    }));
    if (publishLive !== undefined) {
      tx.afterCommit(() => publishLive(LIVE_EVENTS.notificationCreated.subject, events.map((e) => encodeMessage(LIVE_EVENTS.notificationCreated.schema, e.message))));
    }
    const stored = events.filter((e) => e.pushable);
    if (stored.length === 0) return;
    await appendOutboxMany(
      tx,
      ids,
      stored.map(({ message }) => ({ type: EVENTS.notificationCreated, message, userId: message.recipientId, requestId })),
    );
  };
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

/** Changes of one event read for relations and applied together: up to four shards' full transactions. */
const APPLY_SLICE = 4 * APPLY_BATCH;

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
  /** Where the live copies of new notifications go (StreamEvents); none: they are not published. */
  publishLive?: PublishLive;
  /**
   * After a change to these users' inboxes committed: clears what the inbox
   * cache holds of them (inbox-cache.ts). Throws when it could not: the
   * event is then redelivered, and clears them again.
   */
  inboxChanged?: (userIds: readonly bigint[]) => Promise<void>;
}): Notifier {
  const { store, ids, metrics: m } = deps;

  /**
   * Applies one event's changes: those of recipients on one shard in one
   * transaction (store.applyMany), each inbox cache cleared once per
   * transaction, after it commits.
   */
  const applyAll = async (changes: ReadonlyArray<CauseChange | undefined>, requestId: string | undefined): Promise<void> => {
    const live = changes.filter((c): c is CauseChange => c !== undefined);
    // A big fan-in in slices, so the first inboxes are written while later recipients' relations are still being read.
    for (let i = 0; i < live.length; i += APPLY_SLICE) await applySlice(live.slice(i, i + APPLY_SLICE), requestId);
  };
  const applySlice = async (live: readonly CauseChange[], requestId: string | undefined): Promise<void> => {
    if (live.length === 0) return;
    // Not shown, counted or pushed (live or Web Push); undos still apply, so nothing older comes back.
    const relations = deps.relations;
    const hidden = new Set<CauseChange>();
    if (relations !== undefined) {
      await eachLimited(
        live.filter((c) => c.active),
        deps.fanOut,
        async (c) => void (hides(await relations.get(c.recipientId), c.actorId) && hidden.add(c)),
      );
    }
    if (hidden.size > 0) m.applied.inc({ result: "hidden" }, hidden.size);
    const applied = hidden.size === 0 ? live : live.filter((c) => !hidden.has(c));
    if (applied.length === 0) return;
    await store.applyMany(applied, () => ids.next(), announceCreated(ids, requestId, deps.publishLive), async (batch, decisions) => {
      // Whatever the result: a change seen before ("none") may be a redelivery
      // after the first delivery committed and then failed to clear the cache.
      await deps.inboxChanged?.(batch.map((c) => c.recipientId));
      decisions.forEach((result, i) => {
        m.applied.inc({ result });
        if (result === "show") m.created.inc({ kind: KIND_LABEL[batch[i]!.kind] ?? "other" });
      });
    });
  };
  const apply = (change: CauseChange | undefined, requestId: string | undefined): Promise<void> => applyAll([change], requestId);

  /** A new tweet's notifications (reply, quote or mentions): its sources first, so its deletion finds them. */
  const tweetNotifies = async (changes: Array<CauseChange | undefined>, requestId: string | undefined): Promise<void> => {
    const live = changes.filter((c): c is CauseChange => c !== undefined);
    const first = live[0];
    if (first === undefined) return;
    if (!(await store.addSources(first.actorId, first.subjectId, live.map((c) => c.recipientId)))) return; // deleted already
    await applyAll(live, requestId);
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
          await applyAll(recipients.map((r) => tweetRemoval(tweetId, authorId, r)), rid);
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
