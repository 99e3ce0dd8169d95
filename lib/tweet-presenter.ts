// Presenting loaded tweets for a viewer: reposts shown as their originals
// with who reposted them, authors (the profile cache, then BatchGetUsers),
// media (BatchGetMedia) and quoted tweets (one level deep), over each tweet's
// cached core. Shared by the tweet service (GetTweet, BatchGetTweets, the
// liked list, threads), whose loader reads the tweet cache and then the
// database, and the timeline service, whose loader reads only the caches
// (cached-tweets.ts) and gives up on anything they lack: both present the
// same tweet the same way because this is the one place that does it.
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { Media } from "../gen/chirp/media/v1/media_pb.js";
import type { Tweet } from "../gen/chirp/tweet/v1/tweet_pb.js";
import type { User } from "../gen/chirp/user/v1/user_pb.js";
import { callerOf } from "./auth/caller.js";
import type { Logger } from "./logger.js";
import { onBehalfOf, type MeshClients } from "./rpc/mesh-clients.js";
import type { UserCache } from "./user-cache.js";

/** A live tweet as loaded: the viewer-independent part and the viewer's like and repost. */
export interface LoadedTweet {
  readonly core: Tweet;
  readonly liked: boolean;
  readonly reposted?: boolean;
}

/**
 * Live tweets among `ids` (deleted and unknown ones left out), by id, with
 * the viewer's like and repost of each. May reject (the timeline's
 * cache-only loader does when a cache lacks something).
 */
export type LoadByIds = (ids: readonly bigint[], viewer: bigint | undefined) => Promise<Map<bigint, LoadedTweet>>;

export interface TweetPresenter {
  /**
   * Authors and media added, in the order given. `knownMedia`: media already
   * at hand (PostTweet's AttachMedia answer), not asked for again.
   * `prefetched`: authors already being read (prefetchAuthors); any author it
   * lacks is read here. `loadedOriginals`: reposts' originals already
   * loaded for the viewer (BatchGetTweets' originals); any it lacks is loaded
   * here.
   */
  present(
    tweets: readonly LoadedTweet[],
    hctx: HandlerContext,
    knownMedia?: readonly Media[],
    prefetched?: Promise<Map<bigint, User>>,
    loadedOriginals?: ReadonlyMap<bigint, LoadedTweet>,
  ): Promise<Tweet[]>;
  /**
   * Starts reading these users now (before the tweets are loaded); never
   * rejects: a failed read is empty, and present() reads them again.
   * `changed`: their cached profiles were just cleared (a count changed), so
   * they are asked of the user service without first looking in the cache.
   */
  prefetchAuthors(ids: readonly bigint[], hctx: HandlerContext, changed?: boolean): Promise<Map<bigint, User>>;
}

/** What a BatchGetTweets call names: the tweets, and optionally their authors and reposts' originals (hints). */
export interface TweetBatch {
  readonly tweetIds: readonly bigint[];
  readonly authorIds?: readonly bigint[];
  readonly originals?: ReadonlyArray<{ readonly tweetId: bigint; readonly authorId: bigint }>;
}

/** Loads `ids` and the originals a batch named (id -> author) for `viewer`, into one map. */
export type LoadBatch = (ids: readonly bigint[], originals: ReadonlyMap<bigint, bigint>, viewer: bigint | undefined) => Promise<Map<bigint, LoadedTweet>>;

/**
 * BatchGetTweets' answer with `load` (the tweet service's: the cache, then
 * the primaries; another service's: the caches alone): the ids in order,
 * each once, reposts shown as their originals, deleted and unknown tweets
 * left out. The authors named are read now, so their read goes out with the
 * tweets' (one Redis round trip); the originals named are loaded with the
 * tweets, and their authors read with the others'.
 */
export async function answerBatch(presenter: TweetPresenter, load: LoadBatch, req: TweetBatch, hctx: HandlerContext): Promise<Tweet[]> {
  const ids = [...new Set(req.tweetIds)];
  const originals = new Map((req.originals ?? []).filter((o) => o.tweetId !== 0n && o.authorId !== 0n).map((o) => [o.tweetId, o.authorId]));
  const hints = [...(req.authorIds ?? []), ...originals.values()];
  const hinted = hints.length === 0 ? undefined : presenter.prefetchAuthors(hints, hctx);
  const loaded = await load(ids, originals, callerOf(hctx));
  return presenter.present(inOrder(ids, loaded), hctx, [], hinted, originals.size === 0 ? undefined : loaded);
}

