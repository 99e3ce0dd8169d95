import { EnvReader, type Env } from "../../lib/config.js";
import { parseVapidKey, type VapidKeys } from "../../lib/push/vapid.js";

/** Web Push delivery (issue 20, item 3; README "Web Push"). */
export interface PushConfig {
  /**
   * CHIRP_PUSH_VAPID_PRIVATE_KEY: the P-256 private key (PKCS#8 PEM; `\n`
   * escapes accepted) that signs Web Push requests (VAPID, RFC 8292);
   * GetPushConfig hands out its public half. Only the notification service
   * has it; `npm start` keeps one in `.data/local/vapid-key.pem`, made on
   * first start.
   */
  readonly vapid: VapidKeys;
  /** CHIRP_PUSH_VAPID_SUBJECT: the VAPID `sub` claim, a mailto: or https: contact push services may use to reach the operator. */
  readonly subject: string;
  /**
   * CHIRP_PUSH_ALLOW_PRIVATE_ENDPOINTS: 1 lets subscriptions point at
   * loopback and private addresses (local development and tests; they are
   * refused with InvalidArgument otherwise). Endpoints must be https either
   * way; a push service with its own certificate is trusted through
   * NODE_EXTRA_CA_CERTS.
   */
  readonly allowPrivate: boolean;
  /** CHIRP_PUSH_TTL_SECONDS: how long a push service keeps a message for an offline browser (the TTL header); a notification older than this is not pushed at all. */
  readonly ttlSeconds: number;
  /** CHIRP_PUSH_TIMEOUT_MS: the most one request to a push service may take, connect to last byte. */
  readonly timeoutMs: number;
  /** CHIRP_PUSH_CONCURRENCY: notifications the push consumer delivers at once in this process. */
  readonly concurrency: number;
  /** CHIRP_PUSH_PER_ORIGIN: requests in flight to one push service at most; past it a delivery is retried later instead of waiting. */
  readonly perOrigin: number;
  /** CHIRP_PUSH_MAX_ATTEMPTS: deliveries of one notification before the failed subscriptions are given up on. */
  readonly maxAttempts: number;
  /** CHIRP_PUSH_RETRY_MIN_MS: the first retry's delay; it doubles per attempt, up to a minute. */
  readonly retryMinMs: number;
  /** CHIRP_PUSH_MAX_SUBSCRIPTIONS: subscriptions kept per user; registering one more drops the oldest. */
  readonly maxSubscriptions: number;
}

/** The notification service's own settings (CHIRP_NOTIFICATION_*, CHIRP_PUSH_*), read once at start. */
export interface NotificationConfig {
  /** CHIRP_NOTIFICATION_CONSUMERS: whether this process runs the consumers that build inboxes from events and push them. */
  readonly consumers: boolean;
  /**
   * CHIRP_NOTIFICATION_CONCURRENCY: events each consumer handles at once in
   * this process. Each is held for the linger below before its transaction
   * runs, so a consumer keeps up with at most about this many events per
   * linger-and-commit (32 over 50 ms and a commit: several hundred a second).
   */
  readonly concurrency: number;
  /**
   * CHIRP_NOTIFICATION_LINGER_MS: how long the consumers' first change for an
   * idle shard waits for others before its transaction runs (group commit,
   * lib/key-batches.ts): notifications show up this much later, and at a
   * moderate rate several events share a transaction instead of each paying
   * for one. 0: at once.
   */
  readonly lingerMs: number;
  /** CHIRP_NOTIFICATION_FAN_OUT: inboxes one event writes at once (a tweet mentioning many people). */
  readonly fanOut: number;
  /**
   * CHIRP_NOTIFICATION_CACHE_TTL_MS: how long an inbox's first pages, read
   * position and unread count stay in Redis (every change clears them; this
   * bounds one lost to a crash between a commit and its invalidation). 0: no cache.
   */
  readonly cacheTtlMs: number;
  readonly push: PushConfig;
}

export const PUSH_DEFAULTS = {
  subject: "mailto:push@chirp.invalid",
  ttlSeconds: 24 * 3600,
  timeoutMs: 10_000,
  concurrency: 64,
  perOrigin: 16,
  maxAttempts: 5,
  retryMinMs: 1000,
  maxSubscriptions: 10,
} as const;

export function loadNotificationConfig(env: Env): NotificationConfig {
  const read = new EnvReader(env);
  const problems: string[] = [];
  const rawKey = read.string("CHIRP_PUSH_VAPID_PRIVATE_KEY");
  let vapid: VapidKeys = { publicKey: "", privateKey: "", pem: "" };
  if (rawKey !== "") {
    try {
      vapid = parseVapidKey(rawKey);
    } catch (err) {
      problems.push(`CHIRP_PUSH_VAPID_PRIVATE_KEY: ${(err as Error).message}`);
    }
  }
  const subject = read.string("CHIRP_PUSH_VAPID_SUBJECT", PUSH_DEFAULTS.subject);
  if (!/^(mailto:[^\s@]+@[^\s@]+|https:\/\/\S+)$/.test(subject)) problems.push("CHIRP_PUSH_VAPID_SUBJECT must be a mailto: address or an https: URL");
  const push: PushConfig = {
    vapid,
    subject,
    allowPrivate: read.oneOf("CHIRP_PUSH_ALLOW_PRIVATE_ENDPOINTS", ["0", "1"], "0") === "1",
    ttlSeconds: read.int("CHIRP_PUSH_TTL_SECONDS", PUSH_DEFAULTS.ttlSeconds, 60, 28 * 24 * 3600),
    timeoutMs: read.int("CHIRP_PUSH_TIMEOUT_MS", PUSH_DEFAULTS.timeoutMs, 100, 120_000),
    concurrency: read.int("CHIRP_PUSH_CONCURRENCY", PUSH_DEFAULTS.concurrency, 1, 1024),
    perOrigin: read.int("CHIRP_PUSH_PER_ORIGIN", PUSH_DEFAULTS.perOrigin, 1, 1024),
    maxAttempts: read.int("CHIRP_PUSH_MAX_ATTEMPTS", PUSH_DEFAULTS.maxAttempts, 1, 20),
    retryMinMs: read.int("CHIRP_PUSH_RETRY_MIN_MS", PUSH_DEFAULTS.retryMinMs, 10, 60_000),
    maxSubscriptions: read.int("CHIRP_PUSH_MAX_SUBSCRIPTIONS", PUSH_DEFAULTS.maxSubscriptions, 1, 100),
  };
  const config: NotificationConfig = {
    consumers: read.oneOf("CHIRP_NOTIFICATION_CONSUMERS", ["true", "false"], "true") === "true",
    concurrency: read.int("CHIRP_NOTIFICATION_CONCURRENCY", 32, 1, 256),
    lingerMs: read.int("CHIRP_NOTIFICATION_LINGER_MS", 50, 0, 1000),
    fanOut: read.int("CHIRP_NOTIFICATION_FAN_OUT", 8, 1, 256),
    cacheTtlMs: read.int("CHIRP_NOTIFICATION_CACHE_TTL_MS", 600_000, 0, 86_400_000),
    push,
  };
  if (push.perOrigin >= push.concurrency) problems.push("CHIRP_PUSH_PER_ORIGIN must be below CHIRP_PUSH_CONCURRENCY: one push service could otherwise hold every delivery slot");
  read.done(problems);
  return config;
}
