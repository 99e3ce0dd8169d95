// One Web Push message to one subscription (RFC 8030). web-push encrypts the
// payload to the subscription's keys (RFC 8291, aes128gcm) and signs the VAPID
// header (RFC 8292); the HTTPS request is made here rather than by the
// library's sendNotification, because the service must bound what an endpoint
// (an URL a user chose) can cost it, which the library does not:
//
// - the whole request, connect to last byte, is bounded by `timeoutMs` (the
//   library's timeout is an idle timeout: a push service that trickles a byte
//   a second would hold it forever), and the answer's body is read to at most
//   4 KiB;
// - the socket's DNS lookup refuses non-public addresses (push-endpoint.ts),
//   so a rebinding name cannot point a send at the internal network;
// - at most `perOrigin` requests are in flight to one push service (origin);
//   a send beyond that fails at once as "saturated" instead of queueing, so a
//   slow or dead push service holds a bounded number of the delivery
//   consumer's slots and never delays the others' deliveries.
//
// Trust is Node's: the bundled roots plus NODE_EXTRA_CA_CERTS (read at start),
// which is how a local test push service with its own certificate is trusted.
import { Agent, request } from "node:https";
import webpush from "web-push";
import type { VapidKeys } from "../../lib/push/vapid.js";
import { checkLiteralAtSend, guardedLookup, PushEndpointError, type Resolve } from "./push-endpoint.js";

/** A stored subscription: where to send, and the keys to encrypt to. */
export interface PushTarget {
  readonly endpoint: string;
  readonly p256dh: string;
  readonly auth: string;
}

/**
 * Why a send did not get a 2xx. `gone` (404, 410): the subscription is no
 * more and is dropped; `invalid`: its keys cannot be encrypted to, dropped
 * too. The others are counted; `retry` says whether a later attempt may help.
 */
export type PushFailure = "gone" | "invalid" | "refused" | "rejected" | "unavailable" | "timeout" | "network" | "saturated";

export type SendResult = { readonly ok: true; readonly status: number } | { readonly ok: false; readonly reason: PushFailure; readonly retry: boolean; readonly status?: number };

export interface SendOptions {
  /** Seconds the push service keeps the message for an offline browser (the TTL header). */
  readonly ttlSeconds: number;
  /** Replaces an undelivered message with the same topic at the push service (a retry of the same notification). */
  readonly topic?: string;
  readonly urgency?: "very-low" | "low" | "normal" | "high";
}

export interface PushSender {
  send(target: PushTarget, payload: string, options: SendOptions): Promise<SendResult>;
  /** Requests in flight, by origin (tests, metrics). */
  inFlight(origin: string): number;
  close(): void;
}

export interface PushSenderOptions {
  readonly vapid: VapidKeys;
  /** The VAPID `sub` claim: a mailto: or https: contact for the push service's operator. */
  readonly subject: string;
  readonly timeoutMs: number;
  readonly perOrigin: number;
  readonly allowPrivate: boolean;
  /** DNS, for tests. */
  readonly resolve?: Resolve;
}

const MAX_ANSWER_BYTES = 4096;

export function createPushSender(opts: PushSenderOptions): PushSender {
  const agent = new Agent({
    keepAlive: true,
    // Never more sockets to one push service than sends let through to it.
    maxSockets: opts.perOrigin,
    maxFreeSockets: Math.min(opts.perOrigin, 4),
    lookup: guardedLookup({ allowPrivate: opts.allowPrivate, ...(opts.resolve === undefined ? {} : { resolve: opts.resolve }) }),
  });
  const inFlight = new Map<string, number>();
  const vapidDetails = { subject: opts.subject, publicKey: opts.vapid.publicKey, privateKey: opts.vapid.privateKey };

  const post = (url: URL, details: { headers: Record<string, string | number>; body: Buffer | null }): Promise<SendResult> =>
    new Promise<SendResult>((resolve) => {
      let settled = false;
      const done = (result: SendResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const req = request(url, { method: "POST", headers: details.headers, agent }, (res) => {
        const status = res.statusCode ?? 0;
        let read = 0;
        res.on("data", (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_ANSWER_BYTES) res.destroy();
        });
        const finish = (): void => done(classify(status));
        res.on("end", finish);
        res.on("close", finish);
        res.on("error", finish);
      });
      const timer = setTimeout(() => {
        done({ ok: false, reason: "timeout", retry: true });
        req.destroy(new Error("push request timed out"));
      }, opts.timeoutMs);
      req.on("error", (err) => done(err instanceof PushEndpointError ? { ok: false, reason: "refused", retry: false } : { ok: false, reason: "network", retry: true }));
      req.end(details.body ?? undefined);
    });

  return {
    async send(target, payload, options) {
      let url: URL;
      try {
        url = new URL(target.endpoint);
        checkLiteralAtSend(url, opts.allowPrivate);
      } catch {
        return { ok: false, reason: "refused", retry: false };
      }
      let details;
      try {
        details = webpush.generateRequestDetails({ endpoint: url.href, keys: { p256dh: target.p256dh, auth: target.auth } }, payload, {
          TTL: options.ttlSeconds,
          vapidDetails,
          contentEncoding: "aes128gcm",
          urgency: options.urgency ?? "normal",
          ...(options.topic === undefined ? {} : { topic: options.topic }),
        });
      } catch {
        // Keys that do not make a P-256 point or a 16-byte secret: nothing can ever be sent to it.
        return { ok: false, reason: "invalid", retry: false };
      }
      const origin = url.host;
      const now = inFlight.get(origin) ?? 0;
      if (now >= opts.perOrigin) return { ok: false, reason: "saturated", retry: true };
      inFlight.set(origin, now + 1);
      try {
        return await post(url, details);
      } finally {
        const left = (inFlight.get(origin) ?? 1) - 1;
        if (left === 0) inFlight.delete(origin);
        else inFlight.set(origin, left);
      }
    },
    inFlight: (origin) => inFlight.get(origin) ?? 0,
    close: () => agent.destroy(),
  };
}

/** A push service's answer (RFC 8030 section 5, and what the big push services answer in practice). */
export function classify(status: number): SendResult {
  if (status >= 200 && status < 300) return { ok: true, status };
  if (status === 404 || status === 410) return { ok: false, reason: "gone", retry: false, status };
  // 429 (too many) and 5xx: the push service's trouble, worth another try.
  if (status === 429 || status >= 500) return { ok: false, reason: "unavailable", retry: true, status };
  // 400 (bad request), 401/403 (VAPID refused), 413 (too large): this message will not do better next time.
  return { ok: false, reason: "rejected", retry: false, status };
}
