// The profile cache's protocol against a real redis-server, step by step: a
// reader takes a lease before it reads the primary; an invalidation after a
// committed change deletes the entry and every lease; a fill needs its lease.
// So once an invalidation has run, no row read before the change can land.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserSchema, type User } from "../../gen/chirp/user/v1/user_pb.js";
import { freePort } from "../../devcluster/index.js";
import { createUserCache, type UserCache, type UserCacheRead } from "../../lib/user-cache.js";
import { startTestRedis, type TestRedis } from "../support/redis.js";

const log = pino({ level: "silent" });
let server: TestRedis;
let redis: Redis;
let cache: UserCache;
let nextId = 2000n;

beforeAll(async () => {
  server = await startTestRedis();
  redis = server.redis;
  cache = createUserCache({ redis, ttlMs: 60_000, leaseMs: 5000, log, attempts: 2, retryMs: 10 });
});

afterAll(async () => {
  await server?.stop();
});

const profile = (id: bigint, followers: number): User => create(UserSchema, { id, handle: `u${id}`, followerCount: followers });

async function readOne(id: bigint): Promise<UserCacheRead> {
  return (await cache.read([id])).get(id)!;
}

function leaseOf(r: UserCacheRead): string {
  if (r.kind !== "miss" || r.lease === undefined) throw new Error(`expected a miss with a lease, got ${r.kind}`);
  return r.lease;
}

const shown = (r: UserCacheRead): string => (r.kind === "user" ? `followers ${r.user.followerCount}` : "miss");

describe("the profile cache", () => {
  it("a profile kept decoded in memory is reused only while Redis answers the same bytes: a changed count is seen at once, read or peeked", async () => {
    const id = ++nextId;
    await cache.fill([{ lease: leaseOf(await readOne(id)), user: profile(id, 1) }]);
    const first = await readOne(id);
    const peeked = (await cache.peek([id])).get(id);
    expect(first.kind === "user" && peeked === first.user).toBe(true); // decoded once
    await cache.invalidate([id]); // a follow committed
    await cache.fill([{ lease: leaseOf(await readOne(id)), user: profile(id, 2) }]);
    expect(shown(await readOne(id))).toBe("followers 2");
    expect((await cache.peek([id])).get(id)?.followerCount).toBe(2);
    await cache.invalidate([id]);
    expect((await cache.peek([id])).has(id)).toBe(false);
  });

  it("a miss hands out a lease; the fill with it is read back, for several ids in one round trip", async () => {
    const [a, b] = [++nextId, ++nextId];
    const reads = await cache.read([a, b, a]);
    expect(reads.size).toBe(2);
    await cache.fill([
      { lease: leaseOf(reads.get(a)!), user: profile(a, 1) },
      { lease: leaseOf(reads.get(b)!), user: profile(b, 2) },
    ]);
    const again = await cache.read([a, b]);
    expect([shown(again.get(a)!), shown(again.get(b)!)]).toEqual(["followers 1", "followers 2"]);
  });

  it("a reader that read the primary before a change cannot fill its older row after the change's invalidation", async () => {
    const id = ++nextId;
    await cache.fill([{ lease: leaseOf(await readOne(id)), user: profile(id, 1) }]);
    await cache.invalidate([id]); // a follow commits follower_count 2
    const staleLease = leaseOf(await readOne(id)); // a reader's lease...
    // ...and its primary read, which raced the next follow's commit: it read 2, then 3 committed.
    await cache.invalidate([id]);
    await cache.fill([{ lease: staleLease, user: profile(id, 2) }]);
    const after = await readOne(id);
    expect(after.kind).toBe("miss"); // not 2: the next reader goes to the primary and finds 3
    await cache.fill([{ lease: leaseOf(after), user: profile(id, 3) }]);
    expect(shown(await readOne(id))).toBe("followers 3");
  });

  it("a peek sees what is cached and takes no lease, so the reader it defers to can fill", async () => {
    const [cached, missing] = [++nextId, ++nextId];
    await cache.fill([{ lease: leaseOf(await readOne(cached)), user: profile(cached, 4) }]);
    const seen = await cache.peek([cached, missing, cached]);
    expect([...seen.keys()]).toEqual([cached]);
    expect(seen.get(cached)?.followerCount).toBe(4);
    expect(await redis.exists(`chirp:user:{${missing}}:lease`)).toBe(0);
    // The user service's read of the missing one takes its lease and fills; a peek then sees it.
    await cache.fill([{ lease: leaseOf(await readOne(missing)), user: profile(missing, 5) }]);
    expect((await cache.peek([missing])).get(missing)?.followerCount).toBe(5);
    await cache.invalidate([cached]);
    expect((await cache.peek([cached])).size).toBe(0);
  });

  it("a lease is used once: a second fill with it is refused", async () => {
    const id = ++nextId;
    const lease = leaseOf(await readOne(id));
    await cache.fill([{ lease, user: profile(id, 1) }]);
    await cache.invalidate([id]);
    await cache.fill([{ lease, user: profile(id, 9) }]);
    expect((await readOne(id)).kind).toBe("miss");
  });

  it("without Redis, a read is a miss without a lease, a peek finds nothing, and an invalidation answers Unavailable", async () => {
    const away = new Redis(`redis://127.0.0.1:${await freePort()}`, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 200, retryStrategy: () => null, lazyConnect: true });
    away.on("error", () => {});
    const down = createUserCache({ redis: away, ttlMs: 60_000, leaseMs: 5000, log, attempts: 2, retryMs: 5 });
    try {
      expect(await down.read([1n])).toEqual(new Map([[1n, { kind: "miss", lease: undefined }]]));
      expect((await down.peek([1n])).size).toBe(0);
      const err = await down.invalidate([1n]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Unavailable);
    } finally {
      away.disconnect();
    }
  });
});
