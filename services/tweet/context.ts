import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";
import type { EventConsumer } from "../../lib/events/consumer.js";
import type { EventBus } from "../../lib/events/bus.js";
import { consumeUserDeleted } from "../../lib/events/user-deleted.js";
import { createTweetErasure, type TweetErasure } from "./erase.js";
import { loadRelayConfig, type RelayConfig } from "../../lib/events/config.js";
import { startOutboxRelay, type OutboxRelay } from "../../lib/events/relay.js";
import type { ServiceContext } from "../../lib/service-context.js";
import type { TweetCache } from "../../lib/tweet-cache.js";
import type { LikedCache } from "../../lib/liked-cache.js";
import { publishRow } from "./present.js";
import { loadTweetConfig, type TweetConfig } from "./config.js";
import { LIKES_INDEX_DURABLE, startLikesIndex } from "./events.js";
import { createAuthorLookup, type AuthorLookup } from "./lookup.js";
import { createTweetReader, type TweetReader } from "./reads.js";
import { createReplies, startRefsIndex, type Replies } from "./replies.js";
import { createReposts, type Reposts } from "./reposts.js";
import { createTweetStore, type TweetStore } from "./store.js";
import { createTweetWrites, type TweetWrites } from "./writes.js";

/**
 * The shared service context plus the tweet service's own parts: the store,
 * the tweet cache (Redis), the id -> author lookup, the reader, the outbox
 * relay (ARCHITECTURE, services) and the likers' index consumer.
 */
export interface TweetContext extends ServiceContext {
  readonly tweets: TweetConfig;
  readonly store: TweetStore;
  /** Undefined without REDIS_URL: every read then goes to the database. */
  readonly cache: TweetCache | undefined;
  readonly lookup: AuthorLookup;
  /** Viewers' like states (liked-cache.ts); undefined without REDIS_URL. */
  readonly liked: LikedCache | undefined;
  readonly reader: TweetReader;
  /** Undefined when CHIRP_RELAY_ENABLED=false or NATS_URL is not set. */
  readonly relay: OutboxRelay | undefined;
  /** Undefined when CHIRP_TWEET_LIKES_INDEX=false or NATS_URL is not set. */
  readonly likesIndex: EventConsumer | undefined;
  readonly replies: Replies;
  readonly reposts: Reposts;
  readonly writes: TweetWrites;
  /** A deleted account's likes, tweets and reposts, erased from its UserDeleted event (erase.ts). */
  readonly erasure: TweetErasure;
  /** Undefined when CHIRP_TWEET_LIKES_INDEX=false (it runs with the likes index) or NATS_URL is not set. */
  readonly refsIndex: EventConsumer | undefined;
}

export async function createTweetContext(shared: ServiceContext): Promise<TweetContext> {
  const relayConfig: RelayConfig = loadRelayConfig(shared.env);
  const tweets = loadTweetConfig(shared.env);
  const store = createTweetStore(shared.router, shared.metrics);
  const cache = shared.tweetCache;
  if (cache === undefined) shared.log.warn("REDIS_URL not set: tweets are read from the database every time");
  const lookup = createAuthorLookup({
    store,
    redis: shared.redis,
    localSize: tweets.lookupCacheSize,
    ttlMs: tweets.lookupTtlMs,
    log: shared.log,
    metrics: shared.metrics,
  });
  const liked = shared.likedCache;
  const reader = createTweetReader({ router: shared.router, store, cache, liked, clients: shared.clients, log: shared.log, lookup, userCache: shared.userCache });

  let relay: OutboxRelay | undefined;
  if (!relayConfig.enabled) shared.log.info("outbox relay disabled (CHIRP_RELAY_ENABLED=false)");
  else if (shared.bus === undefined) shared.log.warn("NATS_URL not set: outbox rows stay unsent until a relay with NATS runs");
  else relay = startOutboxRelay({ router: shared.router, bus: shared.bus, config: relayConfig, log: shared.log, metrics: shared.metrics });

  const replies = createReplies({ store, ids: shared.ids, lookup, reader, relations: shared.relations, publish: (row) => publishRow(cache, row) });
  const writes = createTweetWrites({ store, lookup, ids: shared.ids, userCache: shared.userCache });
  const reposts = createReposts({ store, ids: shared.ids, lookup, reader, liked, writes, relations: shared.relations, publish: (row) => publishRow(cache, row) });

  const erasure = createTweetErasure({ store, writes, replies, reposts, ids: shared.ids, publish: (row) => publishRow(cache, row) });

  let likesIndex: EventConsumer | undefined;
  let refsIndex: EventConsumer | undefined;
  let eraser: EventConsumer | undefined;
  if (!tweets.likesIndex) shared.log.info("likers' index and reply/quote consumers disabled (CHIRP_TWEET_LIKES_INDEX=false)");
  else if (shared.bus === undefined) shared.log.warn("NATS_URL not set: ListLikedTweets will not see new likes");
  else {
    likesIndex = startLikesIndex({ bus: shared.bus, store, log: shared.log.child({ component: "likes-index" }), metrics: shared.metrics });
    refsIndex = startRefsIndex({ bus: shared.bus, replies, reposts, log: shared.log.child({ component: "refs-index" }), metrics: shared.metrics });
    const bus = shared.bus;
    const eraseLog = shared.log.child({ component: "account-erase" });
    eraser = consumeUserDeleted({
      bus,
      durable: TWEET_ERASE_DURABLE,
      erase: async (userId, event) => {
        // Likes are found through the likers' index: it must have taken in
        // every like event before this one, or a like just made is missed.
        if (!(await likesIndexPast(bus, event.streamSequence))) throw new Error("likers' index behind the deletion; retrying");
        const erased = await erasure.erase(userId);
        eraseLog.info({ user_id: String(userId), ...erased }, "deleted account's tweets and likes erased");
      },
      concurrency: 2,
      retryMinMs: 250,
      log: eraseLog,
      metrics: shared.metrics,
    });
  }

  return {
    ...shared,
    tweets,
    store,
    cache,
    lookup,
    liked,
    reader,
    relay,
    likesIndex,
    replies,
    reposts,
    writes,
    refsIndex,
    erasure,
    // Reverse order of opening: the consumer and the relay (which finishes its
    // round and releases its leases), before the shared bus and pools they use.
    close: async () => {
      await eraser?.stop();
      await refsIndex?.stop();
      await likesIndex?.stop();
      await relay?.stop();
    },
  };
}

/** The tweet service's consumer of UserDeleted. */
export const TWEET_ERASE_DURABLE = "tweet-account-erase";

/**
 * Whether the likers' index consumer has finished every event up to stream
 * sequence `seq` (its ack floor is there, or nothing of its is pending). A
 * durable that does not exist (never started anywhere) holds nothing to wait for.
 */
async function likesIndexPast(bus: EventBus, seq: number): Promise<boolean> {
  const conn = bus.current();
  if (conn === undefined) return false;
  try {
    const info = await conn.jsm.consumers.info(bus.stream, LIKES_INDEX_DURABLE);
    return info.ack_floor.stream_seq >= seq || (info.num_pending === 0 && info.num_ack_pending === 0);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound) return true;
    throw err;
  }
}
