// Wrong passwords per account, so that a guess spread over many addresses is
// slowed as much as one from a single address (issue 21, item 5).
//
// Each account has a token bucket of failed password checks in Redis
// (CHIRP_GATEWAY_RATE_AUTH_ACCOUNT, 10 at once, then one every 5 min): LogIn's
// by the handle it names, ChangePassword's by the caller. A check takes a
// token before it is forwarded and gives it back unless the password was
// wrong, so at most `burst` guesses are ever in flight, and a right password,
// a malformed request or a failure of the mesh costs nothing. An empty bucket
// is ResourceExhausted with retry-after, like every other limit, before the
// user service is asked.
//
// Nothing here tells whether an account exists: the bucket is named after the
// handle as given (lower-cased, hashed: no handle is kept in Redis), an
// unknown handle's bucket fills and empties exactly as a real one's, and the
// user service answers a wrong password and an unknown handle alike.
//
// Lockout: an attacker can keep an account's bucket empty for as long as he
// keeps guessing, and would lock its owner out with it. So an address that
// has logged in to the account successfully within the last
// CHIRP_GATEWAY_RATE_AUTH_KNOWN_DAYS (30) is a known one: it draws on a bucket
// of its own for that account (the same size), not the shared one. The owner
// at home, at work or on a phone he used before still gets in during an
// attack; a device never seen before waits for the shared bucket. (A signed
// device cookie, OWASP's variant, would survive changes of address too, but
// needs the clients' help.) A success gives back only its own token and never
// refills the bucket: otherwise an attacker who slips a login of his own in
// (or the owner's own) would get a fresh burst of guesses. ChangePassword's
// bucket is the caller's, reachable only with one of his session tokens: a
// thief can empty it, and RevokeSession ends him.
//
// Like the other limits it fails open when Redis cannot answer (decision 19),
// and exempt addresses are never limited.
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "../lib/logger.js";
import { addressKey, unmapIpv4, type Bucket } from "./rate-limit.js";
import { defineScript } from "../lib/redis-scripts.js";

/** The per-account limits: the bucket of wrong passwords, and how long a successful address stays known. */
export interface AccountLimits {
  /** undefined: no per-account limit. */
  readonly failures: Bucket | undefined;
  /** Days an address that logged in to an account keeps its own bucket there; 0: none does. */
  readonly knownDays: number;
}

export const DEFAULT_ACCOUNT_LIMITS: AccountLimits = { failures: { perSecond: 12 / 3600, burst: 10 }, knownDays: 30 };

/** At most this many known addresses per account, the most recent. */
const MAX_KNOWN = 20;

/** Whose password is being checked: LogIn names a handle, ChangePassword is its caller's. */
export type Account = { readonly handle: string } | { readonly userId: string };

/** What the checked call came to: right password, wrong password, or neither (bad request, mesh failure). */
export type AttemptOutcome = "right" | "wrong" | "neither";

export type AccountDecision =
  | { readonly allowed: true; settle(outcome: AttemptOutcome): Promise<void> }
  | { readonly allowed: false; readonly retryAfterMs: number };

export interface AccountLimiter {
  /** Takes one attempt from the account's bucket (or its known address's); settle() the call's outcome. */
  begin(account: Account, ip: string, requestId: string): Promise<AccountDecision>;
}

export interface AccountLimiterOptions {
  readonly redis: Redis;
  readonly limits: AccountLimits;
  readonly exemptIps: readonly string[];
  readonly log: Logger;
  readonly prefix?: string;
  readonly onDecision?: (outcome: "allowed" | "limited" | "exempt" | "failed_open") => void;
  /** The clock the known addresses' times are written with (Redis's is used for the buckets). */
  readonly now?: () => number;
}

// The refill of a token bucket kept as a hash {tokens, ts} (rate-limit.ts's layout).
const REFILL_LUA = `
local function refill(key, rate, burst, now)
  local state = redis.call('HMGET', key, 'tokens', 'ts')
  local tokens = tonumber(state[1])
  local ts = tonumber(state[2])
  if tokens == nil or ts == nil then return burst, now end
  if now > ts then return math.min(burst, tokens + (now - ts) * rate / 1000), now end
  return tokens, ts
end
local function store(key, tokens, ts, rate, burst)
  redis.call('HSET', key, 'tokens', tostring(tokens), 'ts', tostring(ts))
  redis.call('PEXPIRE', key, math.ceil((burst - tokens) * 1000 / rate) + 1000)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// KEYS: the account's bucket, its known addresses (zset: address -> ms of the
// last success), the address's own bucket. ARGV: rate, burst, address, how
// long an address stays known (ms). Returns {allowed, wait_ms, known}.
const TAKE_LUA = `${REFILL_LUA}
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local knownMs = tonumber(ARGV[4])
local known = 0
if knownMs > 0 then
  local seen = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[3]))
  if seen ~= nil and seen >= now - knownMs then known = 1 end
