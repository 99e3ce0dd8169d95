// Web Push delivery: the durable consumer `notification-push` reads each
// NotificationCreated (written to the recipient's outbox with the
// notification, so once per notification, never for a redelivered cause) and
// sends it, encrypted, to every push subscription of the recipient
// (push-sender.ts). A subscription its push service calls gone (404, 410) or
// whose keys cannot be encrypted to is dropped. A send that may succeed later
// (timeout, network, 429/5xx, a push service at its in-flight limit) makes
// the handler throw, so JetStream delivers the notification again after a
// back-off; subscriptions that got it already are skipped then (remembered in
// this process, and the message's Topic makes a push service replace a copy it
// still holds), and after CHIRP_PUSH_MAX_ATTEMPTS the rest are given up on.
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Counter, Histogram } from "prom-client";
import { NotificationKind } from "../../gen/chirp/notification/v1/notification_pb.js";
import type { ConsumedEvent } from "../../lib/events/consumer.js";
import { EVENTS } from "../../lib/events/subjects.js";
import type { Logger } from "../../lib/logger.js";
import type { Metrics } from "../../lib/metrics.js";
import type { PushConfig } from "./config.js";
import type { PushFailure, PushSender } from "./push-sender.js";
import type { PushSubscriptionStore } from "./store.js";

export const PUSH_DURABLE = "notification-push";
export const PUSH_EVENTS = [EVENTS.notificationCreated] as const;
export type PushEvent = ConsumedEvent<(typeof PUSH_EVENTS)[number]>;

export interface PushMetrics {
  /** Messages a push service accepted (2xx). */
  readonly sent: Counter;
  /** Sends that did not succeed, by reason (an attempt; a retried one may succeed later). */
  readonly failed: Counter<"reason">;
  /** Subscriptions deleted: gone (404, 410) or invalid keys. */
  readonly dropped: Counter<"reason">;
  /** From the notification's event to the push service's 2xx. */
  readonly latency: Histogram;
}

export function pushMetrics(metrics: Metrics): PushMetrics {
  return {
    sent: new Counter({
      name: "chirp_push_sent_total",
      help: "Web Push messages a push service accepted (2xx).",
      registers: [metrics.registry],
    }),
    failed: new Counter({
      name: "chirp_push_failed_total",
      help: "Web Push sends that failed, by reason (timeout, network, unavailable: 429/5xx, rejected: other 4xx, saturated: the push service at its in-flight limit, refused: a non-public address, expired: older than the TTL). Retried ones may succeed later.",
      labelNames: ["reason"],
      registers: [metrics.registry],
    }),
    dropped: new Counter({
      name: "chirp_push_dropped_total",
      help: "Web Push subscriptions deleted, by reason (gone: the push service answered 404 or 410; invalid: keys nothing can be encrypted to).",
      labelNames: ["reason"],
      registers: [metrics.registry],
    }),
    latency: new Histogram({
      name: "chirp_push_latency_seconds",
      help: "Seconds from a notification's NotificationCreated event being stored to a push service accepting its Web Push message.",
      buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [metrics.registry],
    }),
  };
}

/** What the service worker gets (JSON, encrypted): enough to show the notification without a call. */
export interface PushPayload {
  readonly id: string;
  readonly kind: "follow" | "like" | "repost" | "reply" | "quote" | "mention";
  readonly actor: { readonly id: string; readonly handle: string; readonly displayName: string };
  readonly tweet?: { readonly id: string; readonly text: string };
  readonly createTime: string;
}

const KINDS: Partial<Record<NotificationKind, PushPayload["kind"]>> = {
  [NotificationKind.FOLLOW]: "follow",
  [NotificationKind.LIKE]: "like",
  [NotificationKind.REPOST]: "repost",
  [NotificationKind.REPLY]: "reply",
  [NotificationKind.QUOTE]: "quote",
  [NotificationKind.MENTION]: "mention",
};

/** A tweet's text in a push: its first 140 characters (a message holds at most ~4 KB). */
const TEXT_CHARS = 140;

