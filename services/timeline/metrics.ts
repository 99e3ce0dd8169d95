// The timeline service's metrics. Labels are fixed sets, never ids.
import { Counter, Gauge, Histogram } from "prom-client";
import type { Metrics } from "../../lib/metrics.js";

export interface TimelineMetrics {
  /** Home timelines a new tweet was written to (delivered), or not because the list is absent (skipped: inactive or never read). */
  readonly fanOutDeliveries: Counter<"result">;
  /** New tweets by path: fanned_out, or hot (merged at read time instead). */
  readonly fanOutTweets: Counter<"path">;
  /** A tweet event's storage in JetStream to its last home timeline written. */
  readonly fanOutLag: Histogram;
  /** Lists built from MySQL, by what (home, recent) and result (stored, void). */
  readonly rebuilds: Counter<"what" | "result">;
  /** Home pages served, by source: redis, redis_mysql (continued below the list in MySQL), mysql (Redis unavailable or absent). */
  readonly homePages: Counter<"source">;
  /** Batches of a page's tweets hydrated, by source: cache (this process, from the caches alone), tweet_service (BatchGetTweets). */
  readonly hydrations: Counter<"source">;
  /** Event streams open in this process. */
  readonly streams: Gauge;
  /** Core NATS subscriptions to live events held (one per event domain while any stream is open, else none). */
  readonly streamSubscriptions: Gauge;
  /** Events pushed to streams, by kind (home_tweet, mention, like, follow, notification); keepalives are not counted. */
  readonly streamEvents: Counter<"kind">;
  /** Streams cut off because the client fell behind. */
  readonly streamCutoffs: Counter;
}

export function createTimelineMetrics(metrics: Metrics): TimelineMetrics {
  const registers = [metrics.registry];
  return {
    fanOutDeliveries: new Counter({
      name: "chirp_timeline_fanout_deliveries_total",
      help: "Home timelines a new tweet was written to (delivered), or skipped because the list is absent (inactive or never read; rebuilt on the next read).",
      labelNames: ["result"],
      registers,
    }),
    fanOutTweets: new Counter({
      name: "chirp_timeline_fanout_tweets_total",
      help: "New tweets by path: fanned_out to followers, or hot (author above the follower threshold; merged at read time).",
      labelNames: ["path"],
      registers,
    }),
    fanOutLag: new Histogram({
      name: "chirp_timeline_fanout_lag_seconds",
      help: "From a TweetCreated event's storage in JetStream to the last home timeline written.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    rebuilds: new Counter({
      name: "chirp_timeline_rebuilds_total",
      help: "Lists built from MySQL, by what (home, recent) and result (stored, void: the list vanished meanwhile).",
      labelNames: ["what", "result"],
      registers,
    }),
    homePages: new Counter({
      name: "chirp_timeline_home_pages_total",
      help: "Home timeline pages served, by source (redis; redis_mysql: continued below the Redis list from MySQL; mysql: without Redis).",
      labelNames: ["source"],
      registers,
    }),
    hydrations: new Counter({
      name: "chirp_timeline_hydrations_total",
      help: "Batches of a timeline page's tweets hydrated, by source (cache: from the tweet, like-state and profile caches in this process; tweet_service: BatchGetTweets, when the caches lacked something).",
      labelNames: ["source"],
      registers,
    }),
    streams: new Gauge({
      name: "chirp_timeline_streams",
      help: "StreamEvents streams open in this process.",
      registers,
    }),
    streamSubscriptions: new Gauge({
      name: "chirp_timeline_stream_subscriptions",
      help: "Core NATS subscriptions to live events this process holds: one per event domain while any StreamEvents stream is open here, none otherwise.",
      registers,
    }),
    streamEvents: new Counter({
      name: "chirp_timeline_stream_events_total",
      help: "Events pushed to StreamEvents streams, by kind (home_tweet, mention, like, follow, notification); keepalives are not counted.",
      labelNames: ["kind"],
      registers,
    }),
    streamCutoffs: new Counter({
      name: "chirp_timeline_stream_cutoffs_total",
      help: "Streams ended with ResourceExhausted because the client fell too far behind.",
      registers,
    }),
  };
}
