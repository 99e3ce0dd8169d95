// The tweet events the search service consumes, and what it does with them.
// Two durable consumers, so the index (MySQL) and the trends (Redis) each
// keep their own position and retry their own failures: Redis being away
// never holds up the index, nor the other way round.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Counter, Histogram } from "prom-client";
import type { ConsumedEvent } from "../../lib/events/consumer.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { parseId } from "../../lib/ids.js";
import type { Metrics } from "../../lib/metrics.js";
import { analyzeTweet } from "./analyze.js";
import type { IndexWriter } from "./index-writer.js";
import type { SearchStore } from "./store.js";
import type { Trends } from "./trends.js";

/** Keeps the search index (search_docs, search_postings). */
export const SEARCH_INDEX_DURABLE = "search-index";
/** Keeps the trend counts in Redis. */
export const SEARCH_TRENDS_DURABLE = "search-trends";

/** The events both consumers read (the filter is chirp.tweet.v1.*; likes are acked unread). */
export const SEARCH_EVENTS = [EVENTS.tweetCreated, EVENTS.tweetDeleted] as const;

export type SearchEvent = ConsumedEvent<(typeof SEARCH_EVENTS)[number]>;

export interface SearchEventMetrics {
  readonly applied: Counter<"consumer" | "event" | "result">;
  /** Event stored in JetStream -> index rows committed. */
  readonly indexLag: Histogram;
}

export function searchEventMetrics(metrics: Metrics): SearchEventMetrics {
  return {
    applied: new Counter({
      name: "chirp_search_events_applied_total",
      help: "Tweet events applied by the search consumers, by consumer (index, trends), event and result.",
      labelNames: ["consumer", "event", "result"],
      registers: [metrics.registry],
    }),
    indexLag: new Histogram({
      name: "chirp_search_index_lag_seconds",
      help: "From a tweet event's storage in JetStream to its index rows committed.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [metrics.registry],
    }),
  };
}

/**
 * The index consumer's handler: idempotent, in any order (store.ts keeps
 * tombstones). Creations go through `writer` (group commit per shard).
 */
export function indexHandler(store: SearchStore, writer: IndexWriter, m?: SearchEventMetrics): (event: SearchEvent) => Promise<void> {
  return async (event) => {
    if (event.subject === EVENTS.tweetCreated.subject) {
      const t = event.message;
      // A repost has no text of its own; its original is indexed already.
      if (t.repostOfTweetId !== 0n) {
        m?.applied.inc({ consumer: "index", event: "tweet_created", result: "skipped" });
        return;
      }
      const doc = analyzeTweet({ text: t.text, authorId: t.authorId, hashtags: t.hashtags, mentions: t.mentions });
      const result = await writer.index({ tweetId: t.tweetId, authorId: t.authorId, body: doc.body, terms: doc.terms });
      m?.applied.inc({ consumer: "index", event: "tweet_created", result });
    } else {
      const result = await store.deleteTweet(event.message.tweetId, event.message.authorId);
      m?.applied.inc({ consumer: "index", event: "tweet_deleted", result });
    }
    m?.indexLag.observe(Math.max(0, Date.now() - event.publishTime.getTime()) / 1000);
  };
}

/** The trends consumer's handler. */
export function trendsHandler(trends: Trends, m?: SearchEventMetrics): (event: SearchEvent) => Promise<void> {
  return async (event) => {
    if (event.subject === EVENTS.tweetCreated.subject) {
      const t = event.message;
      const createMs = t.createTime === undefined ? parseId(t.tweetId).timeMs : timestampMs(t.createTime);
      const counted = await trends.created(t.tweetId, createMs, t.hashtags);
      m?.applied.inc({ consumer: "trends", event: "tweet_created", result: counted ? "counted" : "skipped" });
    } else {
      await trends.deleted(event.message.tweetId);
      m?.applied.inc({ consumer: "trends", event: "tweet_deleted", result: "applied" });
    }
  };
}
