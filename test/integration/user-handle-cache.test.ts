// The handle -> user id cache (services/user/handle-cache.ts). First its
// protocol against a redis-server alone, step by step: a miss hands out a
// lease taken before the reader reads the claims, an invalidation after a
// handle changed owner deletes the entry and every lease, a fill needs its
// lease. Then the user service's handlers, in this process, against the
// file's MariaDB shards and Redis database: a second BatchGetUsers by the
// same handles runs no SQL statement at all (counted by the shard router's
// own statement metric), a claim without its user row is never cached, and
// without Redis every handle still resolves from MySQL.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../devcluster/index.js";
import { BatchGetUsersRequestSchema, GetUserRequestSchema, type BatchGetUsersResponse } from "../../gen/chirp/user/v1/user_service_pb.js";
import { createIdGenerator } from "../../lib/ids.js";
import { createMetrics, type Metrics } from "../../lib/metrics.js";
import { topologyFromEnv } from "../../lib/shard/config.js";
import { createShardRouter, type ShardRouter } from "../../lib/shard/router.js";
import { createUserCache } from "../../lib/user-cache.js";
import type { UserContext } from "../../services/user/context.js";
import { createHandleCache, type HandleCache, type HandleCacheRead } from "../../services/user/handle-cache.js";
import { routes } from "../../services/user/routes.js";
import { claimKey, createUserStore, type UserStore } from "../../services/user/store.js";
import { startTestRedis, type TestRedis } from "../support/redis.js";
import { startSystem, type TestSystem } from "../support/system.js";

const log = pino({ level: "silent" });

/** A Redis client of a server nobody runs: every command fails at once, as the services' clients do while Redis is away. */
async function redisAway(): Promise<Redis> {
  const away = new Redis(`redis://127.0.0.1:${await freePort()}`, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 200, retryStrategy: () => null, lazyConnect: true });
  away.on("error", () => {});
  return away;
}

function leaseOf(r: HandleCacheRead | undefined): string {
  if (r?.kind !== "miss" || r.lease === undefined) throw new Error(`expected a miss with a lease, got ${JSON.stringify(r)}`);
  return r.lease;
}

const shown = (r: HandleCacheRead | undefined): string => (r?.kind === "hit" ? `user ${r.userId}` : "miss");

