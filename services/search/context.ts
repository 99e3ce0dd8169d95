import { Counter, Histogram } from "prom-client";
import { consume, type EventConsumer } from "../../lib/events/consumer.js";
import type { ServiceContext } from "../../lib/service-context.js";
import { loadSearchConfig, type SearchConfig } from "./config.js";
import { SEARCH_EVENTS, SEARCH_INDEX_DURABLE, SEARCH_TRENDS_DURABLE, indexHandler, searchEventMetrics, trendsHandler } from "./events.js";
import type { FanOutOptions } from "./fan-out.js";
import { createIndexWriter } from "./index-writer.js";
import { createSearchStore, type SearchStore } from "./store.js";
import { createTrends, type Trends } from "./trends.js";

/** The shared service context plus the index store, the trend counts and the two event consumers. */
export interface SearchContext extends ServiceContext {
  readonly search: SearchConfig;
  readonly store: SearchStore;
  /** Absent without REDIS_URL: GetTrends is then Unavailable. */
  readonly trends: Trends | undefined;
  /** What a query's fan-out needs (router, store, per-shard deadline, metrics). */
  readonly fanOut: FanOutOptions;
  readonly searchMetrics: { readonly queries: Counter<"result">; readonly terms: Histogram };
}

export async function createSearchContext(ctx: ServiceContext): Promise<SearchContext> {
  const search = loadSearchConfig(ctx.env);
  const log = ctx.log.child({ component: "search" });
  const store = createSearchStore(ctx.router);
  const trends =
    ctx.redis === undefined
      ? undefined
      : createTrends({ redis: ctx.redis, prefix: search.trendsPrefix, windowMs: search.trendsWindowMs, bucketMs: search.trendsBucketMs });

  const registry = ctx.metrics.registry;
  const shardDuration = new Histogram({
    name: "chirp_search_shard_query_duration_seconds",
    help: "One index shard's part of a search, by shard and result (ok, error, timeout).",
    labelNames: ["shard", "result"],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const searchMetrics = {
    queries: new Counter({
      name: "chirp_search_queries_total",
      help: "SearchTweets pages served, by result (complete, partial).",
      labelNames: ["result"],
      registers: [registry],
    }),
    terms: new Histogram({
      name: "chirp_search_query_terms",
      help: "Distinct terms per query.",
      buckets: [1, 2, 3, 4, 6, 8, 12, 16],
      registers: [registry],
    }),
  };
  const fanOut: FanOutOptions = {
    router: ctx.router,
    store,
    timeoutMs: search.shardTimeoutMs,
    log,
    observe: (shard, result, seconds) => shardDuration.observe({ shard, result }, seconds),
  };

  const eventMetrics = searchEventMetrics(ctx.metrics);
  const consumers: EventConsumer[] = [];
  if (ctx.bus === undefined) log.warn("NATS_URL not set: the search index and trends are not kept up to date");
  else {
    consumers.push(
      consume({
        bus: ctx.bus,
        durable: SEARCH_INDEX_DURABLE,
        subjects: SEARCH_EVENTS,
        handler: indexHandler(store, createIndexWriter(store, { lingerMs: search.indexLingerMs }), eventMetrics),
        concurrency: search.indexConcurrency,
        log,
        metrics: ctx.metrics,
      }),
    );
    if (trends === undefined) log.warn("REDIS_URL not set: trends are not counted");
    else {
      consumers.push(
        consume({
          bus: ctx.bus,
          durable: SEARCH_TRENDS_DURABLE,
          subjects: SEARCH_EVENTS,
          handler: trendsHandler(trends, eventMetrics),
          log,
          metrics: ctx.metrics,
        }),
      );
    }
  }
  return {
    ...ctx,
    search,
    store,
    trends,
    fanOut,
    searchMetrics,
    // The consumers, before the shared bus closes.
    close: async () => {
      await Promise.all(consumers.map((c) => c.stop()));
    },
  };
}