/** The actor and the tweet of a notification, looked up through the user and tweet services; undefined when gone. */
export type Hydrate = (actorId: bigint, tweetId: bigint | undefined) => Promise<{ actor: PushPayload["actor"]; tweetText?: string } | undefined>;

/** The push Topic of a notification: its id, base64url (RFC 8030 5.4: at most 32 characters of that alphabet). */
export function pushTopic(notificationId: bigint): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(notificationId);
  return b.toString("base64url");
}

export class PushRetryError extends Error {
  override readonly name = "PushRetryError";
}

export interface PushDeliveryDeps {
  readonly subscriptions: PushSubscriptionStore;
  readonly sender: PushSender;
  readonly hydrate: Hydrate;
  readonly config: Pick<PushConfig, "ttlSeconds" | "maxAttempts">;
  readonly metrics: PushMetrics;
  readonly log: Logger;
  readonly now?: () => number;
}

/** The consumer's handler. */
export function createPushDelivery(deps: PushDeliveryDeps): (event: PushEvent) => Promise<void> {
  const { subscriptions, sender, metrics: m, log } = deps;
  const now = deps.now ?? Date.now;
  // (event, subscription) pairs delivered: a retry sends only to the others.
  const delivered = new Set<string>();
  const remember = (key: string): void => {
    delivered.add(key);
    if (delivered.size > 50_000) delivered.delete(delivered.values().next().value!);
  };

  return async (event) => {
    const n = event.message;
    const subs = await subscriptions.list(n.recipientId);
    const pending = subs.filter((s) => !delivered.has(`${event.eventId}:${s.endpointHash.toString("hex")}`));
    if (pending.length === 0) return;
    const stored = event.publishTime.getTime();
    const ttl = Math.floor(deps.config.ttlSeconds - (now() - stored) / 1000);
    if (ttl <= 0) {
      m.failed.inc({ reason: "expired" }, pending.length);
      return;
    }
    const kind = KINDS[n.kind];
    if (kind === undefined) return;
    const hasTweet = n.kind !== NotificationKind.FOLLOW && n.tweetId !== 0n;
    const found = await deps.hydrate(n.actorId, hasTweet ? n.tweetId : undefined);
    // A deleted actor or tweet: the inbox leaves it out, so does the push.
    if (found === undefined) return;
    const payload: PushPayload = {
      id: String(n.notificationId),
      kind,
      actor: found.actor,
      ...(hasTweet && found.tweetText !== undefined ? { tweet: { id: String(n.tweetId), text: [...found.tweetText].slice(0, TEXT_CHARS).join("") } } : {}),
      createTime: new Date(n.createTime === undefined ? stored : timestampMs(n.createTime)).toISOString(),
    };
    const body = JSON.stringify(payload);
    const topic = pushTopic(n.notificationId);
    const results = await Promise.all(pending.map(async (s) => ({ s, r: await sender.send(s, body, { ttlSeconds: ttl, topic }) })));
    const retrying: PushFailure[] = [];
    for (const { s, r } of results) {
      if (r.ok) {
        remember(`${event.eventId}:${s.endpointHash.toString("hex")}`);
        m.sent.inc();
        m.latency.observe(Math.max(0, (now() - stored) / 1000));
      } else if (r.reason === "gone" || r.reason === "invalid") {
        await subscriptions.drop(n.recipientId, s);
        m.dropped.inc({ reason: r.reason });
      } else {
        m.failed.inc({ reason: r.reason });
        if (r.retry) retrying.push(r.reason);
        else log.warn({ reason: r.reason, status: r.status, origin: originOf(s.endpoint) }, "push refused by its push service; not retried");
      }
    }
    if (retrying.length === 0) return;
    const attempt = event.redeliveryCount + 1;
    if (attempt >= deps.config.maxAttempts) {
      log.warn({ reasons: retrying, attempts: attempt }, "push given up after its last attempt");
      return;
    }
    throw new PushRetryError(`${retrying.length} of ${pending.length} pushes failed (${[...new Set(retrying)].join(", ")})`);
  };
}

/** An endpoint's origin, for logs: the path identifies the subscription and stays out of them. */
function originOf(endpoint: string): string {
  try {
    return new URL(endpoint).origin;
  } catch {
    return "?";
  }
}
