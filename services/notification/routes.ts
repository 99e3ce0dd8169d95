import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { NotificationSchema, type Notification } from "../../gen/chirp/notification/v1/notification_pb.js";
import {
  GetPushConfigResponseSchema,
  GetUnreadCountResponseSchema,
  ListNotificationsResponseSchema,
  MarkReadResponseSchema,
  RegisterPushResponseSchema,
  UnregisterPushResponseSchema,
  type NotificationService,
} from "../../gen/chirp/notification/v1/notification_service_pb.js";
import type { Tweet } from "../../gen/chirp/tweet/v1/tweet_pb.js";
import type { User } from "../../gen/chirp/user/v1/user_pb.js";
import { requireCaller } from "../../lib/auth/caller.js";
import { batchGetTweets, cachedBatchGet } from "../../lib/cached-tweets.js";
import { hides } from "../../lib/relations.js";
import { onBehalfOf } from "../../lib/rpc/mesh-clients.js";
import { Cause, groupable } from "./causes.js";
import type { NotificationContext } from "./context.js";
import { buildPage, type InboxRow, type Page, type PageEntry } from "./group.js";
import { decodePage, decodeRows, encodePage, encodeRows, FIELDS } from "./inbox-cache.js";
import { decodePageToken, encodePageToken, type InboxView } from "./page-token.js";
import { timestampFromMicros } from "../../lib/db/db-time.js";
import { checkEndpoint, parseEndpoint, PushEndpointError, type Resolve } from "./push-endpoint.js";
import { createECDH } from "node:crypto";

const DEFAULT_PAGE_SIZE = 20;
/** GetUnreadCount counts this many at most: the unread rows are read from the index, so the cost is bounded by it. */
export const UNREAD_CAP = 1000;
/** Actors a group shows by name. */
const GROUP_ACTORS = 3;
/** The rows a flat page reads at most (a page of 100 and one more): what the cache keeps of the flat first page. */
const FLAT_CACHED = 101;
/** BatchGetUsers and BatchGetTweets take up to 100 ids a call. */
const BATCH = 100;

const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/;

/**
 * A subscription's keys as a browser gives them (PushSubscription.toJSON():
 * base64url), checked so that a message can be encrypted to them: p256dh an
 * uncompressed point on P-256, auth 16 bytes. Returned without padding.
 */
export function parseSubscriptionKeys(p256dh: string, auth: string): { p256dh: string; auth: string } {
  if (!BASE64URL.test(p256dh) || !BASE64URL.test(auth)) throw new ConnectError("keys must be base64url", Code.InvalidArgument);
  const point = Buffer.from(p256dh, "base64url");
  const secret = Buffer.from(auth, "base64url");
  if (secret.length !== 16) throw new ConnectError("auth must be 16 bytes", Code.InvalidArgument);
  try {
    if (point.length !== 65 || point[0] !== 4) throw new Error("not uncompressed");
    // Throws unless the point is on the curve.
    const ecdh = createECDH("prime256v1");
    ecdh.setPrivateKey(Buffer.alloc(32, 1));
    ecdh.computeSecret(point);
  } catch {
    throw new ConnectError("p256dh must be an uncompressed P-256 public key", Code.InvalidArgument);
  }
  return { p256dh: point.toString("base64url"), auth: secret.toString("base64url") };
}

