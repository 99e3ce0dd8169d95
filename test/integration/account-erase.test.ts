// A deleted account's erasure stopped part way and run again (issue 21, item
// 4: "resumable after a crash mid-way"), against a tenant of the shared
// cluster (real mariadbd and Redis), called directly as the graph's consumer
// of UserDeleted calls it: a user with more follows both ways and blocks both
// ways than one batch holds; the run dies after a batch (as a crashed process
// does: what it committed stays); the redelivery finishes what is left, and
// every count on the other side ends exact, never corrected twice; a third
// run (a duplicate delivery) changes nothing. test/e2e/account-deletion.test.ts
// goes through the gateway and every service's consumer.
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserDeletedSchema } from "../../gen/chirp/user/v1/events_pb.js";
import { createEventBus, type EventBus } from "../../lib/events/bus.js";
import { BUS_DEFAULTS } from "../../lib/events/config.js";
import { consume } from "../../lib/events/consumer.js";
import { EVENTS } from "../../lib/events/subjects.js";
import { createIdGenerator } from "../../lib/ids.js";
import { createRelationCache } from "../../lib/relations.js";
import type { MeshClients } from "../../lib/rpc/mesh-clients.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { createBlocks } from "../../services/graph/blocks.js";
import { createGraphErasure, type GraphErasure } from "../../services/graph/erase.js";
import { createFollowEdges, type FollowEdges } from "../../services/graph/follow-edges.js";
import { createEdgeRepair, type EdgeRepair } from "../../services/graph/repair.js";
import type { Blocks } from "../../services/graph/blocks.js";
import { startSystem, type TestSystem } from "../support/system.js";

let system: TestSystem;
let router: ShardRouter;
let redis: Redis;
let repair: EdgeRepair;
let follows: FollowEdges;
let blocks: Blocks;
let erasure: GraphErasure;
let bus: EventBus;
const ids = createIdGenerator(5);
const silent = pino({ level: "silent" });

beforeAll(async () => {
  system = await startSystem({ mesh: false });
  router = system.router;
  redis = new Redis(system.infra.redisUrl, { maxRetriesPerRequest: 1 });
  repair = createEdgeRepair({ router, log: silent, sweepIntervalMs: 0, sweepGraceMs: 0, sweepBatch: 100 });
  follows = createFollowEdges({ router, ids, userCache: undefined, repair });
  // Erasure only clears cached relation sets (Redis); it never asks the graph service for them.
  const relations = createRelationCache({ redis, clients: {} as Pick<MeshClients, "graph">, ttlMs: 60_000, log: silent });
  blocks = createBlocks({ router, ids, relations, follows, log: silent });
  erasure = createGraphErasure({ router, follows, blocks, relations, log: silent });
  bus = createEventBus({ config: { ...BUS_DEFAULTS, natsUrl: system.infra.natsUrl }, log: silent });
});

afterAll(async () => {
  await bus?.close();
  await repair?.close();
  redis?.disconnect();
  await system?.stop();
});

let nextUser = 0;
async function newUsers(n: number): Promise<bigint[]> {
  const made: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const id = ids.next();
    await router
      .primaryForUser(id)
      .execute("INSERT INTO chirp.users (id, handle, email, password_hash) VALUES (?, ?, ?, 'x')", [id, `er${nextUser++}_${process.pid % 1000}`, `${id}@example.com`]);
    made.push(id);
  }
  return made;
}

async function counts(userIds: readonly bigint[]): Promise<string[]> {
  const out: string[] = [];
  for (const id of userIds) {
    const [row] = await router
      .primaryForUser(id)
      .query<{ follower_count: string; following_count: string }>("SELECT follower_count, following_count FROM chirp.users WHERE id = ?", [id]);
    out.push(`${row!.follower_count}/${row!.following_count}`);
  }
  return out;
}

async function active(table: string, column: string, userId: bigint): Promise<number> {
  const [row] = await router.primaryForUser(userId).query<{ n: string }>(`SELECT COUNT(*) AS n FROM chirp.${table} WHERE ${column} = ? AND state = 1`, [userId]);
  return Number(row!.n);
}

class Crash extends Error {}

