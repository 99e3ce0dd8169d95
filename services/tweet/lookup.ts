// Tweet id -> author id: which shard a bare tweet id lives on. The mapping
// never changes once written, so it is cached without invalidation: in this
// process (LRU), then Redis (shared by every tweet instance), then the
// tweet_lookup table. Only found ids are cached; an unknown id is asked of the
// database every time (it may be a tweet being posted right now).
import type { Redis } from "ioredis";
import { Counter } from "prom-client";
import type { Logger } from "../../lib/logger.js";
import type { Metrics } from "../../lib/metrics.js";
import { LruMap } from "../../lib/lru.js";
import type { TweetStore } from "./store.js";

export interface AuthorLookup {
  /** Authors of the ids that exist in the lookup (a dangling one included: its tweet reads as missing). */
  authorsOf(tweetIds: readonly bigint[]): Promise<Map<bigint, bigint>>;
  /** Records a mapping just written (PostTweet). */
  remember(tweetId: bigint, authorId: bigint): Promise<void>;
}

export interface AuthorLookupOptions {
  readonly store: TweetStore;
  readonly redis: Redis | undefined;
  readonly localSize: number;
  readonly ttlMs: number;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Redis key prefix; default "chirp:tweet-author:". */
  readonly prefix?: string;
}

export function createAuthorLookup(opts: AuthorLookupOptions): AuthorLookup {
  const { store, redis, log } = opts;
  const prefix = opts.prefix ?? "chirp:tweet-author:";
  const local = new LruMap<bigint, bigint>(opts.localSize);
  const sources = opts.metrics
    ? new Counter({
        name: "chirp_tweet_lookups_total",
        help: "Tweet id -> author lookups by where they were answered (memory, redis, db, missing).",
        labelNames: ["source"] as const,
        registers: [opts.metrics.registry],
      })
    : undefined;

  const toRedis = async (pairs: ReadonlyArray<readonly [bigint, bigint]>): Promise<void> => {
    if (redis === undefined || pairs.length === 0) return;
    try {
      const pipeline = redis.pipeline();
      for (const [id, author] of pairs) pipeline.set(`${prefix}${id}`, String(author), "PX", opts.ttlMs);
      await pipeline.exec();
    } catch (err) {
      log.debug({ err: (err as Error).message }, "tweet lookup not cached in redis");
    }
  };

  return {
    async authorsOf(tweetIds) {
      const found = new Map<bigint, bigint>();
      let wanted: bigint[] = [];
      for (const id of new Set(tweetIds)) {
        const author = local.get(id);
        if (author === undefined) wanted.push(id);
        else found.set(id, author);
      }
      sources?.inc({ source: "memory" }, found.size);
      if (wanted.length > 0 && redis !== undefined) {
        try {
          const values = await redis.mget(wanted.map((id) => `${prefix}${id}`));
          const rest: bigint[] = [];
          wanted.forEach((id, i) => {
            const v = values[i];
            if (typeof v === "string" && /^[0-9]{1,20}$/.test(v)) {
              const author = BigInt(v);
              found.set(id, author);
              local.set(id, author);
              sources?.inc({ source: "redis" });
            } else rest.push(id);
          });
          wanted = rest;
        } catch (err) {
          log.debug({ err: (err as Error).message }, "tweet lookup cache unavailable; reading the database");
        }
      }
      if (wanted.length > 0) {
        const fromDb = await store.lookupAuthors(wanted);
        for (const [id, author] of fromDb) {
          found.set(id, author);
          local.set(id, author);
        }
        sources?.inc({ source: "db" }, fromDb.size);
        sources?.inc({ source: "missing" }, wanted.length - fromDb.size);
        await toRedis([...fromDb]);
      }
      return found;
    },

    async remember(tweetId, authorId) {
      local.set(tweetId, authorId);
      await toRedis([[tweetId, authorId]]);
    },
  };
}
