import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  GetTrendsResponseSchema,
  SearchTweetsResponseSchema,
  TrendSchema,
  type SearchService,
} from "../../gen/chirp/search/v1/search_service_pb.js";
import type { Tweet } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { callerOf } from "../../lib/auth/caller.js";
import { cachedBatchGet, NotCached } from "../../lib/cached-tweets.js";
import { NO_RELATIONS } from "../../lib/relations.js";
import { onBehalfOf } from "../../lib/rpc/mesh-clients.js";
import { authorTerm, mentionTerm, phraseNeedle } from "./analyze.js";
import type { SearchContext } from "./context.js";
import { searchAllShards } from "./fan-out.js";
import type { Hit } from "./store.js";
import { decodeSearchPageToken, encodeSearchPageToken, queryFingerprint } from "./page-token.js";
import { canonicalQuery, parseQuery } from "./query.js";

const DEFAULT_PAGE_SIZE = 20;
const DEFAULT_TRENDS = 10;
/** Index reads per page when hydration drops tweets (deleted since they were indexed). */
const MAX_ROUNDS = 3;

/** SearchService handlers (services/search/README.md). */
export function routes(ctx: SearchContext): Partial<ServiceImpl<typeof SearchService>> {
  /** Handle -> user id through the user service; undefined for a handle nobody has. */
  const resolveHandle = async (handle: string, hctx: HandlerContext): Promise<bigint | undefined> => {
    try {
      const { user } = await ctx.clients.user.getUser({ lookup: { case: "handle", value: handle } }, onBehalfOf(hctx));
      return user?.id;
    } catch (err) {
      if (ConnectError.from(err).code === Code.NotFound) return undefined;
      throw err;
    }
  };

  const fromCaches = cachedBatchGet(ctx);

  /**
   * The tweets of `hits`: from the caches when they hold them all, otherwise
   * loaded per tweet shard (the author's) in parallel,
   * each under the hydration deadline: a shard that cannot be read leaves
   * its tweets out and is named in `failed`, rather than failing the page.
   * When every shard fails, it is the tweet service that is away: Unavailable.
   */
  const hydrate = async (hits: readonly Hit[], hctx: HandlerContext): Promise<{ byId: Map<bigint, Tweet>; failed: string[] }> => {
    // The caches first (lib/cached-tweets.ts): a page whose tweets they all hold needs no call.
    if (fromCaches !== undefined && hits.length > 0) {
      try {
        const tweets = await fromCaches({ tweetIds: hits.map((h) => h.tweetId) }, hctx);
        return { byId: new Map(tweets.map((t) => [t.id, t])), failed: [] };
      } catch (err) {
        if (!(err instanceof NotCached)) throw err;
      }
    }
    const groups = [...ctx.router.byShard(hits, (h) => ctx.router.shardForUser(h.authorId)).values()];
    const call = onBehalfOf(hctx);
    const timeoutMs = Math.min(call.timeoutMs ?? Number.MAX_SAFE_INTEGER, ctx.search.hydrateTimeoutMs);
    const loaded = await Promise.all(
      groups.map(async ({ shard, items }) => {
        try {
          const res = await ctx.clients.tweet.batchGetTweets({ tweetIds: items.map((h) => h.tweetId) }, { ...call, timeoutMs });
          return { shard: shard.name, tweets: res.tweets, err: undefined };
        } catch (err) {
          const code = ConnectError.from(err).code;
          if (code !== Code.Unavailable && code !== Code.DeadlineExceeded) throw err;
          ctx.log.warn({ shard: shard.name, code: Code[code] }, "search: tweets of a shard could not be loaded; answering without them");
          return { shard: shard.name, tweets: undefined, err };
        }
      }),
    );
    const failed = loaded.filter((l) => l.tweets === undefined);
    if (failed.length === loaded.length && failed[0] !== undefined) throw ConnectError.from(failed[0].err);
    const byId = new Map<bigint, Tweet>();
    for (const l of loaded) for (const t of l.tweets ?? []) byId.set(t.id, t);
    return { byId, failed: failed.map((f) => f.shard) };
  };

  return {
    async searchTweets(req, hctx) {
      // Skeleton: parse, check the token, resolve handles.
      const parsed = parseQuery(req.query);
      const fingerprint = queryFingerprint(canonicalQuery(parsed));
      let cursor = decodeSearchPageToken(req.pageToken, fingerprint);
      const pageSize = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : req.pageSize;
      ctx.searchMetrics.terms.observe(parsed.terms.length + parsed.mentions.length + parsed.authors.length);

      // A signed-in caller's blocks (either way; lib/relations.ts): those users' tweets are left out.
      const caller = callerOf(hctx);
      const [mentioned, authors, rel] = await Promise.all([
        Promise.all(parsed.mentions.map((h) => resolveHandle(h, hctx))),
        Promise.all(parsed.authors.map((h) => resolveHandle(h, hctx))),
        caller === undefined ? NO_RELATIONS : ctx.relations.get(caller, onBehalfOf(hctx)),
      ]);
      // A handle nobody has matches nothing, and neither does the query.
      if (mentioned.includes(undefined) || authors.includes(undefined)) return create(SearchTweetsResponseSchema, {});
      const terms = [
        ...new Set([
          ...parsed.terms,
          ...mentioned.map((id) => mentionTerm(id!)),
          ...authors.map((id) => authorTerm(id!)),
        ]),
      ];
      const needles = parsed.phrases.map(phraseNeedle);

      // Leave part of the caller's remaining time for hydration.
      const remaining = hctx.timeoutMs();
      const timeoutMs = remaining === undefined ? ctx.search.shardTimeoutMs : Math.max(10, Math.min(ctx.search.shardTimeoutMs, Math.floor(remaining / 3)));
      const fanOut = { ...ctx.fanOut, timeoutMs };

      const tweets: Tweet[] = [];
      const unavailable = new Set<string>();
      let next = "";
      for (let round = 0; round < MAX_ROUNDS && tweets.length < pageSize; round++) {
        const page = await searchAllShards(fanOut, { terms, needles, before: cursor, limit: pageSize - tweets.length });
        // No shard answered: the index is away, and an empty page would read as "no matches".
        if (page.unavailable.length > 0 && page.unavailable.length === ctx.fanOut.router.shards().length) {
          throw new ConnectError("search is unavailable: no index shard answered", Code.Unavailable);
        }
        for (const s of page.unavailable) unavailable.add(s);
        if (page.hits.length > 0) {
          // Hydrate: deleted tweets are left out by the tweet service; those of users the caller has a block with, here.
          const visible = page.hits.filter((h) => !rel.blocks.has(h.authorId));
          const { byId, failed } = visible.length === 0 ? { byId: new Map<bigint, Tweet>(), failed: [] } : await hydrate(visible, hctx);
          for (const s of failed) unavailable.add(s);
          for (const h of visible) {
            const t = byId.get(h.tweetId);
            if (t === undefined) continue;
            if (t.quoteTweet !== undefined && rel.blocks.has(t.quoteTweet.authorId)) t.quoteTweet = undefined;
            tweets.push(t);
          }
          cursor = page.hits[page.hits.length - 1]!.tweetId;
        }
        if (!page.hasMore || cursor === undefined) {
          next = "";
          break;
        }
        next = encodeSearchPageToken(fingerprint, cursor);
      }
      const partial = unavailable.size > 0;
      ctx.searchMetrics.queries.inc({ result: partial ? "partial" : "complete" });
      return create(SearchTweetsResponseSchema, {
        tweets,
        nextPageToken: next,
        partial,
        unavailableShards: [...unavailable].sort(),
      });
    },

    async getTrends(req) {
      if (ctx.trends === undefined) throw new ConnectError("trends are not available", Code.Unavailable);
      const limit = req.limit === 0 ? DEFAULT_TRENDS : req.limit;
      let top;
      try {
        top = await ctx.trends.top(limit);
      } catch (err) {
        ctx.log.warn({ err }, "trends: redis unavailable");
        throw new ConnectError("trends are not available", Code.Unavailable);
      }
      return create(GetTrendsResponseSchema, { trends: top.map((t) => create(TrendSchema, { hashtag: t.hashtag, tweetCount: t.tweetCount })) });
    },
  };
}
