import { Redis } from "ioredis";
import { EnvReader, type Env } from "./config.js";
import type { Logger } from "./logger.js";

export interface RedisConfig {
  /** Where Redis is (REDIS_URL, see shard/infra-env.ts); undefined: no Redis (caches are skipped, timelines unavailable). */
  readonly url: string | undefined;
  /** CHIRP_REDIS_COMMAND_TIMEOUT_MS: a Redis command slower than this fails (a cache read then counts as a miss and goes to MySQL). */
  readonly commandTimeoutMs: number;
}

export function loadRedisConfig(env: Env): RedisConfig {
  const read = new EnvReader(env);
  const config = {
    url: read.optional("REDIS_URL"),
    commandTimeoutMs: read.int("CHIRP_REDIS_COMMAND_TIMEOUT_MS", 500, 1, 60_000),
  };
  read.done();
  return config;
}

/**
 * One Redis connection per process. Commands are auto-pipelined: every command
 * issued during one turn of the event loop (the microtasks of every request
 * being served included) goes out in one write, and their replies come back
 * in one read. Without it each command was a write system call of its own,
 * and socket writes were the largest single cost in a profile of the DSB mix;
 * with it, the parts of a request that do not depend on each other (a
 * timeline page's tweets, the viewer's likes of them and their authors) cost
 * one round trip however many services ask. Redis holds caches and
 * rebuildable state only, so while it is away a command fails at once
 * instead of queueing (no offline queue): callers treat that as a miss and go
 * to MySQL. It reconnects forever with back-off.
 */
export function createRedis(config: RedisConfig & { url: string }, log: Logger, name: string): Redis {
  const redis = new Redis(config.url, {
    connectionName: name,
    enableOfflineQueue: false,
    lazyConnect: false,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    commandTimeout: config.commandTimeoutMs,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
  });
  let down = false;
  redis.on("error", (err: Error) => {
    if (!down) log.warn({ err: err.message }, "redis unavailable");
    down = true;
  });
  redis.on("ready", () => {
    if (down) log.info("redis back");
    down = false;
  });
  return redis;
}