/** The loaded tweets among `ids`, in that order. */
export function inOrder(ids: readonly bigint[], loaded: ReadonlyMap<bigint, LoadedTweet>): LoadedTweet[] {
  return ids.flatMap((id) => {
    const t = loaded.get(id);
    return t === undefined ? [] : [t];
  });
}

const BATCH = 100;

/** A tweet as a read shows it: for a repost, the original, who reposted it and the repost's id. */
interface Shown {
  readonly loaded: LoadedTweet;
  readonly reposter?: bigint;
  readonly repostId?: bigint;
}

export function createTweetPresenter(opts: {
  /** Loads reposts' originals and quoted tweets by id; without it a repost is left out and a quote is shown without its quoted tweet. */
  loadByIds?: LoadByIds | undefined;
  clients: Pick<MeshClients, "user" | "media">;
  /**
   * The profile cache, looked into before BatchGetUsers: a read whose authors
   * are all cached makes no call, and its profiles come on this process's
   * Redis connection, in the round trip of the tweets' own reads.
   */
  userCache?: Pick<UserCache, "peek"> | undefined;
  log: Logger;
}): TweetPresenter {
  const { loadByIds, clients, log } = opts;
  let mediaUnimplementedLogged = false;

  /** Users by id for the authors: the profile cache, then one BatchGetUsers per 100 of those it lacks. */
  const authors = async (ids: readonly bigint[], hctx: HandlerContext, peek = true): Promise<Map<bigint, User>> => {
    const byId = opts.userCache === undefined || !peek ? new Map<bigint, User>() : await opts.userCache.peek(ids);
    const unique = [...new Set(ids)].filter((id) => !byId.has(id));
    for (let i = 0; i < unique.length; i += BATCH) {
      const { users } = await clients.user.batchGetUsers({ userIds: unique.slice(i, i + BATCH) }, onBehalfOf(hctx));
      for (const u of users) byId.set(u.id, u);
    }
    return byId;
  };

  /** Media by id; none while the media service does not implement BatchGetMedia yet. */
  const media = async (ids: readonly bigint[], hctx: HandlerContext): Promise<Map<bigint, Media>> => {
    const byId = new Map<bigint, Media>();
    const unique = [...new Set(ids)];
    try {
      for (let i = 0; i < unique.length; i += BATCH) {
        const res = await clients.media.batchGetMedia({ mediaIds: unique.slice(i, i + BATCH) }, onBehalfOf(hctx));
        for (const m of res.media) byId.set(m.id, m);
      }
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Unimplemented) throw err;
      if (!mediaUnimplementedLogged) log.info("media service has no BatchGetMedia yet: tweets are returned with media ids only");
      mediaUnimplementedLogged = true;
    }
    return byId;
  };

  const presentAll = async (
    tweets: readonly LoadedTweet[],
    hctx: HandlerContext,
    knownMedia: readonly Media[],
    prefetched: Promise<Map<bigint, User>> | undefined,
    withQuotes: boolean,
    loadedOriginals?: ReadonlyMap<bigint, LoadedTweet>,
  ): Promise<Tweet[]> => {
    if (tweets.length === 0) return [];
    // A repost is shown as its original, with who reposted it (dropped when the original is gone).
    const shown: Shown[] = tweets.some((t) => t.core.repostOfTweetId !== 0n) ? await originalsOf(tweets, hctx, loadedOriginals) : tweets.map((loaded) => ({ loaded }));
    tweets = shown.map((s) => s.loaded);
    const known = new Map(knownMedia.map((m) => [m.id, m]));
    const mediaIds = tweets.flatMap((t) => t.core.mediaIds).filter((id) => !known.has(id));
    const authorIds = [...tweets.map((t) => t.core.authorId), ...shown.flatMap((s) => (s.reposter === undefined ? [] : [s.reposter]))];
    const users = async (): Promise<Map<bigint, User>> => {
      if (prefetched === undefined) return authors(authorIds, hctx);
      const got = await prefetched;
      const lacking = authorIds.filter((id) => !got.has(id));
      return lacking.length === 0 ? got : new Map([...got, ...(await authors(lacking, hctx))]);
    };
    const quotedIds = withQuotes ? [...new Set(tweets.map((t) => t.core.quoteTweetId).filter((id) => id !== 0n))] : [];
    const [byAuthor, fetched, quoted] = await Promise.all([
      users(),
      mediaIds.length === 0 ? new Map<bigint, Media>() : media(mediaIds, hctx),
      quotedIds.length === 0 ? new Map<bigint, Tweet>() : quotedTweets(quotedIds, hctx),
    ]);
    const mediaById = new Map([...known, ...fetched]);
    return shown.map(({ loaded: { core, liked, reposted }, reposter, repostId }) =>
      // A new object over the core's fields (the core may be shared: a
      // cache hit used twice in one batch): only top-level fields are set
      // here, and nothing writes into a tweet's nested messages.
      withViewerFields(core, {
        author: byAuthor.get(core.authorId),
        likedByViewer: liked,
        media: core.mediaIds.flatMap((id) => {
          const m = mediaById.get(id);
          return m === undefined ? [] : [m];
        }),
        quoteTweet: core.quoteTweetId === 0n ? undefined : quoted.get(core.quoteTweetId),
        repostedByViewer: reposted ?? false,
        repostedBy: reposter === undefined ? undefined : byAuthor.get(reposter),
        repostId: repostId ?? 0n,
      }),
    );
  };

  /** Each repost replaced by its original, loaded for the caller; reposts of a deleted or unknown original left out. */
  const originalsOf = async (tweets: readonly LoadedTweet[], hctx: HandlerContext, loaded?: ReadonlyMap<bigint, LoadedTweet>): Promise<Shown[]> => {
    const originals = new Map<bigint, LoadedTweet>();
    const ids: bigint[] = [];
    for (const id of new Set(tweets.map((t) => t.core.repostOfTweetId).filter((id) => id !== 0n))) {
      const have = loaded?.get(id);
      if (have === undefined) ids.push(id);
      else originals.set(id, have);
    }
    if (ids.length > 0 && loadByIds !== undefined) {
      for (const [id, t] of await loadByIds(ids, callerOf(hctx))) originals.set(id, t);
    }
    return tweets.flatMap((t) => {
      if (t.core.repostOfTweetId === 0n) return [{ loaded: t }];
      const original = originals.get(t.core.repostOfTweetId);
      return original === undefined ? [] : [{ loaded: original, reposter: t.core.authorId, repostId: t.core.id }];
    });
  };

  /** Quoted tweets, live ones only, presented for the caller one level deep (their own quotes are left unset). */
  const quotedTweets = async (ids: readonly bigint[], hctx: HandlerContext): Promise<Map<bigint, Tweet>> => {
    if (loadByIds === undefined) return new Map();
    const loaded = await loadByIds(ids, callerOf(hctx));
    const live = ids.flatMap((id) => loaded.get(id) ?? []);
    const presented = await presentAll(live, hctx, [], undefined, false);
    return new Map(presented.map((t) => [t.id, t]));
  };

  return {
    prefetchAuthors: (ids, hctx, changed = false) => authors(ids, hctx, !changed).catch(() => new Map<bigint, User>()),
    present(tweets, hctx, knownMedia = [], prefetched, loadedOriginals) {
      return presentAll(tweets, hctx, knownMedia, prefetched, true, loadedOriginals);
    },
  };
}

