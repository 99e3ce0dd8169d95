import { Redis, type Command } from "ioredis";
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
 * to MySQL. It reconnects forever with back-off. A command slower than
 * `commandTimeoutMs` fails (failSlowCommands: one timer per connection, not
 * one per command).
 */
export function createRedis(config: RedisConfig & { url: string }, log: Logger, name: string): Redis {
  const redis = new Redis(config.url, {
    connectionName: name,
    enableOfflineQueue: false,
    lazyConnect: false,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(50 * 2 ** attempt, 2000),
  });
  failSlowCommands(redis, config.commandTimeoutMs);
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

/** How late past its timeout a command may fail: the sweeps of one connection are at least this far apart. */
export const COMMAND_SWEEP_MS = 20;

const SENT_AT = Symbol("chirp.redis.sentAt");
type Stamped = Command & { [SENT_AT]?: number };

/** What failSlowCommands reads of ioredis: its queue of commands written and not yet answered, oldest first. */
interface AwaitingReplies {
  readonly commandQueue: { readonly length: number; peekAt(index: number): { readonly command: unknown } | undefined };
}

/**
 * Fails every command of `redis` still unanswered `timeoutMs` after it was
 * sent ("Command timed out"), as ioredis's `commandTimeout` does, but with one
 * timer per connection instead of one per command: ioredis arms and clears a
 * timer for every command, auto-pipelined or not, which was most of the
 * timers a home read made. Each command is stamped with the time it was sent;
 * ioredis keeps the commands awaiting a reply in the order they were written
 * (Redis answers in that order), so one timer waits for the oldest, and each
 * sweep fails what is due, at most COMMAND_SWEEP_MS late. Nothing is kept
 * here once a command is answered.
 */
export function failSlowCommands(redis: Redis, timeoutMs: number): void {
  let timer: NodeJS.Timeout | undefined;
  // Leading entries already failed while the same command stays oldest (Redis frozen): not walked again.
  let oldest: unknown;
  let failedAhead = 0;

  const sweep = (): void => {
    timer = undefined;
    const now = Date.now();
    const queue = (redis as unknown as AwaitingReplies).commandQueue;
    let i = queue.peekAt(0)?.command === oldest ? failedAhead : 0;
    for (; i < queue.length; i++) {
      const command = queue.peekAt(i)!.command as Stamped;
      const sent = command[SENT_AT];
      if (sent === undefined) continue;
      if (sent + timeoutMs > now) {
        timer = setTimeout(sweep, Math.max(COMMAND_SWEEP_MS, sent + timeoutMs - now));
        break;
      }
      if (!command.isSettled) command.reject(new Error("Command timed out"));
    }
    oldest = queue.peekAt(0)?.command;
    failedAhead = i;
  };

  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command: Command, stream?: Parameters<Redis["sendCommand"]>[1]): unknown => {
    (command as Stamped)[SENT_AT] = Date.now();
    timer ??= setTimeout(sweep, timeoutMs);
    return send(command, stream);
  };
}
