import { consume, type EventConsumer } from "../../lib/events/consumer.js";
import { consumeUserDeleted } from "../../lib/events/user-deleted.js";
import type { ServiceContext } from "../../lib/service-context.js";
import { loadNotificationConfig, type NotificationConfig } from "./config.js";
import { createLivePublisher } from "../../lib/events/live.js";
import { createNotifier, GRAPH_DURABLE, GRAPH_EVENTS, notificationMetrics, TWEET_EVENTS, TWEETS_DURABLE } from "./events.js";
import { createPushDelivery, pushMetrics, PUSH_DURABLE, PUSH_EVENTS, type Hydrate } from "./push.js";
import { createPushSender, type PushSender } from "./push-sender.js";
import { createInboxCache, type InboxCache } from "./inbox-cache.js";
import { cachePushSubscriptions, type CachedPushSubscriptionStore } from "./push-subscription-cache.js";
import { createNotificationStore, createPushSubscriptionStore, eraseInbox, type NotificationStore, type PushSubscriptionStore } from "./store.js";

/** The shared service context plus the inbox store, the push subscriptions and the consumers that fill and push them. */
export interface NotificationContext extends ServiceContext {
  readonly notification: NotificationConfig;
  readonly store: NotificationStore;
  readonly pushSubscriptions: PushSubscriptionStore;
  /** The first pages, read positions and unread counts in Redis (inbox-cache.ts); undefined without Redis or with CHIRP_NOTIFICATION_CACHE_TTL_MS=0. */
  readonly inboxCache: InboxCache | undefined;
}

/** The notification service's consumer of UserDeleted: a deleted account's inbox, read position and push subscriptions. */
export const NOTIFICATION_ERASE_DURABLE = "notification-account-erase";

/** Inbox rows deleted per statement. */
const ERASE_BATCH = 500;

export async function createNotificationContext(ctx: ServiceContext): Promise<NotificationContext> {
  const notification = loadNotificationConfig(ctx.env);
  const log = ctx.log.child({ component: "notifier" });
  const store = createNotificationStore(ctx.router, { lingerMs: notification.lingerMs });
  // The Web Push consumer reads a recipient's subscriptions for every notification: from Redis while they do not change.
  const subscriptionCache: CachedPushSubscriptionStore | undefined =
    ctx.redis === undefined || notification.cacheTtlMs === 0
      ? undefined
      : cachePushSubscriptions(createPushSubscriptionStore(ctx.router), {
          redis: ctx.redis,
          ttlMs: notification.cacheTtlMs,
          log: ctx.log.child({ component: "push-subscription-cache" }),
          metrics: ctx.metrics,
        });
  const pushSubscriptions: PushSubscriptionStore = subscriptionCache ?? createPushSubscriptionStore(ctx.router);
  const inboxCache =
    ctx.redis === undefined || notification.cacheTtlMs === 0
      ? undefined
      : createInboxCache({ redis: ctx.redis, ttlMs: notification.cacheTtlMs, log: ctx.log.child({ component: "inbox-cache" }), metrics: ctx.metrics });
  const notifier = createNotifier({
    store,
    ids: ctx.ids,
    metrics: notificationMetrics(ctx.metrics),
    fanOut: notification.fanOut,
    relations: ctx.relations,
    ...(ctx.bus === undefined ? {} : { publishLive: createLivePublisher(ctx.bus) }),
    ...(inboxCache === undefined ? {} : { inboxChanged: (ids: readonly bigint[]) => inboxCache.invalidate(ids) }),
  });
  const consumers: EventConsumer[] = [];
  if (ctx.bus !== undefined && notification.consumers) {
    // Notifications the deleted user caused in others' inboxes go with the
    // unfollows, unlikes and deletes the graph and tweet services make of
    // theirs (each undoes its cause), and reads leave out an actor that no
    // longer exists meanwhile.
    const eraseLog = ctx.log.child({ component: "account-erase" });
    consumers.push(
      consumeUserDeleted({
        bus: ctx.bus,
        durable: NOTIFICATION_ERASE_DURABLE,
        erase: async (userId) => {
          let rows = 0;
          for (;;) {
            const n = await eraseInbox(ctx.router, userId, ERASE_BATCH);
            rows += n;
            if (n < ERASE_BATCH) break;
          }
          await inboxCache?.invalidate([userId]);
          await subscriptionCache?.invalidate([userId]);
          eraseLog.info({ user_id: String(userId), notifications: rows }, "deleted account's inbox erased");
        },
        concurrency: 2,
        log: eraseLog,
        metrics: ctx.metrics,
      }),
    );
  }
  let sender: PushSender | undefined;
  if (ctx.bus === undefined) log.warn("NATS_URL not set: no notifications are created or pushed");
  else if (!notification.consumers) log.info("notification consumers disabled in this process (CHIRP_NOTIFICATION_CONSUMERS=false)");
  else {
    const { push } = notification;
    sender = createPushSender({ vapid: push.vapid, subject: push.subject, timeoutMs: push.timeoutMs, perOrigin: push.perOrigin, allowPrivate: push.allowPrivate });
    const hydrate: Hydrate = async (actorId, tweetId) => {
      const [{ users }, tweets] = await Promise.all([
        ctx.clients.user.batchGetUsers({ userIds: [actorId] }),
        tweetId === undefined ? undefined : ctx.clients.tweet.batchGetTweets({ tweetIds: [tweetId] }),
      ]);
      const actor = users[0];
      const tweet = tweets?.tweets[0];
      if (actor === undefined || (tweetId !== undefined && tweet === undefined)) return undefined;
      return {
        actor: { id: String(actor.id), handle: actor.handle, displayName: actor.displayName },
        ...(tweet === undefined ? {} : { tweetText: tweet.text }),
      };
    };
    const pushLog = ctx.log.child({ component: "push" });
    consumers.push(
      consume({
        bus: ctx.bus,
        durable: TWEETS_DURABLE,
        subjects: TWEET_EVENTS,
        handler: (event) => notifier.handleTweetEvent(event),
        concurrency: notification.concurrency,
        log,
        metrics: ctx.metrics,
      }),
      consume({
        bus: ctx.bus,
        durable: GRAPH_DURABLE,
        subjects: GRAPH_EVENTS,
        handler: (event) => notifier.handleGraphEvent(event),
        concurrency: notification.concurrency,
        log,
        metrics: ctx.metrics,
      }),
      consume({
        bus: ctx.bus,
        durable: PUSH_DURABLE,
        subjects: PUSH_EVENTS,
        handler: createPushDelivery({
          subscriptions: pushSubscriptions,
          sender,
          hydrate,
          config: push,
          metrics: pushMetrics(ctx.metrics),
          log: pushLog,
        }),
        concurrency: push.concurrency,
        maxDeliver: push.maxAttempts,
        retryMinMs: push.retryMinMs,
        retryMaxMs: 60_000,
        // Room for every delivery in flight and its retries waiting out their back-off.
        maxAckPending: Math.max(1000, push.concurrency * 16),
        log: pushLog,
        metrics: ctx.metrics,
      }),
    );
  }
  return {
    ...ctx,
    notification,
    store,
    pushSubscriptions,
    inboxCache,
    // The consumers stop before the bus closes (the shared context closes after this).
    close: async () => {
      await Promise.all(consumers.map((c) => c.stop()));
      sender?.close();
    },
  };
}
