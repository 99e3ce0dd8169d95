// Replies, quotes and threads. A reply or a quote is a tweet on its author's
// shard that names another tweet (reply_to_tweet_id, quote_tweet_id); the
// other tweet's side is an edge (tweet_replies, tweet_quotes) on THAT tweet's
// shard, written with its reply_count or quote_count under its row's lock,
// so the counts are exact (migrations 0010, 0011).
//
// The edge is written after the new tweet commits: by PostTweet (and
// DeleteTweet) before it returns, and, should that step fail after the
// tweet committed, by this service's consumer of TweetCreated/TweetDeleted.
// An edge only moves absent -> live -> deleted (or absent -> deleted), so
// both writers may run in any order, any number of times.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { Counter } from "prom-client";
import { TweetSchema, type Tweet } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { GetThreadResponseSchema, type GetThreadRequest, type GetThreadResponse } from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import { callerOf } from "../../lib/auth/caller.js";
import type { EventBus } from "../../lib/events/bus.js";
import { consume, type EventConsumer } from "../../lib/events/consumer.js";
import { EVENTS } from "../../lib/events/subjects.js";
import type { IdGenerator } from "../../lib/ids.js";
import type { Logger } from "../../lib/logger.js";
import type { Metrics } from "../../lib/metrics.js";
import { NO_RELATIONS, type RelationCache } from "../../lib/relations.js";
import { onBehalfOf } from "../../lib/rpc/mesh-clients.js";
import { announceRefEdge } from "./events.js";
import type { AuthorLookup } from "./lookup.js";
import { decodeRepliesPageToken, encodeRepliesPageToken } from "./page-token.js";
import type { LoadedTweet, TweetReader } from "./reads.js";
import type { Reposts } from "./reposts.js";
import type { RefKind, TweetRefRow, TweetRow, TweetStore } from "./store.js";

/** The durable consumer that completes reply and quote edges; shared by every tweet instance. */
export const REFS_INDEX_DURABLE = "tweet-refs-index";

/** Ancestors a thread returns at most; a longer chain starts at this one. */
export const MAX_ANCESTORS = 100;

const DEFAULT_PAGE_SIZE = 20;

export interface Replies {
  /**
   * The replied-to and quoted tweets' sides of a tweet that was posted
   * (live) or deleted: one result per reference it has. Publishes each
   * target's new version to the cache before returning. "missing": the
   * target has no row (never for a tweet PostTweet accepted).
   */
  recordEdges(tweet: TweetRefs, live: boolean, requestId?: string): Promise<Array<"changed" | "current" | "missing">>;
  getThread(req: GetThreadRequest, hctx: HandlerContext): Promise<GetThreadResponse>;
}

/** A tweet and what it refers to (0: nothing). */
export interface TweetRefs {
  readonly id: bigint;
  readonly authorId: bigint;
  readonly replyToTweetId: bigint;
  readonly quoteTweetId: bigint;
}

