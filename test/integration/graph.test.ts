// The graph store and edge repair against a tenant of the shared cluster (real mariadbd,
// two replica sets): each side of an edge changes with its user's count in
// one transaction; a crash between the follower's and the followee's
// transaction is repaired by the event consumer's handler or by the sweep, in
// any order of delivery; keyset pages stay exact while the list changes.
// Called directly (no processes): test/e2e/graph.test.ts goes through the gateway.
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EVENTS } from "../../lib/events/subjects.js";
import { createIdGenerator } from "../../lib/ids.js";
import { topologyFromEnv } from "../../lib/shard/config.js";
import { createShardRouter, type ShardRouter } from "../../lib/shard/router.js";
import { announceEdgeChange, decodeGraphEdgeEvent, type GraphEdgeEvent } from "../../services/graph/events.js";
import { createEdgeRepair, type EdgeRepair } from "../../services/graph/repair.js";
import { listEdges, setFollowerSide, type EdgeListRow } from "../../services/graph/store.js";
import { startSystem, type TestSystem } from "../support/system.js";

let system: TestSystem;
let router: ShardRouter;
let repair: EdgeRepair;
const ids = createIdGenerator(3);
const silent = pino({ level: "silent" });

beforeAll(async () => {
  system = await startSystem({ mesh: false, router: false });
  // The storm below queues 150 transactions on 8 connections per member by
  // design; what it checks is the counts, not load shedding, so a statement
  // waits for a connection as long as it takes (the default sheds after 2 s,
  // which a loaded machine's semi-sync commits can reach).
  router = await createShardRouter({ ...topologyFromEnv(system.env, system.infra.shardConfig), acquireTimeoutMs: 60_000 });
  repair = createEdgeRepair({ router, log: silent, sweepIntervalMs: 0, sweepGraceMs: 0, sweepBatch: 100 });
});

afterAll(async () => {
  await repair?.close();
  await router?.close();
  await system?.stop();
});

// Users are rows in chirp.users (the graph service only reads them); ids
// spread over every shard.
let nextUser = 0;
async function newUsers(n: number): Promise<bigint[]> {
  const made: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const id = BigInt(Date.now()) * 1000n + BigInt(nextUser++ % 1000);
    await router
      .primaryForUser(id)
      .execute("INSERT INTO chirp.users (id, handle, email, password_hash) VALUES (?, ?, ?, 'x')", [id, `g${String(id).slice(-14)}`, `${id}@example.com`]);
    made.push(id);
  }
  return made;
}

/** What Follow/Unfollow do after their checks: the follower's side, then the followee's at once. */
async function setEdge(followerId: bigint, followeeId: bigint, active: boolean): Promise<void> {
  const change = await setFollowerSide(router, followerId, followeeId, active, announceEdgeChange(ids, undefined));
  if (change.edge !== undefined && change.syncPending) await repair.reconcile(change.edge, "sync");
}

/** The follower's transaction alone: a crash right after it. */
async function followerSideOnly(followerId: bigint, followeeId: bigint, active: boolean): Promise<void> {
  await setFollowerSide(router, followerId, followeeId, active, announceEdgeChange(ids, undefined));
}

interface Side {
  state: number;
  version: string;
}

async function sides(followerId: bigint, followeeId: bigint) {
  const [follows] = await router
    .primaryForUser(followerId)
    .query<Side & { sync_pending: number }>("SELECT state, version, sync_pending FROM chirp.follows WHERE follower_id = ? AND followee_id = ?", [
      followerId,
      followeeId,
    ]);
  const [followers] = await router
    .primaryForUser(followeeId)
    .query<Side>("SELECT state, version FROM chirp.followers WHERE followee_id = ? AND follower_id = ?", [followeeId, followerId]);
  return { follows, followers };
}

async function counts(userId: bigint): Promise<{ followers: number; following: number }> {
  const [row] = await router
    .primaryForUser(userId)
    .query<{ follower_count: string; following_count: string }>("SELECT follower_count, following_count FROM chirp.users WHERE id = ?", [userId]);
  return { followers: Number(row!.follower_count), following: Number(row!.following_count) };
}

async function activeFollowerRows(followeeId: bigint): Promise<number> {
  const [row] = await router
    .primaryForUser(followeeId)
    .query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.followers WHERE followee_id = ? AND state = 1", [followeeId]);
  return Number(row!.n);
}

async function activeFollowsRows(followerId: bigint): Promise<number> {
  const [row] = await router
    .primaryForUser(followerId)
    .query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.follows WHERE follower_id = ? AND state = 1", [followerId]);
  return Number(row!.n);
}

/** The graph events in the follower's outbox for this edge, in commit order. */
async function outboxEvents(followerId: bigint, followeeId: bigint): Promise<GraphEdgeEvent[]> {
  const rows = await router
    .primaryForUser(followerId)
    .query<{ subject: string; payload: Buffer }>("SELECT subject, payload FROM chirp.outbox WHERE user_id = ? ORDER BY id", [followerId]);
  return rows.map((r) => decodeGraphEdgeEvent(r.subject, new Uint8Array(r.payload))!).filter((e) => e.message.followeeId === followeeId);
}

