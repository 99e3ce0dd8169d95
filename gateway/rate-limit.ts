// Per-user and per-IP rate limits, kept in Redis so every gateway instance
// draws on the same buckets.
//
// Each bucket is a token bucket: it holds at most `burst` tokens, refills at
// `perSecond`, and a request takes one token or is refused with the time
// until one will be there. One Lua script reads, refills, takes and writes
// the bucket atomically, on Redis's clock (TIME), so gateways with skewed
// clocks still agree. A bucket left alone expires once it would be full again.
//
// Which buckets a request draws on depends on its class (RATE_CLASSES: reads,
// writes, sign-up/log-in, uploads): its client address's bucket for that
// class and, when it carries a valid token, its user's. Both are checked at
// once, each in its own script call (a user's key and an address's key would
// sit on different Redis Cluster slots); a request refused by one bucket has
// still taken its token from the other.
//
// When Redis cannot answer (down, or slower than its command timeout), the
// request is let through: a limit is a protection, and taking the whole
// public API down with Redis would be worse than a few minutes unlimited.
// The gateway logs when that starts and when it ends.
import type { Redis } from "ioredis";
import type { Logger } from "../lib/logger.js";
import { defineScript } from "../lib/redis-scripts.js";

export const RATE_CLASSES = ["read", "write", "auth", "upload"] as const;
export type RateClass = (typeof RATE_CLASSES)[number];

export interface Bucket {
  /** Tokens added per second. */
  readonly perSecond: number;
  /** The most tokens the bucket holds: how many requests may come at once after a quiet spell. */
  readonly burst: number;
}

/** Per class, the bucket of each user and of each client address; undefined: not limited that way. */
export type RateLimits = Readonly<Record<RateClass, { readonly user: Bucket | undefined; readonly ip: Bucket | undefined }>>;

/**
 * The defaults. Writes are the strictest per user (a person posts, likes and
 * follows far less often than they read); sign-up and log-in are limited per
 * address only, tightly, since that is where passwords are guessed; an address
 * gets more than a user because several people may share one (NAT).
 */
export const DEFAULT_RATE_LIMITS: RateLimits = {
  read: { user: { perSecond: 20, burst: 200 }, ip: { perSecond: 50, burst: 500 } },
  write: { user: { perSecond: 1, burst: 30 }, ip: { perSecond: 10, burst: 100 } },
  auth: { user: undefined, ip: { perSecond: 0.5, burst: 20 } },
  upload: { user: { perSecond: 0.1, burst: 10 }, ip: { perSecond: 0.5, burst: 30 } },
};

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600 };

/**
 * Parses one bucket setting: `<n>/<s|m|h>[:<burst>]` ("20/s:100": 20 per
 * second, up to 100 at once; "30/m": 30 a minute, burst 30), or `off`.
 */
export function parseBucket(value: string): Bucket | undefined {
  if (value.trim().toLowerCase() === "off") return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*\/\s*([smh])\s*(?::\s*(\d+)\s*)?$/.exec(value);
  if (m === null) throw new Error(`expected <n>/<s|m|h>[:<burst>] or off, got ${JSON.stringify(value)}`);
  const n = Number(m[1]);
  const perSecond = n / UNITS[m[2]!]!;
  const burst = m[3] === undefined ? Math.max(1, Math.ceil(n)) : Number(m[3]);
  if (!(perSecond > 0) || !(burst >= 1)) throw new Error(`rate and burst must be positive, got ${JSON.stringify(value)}`);
  return { perSecond, burst };
}

export function formatBucket(bucket: Bucket | undefined): string {
  if (bucket === undefined) return "off";
  const [n, unit] = bucket.perSecond >= 1 ? [bucket.perSecond, "s"] : bucket.perSecond * 60 >= 1 ? [bucket.perSecond * 60, "m"] : [bucket.perSecond * 3600, "h"];
  return `${Math.round(n * 1000) / 1000}/${unit}:${bucket.burst}`;
}

