// The hot reads of an inbox in Redis (issue 20, item 5: cache-first, like the
// timelines): the first page's rows (flat), each grouped first page asked for,
// the read position and the unread count, in one hash per user. What a read
// of the first page or the count costs is then one Redis round trip and no
// SQL; deeper pages (with a token) read MySQL as before.
//
//   read        one script: HMGET of the fields asked for; if any is missing,
//               a fill lease (a random token in a second key) is set BEFORE
//               the reader goes to the database. One round trip either way.
//   fill        the reader's values (read from the primary) go in only if its
//               lease is still there.
//   invalidate  after every change to the user's inbox or read position
//               commits (a notification shown, hidden or changed in kind, a
//               reaction hidden with its deleted tweet, MarkRead): the hash
//               and the lease are deleted, retried, and the change's handler
//               fails (the event is redelivered, MarkRead answers Unavailable)
//               unless that succeeded.
//
// So once an invalidation has run, nothing read before the commit can land
// (the lease taken before it is gone; a reader that takes one after it reads
// the primary after the commit): the cached answers are exact, as a primary
// read is. A FLUSHALL is an invalidation of everyone: the next read of each
// inbox rebuilds its hash from MySQL. The TTL bounds what an invalidation
// lost to a crash between the commit and the delete could leave.
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import { Counter } from "prom-client";
import { writeAfterCommit, type LeasedCacheOptions } from "../../lib/leased-cache.js";
import type { Metrics } from "../../lib/metrics.js";
import type { Cause } from "./causes.js";
import type { InboxRow, Page, PageEntry } from "./group.js";
import { defineScript } from "../../lib/redis-scripts.js";

/** The hash's fields: the flat first page's rows, a grouped first page per page size, the read position, the unread count. */
export const FIELDS = {
  flat: "flat",
  grouped: (pageSize: number): string => `g${pageSize}`,
  read: "read",
  unread: "unread",
} as const;

/** A read: the fields' values in the order asked (undefined: missing), and the lease to fill the missing ones with. */
export interface InboxCacheRead {
  readonly values: ReadonlyArray<string | undefined>;
  /** Set when a field was missing and a lease was taken. */
  readonly lease: string | undefined;
}

export interface InboxCache {
  /** Undefined when Redis did not answer (read the database, fill nothing). */
  read(userId: bigint, fields: readonly string[]): Promise<InboxCacheRead | undefined>;
  /** Best effort: a refused or failed fill changes nothing. The values must come from the primary, read after the lease was taken. */
  fill(userId: bigint, lease: string, values: Readonly<Record<string, string>>): Promise<void>;
  /** After a committed change to these users' inboxes. Throws Unavailable when the cache could not be cleared. */
  invalidate(userIds: readonly bigint[]): Promise<void>;
}

/** KEYS: hash, lease. ARGV: token, lease ms, fields... Returns {lease taken (0/1), values...}. */
const READ_LUA = `
local v = redis.call('HMGET', KEYS[1], unpack(ARGV, 3))
local taken = 0
for i = 1, #v do
  if not v[i] then
    redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
    taken = 1
    break
  end
end
table.insert(v, 1, taken)
return v`;