describe("follow and unfollow", () => {
  it("are idempotent: a repeated call changes nothing, counts once and announces once", async () => {
    const [a, b] = (await newUsers(2)) as [bigint, bigint];
    await setEdge(a, b, true);
    await setEdge(a, b, true);
    expect(await sides(a, b)).toEqual({ follows: { state: 1, version: "1", sync_pending: 0 }, followers: { state: 1, version: "1" } });
    expect(await counts(a)).toEqual({ followers: 0, following: 1 });
    expect(await counts(b)).toEqual({ followers: 1, following: 0 });

    await setEdge(a, b, false);
    await setEdge(a, b, false);
    expect(await sides(a, b)).toEqual({ follows: { state: 0, version: "2", sync_pending: 0 }, followers: { state: 0, version: "2" } });
    expect(await counts(a)).toEqual({ followers: 0, following: 0 });
    expect(await counts(b)).toEqual({ followers: 0, following: 0 });

    const events = await outboxEvents(a, b);
    expect(events.map((e) => e.subject)).toEqual([EVENTS.userFollowed.subject, EVENTS.userUnfollowed.subject]);
    expect(events.map((e) => e.message.edgeVersion)).toEqual([1n, 2n]);
  });

  it("unfollowing a never-followed user writes nothing", async () => {
    const [a, b] = (await newUsers(2)) as [bigint, bigint];
    await setEdge(a, b, false);
    expect(await sides(a, b)).toEqual({ follows: undefined, followers: undefined });
    expect(await outboxEvents(a, b)).toEqual([]);
  });

  it("keep counts exact when many users follow one user at once", async () => {
    const [star, ...fans] = (await newUsers(41)) as [bigint, ...bigint[]];
    await Promise.all(fans.map((f) => setEdge(f, star, true)));
    expect(await counts(star)).toEqual({ followers: 40, following: 0 });
    expect(await activeFollowerRows(star)).toBe(40);
    for (const f of fans) expect(await counts(f)).toEqual({ followers: 0, following: 1 });
  });

  it("keep counts equal to edge rows on both sides under a follow/unfollow storm on the same edges", async () => {
    const [a, b, c] = (await newUsers(3)) as [bigint, bigint, bigint];
    const ops: Array<Promise<void>> = [];
    for (let i = 0; i < 150; i++) {
      const [f, e] = [
        [a, b],
        [b, a],
        [c, b],
      ][i % 3] as [bigint, bigint];
      ops.push(setEdge(f, e, Math.random() < 0.5));
    }
    await Promise.all(ops);
    for (const u of [a, b, c]) {
      const n = await counts(u);
      expect(n.followers).toBe(await activeFollowerRows(u));
      expect(n.following).toBe(await activeFollowsRows(u));
    }
    for (const [f, e] of [
      [a, b],
      [b, a],
      [c, b],
    ] as const) {
      const s = await sides(f, e);
      expect(s.followers).toEqual({ state: s.follows!.state, version: s.follows!.version });
      expect(s.follows!.sync_pending).toBe(0);
    }
  });
});

