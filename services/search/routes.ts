import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  GetTrendsResponseSchema,
  SearchTweetsResponseSchema,
  TrendSchema,
  type SearchService,
} from "../../gen/chirp/search/v1/search_service_pb.js";
import type { Tweet } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { onBehalfOf } from "../lib/rpc/mesh-clients.js";
import { authorTerm, mentionTerm, phraseNeedle } from "./analyze.js";
import type { SearchContext } from "./context.js";
import { searchAllShards } from "./fan-out.js";
import { decodeSearchPageToken, encodeSearchPageToken, queryFingerprint } from "./page-token.js";
import { canonicalQuery, parseQuery } from "./query.js";

const DEFAULT_PAGE_SIZE = 20;
const DEFAULT_TRENDS = 10;
/** Index reads per page when hydration drops tweets (deleted since they were indexed). */
const MAX_ROUNDS = 3;

/** SearchService handlers (docs/architecture.md, "Search and trends"). */
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

  return {
    async searchTweets(req, hctx) {
      // Skeleton: parse, check the token, resolve handles.
      const parsed = parseQuery(req.query);
      const fingerprint = queryFingerprint(canonicalQuery(parsed));
      let cursor = decodeSearchPageToken(req.pageToken, fingerprint);
      const pageSize = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : req.pageSize;
      ctx.searchMetrics.terms.observe(parsed.terms.length + parsed.mentions.length + parsed.authors.length);

      const [mentioned, authors] = await Promise.all([
        Promise.all(parsed.mentions.map((h) => resolveHandle(h, hctx))),
        Promise.all(parsed.authors.map((h) => resolveHandle(h, hctx))),
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

      // Leave half of the caller's remaining time for hydration.
      const remaining = hctx.timeoutMs();
      const timeoutMs = remaining === undefined ? ctx.search.shardTimeoutMs : Math.max(10, Math.min(ctx.search.shardTimeoutMs, Math.floor(remaining / 2)));
      const fanOut = { ...ctx.fanOut, timeoutMs };

      const tweets: Tweet[] = [];
      const unavailable = new Set<string>();
      let next = "";
      for (let round = 0; round < MAX_ROUNDS && tweets.length < pageSize; round++) {
        const page = await searchAllShards(fanOut, { terms, needles, before: cursor, limit: pageSize - tweets.length });
        for (const s of page.unavailable) unavailable.add(s);
        if (page.ids.length > 0) {
          // Hydrate: deleted tweets are left out by the tweet service.
          const { tweets: found } = await ctx.clients.tweet.batchGetTweets({ tweetIds: [...page.ids] }, onBehalfOf(hctx));
          const byId = new Map(found.map((t) => [t.id, t]));
          for (const id of page.ids) {
            const t = byId.get(id);
            if (t !== undefined) tweets.push(t);
          }
          cursor = page.ids[page.ids.length - 1]!;
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
