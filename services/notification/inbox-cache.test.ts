// The inbox cache's protocol against a real redis-server of its own: a miss
// takes a lease and is filled; a change's invalidation between a read and its
// fill keeps what that read saw out; a FLUSHALL loses nothing but time; a
// Redis that is away is a miss, and an invalidation then fails loudly.
import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestRedis, type TestRedis } from "../../test/support/redis.js";
import { Cause } from "./causes.js";
import { createInboxCache, decodePage, decodeRows, encodePage, encodeRows, FIELDS, type InboxCache } from "./inbox-cache.js";

let r: TestRedis;
let cache: InboxCache;
const log = pino({ level: "silent" });

beforeAll(async () => {
  r = await startTestRedis();
  cache = createInboxCache({ redis: r.redis, ttlMs: 60_000, log, prefix: "t:inbox:" });
});
afterAll(async () => {
  await r?.stop();
});

const row = (id: bigint, actorId = 7n) => ({ id: 2n ** 62n + id, cause: Cause.like, subjectId: 2n ** 63n + 5n, actorId, kind: 2, timeMicros: 1_780_000_000_000_000n });

describe("the inbox cache", () => {
  it("misses with a lease, is filled by that lease, then hits without one", async () => {
    const first = await cache.read(1n, [FIELDS.flat, FIELDS.read]);
    expect(first).toEqual({ values: [undefined, undefined], lease: expect.any(String) });
    await cache.fill(1n, first!.lease!, { [FIELDS.flat]: encodeRows([row(2n), row(1n)]), [FIELDS.read]: "5" });
    const second = await cache.read(1n, [FIELDS.flat, FIELDS.read]);
    expect(second?.lease).toBeUndefined();
    expect(decodeRows(second!.values[0]!)).toEqual([row(2n), row(1n)]);
    expect(second!.values[1]).toBe("5");
    // Another field of the same inbox is a miss of its own.
    expect((await cache.read(1n, [FIELDS.unread]))?.lease).toEqual(expect.any(String));
  });

  it("keeps out what a read saw before a change whose invalidation came before its fill", async () => {
    const read = await cache.read(2n, [FIELDS.unread]);
    // The change commits and clears the inbox while that read is at the database.
    await cache.invalidate([2n]);
    await cache.fill(2n, read!.lease!, { [FIELDS.unread]: "3" });
    const next = await cache.read(2n, [FIELDS.unread]);
    expect(next?.values).toEqual([undefined]);
    // A read that starts after the change fills it.
    await cache.fill(2n, next!.lease!, { [FIELDS.unread]: "4" });
    expect((await cache.read(2n, [FIELDS.unread]))?.values).toEqual(["4"]);
  });

  it("clears only the inboxes it is told to, and everything after a FLUSHALL", async () => {
    for (const id of [3n, 4n]) {
      const read = await cache.read(id, [FIELDS.unread]);
      await cache.fill(id, read!.lease!, { [FIELDS.unread]: String(id) });
    }
    await cache.invalidate([3n]);
    expect((await cache.read(3n, [FIELDS.unread]))?.values).toEqual([undefined]);
    expect((await cache.read(4n, [FIELDS.unread]))?.values).toEqual(["4"]);
    await r.redis.flushall();
    const after = await cache.read(4n, [FIELDS.unread]);
    expect(after?.values).toEqual([undefined]);
    expect(after?.lease).toEqual(expect.any(String));
  });

  it("keeps a grouped page as it was built", () => {
    const page = { entries: [{ row: row(9n), actorIds: [7n, 6n, 5n], actorCount: 10_000 }], nextAfter: row(1n).id };
    expect(decodePage(encodePage(page))).toEqual(page);
    expect(decodePage(encodePage({ entries: [], nextAfter: undefined }))).toEqual({ entries: [], nextAfter: undefined });
    expect(decodeRows("not json")).toBeUndefined();
    expect(decodePage("{}")).toBeUndefined();
  });

  it("is a miss without a lease while Redis is away, and an invalidation then fails with Unavailable", async () => {
    const gone = await startTestRedis();
    const c = createInboxCache({ redis: gone.redis, ttlMs: 60_000, log, retryMs: 1 });
    await gone.stopServer();
    try {
      expect(await c.read(1n, [FIELDS.unread])).toBeUndefined();
      const err = await c.invalidate([1n]).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Unavailable);
    } finally {
      await gone.stop();
    }
  });
});