/** KEYS: hash, lease. ARGV: token, ttl ms, field, value, ... 1 if stored. */
const FILL_LUA = `
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;

interface Scripts {
  chirpInboxRead(hash: string, lease: string, token: string, leaseMs: number, ...fields: string[]): Promise<Array<number | string | null>>;
  chirpInboxFill(hash: string, lease: string, token: string, ttlMs: number, ...pairs: string[]): Promise<number>;
}

/** Key prefix default "chirp:inbox:". */
export type InboxCacheOptions = LeasedCacheOptions;

export function createInboxCache(opts: InboxCacheOptions): InboxCache {
  const { redis, ttlMs, log } = opts;
  const leaseMs = opts.leaseMs ?? 5_000;
  const prefix = opts.prefix ?? "chirp:inbox:";
  const retry = { attempts: opts.attempts ?? 3, retryMs: opts.retryMs ?? 25 };
  // A hash tag keeps the hash and its lease in one Redis Cluster slot.
  const hashKey = (id: bigint): string => `${prefix}{${id}}`;
  const leaseKey = (id: bigint): string => `${prefix}{${id}}:lease`;
  defineScript(redis, "chirpInboxRead", { numberOfKeys: 2, lua: READ_LUA });
  defineScript(redis, "chirpInboxFill", { numberOfKeys: 2, lua: FILL_LUA });
  const scripts = redis as unknown as Scripts;
  const m = opts.metrics === undefined ? undefined : inboxCacheMetrics(opts.metrics);

  return {
    async read(userId, fields) {
      const token = randomUUID();
      let reply: Array<number | string | null>;
      try {
        reply = await scripts.chirpInboxRead(hashKey(userId), leaseKey(userId), token, leaseMs, ...fields);
      } catch (err) {
        m?.reads.inc({ result: "error" });
        log.debug({ err: (err as Error).message }, "inbox cache read failed; reading the database");
        return undefined;
      }
      const taken = reply[0] === 1;
      m?.reads.inc({ result: taken ? "miss" : "hit" });
      return { values: fields.map((_, i) => (typeof reply[i + 1] === "string" ? (reply[i + 1] as string) : undefined)), lease: taken ? token : undefined };
    },

    async fill(userId, lease, values) {
      const pairs = Object.entries(values).flat();
      if (pairs.length === 0) return;
      try {
        const stored = await scripts.chirpInboxFill(hashKey(userId), leaseKey(userId), lease, ttlMs, ...pairs);
        m?.fills.inc({ result: stored === 1 ? "stored" : "refused" });
      } catch (err) {
        m?.fills.inc({ result: "error" });
        log.debug({ err: (err as Error).message }, "inbox cache fill failed");
      }
    },

    async invalidate(userIds) {
      const unique = [...new Set(userIds)];
      if (unique.length === 0) return;
      await writeAfterCommit(retry, () => redis.del(...unique.flatMap((id) => [hashKey(id), leaseKey(id)])), m?.invalidations, (err) =>
        log.warn({ err: (err as Error | undefined)?.message }, "inbox cache not cleared after a committed change"),
      );
    },
  };
}

function inboxCacheMetrics(metrics: Metrics) {
  return {
    reads: new Counter({
      name: "chirp_notification_cache_reads_total",
      help: "Inbox cache reads (first pages, unread counts), by result (hit, miss, error).",
      labelNames: ["result"],
      registers: [metrics.registry],
    }),
    fills: new Counter({
      name: "chirp_notification_cache_fills_total",
      help: "Inbox cache fills, by result (stored; refused: invalidated meanwhile; error).",
      labelNames: ["result"],
      registers: [metrics.registry],
    }),
    invalidations: new Counter({
      name: "chirp_notification_cache_invalidations_total",
      help: "Inbox cache invalidations after a committed change, by result (ok, failed).",
      labelNames: ["result"],
      registers: [metrics.registry],
    }),
  };
}

// What the hash holds: rows as arrays of decimal strings (ids are 64-bit).

type RowTuple = [string, number, string, string, number, string];

const rowTuple = (r: InboxRow): RowTuple => [String(r.id), r.cause, String(r.subjectId), String(r.actorId), r.kind, String(r.timeMicros)];
const rowOf = (t: RowTuple): InboxRow => ({ id: BigInt(t[0]), cause: t[1] as Cause, subjectId: BigInt(t[2]), actorId: BigInt(t[3]), kind: t[4], timeMicros: BigInt(t[5]) });

export function encodeRows(rows: readonly InboxRow[]): string {
  return JSON.stringify(rows.map(rowTuple));
}

/** Undefined for a value this code did not write: a miss. */
export function decodeRows(value: string): InboxRow[] | undefined {
  try {
    const parsed = JSON.parse(value) as RowTuple[];
    return Array.isArray(parsed) ? parsed.map(rowOf) : undefined;
  } catch {
    return undefined;
  }
}

export function encodePage(page: Page): string {
  return JSON.stringify({
    e: page.entries.map((e) => [rowTuple(e.row), e.actorIds.map(String), e.actorCount]),
    n: page.nextAfter === undefined ? null : String(page.nextAfter),
  });
}

export function decodePage(value: string): Page | undefined {
  try {
    const parsed = JSON.parse(value) as { e: Array<[RowTuple, string[], number]>; n: string | null };
    const entries: PageEntry[] = parsed.e.map(([row, actors, count]) => ({ row: rowOf(row), actorIds: actors.map((a) => BigInt(a)), actorCount: count }));
    return { entries, nextAfter: parsed.n === null ? undefined : BigInt(parsed.n) };
  } catch {
    return undefined;
  }
}
