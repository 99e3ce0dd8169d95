import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { Media } from "../../gen/chirp/media/v1/media_pb.js";
import {
  BatchGetTweetsResponseSchema,
  DeleteTweetResponseSchema,
  GetTweetResponseSchema,
  ImportRepostResponseSchema,
  ImportTweetResponseSchema,
  LikeTweetResponseSchema,
  ListAuthorTweetsResponseSchema,
  ListLikedTweetsResponseSchema,
  PostTweetResponseSchema,
  RepostResponseSchema,
  TweetRefSchema,
  UnlikeTweetResponseSchema,
  UnrepostResponseSchema,
  type PostTweetRequest,
  type TweetService,
} from "../../gen/chirp/tweet/v1/tweet_service_pb.js";
import type { Tweet } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import { callerOf, requireCaller } from "../../lib/auth/caller.js";
import { parseId } from "../../lib/ids.js";
import { onBehalfOf, userExists } from "../../lib/rpc/mesh-clients.js";
import { requestIdOf } from "../../lib/rpc/metadata.js";
import { publishRow } from "./present.js";
import type { TweetContext } from "./context.js";
import { refuseIfBlocked } from "./blocks.js";
import { announceLikeChange } from "./events.js";
import { decodeLikesPageToken, encodeLikesPageToken } from "./page-token.js";
import { presentTweetCore } from "./present.js";
import type { TweetRef } from "./reads.js";
import { answerBatch, inOrder, type LoadBatch } from "../../lib/tweet-presenter.js";
import { NO_UPPER_BOUND, type TweetRow } from "./store.js";
import { parseTweetText } from "./text.js";

const DEFAULT_PAGE_SIZE = 20;
const notFound = (): ConnectError => new ConnectError("tweet not found", Code.NotFound);

