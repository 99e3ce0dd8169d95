// Whether a viewer likes a tweet and has reposted it, in Redis, so that a
// read of cached tweets needs no database: one hash per viewer,
// `chirp:liked:{<viewer>}`, a field per tweet, valued
// `<tweet version>:<liked 0|1><reposted 0|1>`.
//
// Every change of anyone's like or repost of a tweet adds one to the tweet
// row's version, under the row's lock (store.ts, setLike, settleRepost). So "at version v, the
// viewer's like was s" is a fact that never goes stale: it is only ever
// written from a (version, state) pair read together, in one statement on
// the primary or under the row lock, and a reader uses it only for a tweet
// it presents at that same version (the tweet cache's entry, tweet-cache.ts).
// A like or unlike by anyone moves the tweet to a new version, so the next
// read of the viewer's field misses and goes to the primary; the liker's own
// field is written with the new version by the call itself, so their next
// read hits. Nothing is invalidated and no write is needed for correctness:
// a lost or late write only costs a database read. A tweet with no likes and
// no reposts at the version shown is not looked up at all (nobodyLikes): its
// counts say every viewer's state. Written by the tweet service only; read
// by it and by the timeline service (which asks BatchGetTweets for a page
// with a state it does not find here at the tweet's version).
import type { Redis } from "ioredis";
import { Counter } from "prom-client";
import type { Tweet } from "../gen/chirp/tweet/v1/tweet_pb.js";
import type { Logger } from "./logger.js";
import { countResults, type Metrics } from "./metrics.js";

/** A viewer's like and repost state at a tweet version. */
export interface LikeAt {
  readonly tweetId: bigint;
  readonly version: bigint;
  readonly liked: boolean;
  readonly reposted: boolean;
}

export interface LikedCache {
  /** The viewer's known like states among `ids`, each at the version it was read at (compare it with the tweet's). */
  read(viewer: bigint, ids: readonly bigint[]): Promise<Map<bigint, LikeAt>>;
  /** Best effort. */
  write(viewer: bigint, states: readonly LikeAt[]): Promise<void>;
}

export interface LikedCacheOptions {
  readonly redis: Redis;
  /** How long a viewer's hash lives after its last write. */
  readonly ttlMs: number;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Key prefix; default "chirp:liked:". */
  readonly prefix?: string;
}

export function createLikedCache(opts: LikedCacheOptions): LikedCache {
  const { redis, ttlMs, log } = opts;
  const prefix = opts.prefix ?? "chirp:liked:";
  const key = (viewer: bigint): string => `${prefix}{${viewer}}`;
  const reads =
    opts.metrics === undefined
      ? undefined
      : new Counter({
          name: "chirp_tweet_liked_cache_reads_total",
          help: "Viewer like-state lookups by result (found: a state at some version; miss; error). A state at an older version than the tweet's is read again (chirp_tweet_db_calls_total, operation likesAt).",
          labelNames: ["result"] as const,
          registers: [opts.metrics.registry],
        });

  return {
    async read(viewer, ids) {
      const out = new Map<bigint, LikeAt>();
      if (ids.length === 0) return out;
      let values: Array<string | null>;
      try {
        values = await redis.hmget(key(viewer), ...ids.map(String));
      } catch (err) {
        reads?.inc({ result: "error" }, ids.length);
        log.debug({ err: (err as Error).message }, "liked cache read failed; reading the database");
        return out;
      }
      const results = ids.map((id, i): "found" | "miss" => {
        const value = values[i];
        const colon = value?.indexOf(":") ?? -1;
        const state = value?.slice(colon + 1);
        // An older value of one digit (no repost state) is a miss.
        if (value === null || value === undefined || colon <= 0 || state === undefined || !/^[01][01]$/.test(state)) return "miss";
        out.set(id, { tweetId: id, version: BigInt(value.slice(0, colon)), liked: state[0] === "1", reposted: state[1] === "1" });
        return "found";
      });
      countResults(reads, "result", results);
      return out;
    },

    async write(viewer, states) {
      if (states.length === 0) return;
      const k = key(viewer);
      try {
        await redis
          .multi()
          .hset(k, Object.fromEntries(states.map((s) => [String(s.tweetId), `${s.version}:${s.liked ? 1 : 0}${s.reposted ? 1 : 0}`])))
          .pexpire(k, ttlMs)
          .exec();
      } catch (err) {
        log.debug({ err: (err as Error).message }, "liked cache write failed");
      }
    },
  };
}

/** No like and no repost at the tweet's version: every viewer's state is "neither", with no read. */
export function nobodyLikes(tweet: Tweet): boolean {
  return tweet.likeCount === 0 && tweet.repostCount === 0;
}