export function createReplies(deps: {
  store: TweetStore;
  ids: IdGenerator;
  lookup: AuthorLookup;
  reader: TweetReader;
  /** After a committed change: the cache holds the row's version before this resolves. */
  publish: (row: TweetRow) => Promise<void>;
  /** A signed-in viewer's blocks: a thread leaves out the tweets of users they have a block with. */
  relations: RelationCache;
}): Replies {
  const { store, lookup, reader } = deps;
  const notFound = (): ConnectError => new ConnectError("tweet not found", Code.NotFound);
  const authorOf = async (tweetId: bigint): Promise<bigint | undefined> => (await lookup.authorsOf([tweetId])).get(tweetId);

  /**
   * The chain above a tweet, nearest first: live ones loaded for the viewer,
   * deleted or unknown ones as their id only. A deleted tweet's row keeps its
   * reply_to_tweet_id, so the walk goes on through it.
   */
  const ancestors = async (parentId: bigint, viewer: bigint | undefined): Promise<Array<LoadedTweet | bigint>> => {
    const chain: Array<LoadedTweet | bigint> = [];
    let next = parentId;
    while (next !== 0n && chain.length < MAX_ANCESTORS) {
      const id = next;
      const authorId = await authorOf(id);
      if (authorId === undefined) {
        chain.push(id);
        break;
      }
      const loaded = (await reader.load([{ id, authorId }], viewer)).get(id);
      if (loaded !== undefined) {
        chain.push(loaded);
        next = loaded.core.replyToTweetId;
        continue;
      }
      chain.push(id);
      const [found] = await store.readTweets(store.tweetShard(authorId), [id], undefined);
      next = found?.row.replyToTweetId ?? 0n;
    }
    return chain;
  };

  return {
    async recordEdges(tweet, live, requestId) {
      const refs: Array<[RefKind, bigint]> = [];
      if (tweet.replyToTweetId !== 0n) refs.push(["reply", tweet.replyToTweetId]);
      if (tweet.quoteTweetId !== 0n) refs.push(["quote", tweet.quoteTweetId]);
      return Promise.all(
        refs.map(async ([kind, targetId]) => {
          const targetAuthorId = await authorOf(targetId);
          if (targetAuthorId === undefined) return "missing" as const;
          const ref = { id: tweet.id, authorId: tweet.authorId };
          const result = await store.setRefEdge(kind, targetAuthorId, targetId, ref, live, announceRefEdge(deps.ids, requestId));
          if (result.kind === "missing") return "missing" as const;
          // Also when nothing changed: a retry after a failed publish completes it.
          await deps.publish(result.target);
          return result.changed ? ("changed" as const) : ("current" as const);
        }),
      );
    },

    async getThread(req, hctx) {
      const viewer = callerOf(hctx);
      const pageSize = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : req.pageSize;
      const after = req.pageToken === "" ? 0n : decodeRepliesPageToken(req.pageToken, req.tweetId);
      // The viewer's blocks (either way) come with the lookup: one more Redis read, no SQL.
      const [authorId, rel] = await Promise.all([
        authorOf(req.tweetId),
        viewer === undefined ? NO_RELATIONS : deps.relations.get(viewer, onBehalfOf(hctx)),
      ]);
      if (authorId === undefined) throw notFound();
      if (rel.blocks.has(authorId)) throw new ConnectError("blocked", Code.PermissionDenied);
      const focal = (await reader.load([{ id: req.tweetId, authorId }], viewer)).get(req.tweetId);
      if (focal === undefined) throw notFound();
      // A signed-in caller reads the replies from the primary: their own reply
      // is there the moment PostTweet returned. Anyone else within the lag bound.
      const [chain, refs] = await Promise.all([
        ancestors(focal.core.replyToTweetId, viewer),
        store.listReplies(authorId, req.tweetId, after, pageSize + 1, viewer !== undefined),
      ]);
      const page: TweetRefRow[] = refs.slice(0, pageSize);
      const loadedReplies = await reader.load(page, viewer);
      // Replies by users the viewer has a block with are left out (the page may come out short, with a token).
      const replies = page.flatMap((r) => (rel.blocks.has(r.authorId) ? [] : (loadedReplies.get(r.id) ?? [])));
      // Their ancestors show as their id only, as a deleted one does.
      const above = chain.reverse().map((a) => (typeof a !== "bigint" && rel.blocks.has(a.core.authorId) ? a.core.id : a));
      const live = above.filter((a): a is LoadedTweet => typeof a !== "bigint");
      // One presentation for all of them: their authors and media are read together.
      const presented = await reader.present([...live, focal, ...replies], hctx);
      let i = 0;
      const ancestorsOut: Tweet[] = above.map((a) => (typeof a === "bigint" ? create(TweetSchema, { id: a }) : presented[i++]!));
      const tweet = presented[i++]!;
      return create(GetThreadResponseSchema, {
        ancestors: ancestorsOut,
        tweet,
        replies: presented.slice(i),
        nextPageToken: refs.length > pageSize ? encodeRepliesPageToken(req.tweetId, page.at(-1)!.id) : "",
      });
    },
  };
}

/**
 * Completes the reply and quote edges PostTweet or DeleteTweet could not
 * write (a crash or an error after the tweet's own commit): every
 * TweetCreated and TweetDeleted of a reply or quote is applied, which changes
 * nothing when the call already did it.
 */
export function startRefsIndex(opts: { bus: EventBus; replies: Replies; reposts: Reposts; log: Logger; metrics?: Metrics }): EventConsumer {
  const applied = opts.metrics
    ? new Counter({
        name: "chirp_tweet_refs_index_total",
        help: "Reply and quote events applied to the referenced tweets' edges, by result (changed, current: already applied, missing: no such tweet).",
        labelNames: ["result"] as const,
        registers: [opts.metrics.registry],
      })
    : undefined;
  return consume({
    bus: opts.bus,
    durable: REFS_INDEX_DURABLE,
    subjects: [EVENTS.tweetCreated, EVENTS.tweetDeleted],
    log: opts.log,
    ...(opts.metrics === undefined ? {} : { metrics: opts.metrics }),
    handler: async (event) => {
      const m = event.message;
      const live = event.subject === EVENTS.tweetCreated.subject;
      if (m.repostOfTweetId !== 0n) {
        applied?.inc({ result: await opts.reposts.settle({ id: m.tweetId, authorId: m.authorId, repostOfTweetId: m.repostOfTweetId }, live) });
        return;
      }
      if (m.replyToTweetId === 0n && m.quoteTweetId === 0n) return;
      const results = await opts.replies.recordEdges({ id: m.tweetId, authorId: m.authorId, replyToTweetId: m.replyToTweetId, quoteTweetId: m.quoteTweetId }, live);
      for (const result of results) applied?.inc({ result });
    },
  });
}