// KEYS[1] the bucket; ARGV: tokens per second, burst. Returns {allowed, wait_ms, tokens_left}.
const TOKEN_BUCKET_LUA = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
return {allowed, wait, math.floor(tokens)}
`;

export type Decision = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterMs: number; readonly limitedBy: "user" | "ip" };

export interface RateLimiter {
  /** Takes a token from each bucket the request draws on. */
  admit(rateClass: RateClass, who: { readonly userId: string | undefined; readonly ip: string }, requestId: string): Promise<Decision>;
}

export interface RateLimiterOptions {
  readonly redis: Redis;
  readonly limits: RateLimits;
  /** Client addresses never limited (compared after unmapping IPv4-in-IPv6). */
  readonly exemptIps: readonly string[];
  readonly log: Logger;
  /** Key prefix in Redis. */
  readonly prefix?: string;
  /** Called with each decision's outcome, for metrics. */
  readonly onDecision?: (rateClass: RateClass, outcome: "allowed" | "limited" | "exempt" | "failed_open") => void;
}

type TokenBucketCommand = (key: string, perSecond: string, burst: string) => Promise<[number, number, number]>;

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { redis, limits, log } = options;
  const prefix = options.prefix ?? "chirp:ratelimit:";
  const exempt = new Set(options.exemptIps.map(unmapIpv4));
  // defineScript: EVALSHA, with EVAL when the script cache was flushed (NOSCRIPT).
  defineScript(redis, "chirpTokenBucket", { numberOfKeys: 1, lua: TOKEN_BUCKET_LUA });
  const take = (redis as unknown as { chirpTokenBucket: TokenBucketCommand }).chirpTokenBucket.bind(redis);
  let failingSince: number | undefined;

  const draw = async (key: string, bucket: Bucket): Promise<number> => {
    const [allowed, waitMs] = await take(prefix + key, String(bucket.perSecond), String(bucket.burst));
    return allowed === 1 ? 0 : Math.max(1, waitMs);
  };

  return {
    async admit(rateClass, who, requestId) {
      const ip = unmapIpv4(who.ip);
      const report = options.onDecision ?? (() => {});
      if (exempt.has(ip)) {
        report(rateClass, "exempt");
        return { allowed: true };
      }
      const { user, ip: ipBucket } = limits[rateClass];
      const draws: Array<Promise<[("user" | "ip"), number]>> = [];
      if (user !== undefined && who.userId !== undefined) {
        draws.push(draw(`${rateClass}:u:${who.userId}`, user).then((w) => ["user", w]));
      }
      if (ipBucket !== undefined) draws.push(draw(`${rateClass}:ip:${addressKey(ip)}`, ipBucket).then((w) => ["ip", w]));
      if (draws.length === 0) return { allowed: true };
      let waits: Array<["user" | "ip", number]>;
      try {
        waits = await Promise.all(draws);
      } catch (err) {
        if (failingSince === undefined) {
          failingSince = Date.now();
          log.warn({ err: (err as Error).message, request_id: requestId }, "rate limits unavailable (redis): letting requests through");
        }
        report(rateClass, "failed_open");
        return { allowed: true };
      }
      if (failingSince !== undefined) {
        log.info({ after_ms: Date.now() - failingSince, request_id: requestId }, "rate limits back");
        failingSince = undefined;
      }
      const worst = waits.reduce<["user" | "ip", number] | undefined>((a, w) => (w[1] > (a?.[1] ?? 0) ? w : a), undefined);
      if (worst === undefined) {
        report(rateClass, "allowed");
        return { allowed: true };
      }
      report(rateClass, "limited");
      return { allowed: false, retryAfterMs: worst[1], limitedBy: worst[0] };
    },
  };
}

/** "::ffff:1.2.3.4" is 1.2.3.4. */
export function unmapIpv4(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m === null ? ip : m[1]!;
}

/**
 * The bucket key of an address: an IPv4 address as it is; an IPv6 address
 * by its /64 prefix, since one host is commonly given a whole /64 and could
 * otherwise take a fresh bucket per request.
 */
export function addressKey(ip: string): string {
  const addr = unmapIpv4(ip);
  if (!addr.includes(":")) return addr;
  const [head, tail] = addr.split("%")[0]!.split("::") as [string, string | undefined];
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? left : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill("0"), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => (parseInt(g, 16) || 0).toString(16))
    .join(":")}::/64`;
}
