// The push subscription cache's protocol against a real redis-server, step by
// step (services/notification/push-subscription-cache.ts): a reader takes a
// lease before it reads the store; a change clears the entry and every lease
// after it commits; a fill needs its lease. So a subscription registered
// before a delivery started is always seen by it.
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cachePushSubscriptions, type CachedPushSubscriptionStore } from "../../services/notification/push-subscription-cache.js";
import { endpointHash, type PushSubscriptionRow, type PushSubscriptionStore } from "../../services/notification/store.js";
import { startTestRedis, type TestRedis } from "../support/redis.js";

const log = pino({ level: "silent" });
let server: TestRedis;
let nextId = 3000n;

/** The subscriptions table as the store keeps it, with the number of list() reads that reached it. */
function tableStore(): PushSubscriptionStore & { reads: number } {
  const rows = new Map<bigint, PushSubscriptionRow[]>();
  const store = {
    reads: 0,
    async add(userId: bigint, sub: { endpoint: string; p256dh: string; auth: string }, keep: number) {
      const mine = (rows.get(userId) ?? []).filter((r) => r.endpoint !== sub.endpoint);
      mine.unshift({ endpointHash: endpointHash(sub.endpoint), ...sub });
      rows.set(userId, mine.slice(0, keep));
    },
    async remove(userId: bigint, endpoint: string) {
      const mine = rows.get(userId) ?? [];
      rows.set(userId, mine.filter((r) => r.endpoint !== endpoint));
      return mine.length !== rows.get(userId)!.length;
    },
    async list(userId: bigint) {
      store.reads++;
      return [...(rows.get(userId) ?? [])];
    },
    async drop(userId: bigint, row: PushSubscriptionRow) {
      rows.set(userId, (rows.get(userId) ?? []).filter((r) => !(r.endpoint === row.endpoint && r.p256dh === row.p256dh)));
    },
  };
  return store;
}

const sub = (n: number) => ({ endpoint: `https://push.example/${n}`, p256dh: `key${n}`, auth: `auth${n}` });
const endpoints = (rows: readonly PushSubscriptionRow[]) => rows.map((r) => r.endpoint);

beforeAll(async () => {
  server = await startTestRedis();
});

afterAll(async () => {
  await server?.stop();
});

describe("the push subscription cache", () => {
  let table: ReturnType<typeof tableStore>;
  let cache: CachedPushSubscriptionStore;
  const make = () => {
    table = tableStore();
    cache = cachePushSubscriptions(table, { redis: server.redis, ttlMs: 60_000, log, attempts: 2, retryMs: 10 });
  };

  it("reads a recipient's subscriptions from the store once, then from Redis, none included", async () => {
    make();
    const [none, one] = [++nextId, ++nextId];
    await table.add(one, sub(1), 3);
    expect(await cache.list(none)).toEqual([]);
    expect(endpoints(await cache.list(one))).toEqual([sub(1).endpoint]);
    const again = await cache.list(one);
    expect(await cache.list(none)).toEqual([]);
    expect(table.reads).toBe(2);
    expect(again[0]!.endpointHash.equals(endpointHash(sub(1).endpoint))).toBe(true);
    expect(again[0]).toMatchObject({ p256dh: "key1", auth: "auth1" });
  });

  it("a register, an unregister, a drop and an erasure are seen by the next read", async () => {
    make();
    const id = ++nextId;
    expect(await cache.list(id)).toEqual([]);
    await cache.add(id, sub(1), 3);
    expect(endpoints(await cache.list(id))).toEqual([sub(1).endpoint]);
    await cache.add(id, sub(2), 3);
    expect(endpoints(await cache.list(id))).toEqual([sub(2).endpoint, sub(1).endpoint]);
    await cache.remove(id, sub(2).endpoint);
    const left = await cache.list(id);
    expect(endpoints(left)).toEqual([sub(1).endpoint]);
    await cache.drop(id, left[0]!);
    expect(await cache.list(id)).toEqual([]);
    await table.add(id, sub(3), 3); // written behind the cache's back, as an erasure deletes
    await cache.invalidate([id]);
    expect(endpoints(await cache.list(id))).toEqual([sub(3).endpoint]);
  });

  it("a delivery that read the store before a register cannot fill its older rows after the register returned", async () => {
    make();
    const id = ++nextId;
    // A slow delivery: its lease is taken and the store read (no subscription), then the register commits and clears the cache.
    let release!: () => void;
    let readDone!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const read = new Promise<void>((r) => (readDone = r));
    const slow = {
      ...table,
      list: async (userId: bigint) => {
        const rows = await table.list(userId);
        readDone();
        await held;
        return rows;
      },
    };
    const slowCache = cachePushSubscriptions(slow, { redis: server.redis, ttlMs: 60_000, log });
    const delivery = slowCache.list(id);
    await read; // its lease was taken before this read
    await cache.add(id, sub(1), 3);
    release();
    expect(await delivery).toEqual([]); // it read before the register: as with the primary read
    expect(endpoints(await cache.list(id))).toEqual([sub(1).endpoint]); // its fill did not land
  });

  it("without Redis, reads go to the store and a change answers Unavailable", async () => {
    const down = await startTestRedis();
    const store = tableStore();
    const c = cachePushSubscriptions(store, { redis: down.redis, ttlMs: 60_000, log, attempts: 2, retryMs: 10 });
    const id = ++nextId;
    await store.add(id, sub(1), 3);
    await down.stop();
    expect(endpoints(await c.list(id))).toEqual([sub(1).endpoint]);
    await expect(c.add(id, sub(2), 3)).rejects.toMatchObject({ code: 14 });
  });
});
