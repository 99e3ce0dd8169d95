import type { Redis } from "ioredis";
import { createEventBus, type EventBus } from "./events/bus.js";
import { loadBusConfig, type BusConfig } from "./events/config.js";
import { announceOutboxCommits } from "./events/outbox-wake.js";
import type { IdGenerator } from "./ids.js";
import { createLeasedIdGenerator } from "./node-id.js";
import { createRedis, loadRedisConfig } from "./redis.js";
import { createMeshClients, type MeshClients } from "./rpc/mesh-clients.js";
import type { BaseContext } from "./service-main.js";
import { loadDbConfig, type DbConfig } from "./shard/config.js";
import { followTopologyOverNats, type TopologyFollower } from "./shard/follow-nats.js";
import { createShardRouter, type ShardRouter } from "./shard/router.js";
import { createRelationCache, type RelationCache } from "./relations.js";
import { createUserCache, loadUserCacheConfig, type UserCache } from "./user-cache.js";
import { createTweetCache, loadTweetCacheConfig, type TweetCache } from "./tweet-cache.js";
import { createLikedCache, type LikedCache } from "./liked-cache.js";

/**
 * What every service in a process shares, built once per process however
 * many services it hosts: the shard router following the live topology over
 * NATS, the event bus, Redis, the snowflake node id lease and the clients of
 * the other services. Each service extends it in its own context.ts.
 */
export interface ServiceContext extends BaseContext {
  readonly router: ShardRouter;
  /** The topology watch and its NATS connection (absent when NATS_URL is not set). */
  readonly topologyFollower: TopologyFollower | undefined;
  /**
   * The event bus (NATS JetStream: the event stream, durable consumers),
   * connecting in the background; absent when NATS_URL is not set.
   */
  readonly bus: EventBus | undefined;
  /** Redis (caches, timelines, trends), when REDIS_URL is set. Commands fail fast while it is away. */
  readonly redis: Redis | undefined;
  /** Snowflake ids minted by this process, under a node number leased over NATS (Unavailable until leased). */
  readonly ids: IdGenerator;
  /**
   * Public profiles in Redis (user-cache.ts): read and filled by the user
   * service, invalidated by every service that changes a users row.
   * Undefined without Redis (or with CHIRP_USER_CACHE_TTL_MS=0).
   */
  readonly userCache: UserCache | undefined;
  /**
   * Tweets in Redis (tweet-cache.ts): read, filled and published by the
   * tweet service, peeked by the timeline service. Undefined without Redis.
   */
  readonly tweetCache: TweetCache | undefined;
  /**
   * Viewers' like and repost states (liked-cache.ts): written by the tweet
   * service, read by it and the timeline service. Undefined without Redis
   * (or with CHIRP_TWEET_LIKED_CACHE_TTL_MS=0).
   */
  readonly likedCache: LikedCache | undefined;
  /** Clients for the other services, connected on first use. */
  readonly clients: MeshClients;
  /**
   * Each user's blocks and mutes (relations.ts): cached in Redis, built from
   * the graph service, cleared by it on every change.
   */
  readonly relations: RelationCache;
  close(): Promise<void>;
}

/** How long a user's cached blocks and mutes live: it bounds what a lost invalidation could leave wrong. */
const RELATIONS_TTL_MS = 3_600_000;

/** How long a starting process waits for its snowflake node id lease before it serves anyway. */
const NODE_ID_WAIT_MS = 5_000;

/**
 * `db` defaults to what the environment says (MYSQL_URL_<RS>, NATS_URL,
 * CHIRP_DB_*: see shard/config.ts). Neither MySQL nor NATS needs to be up:
 * pools connect on first use, and the topology watch attaches whenever NATS
 * answers. `events` defaults to NATS_URL and CHIRP_EVENTS_* (events/config.ts).
 */
