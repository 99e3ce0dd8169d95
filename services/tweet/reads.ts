// Reading tweets for GetTweet, BatchGetTweets and ListLikedTweets:
// skeleton (ids -> authors, through the lookup) -> hydrate (the cache, then
// one primary read per tweet shard for what it lacks, and the viewer's likes
// from their Redis hash, or tweet_likes for what it does not know at the
// tweet's version: liked-cache.ts) -> present (authors from the user service, media from the
// media service).
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { Media } from "../../gen/chirp/media/v1/media_pb.js";
import { TweetSchema, type Tweet } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import type { User } from "../../gen/chirp/user/v1/user_pb.js";
import { callerOf } from "../../lib/auth/caller.js";
import type { Logger } from "../../lib/logger.js";
import type { MeshClients } from "../../lib/rpc/mesh-clients.js";
import { onBehalfOf } from "../../lib/rpc/mesh-clients.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import type { ShardInfo } from "../../lib/shard/types.js";
import type { CacheRead, CachedTweet, TweetCache } from "./cache.js";
import type { LikeAt, LikedCache } from "./liked-cache.js";
import type { UserCache } from "../../lib/user-cache.js";
import type { AuthorLookup } from "./lookup.js";
import { presentTweetCore, withViewerFields } from "./present.js";
import type { TweetStore } from "./store.js";

/** A tweet id and its author (the shard it lives on). */
export interface TweetRef {
  readonly id: bigint;
  readonly authorId: bigint;
}

/** A live tweet as loaded: the viewer-independent part and the viewer's like and repost. */
export interface LoadedTweet {
  readonly core: Tweet;
  readonly liked: boolean;
  readonly reposted?: boolean;
}

export interface TweetReader {
  /**
   * Live tweets among `refs` (deleted and missing ones left out), by id. With
   * a viewer, whether they like each one, from the tweets' primaries.
   */
  load(refs: readonly TweetRef[], viewer: bigint | undefined): Promise<Map<bigint, LoadedTweet>>;
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
  /** A fresh core put into the cache as a fill would (after PostTweet); best effort. */
  warm(id: bigint, entry: CachedTweet): Promise<void>;
}

const BATCH = 100;

/** A tweet as a read shows it: for a repost, the original, who reposted it and the repost's id. */
interface Shown {
  readonly loaded: LoadedTweet;
  readonly reposter?: bigint;
  readonly repostId?: bigint;
}