end
local key = KEYS[1]
if known == 1 then key = KEYS[3] end
local tokens, ts = refill(key, rate, burst, now)
if tokens >= 1 then
  store(key, tokens - 1, ts, rate, burst)
  return {1, 0, known}
end
store(key, tokens, ts, rate, burst)
return {0, math.ceil((1 - tokens) * 1000 / rate), known}
`;

// KEYS: the bucket a token was taken from, the known addresses. ARGV: rate,
// burst, address, known ms, remember (1 after a right password). Gives the
// token back and, when asked, marks the address known.
const SETTLE_LUA = `${REFILL_LUA}
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local knownMs = tonumber(ARGV[4])
local tokens, ts = refill(KEYS[1], rate, burst, now)
store(KEYS[1], math.min(burst, tokens + 1), ts, rate, burst)
if ARGV[5] == '1' and knownMs > 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - knownMs)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -${MAX_KNOWN + 1})
  redis.call('PEXPIRE', KEYS[2], knownMs)
end
return 1
`;

type Take = (bucket: string, known: string, own: string, rate: string, burst: string, address: string, knownMs: string) => Promise<[number, number, number]>;
type Settle = (bucket: string, known: string, rate: string, burst: string, address: string, knownMs: string, remember: string) => Promise<number>;

/**
 * The name of an account's keys: a hash of the handle (ASCII lower-cased, as
 * the user service compares handles) or of the user id. The braces keep one
 * account's keys on one Redis Cluster slot, for the scripts.
 */
export function accountTag(account: Account): string {
  const name = "handle" in account ? `h:${account.handle.replace(/[A-Z]/g, (c) => c.toLowerCase())}` : `u:${account.userId}`;
  return `{${createHash("sha256").update(name).digest("base64url").slice(0, 22)}}`;
}

export function createAccountLimiter(options: AccountLimiterOptions): AccountLimiter {
  const { redis, limits, log } = options;
  const prefix = `${options.prefix ?? "chirp:ratelimit:"}auth:acct:`;
  const exempt = new Set(options.exemptIps.map(unmapIpv4));
  const report = options.onDecision ?? (() => {});
  defineScript(redis, "chirpAccountTake", { numberOfKeys: 3, lua: TAKE_LUA });
  defineScript(redis, "chirpAccountSettle", { numberOfKeys: 2, lua: SETTLE_LUA });
  const commands = redis as unknown as { chirpAccountTake: Take; chirpAccountSettle: Settle };
  const take = commands.chirpAccountTake.bind(redis);
  const settle = commands.chirpAccountSettle.bind(redis);
  const knownMs = String(Math.round(limits.knownDays * 86_400_000));
  let failingSince: number | undefined;
  const noop = async (): Promise<void> => {};

  return {
    async begin(account, ip, requestId) {
      const bucket = limits.failures;
      if (bucket === undefined) return { allowed: true, settle: noop };
      if (exempt.has(unmapIpv4(ip))) {
        report("exempt");
        return { allowed: true, settle: noop };
      }
      const base = prefix + accountTag(account);
      const address = addressKey(ip);
      const [rate, burst] = [String(bucket.perSecond), String(bucket.burst)];
      const keys = { shared: base, known: `${base}:known`, own: `${base}:ip:${address}` };
      let result: [number, number, number];
      try {
        result = await take(keys.shared, keys.known, keys.own, rate, burst, address, knownMs);
      } catch (err) {
        if (failingSince === undefined) {
          failingSince = Date.now();
          log.warn({ err: (err as Error).message, request_id: requestId }, "per-account limits unavailable (redis): letting log-ins through");
        }
        report("failed_open");
        return { allowed: true, settle: noop };
      }
      if (failingSince !== undefined) {
        log.info({ after_ms: Date.now() - failingSince, request_id: requestId }, "per-account limits back");
        failingSince = undefined;
      }
      const [allowed, waitMs, known] = result;
      if (allowed !== 1) {
        report("limited");
        // Which account, never: the request id finds the access line.
        log.info({ request_id: requestId, known_address: known === 1 }, "log-in attempts limited for an account");
        return { allowed: false, retryAfterMs: Math.max(1, waitMs) };
      }
      report("allowed");
      const from = known === 1 ? keys.own : keys.shared;
      return {
        allowed: true,
        async settle(outcome) {
          if (outcome === "wrong") return;
          // Remembered only after LogIn: ChangePassword's caller already holds a session.
          const remember = outcome === "right" && "handle" in account ? "1" : "0";
          try {
            await settle(from, keys.known, rate, burst, address, knownMs, remember);
          } catch (err) {
            log.warn({ err: (err as Error).message, request_id: requestId }, "per-account limit: could not give a token back");
          }
        },
      };
    },
  };
}
