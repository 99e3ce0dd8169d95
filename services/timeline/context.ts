import type { Redis } from "ioredis";
import { consume, type EventConsumer } from "../../lib/events/consumer.js";
import { createRedis, loadRedisConfig } from "../../lib/redis.js";
import type { ServiceContext } from "../../lib/service-context.js";
import { loadTimelineConfig, type TimelineConfig } from "./config.js";
import { createFanOut, FANOUT_DURABLE, FANOUT_EVENTS, GRAPH_DURABLE, GRAPH_EVENTS } from "./fan-out.js";
import { createFollowingCache, type FollowingCache } from "./following.js";
import { createTimelineLists, type TimelineLists } from "./lists.js";
import { createTimelineMetrics, type TimelineMetrics } from "./metrics.js";
import { createTimelineReader, type TimelineReader } from "./reads.js";
import { createAuthorTweets, type AuthorTweets } from "./author-tweets.js";
import { createStreamHub, type StreamHub } from "./stream.js";
import { eraseTimelineKeys } from "./erase.js";
import { consumeUserDeleted } from "../../lib/events/user-deleted.js";

/** The timeline service's consumer of UserDeleted: the deleted account's own keys. */
export const TIMELINE_ERASE_DURABLE = "timeline-account-erase";

/**
 * The shared service context plus the timeline's parts: the MySQL read model,
 * the Redis lists, the reader, the fan-out and graph consumers and the live
 * event hub.
 */
export interface TimelineContext extends ServiceContext {
  readonly timeline: TimelineConfig;
  readonly authorTweets: AuthorTweets;
  /** Undefined without REDIS_URL: home timelines are then read from MySQL. */
  readonly lists: TimelineLists | undefined;
  readonly following: FollowingCache | undefined;
  readonly reader: TimelineReader;
  readonly timelineMetrics: TimelineMetrics;
  /** Undefined without NATS_URL: StreamEvents is then Unavailable. */
  readonly hub: StreamHub | undefined;
}

export async function createTimelineContext(ctx: ServiceContext): Promise<TimelineContext> {
  const timeline = loadTimelineConfig(ctx.env);
  const log = ctx.log.child({ component: "timeline" });
  const timelineMetrics = createTimelineMetrics(ctx.metrics);
  const authorTweets = createAuthorTweets(ctx.clients.tweet);
  const lists = ctx.redis === undefined ? undefined : createTimelineLists(ctx.redis);
  const following = ctx.redis === undefined ? undefined : createFollowingCache({ redis: ctx.redis, clients: ctx.clients, ttlMs: timeline.followingTtlMs });
  if (lists === undefined) log.warn("REDIS_URL not set: home timelines are read from MySQL on every call");
  const reader = createTimelineReader({
    authorTweets,
    lists,
    following,
    relations: ctx.relations,
    clients: ctx.clients,
    config: timeline,
    metrics: timelineMetrics,
    log,
  });

  const consumers: EventConsumer[] = [];
  let hub: StreamHub | undefined;
  let fanOutRedis: Redis | undefined;
  if (ctx.bus === undefined) log.warn("NATS_URL not set: no fan-out (home timelines are rebuilt on read) and no StreamEvents");
  else {
    hub = createStreamHub({
      bus: ctx.bus,
      clients: ctx.clients,
      keepaliveMs: timeline.streamKeepaliveMs,
      queueLimit: timeline.streamQueue,
      metrics: timelineMetrics,
      log,
      relations: ctx.relations,
    });
    if (!timeline.fanOut) log.info("fan-out consumers disabled in this process (CHIRP_TIMELINE_FANOUT=false)");
    else if (following !== undefined) {
      // Its own connection, with a patient timeout (see config.ts).
      const url = loadRedisConfig(ctx.env).url!;
      const redis = createRedis({ url, commandTimeoutMs: timeline.fanOutRedisTimeoutMs }, log, "chirp-timeline-fanout");
      fanOutRedis = redis;
      const fanOut = createFanOut({
        lists: createTimelineLists(fanOutRedis),
        following,
        authorTweets,
        clients: ctx.clients,
        config: timeline,
        metrics: timelineMetrics,
        log,
      });
      consumers.push(
        consume({
          bus: ctx.bus,
          durable: FANOUT_DURABLE,
          subjects: FANOUT_EVENTS,
          handler: (event) => fanOut.onTweetEvent(event),
          concurrency: timeline.fanOutConcurrency,
          log,
          metrics: ctx.metrics,
        }),
        consume({
          bus: ctx.bus,
          durable: GRAPH_DURABLE,
          subjects: GRAPH_EVENTS,
          handler: (event) => fanOut.onGraphEvent(event),
          log,
          metrics: ctx.metrics,
        }),
        consumeUserDeleted({
          bus: ctx.bus,
          durable: TIMELINE_ERASE_DURABLE,
          erase: (userId) => eraseTimelineKeys(redis, userId),
          log,
          metrics: ctx.metrics,
        }),
      );
    }
  }

  return {
    ...ctx,
    timeline,
    authorTweets,
    lists,
    following,
    reader,
    timelineMetrics,
    hub,
    // Reverse order of opening: the consumers and the live streams (before the shared bus).
    close: async () => {
      await Promise.all(consumers.map((c) => c.stop()));
      await fanOutRedis?.quit().catch(() => fanOutRedis?.disconnect());
      await hub?.close();
    },
  };
}
