import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  GetHomeTimelineResponseSchema,
  GetUserTimelineResponseSchema,
  type StreamEventsResponse,
  type TimelineService,
} from "../../gen/chirp/timeline/v1/timeline_service_pb.js";
import type { Tweet } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { callerOf, requireCaller } from "../../lib/auth/caller.js";
import { hides, type Relations } from "../../lib/relations.js";
import { onBehalfOf, userExists } from "../../lib/rpc/mesh-clients.js";
import { createHydrator } from "./hydrate.js";
import type { TimelineContext } from "./context.js";
import type { Entry } from "./entries.js";
import { decodeTimelineToken, encodeTimelineToken } from "./page-token.js";
import { keepalive } from "./stream.js";

const DEFAULT_PAGE_SIZE = 20;
/** BatchGetTweets takes at most 100 ids; pages hold at most 100. */
const HYDRATE_BATCH = 100;

/** TimelineService handlers: skeleton (reads.ts) -> hydrate (hydrate.ts: the caches, else TweetService/BatchGetTweets, for the caller) -> present. */
export function routes(ctx: TimelineContext): Partial<ServiceImpl<typeof TimelineService>> {
  const { reader } = ctx;

  const hydrateBatch = createHydrator({
    clients: ctx.clients,
    tweetCache: ctx.tweetCache,
    likedCache: ctx.likedCache,
    userCache: ctx.userCache,
    metrics: ctx.timelineMetrics,
    log: ctx.log,
  });

  /**
   * The page's tweets in its order; deleted and missing ones drop out (the
   * page may come out short). A repost entry comes back as its original with
   * reposted_by; a tweet is on a page once, however many of the entries
   * (its own, reposts of it) name it: the newest one shows it.
   */
  const hydrate = async (entries: readonly Entry[], hctx: HandlerContext, rel?: Relations): Promise<Tweet[]> => {
    const found = new Map<bigint, Tweet>();
    for (let i = 0; i < entries.length; i += HYDRATE_BATCH) {
      for (const t of await hydrateBatch(entries.slice(i, i + HYDRATE_BATCH), hctx)) found.set(t.repostId === 0n ? t.id : t.repostId, t);
    }
    const shown = new Set<bigint>();
    return entries.flatMap((e) => {
      const t = found.get(e.id);
      if (t === undefined || shown.has(t.id)) return [];
      // A blocked or muted user's tweet that came in by someone else's repost; their quoted tweet goes too.
      if (rel !== undefined && hides(rel, t.authorId)) return [];
      if (rel !== undefined && t.quoteTweet !== undefined && hides(rel, t.quoteTweet.authorId)) t.quoteTweet = undefined;
      shown.add(t.id);
      return [t];
    });
  };

  return {
    async getHomeTimeline(req, hctx) {
      const callerId = requireCaller(hctx);
      const pageSize = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : req.pageSize;
      const before = decodeTimelineToken(req.pageToken, "home", callerId);
      const page = await reader.home(callerId, before, pageSize, hctx);
      return create(GetHomeTimelineResponseSchema, {
        tweets: await hydrate(page.entries, hctx, page.relations),
        nextPageToken: page.next === undefined ? "" : encodeTimelineToken("home", callerId, page.next),
      });
    },

    async getUserTimeline(req, hctx) {
      const pageSize = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : req.pageSize;
      const before = decodeTimelineToken(req.pageToken, "user", req.userId);
      // One's own timeline from the primary: a tweet shows the moment PostTweet returns.
      const page = await reader.user(req.userId, before, pageSize, callerOf(hctx) === req.userId);
      if (page.entries.length === 0 && before === undefined) {
        // An empty first page: NotFound if there is no such user.
        if (!(await userExists(ctx.clients, req.userId, onBehalfOf(hctx)))) throw new ConnectError("user not found", Code.NotFound);
      }
      return create(GetUserTimelineResponseSchema, {
        tweets: await hydrate(page.entries, hctx),
        nextPageToken: page.next === undefined ? "" : encodeTimelineToken("user", req.userId, page.next),
      });
    },

    async *streamEvents(_req, hctx): AsyncIterable<StreamEventsResponse> {
      const callerId = requireCaller(hctx);
      if (ctx.hub === undefined) throw new ConnectError("live events are not available", Code.Unavailable);
      const stream = await ctx.hub.open(callerId);
      try {
        // Sent once the stream is registered: every event after this reaches it.
        yield keepalive();
        for (;;) {
          const msg = await stream.next(hctx.signal);
          if (msg === undefined) return;
          yield msg;
        }
      } finally {
        stream.close();
      }
    },
  };
}
