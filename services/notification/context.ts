import { consume, type EventConsumer } from "../../lib/events/consumer.js";
import type { ServiceContext } from "../../lib/service-context.js";
import { loadNotificationConfig, type NotificationConfig } from "./config.js";
import { createNotifier, GRAPH_DURABLE, GRAPH_EVENTS, notificationMetrics, TWEET_EVENTS, TWEETS_DURABLE } from "./events.js";
import { createNotificationStore, type NotificationStore } from "./store.js";

/** The shared service context plus the inbox store and the two consumers that fill it. */
export interface NotificationContext extends ServiceContext {
  readonly notification: NotificationConfig;
  readonly store: NotificationStore;
}

export async function createNotificationContext(ctx: ServiceContext): Promise<NotificationContext> {
  const notification = loadNotificationConfig(ctx.env);
  const log = ctx.log.child({ component: "notifier" });
  const store = createNotificationStore(ctx.router);
  const notifier = createNotifier({ store, ids: ctx.ids, metrics: notificationMetrics(ctx.metrics), fanOut: notification.fanOut });
  const consumers: EventConsumer[] = [];
  if (ctx.bus === undefined) log.warn("NATS_URL not set: no notifications are created");
  else if (!notification.consumers) log.info("notification consumers disabled in this process (CHIRP_NOTIFICATION_CONSUMERS=false)");
  else {
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
    );
  }
  return {
    ...ctx,
    notification,
    store,
    // The consumers stop before the bus closes (the shared context closes after this).
    close: async () => {
      await Promise.all(consumers.map((c) => c.stop()));
    },
  };
}