/** NotificationService handlers: the caller's own inbox only; validate, call the store, hydrate, present. */
export function routes(ctx: NotificationContext, opts: { resolve?: Resolve } = {}): Partial<ServiceImpl<typeof NotificationService>> {
  const { store } = ctx;
  const push = ctx.notification.push;

  const users = async (ids: bigint[], hctx: HandlerContext): Promise<Map<bigint, User>> => {
    const unique = [...new Set(ids)];
    const out = new Map<bigint, User>();
    for (let i = 0; i < unique.length; i += BATCH) {
      const { users: found } = await ctx.clients.user.batchGetUsers({ userIds: unique.slice(i, i + BATCH) }, onBehalfOf(hctx));
      for (const u of found) out.set(u.id, u);
    }
    return out;
  };

  // The tweets from the caches when they hold them (lib/cached-tweets.ts), else from the tweet service.
  const tweetsVia = { fromCaches: cachedBatchGet(ctx), clients: ctx.clients };
  const tweets = async (ids: bigint[], hctx: HandlerContext): Promise<Map<bigint, Tweet>> => {
    const unique = [...new Set(ids)];
    const out = new Map<bigint, Tweet>();
    for (let i = 0; i < unique.length; i += BATCH) {
      const { tweets: found } = await batchGetTweets(tweetsVia, { tweetIds: unique.slice(i, i + BATCH) }, hctx);
      for (const t of found) out.set(t.id, t);
    }
    return out;
  };

  /**
   * Hydrate and present: one BatchGetUsers and one BatchGetTweets for the page.
   * An entry whose actor or tweet is gone (a deleted account, a tweet deleted
   * before its deletion reached the inbox) is left out, and so are the actors
   * the caller blocks, is blocked by or mutes (their cached relations,
   * lib/relations.ts, read alongside): an entry with none left goes.
   */
  const present = async (entries: readonly PageEntry[], readThrough: bigint, hctx: HandlerContext): Promise<Notification[]> => {
    const tweetIds = entries.filter((e) => e.row.cause !== Cause.follow).map((e) => e.row.subjectId);
    const [byUser, byTweet, rel] = await Promise.all([
      users(entries.flatMap((e) => e.actorIds), hctx),
      tweets(tweetIds, hctx),
      ctx.relations.get(requireCaller(hctx), onBehalfOf(hctx)),
    ]);
    return entries.flatMap((e) => {
      const actors = e.actorIds.flatMap((id) => (hides(rel, id) ? [] : (byUser.get(id) ?? [])));
      const actor = actors[0];
      if (actor === undefined) return [];
      let tweet: Tweet | undefined;
      if (e.row.cause !== Cause.follow) {
        tweet = byTweet.get(e.row.subjectId);
        if (tweet === undefined) return [];
      }
      return [
        create(NotificationSchema, {
          id: e.row.id,
          kind: e.row.kind,
          actor,
          ...(tweet === undefined ? {} : { tweet }),
          createTime: timestampFromMicros(e.row.timeMicros),
          read: e.row.id <= readThrough,
          actors,
          actorCount: e.actorCount,
        }),
      ];
    });
  };

  return {
    async listNotifications(req, hctx) {
      const callerId = requireCaller(hctx);
      const view: InboxView = req.grouped ? "grouped" : "flat";
      const pageSize = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : req.pageSize;
      const before = req.pageToken === "" ? undefined : decodePageToken(req.pageToken, view, callerId);
      // The first page is cache-first (inbox-cache.ts): one Redis round trip
      // when it is there; otherwise the database, and the cache filled.
      const cache = before === undefined ? ctx.inboxCache : undefined;
      const field = req.grouped ? FIELDS.grouped(pageSize) : FIELDS.flat;
      let skeleton: { page: Page; readThrough: bigint } | undefined;
      let lease: string | undefined;
      if (cache !== undefined) {
        const got = await cache.read(callerId, [field, FIELDS.read]);
        const [cached, read] = got?.values ?? [];
        const readThrough = read === undefined ? undefined : bigintOf(read);
        const page = cached === undefined ? undefined : req.grouped ? decodePage(cached) : cachedFlatPage(cached, pageSize);
        if (page !== undefined && readThrough !== undefined) skeleton = { page, readThrough };
        lease = got?.lease;
      }
      if (skeleton === undefined) {
        // The grouped view reads each group's newest member only (the store
        // skips the older ones); a flat first page read for the cache reads
        // the most any page size uses.
        const readRows = cache !== undefined && !req.grouped ? FLAT_CACHED : pageSize + 1;
        const [read, readThrough] = await Promise.all([
          req.grouped ? store.listHeads(callerId, before, readRows) : store.listRows(callerId, before, readRows),
          store.readPosition(callerId),
        ]);
        let page: Page;
        if (req.grouped) {
          const more = read.length > pageSize;
          const rows = read.slice(0, pageSize);
          const keys = new Map<string, { cause: Cause; subjectId: bigint }>();
          for (const r of rows) if (groupable(r.cause)) keys.set(`${r.cause}:${r.subjectId}`, { cause: r.cause, subjectId: r.subjectId });
          page = buildPage(rows, more, pageSize, await store.groupSummaries(callerId, [...keys.values()], GROUP_ACTORS));
        } else {
          page = flatPage(read, pageSize);
        }
        if (cache !== undefined && lease !== undefined) {
          await cache.fill(callerId, lease, { [field]: req.grouped ? encodePage(page) : encodeRows(read), [FIELDS.read]: String(readThrough) });
        }
        skeleton = { page, readThrough };
      }
      const { page, readThrough } = skeleton;
      return create(ListNotificationsResponseSchema, {
        notifications: await present(page.entries, readThrough, hctx),
        nextPageToken: page.nextAfter === undefined ? "" : encodePageToken(view, callerId, page.nextAfter),
      });
    },
    async getUnreadCount(_req, hctx) {
      const callerId = requireCaller(hctx);
      const got = await ctx.inboxCache?.read(callerId, [FIELDS.unread]);
      const cached = got?.values[0];
      const count = cached === undefined ? undefined : Number(cached);
      if (count !== undefined && Number.isInteger(count)) return create(GetUnreadCountResponseSchema, { count });
      const counted = await store.unreadCount(callerId, UNREAD_CAP);
      if (got?.lease !== undefined) await ctx.inboxCache?.fill(callerId, got.lease, { [FIELDS.unread]: String(counted) });
      return create(GetUnreadCountResponseSchema, { count: counted });
    },
    async markRead(req, hctx) {
      const callerId = requireCaller(hctx);
      await store.markRead(callerId, req.upToId);
      // Before answering: the caller's next read sees the new position.
      await ctx.inboxCache?.invalidate([callerId]);
      return create(MarkReadResponseSchema);
    },
    getPushConfig(_req, hctx) {
      requireCaller(hctx);
      return create(GetPushConfigResponseSchema, { vapidPublicKey: push.vapid.publicKey });
    },
    async registerPush(req, hctx) {
      const callerId = requireCaller(hctx);
      const keys = parseSubscriptionKeys(req.p256dh, req.auth);
      let endpoint: URL;
      try {
        endpoint = parseEndpoint(req.endpoint);
        // Every address the host resolves to must be public (no SSRF); sends check again at connect.
        await checkEndpoint(endpoint, { allowPrivate: push.allowPrivate, ...(opts.resolve === undefined ? {} : { resolve: opts.resolve }) });
      } catch (err) {
        if (err instanceof PushEndpointError) throw new ConnectError(err.message, Code.InvalidArgument);
        throw err;
      }
      await ctx.pushSubscriptions.add(callerId, { endpoint: endpoint.href, ...keys }, push.maxSubscriptions);
      return create(RegisterPushResponseSchema);
    },
    async unregisterPush(req, hctx) {
      const callerId = requireCaller(hctx);
      let endpoint = req.endpoint;
      try {
        endpoint = parseEndpoint(req.endpoint).href;
      } catch {
        // Never stored in that form: nothing to remove.
        return create(UnregisterPushResponseSchema);
      }
      await ctx.pushSubscriptions.remove(callerId, endpoint);
      return create(UnregisterPushResponseSchema);
    },
  };
}

/** A flat page from the rows read below its start (at least pageSize + 1 of them, or all there are). */
function flatPage(rows: readonly InboxRow[], pageSize: number): Page {
  return buildPage(rows.slice(0, pageSize), rows.length > pageSize, pageSize);
}

/** The flat page a cached `flat` field gives; undefined for a value this code did not write. */
function cachedFlatPage(value: string, pageSize: number): Page | undefined {
  const rows = decodeRows(value);
  return rows === undefined ? undefined : flatPage(rows, pageSize);
}

function bigintOf(value: string): bigint | undefined {
  return /^[0-9]{1,20}$/.test(value) ? BigInt(value) : undefined;
}