export async function createServiceContext(base: BaseContext, db?: DbConfig, events?: BusConfig): Promise<ServiceContext> {
  const name = `chirp-${base.name}`;
  const config = db ?? loadDbConfig(base.env);
  const busConfig = events ?? loadBusConfig(base.env);
  const userCacheConfig = loadUserCacheConfig(base.env);
  const tweetCacheConfig = loadTweetCacheConfig(base.env);
  const log = base.log.child({ component: "shard-router" });
  const router = await createShardRouter({
    topology: config.topology,
    credentials: config.credentials,
    maxReplicaLagMs: config.maxReplicaLagMs,
    poolSize: config.poolSize,
    poolQueueLimit: config.poolQueueLimit,
    acquireTimeoutMs: config.acquireTimeoutMs,
    queryTimeoutMs: config.queryTimeoutMs,
    commitTimeoutMs: config.commitTimeoutMs,
    failoverWaitMs: config.failoverWaitMs,
    log,
    metrics: base.metrics,
  });
  let follower: TopologyFollower | undefined;
  if (config.natsUrl === undefined) log.warn("NATS_URL not set: the shard topology will not follow failovers");
  else follower = followTopologyOverNats({ servers: config.natsUrl, router, log, name });

  const bus =
    busConfig.natsUrl === undefined
      ? undefined
      : createEventBus({ config: { ...busConfig, natsUrl: busConfig.natsUrl }, log: base.log, name });

  // Outbox rows this process commits wake the relay that holds their shard, wherever it runs.
  const stopAnnouncing = bus === undefined ? undefined : announceOutboxCommits(bus);

  const redisConfig = loadRedisConfig(base.env);
  const redis =
    redisConfig.url === undefined ? undefined : createRedis({ ...redisConfig, url: redisConfig.url }, base.log, name);

  const userCache =
    redis === undefined || userCacheConfig.ttlMs === 0
      ? undefined
      : createUserCache({ redis, ...userCacheConfig, log: base.log.child({ component: "user-cache" }), metrics: base.metrics });
  const tweetCache =
    redis === undefined
      ? undefined
      : createTweetCache({
          redis,
          ttlMs: tweetCacheConfig.ttlMs,
          leaseMs: tweetCacheConfig.leaseMs,
          log: base.log.child({ component: "tweet-cache" }),
          metrics: base.metrics,
        });
  const likedCache =
    redis === undefined || tweetCacheConfig.likedTtlMs === 0
      ? undefined
      : createLikedCache({ redis, ttlMs: tweetCacheConfig.likedTtlMs, log: base.log.child({ component: "liked-cache" }), metrics: base.metrics });

  const ids = createLeasedIdGenerator({ bus, owner: name, log: base.log });
  // Ready means able to write: a process that listened before it held a node
  // id answered its first writes (PostTweet, SignUp, ...) Unavailable, and
  // those are not retried elsewhere (they may have run: rpc/unrepeatable.ts).
  // Bounded, so a process still starts while NATS is away.
  if (bus !== undefined && !(await ids.leased(NODE_ID_WAIT_MS))) {
    base.log.warn({ waited_ms: NODE_ID_WAIT_MS }, "serving without a snowflake node id yet: writes that mint ids answer Unavailable until one is leased");
  }
  const clients = createMeshClients(base.addresses, base.metrics, base.local);
  const relations = createRelationCache({ redis, clients, ttlMs: RELATIONS_TTL_MS, log: base.log.child({ component: "relations" }) });
  return {
    ...base,
    router,
    topologyFollower: follower,
    bus,
    redis,
    userCache,
    tweetCache,
    likedCache,
    ids,
    clients,
    relations,
    // Reverse order of opening: clients, the node id lease, Redis, the bus, the watch (and its NATS), then the pools.
    close: async () => {
      clients.close();
      await ids.close();
      await redis?.quit().catch(() => redis.disconnect());
      stopAnnouncing?.();
      await bus?.close();
      await follower?.close();
      await router.close();
    },
  };
}