export function createTweetReader(opts: {
  router: ShardRouter;
  store: TweetStore;
  cache: TweetCache | undefined;
  /** The viewers' like states; undefined: read from the database every time. */
  liked?: LikedCache | undefined;
  clients: MeshClients;
  log: Logger;
  /** Finds quoted tweets' authors; without it a quote is presented without its quoted tweet. */
  lookup?: Pick<AuthorLookup, "authorsOf"> | undefined;
  /**
   * The profile cache, looked into before BatchGetUsers: a read whose authors
   * are all cached makes no call, and its profiles come on this service's
   * Redis connection, in the round trip of the tweets' own reads.
   */
  userCache?: Pick<UserCache, "peek"> | undefined;
}): TweetReader {
  const { router, store, cache, liked, clients, log } = opts;
  let mediaUnimplementedLogged = false;

  const load = async (refs: readonly TweetRef[], viewer: bigint | undefined): Promise<Map<bigint, LoadedTweet>> => {
    const authorOf = new Map(refs.map((r) => [r.id, r.authorId]));
    const ids = [...authorOf.keys()];
    /**
     * The viewer's like states of `ids` (cache hits shown at their cached
     * versions), from the primary. While the primary is away (Unavailable: a
     * failover), from a replica instead, when the replica holds each tweet at
     * the version shown: a (version, state) pair read in one statement is as
     * exact there, and a read-your-writes like (newer than the replica) makes
     * the versions differ, so the read fails as before.
     */
    const likesShown = async (shard: ShardInfo, viewer: bigint, ids: readonly bigint[], hits: ReadonlyArray<{ tweet: Tweet; version: bigint }>): Promise<LikeAt[]> => {
      try {
        return await store.likesAt(shard, viewer, ids);
      } catch (err) {
        if (ConnectError.from(err).code !== Code.Unavailable) throw err;
        const shown = new Map(hits.map((h) => [h.tweet.id, h.version]));
        const read = await store.likesAt(shard, viewer, ids, "replica").catch(() => Promise.reject(err));
        if (read.length !== ids.length || read.some((l) => shown.get(l.tweetId) !== l.version)) throw err;
        return read;
      }
    };
    // The tweets and the viewer's likes of them, in one round trip to Redis.
    const [cached, knownLikes] = await Promise.all([
      cache === undefined ? new Map<bigint, CacheRead>() : cache.read(ids),
      viewer === undefined || liked === undefined ? new Map<bigint, LikeAt>() : liked.read(viewer, ids),
    ]);
    const out = new Map<bigint, LoadedTweet>();
    // Like states read from the database, kept for the viewer's next read.
    const learned: LikeAt[] = [];
    await router.scatter(
      ids,
      (id) => store.tweetShard(authorOf.get(id)!),
      async (shard, shardIds) => {
        const hits: Array<{ tweet: Tweet; version: bigint }> = [];
        const misses: bigint[] = [];
        for (const id of shardIds) {
          const entry = cached.get(id);
          if (entry === undefined || entry.kind === "miss") misses.push(id);
          else if (entry.kind === "tweet") hits.push({ tweet: entry.tweet, version: entry.version });
          // A tombstone: deleted, left out without a read.
        }
        // A like state is good for a tweet at the version it was read at (liked-cache.ts). A
        // tweet nobody likes or has reposted at the version shown needs none: its counts
        // change with every like and repost, under the row's lock and with its version,
        // so at that version no viewer likes or has reposted it.
        const unknown =
          viewer === undefined ? [] : hits.filter((h) => !nobodyLikes(h.tweet) && knownLikes.get(h.tweet.id)?.version !== h.version).map((h) => h.tweet.id);
        const [rows, read] = await Promise.all([
          store.readTweets(shard, misses, viewer),
          viewer === undefined ? [] : likesShown(shard, viewer, unknown, hits),
        ]);
        const readNow = new Map(read.map((l) => [l.tweetId, l]));
        learned.push(...read);
        for (const { tweet } of hits) {
          const state = nobodyLikes(tweet) ? undefined : (readNow.get(tweet.id) ?? knownLikes.get(tweet.id));
          out.set(tweet.id, { core: tweet, liked: state?.liked ?? false, reposted: state?.reposted ?? false });
        }
        const fills: Promise<void>[] = [];
        for (const { row, liked: rowLiked, reposted } of rows) {
          const core = row.deleted ? undefined : presentTweetCore(row);
          if (core !== undefined) out.set(row.id, { core, liked: rowLiked, reposted });
          if (viewer !== undefined) learned.push({ tweetId: row.id, version: row.version, liked: rowLiked, reposted });
          const lease = cached.get(row.id);
          if (cache !== undefined && lease?.kind === "miss" && lease.lease !== undefined) {
            const entry: CachedTweet = core === undefined ? { kind: "deleted", version: row.version } : { kind: "tweet", version: row.version, tweet: core };
            fills.push(cache.fill(row.id, lease.lease, entry));
          }
        }
        await Promise.all(fills);
        return [];
      },
    );
    if (viewer !== undefined && liked !== undefined && learned.length > 0) await liked.write(viewer, learned);
    return out;
  };

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
    return shown.map(({ loaded: { core, liked, reposted }, reposter, repostId }) => {
      // A new object over the core's fields (the core may be shared: a
      // cache hit used twice in one batch): only top-level fields are set
      // here, and nothing writes into a tweet's nested messages.
      const tweet = withViewerFields(core, {
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
      });
      return tweet;
    });
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
    if (ids.length > 0) {
      const authors = opts.lookup === undefined ? new Map<bigint, bigint>() : await opts.lookup.authorsOf(ids);
      for (const [id, t] of await load([...authors].map(([id, authorId]) => ({ id, authorId })), callerOf(hctx))) originals.set(id, t);
    }
    return tweets.flatMap((t) => {
      if (t.core.repostOfTweetId === 0n) return [{ loaded: t }];
      const original = originals.get(t.core.repostOfTweetId);
      return original === undefined ? [] : [{ loaded: original, reposter: t.core.authorId, repostId: t.core.id }];
    });
  };

  /** Quoted tweets, live ones only, presented for the caller one level deep (their own quotes are left unset). */
  const quotedTweets = async (ids: readonly bigint[], hctx: HandlerContext): Promise<Map<bigint, Tweet>> => {
    if (opts.lookup === undefined) return new Map();
    const authors = await opts.lookup.authorsOf(ids);
    const loaded = await load([...authors].map(([id, authorId]) => ({ id, authorId })), callerOf(hctx));
    const live = ids.flatMap((id) => loaded.get(id) ?? []);
    const presented = await presentAll(live, hctx, [], undefined, false);
    return new Map(presented.map((t) => [t.id, t]));
  };

  return {
    load,
    prefetchAuthors: (ids, hctx, changed = false) => authors(ids, hctx, !changed).catch(() => new Map<bigint, User>()),
    present(tweets, hctx, knownMedia = [], prefetched, loadedOriginals) {
      return presentAll(tweets, hctx, knownMedia, prefetched, true, loadedOriginals);
    },
    async warm(id, entry) {
      if (cache === undefined) return;
      try {
        await cache.publish(id, entry);
      } catch {
        // A cold cache is only slower.
      }
    },
  };
}

/** No like and no repost at the tweet's version: every viewer's state is "neither", with no read. */
function nobodyLikes(tweet: Tweet): boolean {
  return tweet.likeCount === 0 && tweet.repostCount === 0;
}