/** Every field of T as a required key (a value may still be undefined): an object literal of it must name them all. */
type EveryField<T> = { [K in keyof T & string]: T[K] | undefined };

/** The fields a read fills in for its viewer, over the cached core. */
export type ViewerFields = Pick<Tweet, "author" | "likedByViewer" | "media" | "quoteTweet" | "repostedByViewer" | "repostedBy" | "repostId">;

/**
 * A new tweet: `core`'s fields with the viewer's over them. Written out field
 * by field rather than as `{ ...core, ...view }`: V8 copied a protobuf-es
 * message by spread at about 5 µs (a scratch loop, Node 20; 0.1 µs written
 * out), 5 % of a home read's CPU. EveryField makes the compiler name a field
 * added to Tweet that is missing here.
 */
export function withViewerFields(core: Tweet, view: ViewerFields): Tweet {
  const tweet: EveryField<Tweet> = {
    $typeName: core.$typeName,
    $unknown: core.$unknown,
    id: core.id,
    authorId: core.authorId,
    author: view.author,
    text: core.text,
    createTime: core.createTime,
    likeCount: core.likeCount,
    likedByViewer: view.likedByViewer,
    mediaIds: core.mediaIds,
    media: view.media,
    location: core.location,
    hashtags: core.hashtags,
    mentions: core.mentions,
    replyToTweetId: core.replyToTweetId,
    urls: core.urls,
    replyCount: core.replyCount,
    quoteCount: core.quoteCount,
    quoteTweetId: core.quoteTweetId,
    quoteTweet: view.quoteTweet,
    repostCount: core.repostCount,
    repostedByViewer: view.repostedByViewer,
    repostedBy: view.repostedBy,
    repostId: view.repostId,
    repostOfTweetId: core.repostOfTweetId,
  };
  return tweet as Tweet;
}
