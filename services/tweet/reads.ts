// Reading tweets for GetTweet, BatchGetTweets and ListLikedTweets:
// skeleton (ids -> authors, through the lookup) -> hydrate (the cache, then
// one primary read per tweet shard for what it lacks, and the viewer's likes
// from their Redis hash, or tweet_likes for what it does not know at the
// tweet's version: lib/liked-cache.ts) -> present (lib/tweet-presenter.ts:
// authors from the profile cache or the user service, media from the media
// service, reposts' originals and quoted tweets loaded here by id).
import { Code, ConnectError } from "@connectrpc/connect";
import type { Tweet } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import type { Logger } from "../../lib/logger.js";
import type { MeshClients } from "../../lib/rpc/mesh-clients.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import type { ShardInfo } from "../../lib/shard/types.js";
import type { CacheRead, CachedTweet, TweetCache } from "../../lib/tweet-cache.js";
import { nobodyLikes, type LikeAt, type LikedCache } from "../../lib/liked-cache.js";
import { createTweetPresenter, type LoadByIds, type LoadedTweet, type TweetPresenter } from "../../lib/tweet-presenter.js";
import type { UserCache } from "../../lib/user-cache.js";
import type { AuthorLookup } from "./lookup.js";
import { presentTweetCore } from "./present.js";
import type { TweetStore } from "./store.js";

export type { LoadedTweet } from "../../lib/tweet-presenter.js";

/** A tweet id and its author (the shard it lives on). */
export interface TweetRef {
  readonly id: bigint;
  readonly authorId: bigint;
}

export interface TweetReader extends TweetPresenter {
  /**
   * Live tweets among `refs` (deleted and missing ones left out), by id. With
   * a viewer, whether they like each one, from the tweets' primaries.
   */
  load(refs: readonly TweetRef[], viewer: bigint | undefined): Promise<Map<bigint, LoadedTweet>>;
  /** The same by bare id, their authors found through the lookup (none without one). */
  loadByIds: LoadByIds;
  /** A fresh core put into the cache as a fill would (after PostTweet); best effort. */
  warm(id: bigint, entry: CachedTweet): Promise<void>;
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

  const loadByIds: LoadByIds | undefined =
    opts.lookup === undefined ? undefined : async (ids, viewer) => load([...(await opts.lookup!.authorsOf(ids))].map(([id, authorId]) => ({ id, authorId })), viewer);
  const presenter = createTweetPresenter({
    loadByIds,
    clients,
    userCache: opts.userCache,
    log,
  });

  return {
    load,
    loadByIds: loadByIds ?? (async () => new Map<bigint, LoadedTweet>()),
    prefetchAuthors: presenter.prefetchAuthors,
    present: presenter.present,
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
