import { ConfigError, EnvReader, type Env } from "../../lib/config.js";

const DAY_MS = 86_400_000;

/** The timeline service's own settings (CHIRP_TIMELINE_*), read once at start. */
export interface TimelineConfig {
  /**
   * CHIRP_TIMELINE_HOT_FOLLOWERS: an author with more followers than this is
   * not fanned out; their tweets are merged into home timelines at read time.
   */
  readonly hotFollowers: number;
  /**
   * CHIRP_TIMELINE_INACTIVE_MS: a home timeline not read for this long
   * expires from Redis; fan-out skips it and the next read rebuilds it.
   */
  readonly inactiveMs: number;
  /** CHIRP_TIMELINE_MAX_ENTRIES: tweet ids kept per home timeline in Redis. */
  readonly maxEntries: number;
  /** CHIRP_TIMELINE_RECENT_ENTRIES: a hot author's newest tweet ids kept in Redis for the read-time merge. */
  readonly recentEntries: number;
  /** CHIRP_TIMELINE_RECENT_TTL_MS: how long a hot author's recent-tweets list lives before it is read again from MySQL. */
  readonly recentTtlMs: number;
  /**
   * CHIRP_TIMELINE_FOLLOWING_TTL_MS: how long a reader's cached following
   * set lives. Follow and unfollow events drop it at once; the TTL only bounds
   * how long a lost event could leave it wrong.
   */
  readonly followingTtlMs: number;
  /**
   * CHIRP_TIMELINE_FANOUT_BATCH: home timelines written by one script call
   * (lists.ts addToEach). A call is atomic: Redis serves nothing else while it
   * runs, about 22 µs per list, so a batch bounds how long a fan-out can hold
   * up the reads that share Redis (200: about 4-5 ms).
   */
  readonly fanOutBatch: number;
  /** CHIRP_TIMELINE_FANOUT_CONCURRENCY: tweet events this process fans out at once. */
  readonly fanOutConcurrency: number;
  /** CHIRP_TIMELINE_FANOUT: whether this process runs the fan-out and graph consumers. */
  readonly fanOut: boolean;
  /**
   * CHIRP_TIMELINE_FANOUT_REDIS_TIMEOUT_MS: the command timeout of the fan-out
   * consumers' own Redis connection. Reads fail fast (CHIRP_REDIS_COMMAND_TIMEOUT_MS)
   * and fall back to MySQL; a fan-out batch queued behind others may wait.
   */
  readonly fanOutRedisTimeoutMs: number;
  /** CHIRP_TIMELINE_STREAM_KEEPALIVE_MS: a keepalive goes out on an open stream after this long without events. */
  readonly streamKeepaliveMs: number;
  /** CHIRP_TIMELINE_STREAM_QUEUE: events waiting for one slow client before its stream is cut off. */
  readonly streamQueue: number;
}

export const TIMELINE_DEFAULTS: TimelineConfig = {
  hotFollowers: 10_000,
  inactiveMs: 30 * DAY_MS,
  maxEntries: 800,
  recentEntries: 200,
  recentTtlMs: DAY_MS,
  followingTtlMs: 3_600_000,
  fanOutBatch: 200,
  fanOutConcurrency: 4,
  fanOut: true,
  fanOutRedisTimeoutMs: 10_000,
  streamKeepaliveMs: 15_000,
  streamQueue: 256,
};

export function loadTimelineConfig(env: Env): TimelineConfig {
  const read = new EnvReader(env);
  const d = TIMELINE_DEFAULTS;
  const config: TimelineConfig = {
    hotFollowers: read.int("CHIRP_TIMELINE_HOT_FOLLOWERS", d.hotFollowers, 1, 1_000_000_000),
    inactiveMs: read.int("CHIRP_TIMELINE_INACTIVE_MS", d.inactiveMs, 1000, 365 * DAY_MS),
    maxEntries: read.int("CHIRP_TIMELINE_MAX_ENTRIES", d.maxEntries, 10, 10_000),
    recentEntries: read.int("CHIRP_TIMELINE_RECENT_ENTRIES", d.recentEntries, 10, 10_000),
    recentTtlMs: read.int("CHIRP_TIMELINE_RECENT_TTL_MS", d.recentTtlMs, 1000, 30 * DAY_MS),
    followingTtlMs: read.int("CHIRP_TIMELINE_FOLLOWING_TTL_MS", d.followingTtlMs, 1000, 30 * DAY_MS),
    fanOutBatch: read.int("CHIRP_TIMELINE_FANOUT_BATCH", d.fanOutBatch, 1, 10_000),
    fanOutConcurrency: read.int("CHIRP_TIMELINE_FANOUT_CONCURRENCY", d.fanOutConcurrency, 1, 64),
    fanOut: read.oneOf("CHIRP_TIMELINE_FANOUT", ["true", "false"], "true") === "true",
    fanOutRedisTimeoutMs: read.int("CHIRP_TIMELINE_FANOUT_REDIS_TIMEOUT_MS", d.fanOutRedisTimeoutMs, 100, 600_000),
    streamKeepaliveMs: read.int("CHIRP_TIMELINE_STREAM_KEEPALIVE_MS", d.streamKeepaliveMs, 100, 600_000),
    streamQueue: read.int("CHIRP_TIMELINE_STREAM_QUEUE", d.streamQueue, 1, 100_000),
  };
  read.done();
  const problems: string[] = [];
  if (config.recentEntries > config.maxEntries) problems.push("CHIRP_TIMELINE_RECENT_ENTRIES must not exceed CHIRP_TIMELINE_MAX_ENTRIES");
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