describe("a crash between the follower's and the followee's transaction", () => {
  it("leaves a follow one-sided until the event is consumed, which repairs it", async () => {
    const [a, b] = (await newUsers(2)) as [bigint, bigint];
    await followerSideOnly(a, b, true);
    expect(await sides(a, b)).toEqual({ follows: { state: 1, version: "1", sync_pending: 1 }, followers: undefined });
    expect(await counts(b)).toEqual({ followers: 0, following: 0 });

    const [event] = await outboxEvents(a, b);
    await repair.handleEvent(event!);
    await repair.handleEvent(event!); // redelivered: no effect
    expect(await sides(a, b)).toEqual({ follows: { state: 1, version: "1", sync_pending: 0 }, followers: { state: 1, version: "1" } });
    expect(await counts(b)).toEqual({ followers: 1, following: 0 });
  });

  it("leaves an unfollow one-sided until the sweep repairs it", async () => {
    const [a, b] = (await newUsers(2)) as [bigint, bigint];
    await setEdge(a, b, true);
    await followerSideOnly(a, b, false);
    expect(await sides(a, b)).toEqual({ follows: { state: 0, version: "2", sync_pending: 1 }, followers: { state: 1, version: "1" } });
    expect(await counts(b)).toEqual({ followers: 1, following: 0 });
    expect(await counts(a)).toEqual({ followers: 0, following: 0 });

    const swept = await repair.sweepOnce();
    expect(swept.applied).toBeGreaterThanOrEqual(1);
    expect(await sides(a, b)).toEqual({ follows: { state: 0, version: "2", sync_pending: 0 }, followers: { state: 0, version: "2" } });
    expect(await counts(b)).toEqual({ followers: 0, following: 0 });
  });

  it("is repaired to the latest version whatever order the events arrive in, repeated or not", async () => {
    const users = await newUsers(6);
    const [a] = users as [bigint];
    const permutations = [
      (xs: number[]) => [...xs].reverse(),
      (xs: number[]) => [...xs, ...xs].sort(() => Math.random() - 0.5),
      (xs: number[]) => [xs[2]!, xs[0]!, xs[4]!, xs[1]!, xs[3]!],
      (xs: number[]) => [xs[1]!, xs[1]!, xs[0]!],
      (xs: number[]) => [xs[3]!, xs[2]!],
    ];
    for (const [i, order] of permutations.entries()) {
      const b = users[i + 1]!;
      // Five changes, none of them reaching the followee's side: v1 follow ... v5 follow.
      for (const active of [true, false, true, false, true]) await followerSideOnly(a, b, active);
      const events = await outboxEvents(a, b);
      expect(events).toHaveLength(5);
      const delivered = order([0, 1, 2, 3, 4]);
      for (const k of delivered) await repair.handleEvent(events[k]!);
      const newest = Math.max(...delivered);
      expect(await sides(a, b)).toEqual({
        follows: { state: 1, version: "5", sync_pending: newest === 4 ? 0 : 1 },
        followers: { state: newest % 2 === 0 ? 1 : 0, version: String(newest + 1) },
      });
      expect((await counts(b)).followers).toBe(newest % 2 === 0 ? 1 : 0);
      // Whatever the consumer saw, the sweep finishes from the follower's side.
      await repair.sweepOnce();
      expect(await sides(a, b)).toEqual({ follows: { state: 1, version: "5", sync_pending: 0 }, followers: { state: 1, version: "5" } });
      expect((await counts(b)).followers).toBe(1);
    }
    expect(await counts(a)).toEqual({ followers: 0, following: 5 });
  });

  it("the sweep leaves rows younger than its grace period to the request finishing them", async () => {
    const [a, b] = (await newUsers(2)) as [bigint, bigint];
    await followerSideOnly(a, b, true);
    const patient = createEdgeRepair({ router, log: silent, sweepIntervalMs: 0, sweepGraceMs: 60_000, sweepBatch: 100 });
    await patient.sweepOnce();
    expect((await sides(a, b)).followers).toBeUndefined();
    await repair.sweepOnce();
    expect((await sides(a, b)).followers).toEqual({ state: 1, version: "1" });
  });

  it("the periodic sweep runs on its own", async () => {
    const [a, b] = (await newUsers(2)) as [bigint, bigint];
    await followerSideOnly(a, b, true);
    const periodic = createEdgeRepair({ router, log: silent, sweepIntervalMs: 50, sweepGraceMs: 0, sweepBatch: 100 });
    periodic.start();
    try {
      await expect.poll(async () => (await sides(a, b)).followers, { timeout: 10_000 }).toEqual({ state: 1, version: "1" });
    } finally {
      await periodic.close();
    }
  });
});

describe("keyset pages", () => {
  it("walk a changing list without duplicates and without missing an edge that stays", async () => {
    const [owner, ...others] = (await newUsers(61)) as [bigint, ...bigint[]];
    const stable = others.slice(0, 40);
    const churn = others.slice(40);
    for (const u of stable) await setEdge(u, owner, true);
    for (const u of churn.slice(0, 10)) await setEdge(u, owner, true);
    for (const u of stable.slice(0, 20)) await setEdge(owner, u, true);

    let stop = false;
    const churning = (async () => {
      while (!stop) {
        const u = churn[Math.floor(Math.random() * churn.length)]!;
        await setEdge(u, owner, Math.random() < 0.5);
        const v = churn[Math.floor(Math.random() * churn.length)]!;
        await setEdge(owner, v, Math.random() < 0.5);
      }
    })();

    const walk = async (kind: "followers" | "following", pageSize: number): Promise<EdgeListRow[]> => {
      const seen: EdgeListRow[] = [];
      let after: EdgeListRow | undefined;
      for (;;) {
        const rows = await listEdges(router, kind, owner, after, pageSize + 1, false);
        const page = rows.slice(0, pageSize);
        seen.push(...page);
        if (rows.length <= pageSize) return seen;
        after = page.at(-1);
        await new Promise((r) => setTimeout(r, 5)); // let the list change between pages
      }
    };
    try {
      for (const pageSize of [1, 3, 7, 20]) {
        const followers = await walk("followers", pageSize);
        const ids = followers.map((r) => r.otherUserId);
        expect(new Set(ids).size).toBe(ids.length);
        for (const u of stable) expect(ids).toContain(u);
        // Newest first.
        for (let i = 1; i < followers.length; i++) expect(followers[i - 1]!.followTimeMicros >= followers[i]!.followTimeMicros).toBe(true);

        const following = (await walk("following", pageSize)).map((r) => r.otherUserId);
        expect(new Set(following).size).toBe(following.length);
        for (const u of stable.slice(0, 20)) expect(following).toContain(u);
      }
    } finally {
      stop = true;
      await churning;
    }
  });
});