describe("account erasure (graph)", () => {
  it("stopped after a batch, finishes on redelivery with every count exact, and a duplicate delivery changes nothing", { timeout: 60_000 }, async () => {
    const [doomed] = (await newUsers(1)) as [bigint];
    const followees = await newUsers(7);
    const followers = await newUsers(7);
    const blockedByDoomed = await newUsers(4);
    const blockersOfDoomed = await newUsers(4);
    for (const f of followees) await follows.set(doomed, f, true, undefined);
    for (const f of followers) await follows.set(f, doomed, true, undefined);
    for (const b of blockedByDoomed) await blocks.setBlock(doomed, b, true, undefined);
    for (const b of blockersOfDoomed) await blocks.setBlock(b, doomed, true, undefined);
    await router.primaryForUser(doomed).execute("INSERT INTO chirp.mutes (muter_id, muted_id) VALUES (?, ?), (?, ?)", [doomed, followees[0]!, doomed, followees[1]!]);
    expect(await counts(followees)).toEqual(Array(7).fill("1/0"));
    expect(await counts(followers)).toEqual(Array(7).fill("0/1"));

    // The first delivery dies after the first batch of followers (batches of
    // 3: the 7 follows by the user are done, 3 of the 7 follows of them).
    const batches: string[] = [];
    const first = erasure.erase(doomed, {
      batch: 3,
      onBatch: (what, n) => {
        batches.push(`${what}:${n}`);
        if (what === "followers") throw new Crash("killed mid-way");
      },
    });
    await expect(first).rejects.toBeInstanceOf(Crash);
    expect(batches).toEqual(["following:3", "following:3", "following:1", "followers:3"]);
    expect(await counts(followees)).toEqual(Array(7).fill("0/0"));
    expect((await counts(followers)).filter((c) => c === "0/0")).toHaveLength(3);
    expect(await active("followers", "followee_id", doomed)).toBe(4);
    expect(await active("blocks", "blocker_id", doomed)).toBe(4);

    // The redelivery: only what is left.
    expect(await erasure.erase(doomed, { batch: 3 })).toEqual({ following: 0, followers: 4, blocked: 4, blockedBy: 4, mutes: 2 });
    expect(await counts(followees)).toEqual(Array(7).fill("0/0"));
    expect(await counts(followers)).toEqual(Array(7).fill("0/0"));
    expect(await active("follows", "follower_id", doomed)).toBe(0);
    expect(await active("followers", "followee_id", doomed)).toBe(0);
    expect(await active("blocks", "blocker_id", doomed)).toBe(0);
    expect(await active("blocked_by", "blocked_id", doomed)).toBe(0);
    for (const b of blockersOfDoomed) expect(await active("blocks", "blocker_id", b)).toBe(0);
    for (const b of blockedByDoomed) expect(await active("blocked_by", "blocked_id", b)).toBe(0);

    // A duplicate delivery: nothing to do, no count moves.
    expect(await erasure.erase(doomed, { batch: 3 })).toEqual({ following: 0, followers: 0, blocked: 0, blockedBy: 0, mutes: 0 });
    expect(await counts([...followees, ...followers])).toEqual(Array(14).fill("0/0"));
  });

  it("through a durable consumer: a delivery that fails after a batch is redelivered by JetStream and finishes the rest", { timeout: 60_000 }, async () => {
    const [doomed] = (await newUsers(1)) as [bigint];
    const followers = await newUsers(8);
    for (const f of followers) await follows.set(f, doomed, true, undefined);
    const deliveries: string[] = [];
    let finished!: () => void;
    const done = new Promise<void>((resolve) => (finished = resolve));
    const consumer = consume({
      bus,
      durable: `erase-test-${process.pid}`,
      subjects: [EVENTS.userDeleted],
      retryMinMs: 50,
      log: silent,
      handler: async (event) => {
        if (event.message.userId !== doomed) return;
        deliveries.push(`delivery ${event.redeliveryCount}`);
        const erased = await erasure.erase(event.message.userId, {
          batch: 3,
          onBatch: () => {
            if (event.redeliveryCount === 0) throw new Crash("died after a batch");
          },
        });
        deliveries.push(`followers ${erased.followers}`);
        finished();
      },
    });
    try {
      await consumer.started();
      const { js } = await bus.ready();
      await js.publish(EVENTS.userDeleted.subject, toBinary(UserDeletedSchema, create(UserDeletedSchema, { userId: doomed, deleteTime: timestampNow() })), {
        msgID: `erase-test-${doomed}`,
      });
      await done;
    } finally {
      await consumer.stop();
    }
    // The first delivery ended 3 of the 8 follows; the redelivery found the 5 left.
    expect(deliveries).toEqual(["delivery 0", "delivery 1", "followers 5"]);
    expect(await counts(followers)).toEqual(Array(8).fill("0/0"));
    expect(await active("followers", "followee_id", doomed)).toBe(0);
  });
});