describe("the handle cache (redis-server alone)", () => {
  let server: TestRedis;
  let cache: HandleCache;
  let n = 0;
  const handle = (): string => `h${process.pid % 10_000}_${n++}`;

  beforeAll(async () => {
    server = await startTestRedis();
    cache = createHandleCache({ redis: server.redis, ttlMs: 60_000, log, attempts: 2, retryMs: 10 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("a miss hands out a lease; the fill is then a hit, whatever the handle's case, for several handles in one read", async () => {
    const [a, b] = [handle(), handle()];
    const reads = await cache.read([a, b.toUpperCase(), a.toUpperCase()]);
    expect([...reads.keys()]).toEqual([a, b]);
    await cache.fill([
      { handle: a, lease: leaseOf(reads.get(a)), userId: 11n },
      { handle: b.toUpperCase(), lease: leaseOf(reads.get(b)), userId: 12n },
    ]);
    const again = await cache.read([a.toUpperCase(), b]);
    expect([shown(again.get(a)), shown(again.get(b))]).toEqual(["user 11", "user 12"]);
    expect(await server.redis.pttl(`chirp:handle:{${a}}`)).toBeGreaterThan(0); // a TTL bounds what a lost invalidation leaves
  });

  it("a reader that read the old owner's claim before a deletion freed the handle cannot fill it after the deletion's invalidation", async () => {
    const h = handle();
    const staleLease = leaseOf((await cache.read([h])).get(h)); // a reader misses, takes its lease, reads the claim: user 21...
    await cache.invalidate([h]); // ...user 21's DeleteAccount releases the claim and clears the entry...
    await cache.fill([{ handle: h, lease: staleLease, userId: 21n }]); // ...and the slow reader's fill is refused
    const after = (await cache.read([h])).get(h);
    expect(after?.kind).toBe("miss");
    // The next reader's lease comes after the invalidation, so its primary read sees the new owner's claim.
    await cache.fill([{ handle: h, lease: leaseOf(after), userId: 22n }]);
    expect(shown((await cache.read([h])).get(h))).toBe("user 22");
  });

  it("an invalidation clears a cached owner; a lease fills once", async () => {
    const h = handle();
    const lease = leaseOf((await cache.read([h])).get(h));
    await cache.fill([{ handle: h, lease, userId: 31n }]);
    await cache.invalidate([h]);
    expect(shown((await cache.read([h])).get(h))).toBe("miss");
    await cache.fill([{ handle: h, lease, userId: 31n }]);
    expect(await server.redis.exists(`chirp:handle:{${h}}`)).toBe(0);
  });

  it("a value this code did not write is a miss without a lease", async () => {
    const h = handle();
    await server.redis.set(`chirp:handle:{${h}}`, "not an id");
    expect((await cache.read([h])).get(h)).toEqual({ kind: "miss", lease: undefined });
  });

  it("without Redis, every handle is a miss without a lease, a fill changes nothing, and an invalidation answers Unavailable", async () => {
    const away = await redisAway();
    const down = createHandleCache({ redis: away, ttlMs: 60_000, log, attempts: 2, retryMs: 5 });
    try {
      expect(await down.read(["Someone", "else"])).toEqual(
        new Map([
          ["someone", { kind: "miss", lease: undefined }],
          ["else", { kind: "miss", lease: undefined }],
        ]),
      );
      await down.fill([{ handle: "someone", lease: "x", userId: 1n }]);
      const err = await down.invalidate(["someone"]).then(
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

describe("BatchGetUsers and GetUser by handle against MariaDB and Redis", () => {
  let system: TestSystem;
  let router: ShardRouter;
  let metrics: Metrics;
  let redis: Redis;
  let store: UserStore;
  let handlers: ReturnType<typeof routes>;
  const ids = createIdGenerator(1017);
  let n = 0;
  const hctx = { requestHeader: new Headers() } as unknown as HandlerContext;

  /** Handlers over the file's shards and `cacheRedis`, as the user service builds them (context.ts). */
  function userRoutes(cacheRedis: Redis, m?: Metrics): ReturnType<typeof routes> {
    const ctx = {
      store,
      log,
      handleCache: createHandleCache({ redis: cacheRedis, ttlMs: 60_000, log, ...(m === undefined ? {} : { metrics: m }) }),
      userCache: createUserCache({ redis: cacheRedis, ttlMs: 60_000, leaseMs: 5000, log }),
    } as unknown as UserContext;
    return routes(ctx);
  }

  /** A user as a finished sign-up leaves it: the handle's claim and the user row. */
  async function signedUp(): Promise<{ id: bigint; handle: string }> {
    const handle = `Hc${process.pid % 10_000}_${n++}`;
    const id = ids.next();
    expect(await store.claim(claimKey("handle", handle), id)).toBe("claimed");
    await store.createUser({ id, handle, displayName: handle, email: `${handle}@example.com`, passwordHash: "x", birthDate: undefined }, () => {}, async () => {});
    return { id, handle };
  }

  /** Statements the shard router ran so far (every statement and transaction it routed, on any member). */
  async function statements(): Promise<number> {
    const { values } = await metrics.dbQueryDuration.get();
    return values.filter((v) => v.metricName === "chirp_db_query_duration_seconds_count").reduce((sum, v) => sum + v.value, 0);
  }

  async function handleReads(): Promise<Record<string, number>> {
    const metric = metrics.registry.getSingleMetric("chirp_user_handle_cache_reads_total");
    const { values } = await metric!.get();
    return Object.fromEntries(values.map((v) => [String(v.labels["result"]), v.value]));
  }

  const batch = async (h: ReturnType<typeof routes>, handles: string[]): Promise<string[]> =>
    ((await h.batchGetUsers!(create(BatchGetUsersRequestSchema, { handles }), hctx)) as BatchGetUsersResponse).users.map((u) => `${u.id} ${u.handle}`);

  beforeAll(async () => {
    system = await startSystem({ mesh: false, router: false });
    metrics = createMetrics("handle-cache-test");
    router = await createShardRouter({ ...topologyFromEnv(system.env, system.infra.shardConfig), metrics });
    store = createUserStore(router);
    redis = new Redis(system.infra.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2000 });
    handlers = userRoutes(redis, metrics);
  });
  afterAll(async () => {
    redis?.disconnect();
    await router?.close();
    await system?.stop();
  });

  it("a second BatchGetUsers by the same handles runs no SQL statement, and answers the same", async () => {
    const users = await Promise.all(Array.from({ length: 6 }, () => signedUp()));
    // Mentions as a tweet has them: any case, some twice.
    const mentions = [...users.map((u, i) => (i % 2 === 0 ? u.handle.toLowerCase() : u.handle.toUpperCase())), users[0]!.handle];
    expect(new Set(users.map((u) => router.shardForHandle(u.handle.toLowerCase()).name)).size).toBeGreaterThan(1);
    const want = users.map((u) => `${u.id} ${u.handle}`);

    const before = await statements();
    expect(await batch(handlers, mentions)).toEqual(want);
    expect((await statements()) - before).toBeGreaterThan(0); // the claims and the profiles, from the primaries

    const reads = await handleReads();
    const again = await statements();
    expect(await batch(handlers, mentions)).toEqual(want);
    expect((await statements()) - again).toBe(0);
    expect(((await handleReads())["hit"] ?? 0) - (reads["hit"] ?? 0)).toBe(6);

    // A handle nobody holds is not cached: its claim is read (one statement on its shard's primary) every time.
    for (let i = 0; i < 2; i++) {
      const unknown = await statements();
      expect(await batch(handlers, [...mentions, "nobody_here"])).toEqual(want);
      expect((await statements()) - unknown).toBe(1);
    }

    // GetUser by handle: the same cache, no statement either.
    const one = await statements();
    const got = await handlers.getUser!(create(GetUserRequestSchema, { lookup: { case: "handle", value: users[3]!.handle } }), hctx);
    expect(got.user?.id).toBe(users[3]!.id);
    expect((await statements()) - one).toBe(0);
  });

  it("a handle whose claim has no user row yet (a sign-up in flight) is not cached; once the row is written it resolves and is cached", async () => {
    const handle = `Hc${process.pid % 10_000}_${n++}`;
    const id = ids.next();
    expect(await store.claim(claimKey("handle", handle), id)).toBe("claimed");
    expect(await batch(handlers, [handle])).toEqual([]);
    expect(await redis.exists(`chirp:handle:{${handle.toLowerCase()}}`)).toBe(0);
    // The sign-up dies; its claim is released: had it been cached, the handle's next owner would resolve to this id.
    await store.release(claimKey("handle", handle), id);
    const next = await signedUp();
    expect(await batch(handlers, [next.handle])).toEqual([`${next.id} ${next.handle}`]);
    expect(await redis.get(`chirp:handle:{${next.handle.toLowerCase()}}`)).toBe(String(next.id));
  });

  it("without Redis, handles resolve from MySQL as before, and nothing is cached", async () => {
    const u = await signedUp();
    const away = await redisAway();
    try {
      const h = userRoutes(away);
      expect(await batch(h, [u.handle.toUpperCase()])).toEqual([`${u.id} ${u.handle}`]);
      const got = await h.getUser!(create(GetUserRequestSchema, { lookup: { case: "handle", value: u.handle } }), hctx);
      expect(got.user?.id).toBe(u.id);
    } finally {
      away.disconnect();
    }
    expect(await redis.exists(`chirp:handle:{${u.handle.toLowerCase()}}`)).toBe(0);
  });
});