/** TweetService handlers: validate, call the store, shape the response (services/tweet/README.md). */
export function routes(ctx: TweetContext): Partial<ServiceImpl<typeof TweetService>> {
  const { store, cache, lookup, reader } = ctx;

  /** The tweet's author (its shard), or NotFound. */
  const authorOf = async (tweetId: bigint): Promise<bigint> => {
    const author = (await lookup.authorsOf([tweetId])).get(tweetId);
    if (author === undefined) throw notFound();
    return author;
  };

  /** After a committed change: the cache has this version before the call may return OK. */
  const publish = (row: TweetRow): Promise<void> => publishRow(cache, row);

  /**
   * The replied-to and quoted tweets' sides of a tweet posted or deleted,
   * before the call returns; if that fails the tweet stands and the refs
   * consumer completes it.
   */
  const recordRefEdges = async (row: TweetRow, live: boolean, hctx: HandlerContext): Promise<void> => {
    if (row.replyToTweetId === 0n && row.quoteTweetId === 0n) return;
    try {
      await ctx.replies.recordEdges(row, live, requestIdOf(hctx));
    } catch (err) {
      ctx.log.warn({ err: (err as Error).message, tweet_id: String(row.id) }, "reply or quote edge not written; the refs consumer will");
    }
  };

  /** A deleted tweet found while acting on it: its tombstone is made sure of (best effort), then NotFound. */
  const deletedTweet = async (row: TweetRow): Promise<never> => {
    await publish(row).catch(() => {});
    throw notFound();
  };

  /** The ids of the users the handles name (unknown handles ignored), in one BatchGetUsers. */
  const resolveMentions = async (handles: readonly string[], hctx: HandlerContext): Promise<bigint[]> => {
    if (handles.length === 0) return [];
    const { users } = await ctx.clients.user.batchGetUsers({ handles: [...handles] }, onBehalfOf(hctx));
    return users.map((u) => u.id);
  };

  const checkLocation = (req: PostTweetRequest): void => {
    const loc = req.location;
    // The proto bounds the range; NaN passes no range check but say it here too.
    if (loc !== undefined && !(Number.isFinite(loc.latitude) && Number.isFinite(loc.longitude))) {
      throw new ConnectError("location must be finite degrees", Code.InvalidArgument);
    }
  };

  const setLike = async (tweetId: bigint, liked: boolean, hctx: HandlerContext): Promise<number> => {
    const callerId = requireCaller(hctx);
    const authorId = await authorOf(tweetId);
    // Taking a like back is always allowed.
    if (liked) await refuseIfBlocked(ctx.relations, callerId, [authorId], hctx);
    const result = await store.setLike(authorId, tweetId, callerId, liked, announceLikeChange(ctx.ids, requestIdOf(hctx)));
    if (result.kind === "missing") throw notFound();
    if (result.kind === "deleted") return deletedTweet(result.row);
    // Also when nothing changed: a retry after an Unavailable publish completes it.
    // The row as the transaction left it (likes batched after this one may follow it).
    await publish(result.latest);
    // The liker's own next read knows their like at that version (best effort: a miss reads the primary).
    await ctx.liked?.write(callerId, [{ tweetId, version: result.latest.version, liked: result.likedAtLatest, reposted: result.reposted }]);
    // The count just after this change, as if the batch's changes had run one by one.
    return result.row.likeCount;
  };

  /**
   * A tweet by the caller, minted now (PostTweet) or at the past millisecond
   * `atMs` (ImportTweet), which the tweets it replies to and quotes must not
   * postdate.
   */
  const post = async (req: PostTweetRequest, hctx: HandlerContext, atMs?: number): Promise<Tweet> => {
    // Input first (before the caller check, as protovalidate's rules are):
    // bad input is InvalidArgument whoever sends it, and writes nothing.
    const text = parseTweetText(req.text, req.mediaIds.length > 0);
    checkLocation(req);
    const authorId = requireCaller(hctx);
    // The tweets it replies to and quotes must be live (one read for both).
    const refs = [req.replyToTweetId, req.quoteTweetId].filter((id) => id !== 0n);
    const live = refs.length === 0 ? undefined : await reader.loadByIds(refs, undefined);
    if (req.replyToTweetId !== 0n && !live!.has(req.replyToTweetId)) throw new ConnectError("replied-to tweet not found", Code.NotFound);
    if (req.quoteTweetId !== 0n && !live!.has(req.quoteTweetId)) throw new ConnectError("quoted tweet not found", Code.NotFound);
    if (live !== undefined) await refuseIfBlocked(ctx.relations, authorId, [...live.values()].map((t) => t.core.authorId), hctx);
    if (atMs !== undefined && refs.some((ref) => parseId(ref).timeMs > atMs)) {
      throw new ConnectError("create_time: a reply or quote cannot predate the tweet it names", Code.InvalidArgument);
    }
    // Mentions are resolved while the lookup row is written (writes.create), unless media
    // are attached first: then they are resolved before (no media attached for a tweet a
    // failed resolution would never write). The guard keeps an early throw below from
    // leaving the promise's rejection unheard; create still gets it.
    const mentions = resolveMentions(text.mentionHandles, hctx);
    mentions.catch(() => {});
    // An imported tweet's id is claimed (its lookup row written) before anything else of it.
    const id = atMs === undefined ? ctx.writes.mint(authorId) : await ctx.writes.claimAt(authorId, atMs);
    const createTimeMicros = BigInt(parseId(id).timeMs) * 1000n;
    // Media first: the media service checks ownership (NotFound,
    // PermissionDenied, FailedPrecondition) and attaches all or nothing,
    // before anything of the tweet is written.
    let media: Media[] = [];
    if (req.mediaIds.length > 0) {
      await mentions;
      ({ media } = await ctx.clients.media.attachMedia({ tweetId: id, mediaIds: req.mediaIds }, onBehalfOf(hctx)));
    }
    // The lookup row, then the tweet; the author's cached profile goes (writes.ts).
    let warmed: { readonly done: Promise<void>; readonly core: Tweet } | undefined;
    const created = await ctx.writes.create(
      {
        id,
        authorId,
        text: text.text,
        replyToTweetId: req.replyToTweetId,
        quoteTweetId: req.quoteTweetId,
        repostOfTweetId: 0n,
        mediaIds: req.mediaIds,
        latitude: req.location?.latitude ?? null,
        longitude: req.location?.longitude ?? null,
        hashtags: text.hashtags,
        mentions,
        urls: text.urls,
        createTimeMicros,
      },
      requestIdOf(hctx),
      // The tweet's cache entry goes in with the author's settled profile (one Redis round trip).
      {
        again: atMs !== undefined,
        alongside: (written) => {
          const core = presentTweetCore(written);
          warmed = { done: reader.warm(written.id, { kind: "tweet", version: written.version, tweet: core }), core };
          return warmed.done;
        },
      },
    );
    // A fresh id's tweet cannot be there already; an imported one's only if two calls claimed the same id, which the lookup's key forbids.
    if (created === undefined) throw new ConnectError(`tweet ${id} was written by another call`, Code.Aborted);
    const { row } = created;
    await recordRefEdges(row, true, hctx);
    const core = warmed?.core ?? presentTweetCore(row);
    // The cache entry, unless it went in with the author's profile, and the answer's author are read
    // and written at once (one Redis round trip where they were two in a row): warm never fails, and
    // present does not read the tweet's entry.
    // The author as the tweet's transaction left them (writes.ts), when it read them; otherwise their
    // cached profile was just cleared (its tweet count changed): asked for without a look in the
    // cache, and only once the clearing is done, so the user service's read cannot find the old
    // entry and its fill lease postdates the clearing (lib/user-cache.ts).
    const author = created.author !== undefined ? Promise.resolve(new Map([[authorId, created.author]])) : reader.prefetchAuthors([authorId], hctx, true);
    const [, [tweet]] = await Promise.all([warmed?.done ?? reader.warm(id, { kind: "tweet", version: row.version, tweet: core }), reader.present([{ core, liked: false }], hctx, media, author)]);
    return tweet!;
  };

  return {
    async postTweet(req, hctx) {
      return create(PostTweetResponseSchema, { tweet: await post(req, hctx) });
    },

    async importTweet(req, hctx) {
      return create(ImportTweetResponseSchema, { tweet: await post(req.tweet!, hctx, timestampDate(req.createTime!).getTime()) });
    },

    async getTweet(req, hctx) {
      const authorId = await authorOf(req.tweetId);
      const loaded = (await reader.load([{ id: req.tweetId, authorId }], callerOf(hctx))).get(req.tweetId);
      if (loaded === undefined) throw notFound();
      const [tweet] = await reader.present([loaded], hctx);
      return create(GetTweetResponseSchema, { tweet });
    },

    async deleteTweet(req, hctx) {
      const callerId = requireCaller(hctx);
      const authorId = await authorOf(req.tweetId);
      const result = await ctx.writes.remove(authorId, req.tweetId, callerId, requestIdOf(hctx));
      if (result.kind === "missing") throw notFound();
      if (result.kind === "deleted") return deletedTweet(result.row);
      if (result.kind === "forbidden") throw new ConnectError("only the author can delete a tweet", Code.PermissionDenied);
      await publish(result.row);
      await recordRefEdges(result.row, false, hctx);
      return create(DeleteTweetResponseSchema);
    },

    async likeTweet(req, hctx) {
      return create(LikeTweetResponseSchema, { likeCount: await setLike(req.tweetId, true, hctx) });
    },

    async unlikeTweet(req, hctx) {
      return create(UnlikeTweetResponseSchema, { likeCount: await setLike(req.tweetId, false, hctx) });
    },

    async listLikedTweets(req, hctx) {
      const pageSize = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : req.pageSize;
      const after = req.pageToken === "" ? undefined : decodeLikesPageToken(req.pageToken, req.userId);
      const viewer = callerOf(hctx);
      // One's own list from the primary; anyone else's may come from a replica.
      const rows = await store.listLikes(req.userId, after, pageSize + 1, viewer === req.userId);
      const page = rows.slice(0, pageSize);
      if (page.length === 0 && after === undefined && !(await userExists(ctx.clients, req.userId, onBehalfOf(hctx)))) {
        throw new ConnectError("user not found", Code.NotFound);
      }
      // The likes know their tweets' authors: no lookup. Deleted tweets drop out here.
      const loaded = await reader.load(
        page.map((r) => ({ id: r.tweetId, authorId: r.authorId })),
        viewer,
      );
      const tweets = await reader.present(inOrder(page.map((r) => r.tweetId), loaded), hctx);
      const last = page.at(-1);
      const nextPageToken =
        rows.length > pageSize && last !== undefined ? encodeLikesPageToken(req.userId, { likeTimeMicros: last.likeTimeMicros, tweetId: last.tweetId }) : "";
      return create(ListLikedTweetsResponseSchema, { tweets, nextPageToken });
    },

    async batchGetTweets(req, hctx) {
      // Ids to authors through the lookup; the originals the caller named, by the authors it gave.
      const loadBatch: LoadBatch = async (ids, originals, viewer) => {
        const refs: TweetRef[] = [...(await lookup.authorsOf(ids))].map(([id, authorId]) => ({ id, authorId }));
        for (const [id, authorId] of originals) if (!ids.includes(id)) refs.push({ id, authorId });
        return reader.load(refs, viewer);
      };
      return create(BatchGetTweetsResponseSchema, { tweets: await answerBatch(reader, loadBatch, req, hctx) });
    },

    async importRepost(req, hctx) {
      return create(ImportRepostResponseSchema, { repostCount: await ctx.reposts.repost(req.tweetId, hctx, timestampDate(req.createTime!).getTime()) });
    },

    async repost(req, hctx) {
      return create(RepostResponseSchema, { repostCount: await ctx.reposts.repost(req.tweetId, hctx) });
    },

    async unrepost(req, hctx) {
      return create(UnrepostResponseSchema, { repostCount: await ctx.reposts.unrepost(req.tweetId, hctx) });
    },

    async getThread(req, hctx) {
      return ctx.replies.getThread(req, hctx);
    },

    async listAuthorTweets(req) {
      const walks = req.walks.map((w) => ({ authorId: w.authorId, before: w.beforeId === 0n ? NO_UPPER_BOUND : w.beforeId, atLeast: w.atLeastId, limit: w.limit }));
      const rows = await store.walkAuthors(walks, req.primary);
      // A repost's ref names its original and the original's author, so a timeline entry built from it carries both (timeline entries.ts).
      const originals = rows.flatMap((r) => (r.repostOfTweetId === undefined ? [] : [r.repostOfTweetId]));
      const originalAuthors = originals.length === 0 ? new Map<bigint, bigint>() : await lookup.authorsOf(originals);
      return create(ListAuthorTweetsResponseSchema, {
        refs: rows.map((r) => {
          const originalAuthor = r.repostOfTweetId === undefined ? undefined : originalAuthors.get(r.repostOfTweetId);
          return create(TweetRefSchema, {
            tweetId: r.id,
            authorId: r.authorId,
            ...(originalAuthor === undefined ? {} : { repostOfTweetId: r.repostOfTweetId, repostOfAuthorId: originalAuthor }),
          });
        }),
      });
    },
  };
}

