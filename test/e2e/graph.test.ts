// The social graph through the gateway, with the whole mesh as `npm start`
// runs it (private cluster, every service process, the gateway): users sign
// up through the public API and act with their tokens. Edge rows and counts
// are checked in the shard databases (primaries); repairs are shown by
// putting an edge in the state a crash after the follower's transaction
// leaves, and watching the graph process's sweep or its event consumer fix it.
import { fromBinary, toBinary, create } from "@bufbuild/protobuf";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connect as connectNats, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { UserFollowedSchema, UserUnfollowedSchema } from "../../gen/chirp/graph/v1/events_pb.js";
import { EVENT_STREAM, EVENTS } from "../../lib/events/subjects.js";
import type { Mesh } from "../../devcluster/launch.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { EDGE_REPAIR_DURABLE } from "../../services/graph/context.js";
import { gatewayApi, type Account } from "./support/api.js";
import { parseNatsUrl } from "../../lib/events/nats-url.js";
import { startSystem, type TestSystem } from "../support/system.js";

let system: TestSystem;
let mesh: Mesh;
let router: ShardRouter;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;

beforeAll(async () => {
  system = await startSystem({
    env: {
      // A quick sweep, so a test sees a repair within seconds; the grace keeps
      // it off edges whose own request is still finishing them.
      CHIRP_GRAPH_SWEEP_INTERVAL_MS: "200",
      CHIRP_GRAPH_SWEEP_GRACE_MS: "1000",
    },
  });
  ({ mesh, router } = system);
  nc = await connectNats(parseNatsUrl(system.infra.natsUrl));
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});
afterAll(async () => {
  await nc?.close();
  await system?.stop();
});

// --- the public API -------------------------------------------------------

interface ApiUser {
  id: string;
  handle: string;
  followerCount: number;
  followingCount: number;
}

const { call, ok, signUp, signUpMany } = gatewayApi(() => mesh.gatewayUrl, "g");

const follow = (who: Account, whom: Account) => call("chirp.graph.v1.GraphService/Follow", { userId: String(whom.id) }, who.token);
const unfollow = (who: Account, whom: Account) => call("chirp.graph.v1.GraphService/Unfollow", { userId: String(whom.id) }, who.token);

// --- the shard databases --------------------------------------------------

interface EdgeRows {
  follows: { state: number; version: string; sync_pending: number } | undefined;
  followers: { state: number; version: string } | undefined;
}

async function edgeRows(follower: Account, followee: Account): Promise<EdgeRows> {
  const [follows] = await router
    .primaryForUser(follower.id)
    .query<NonNullable<EdgeRows["follows"]>>("SELECT state, version, sync_pending FROM chirp.follows WHERE follower_id = ? AND followee_id = ?", [
      follower.id,
      followee.id,
    ]);
  const [followers] = await router
    .primaryForUser(followee.id)
    .query<NonNullable<EdgeRows["followers"]>>("SELECT state, version FROM chirp.followers WHERE followee_id = ? AND follower_id = ?", [
      followee.id,
      follower.id,
    ]);
  return { follows, followers };
}

async function counts(user: Account): Promise<{ followers: number; following: number }> {
  const [row] = await router
    .primaryForUser(user.id)
    .query<{ follower_count: string; following_count: string }>("SELECT follower_count, following_count FROM chirp.users WHERE id = ?", [user.id]);
  return { followers: Number(row!.follower_count), following: Number(row!.following_count) };
}

/** Active edge rows of the user on its own shard: followers rows where followee, follows rows where follower. */
async function edgeCounts(user: Account): Promise<{ followers: number; following: number }> {
  const db = router.primaryForUser(user.id);
  const [a] = await db.query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.followers WHERE followee_id = ? AND state = 1", [user.id]);
  const [b] = await db.query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.follows WHERE follower_id = ? AND state = 1", [user.id]);
  return { followers: Number(a!.n), following: Number(b!.n) };
}

// --- events -----------------------------------------------------------------

interface SeenEvent {
  subject: string;
  followerId: bigint;
  followeeId: bigint;
  edgeVersion: bigint;
}

/** Every graph event in the stream so far (an ordered consumer from the start). */
async function graphEventsInStream(): Promise<SeenEvent[]> {
  const consumer = await js.consumers.get(EVENT_STREAM, { filter_subjects: "chirp.graph.v1.*" });
  const seen: SeenEvent[] = [];
  const info = await consumer.info(true);
  let pending = info.num_pending;
  while (pending > 0) {
    const batch = await consumer.fetch({ max_messages: Math.min(pending, 500), expires: 2000 });
    let got = 0;
    for await (const msg of batch) {
      got++;
      const m =
        msg.subject === EVENTS.userFollowed.subject ? fromBinary(UserFollowedSchema, msg.data) : fromBinary(UserUnfollowedSchema, msg.data);
      seen.push({ subject: msg.subject, followerId: m.followerId, followeeId: m.followeeId, edgeVersion: m.edgeVersion });
    }
    if (got === 0) break;
    pending -= got;
  }
  await consumer.delete().catch(() => {});
  return seen;
}

/**
 * Waits until the follower's events are published (no unsent outbox row) and
 * the graph's repair consumer has handled everything in the stream: from then
 * on, only the sweep can change this edge.
 */
async function eventsSettled(follower: Account): Promise<void> {
  await expect
    .poll(
      async () => {
        const [row] = await router
          .primaryForUser(follower.id)
          .query<{ n: string }>("SELECT COUNT(*) AS n FROM chirp.outbox WHERE user_id = ? AND sent_time IS NULL", [follower.id]);
        if (Number(row!.n) > 0) return false;
        const info = await jsm.consumers.info(EVENT_STREAM, EDGE_REPAIR_DURABLE);
        return info.num_pending === 0 && info.num_ack_pending === 0;
      },
      { timeout: 15_000, interval: 100 },
    )
    .toBe(true);
}

// ---------------------------------------------------------------------------

describe("Follow and Unfollow", () => {
  it("are idempotent: a second call succeeds and changes nothing", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    expect((await follow(a, b)).status).toBe(200);
    expect((await follow(a, b)).status).toBe(200);
    expect(await edgeRows(a, b)).toEqual({ follows: { state: 1, version: "1", sync_pending: 0 }, followers: { state: 1, version: "1" } });
    expect(await counts(a)).toEqual({ followers: 0, following: 1 });
    expect(await counts(b)).toEqual({ followers: 1, following: 0 });

    const seenByOthers = await ok<{ user: ApiUser }>("chirp.user.v1.UserService/GetUser", { userId: String(b.id) });
    expect(seenByOthers.user.followerCount).toBe(1);

    expect((await unfollow(a, b)).status).toBe(200);
    expect((await unfollow(a, b)).status).toBe(200);
    expect(await edgeRows(a, b)).toEqual({ follows: { state: 0, version: "2", sync_pending: 0 }, followers: { state: 0, version: "2" } });
    expect(await counts(a)).toEqual({ followers: 0, following: 0 });
    expect(await counts(b)).toEqual({ followers: 0, following: 0 });
  });

  it("refuse following oneself (InvalidArgument), an unknown user (NotFound), and an anonymous caller (Unauthenticated)", async () => {
    const [a] = (await signUpMany(1)) as [Account];
    expect((await follow(a, a)).code).toBe("invalid_argument");
    expect((await unfollow(a, a)).code).toBe("invalid_argument");
    const ghost: Account = { id: a.id + 1_000_000n, handle: "ghost", token: "" };
    expect((await follow(a, ghost)).code).toBe("not_found");
    expect((await unfollow(a, ghost)).code).toBe("not_found");
    expect((await call("chirp.graph.v1.GraphService/Follow", { userId: String(a.id) })).code).toBe("unauthenticated");
    expect(await counts(a)).toEqual({ followers: 0, following: 0 });
  });

  it("keep follower_count exact when many users follow one user at once", async () => {
    const [star, ...fans] = (await signUpMany(31)) as [Account, ...Account[]];
    const answers = await Promise.all(fans.map((f) => follow(f, star)));
    expect(answers.map((r) => r.status)).toEqual(fans.map(() => 200));
    expect(await counts(star)).toEqual({ followers: 30, following: 0 });
    expect(await edgeCounts(star)).toEqual({ followers: 30, following: 0 });
  });

  it("keep every count equal to its side's edge rows under follow/unfollow storms of the same edges", async () => {
    const users = await signUpMany(4);
    const [a, b, c, d] = users as [Account, Account, Account, Account];
    const edges: Array<[Account, Account]> = [
      [a, b],
      [b, a],
      [c, b],
      [d, b],
      [a, c],
    ];
    const storm = Array.from({ length: 200 }, (_, i) => {
      const [x, y] = edges[i % edges.length]!;
      return Math.random() < 0.5 ? follow(x, y) : unfollow(x, y);
    });
    const answers = await Promise.all(storm);
    // A conflict the router could not retry away would be Aborted; none is expected, and none may be miscounted.
    expect(answers.filter((r) => r.status !== 200).map((r) => r.code)).toEqual([]);
    for (const u of users) expect(await counts(u)).toEqual(await edgeCounts(u));
    for (const [x, y] of edges) {
      const rows = await edgeRows(x, y);
      expect(rows.followers).toEqual({ state: rows.follows!.state, version: rows.follows!.version });
    }
  });
});

describe("a crash between the follower's and the followee's transaction", () => {
  it("a follow left one-sided is completed by the sweep", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    await ok("chirp.graph.v1.GraphService/Follow", { userId: String(b.id) }, a.token);
    await eventsSettled(a);
    // What the crash leaves: the follower's side committed and marked pending, the followee's side untouched.
    await router.primaryForUser(a.id).execute("UPDATE chirp.follows SET sync_pending = 1, update_time = UTC_TIMESTAMP(6) WHERE follower_id = ? AND followee_id = ?", [a.id, b.id]);
    await router.transaction(router.shardForUser(b.id), async (tx) => {
      await tx.execute("DELETE FROM chirp.followers WHERE followee_id = ? AND follower_id = ?", [b.id, a.id]);
      await tx.execute("UPDATE chirp.users SET follower_count = follower_count - 1 WHERE id = ?", [b.id]);
    });
    expect((await edgeRows(a, b)).followers).toBeUndefined();

    await expect.poll(() => edgeRows(a, b), { timeout: 15_000, interval: 100 }).toEqual({
      follows: { state: 1, version: "1", sync_pending: 0 },
      followers: { state: 1, version: "1" },
    });
    expect(await counts(b)).toEqual({ followers: 1, following: 0 });
  });

  it("an unfollow left one-sided is completed by the sweep", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    await ok("chirp.graph.v1.GraphService/Follow", { userId: String(b.id) }, a.token);
    await ok("chirp.graph.v1.GraphService/Unfollow", { userId: String(b.id) }, a.token);
    await eventsSettled(a);
    // Roll the followee's side back to version 1 (still following), as if the unfollow's copy never ran.
    await router.primaryForUser(a.id).execute("UPDATE chirp.follows SET sync_pending = 1, update_time = UTC_TIMESTAMP(6) WHERE follower_id = ? AND followee_id = ?", [a.id, b.id]);
    await router.transaction(router.shardForUser(b.id), async (tx) => {
      await tx.execute("UPDATE chirp.followers SET state = 1, version = 1 WHERE followee_id = ? AND follower_id = ?", [b.id, a.id]);
      await tx.execute("UPDATE chirp.users SET follower_count = follower_count + 1 WHERE id = ?", [b.id]);
    });
    expect(await counts(b)).toEqual({ followers: 1, following: 0 });

    await expect.poll(() => edgeRows(a, b), { timeout: 15_000, interval: 100 }).toEqual({
      follows: { state: 0, version: "2", sync_pending: 0 },
      followers: { state: 0, version: "2" },
    });
    expect(await counts(b)).toEqual({ followers: 0, following: 0 });
  });

  it("the event consumer applies a missed newer version, and ignores stale or repeated events delivered out of order", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    for (const step of [follow, unfollow, follow]) expect((await step(a, b)).status).toBe(200); // v1, v2, v3
    await eventsSettled(a);
    // The followee's side misses v3: back to v2 (removed). sync_pending stays 0,
    // so the sweep leaves this edge alone and only the consumer can fix it.
    await router.transaction(router.shardForUser(b.id), async (tx) => {
      await tx.execute("UPDATE chirp.followers SET state = 0, version = 2 WHERE followee_id = ? AND follower_id = ?", [b.id, a.id]);
      await tx.execute("UPDATE chirp.users SET follower_count = follower_count - 1 WHERE id = ?", [b.id]);
    });
    const now = { seconds: BigInt(Math.floor(Date.now() / 1000)), nanos: 0 };
    const followed = (v: bigint) =>
      toBinary(UserFollowedSchema, create(UserFollowedSchema, { followerId: a.id, followeeId: b.id, edgeVersion: v, followTime: now }));
    const unfollowed = (v: bigint) =>
      toBinary(UserUnfollowedSchema, create(UserUnfollowedSchema, { followerId: a.id, followeeId: b.id, edgeVersion: v, unfollowTime: now }));
    // Newest first, then the older ones again, then the newest once more.
    const deliveries: Array<[string, Uint8Array]> = [
      [EVENTS.userFollowed.subject, followed(3n)],
      [EVENTS.userUnfollowed.subject, unfollowed(2n)],
      [EVENTS.userFollowed.subject, followed(1n)],
      [EVENTS.userFollowed.subject, followed(3n)],
    ];
    for (const [i, [subject, payload]] of deliveries.entries()) {
      await js.publish(subject, payload, { msgID: `graph-e2e-${a.id}-${i}` });
    }
    await expect.poll(() => edgeRows(a, b), { timeout: 15_000, interval: 100 }).toEqual({
      follows: { state: 1, version: "3", sync_pending: 0 },
      followers: { state: 1, version: "3" },
    });
    // Give the stale ones time to arrive; they must not undo anything.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await edgeRows(a, b)).followers).toEqual({ state: 1, version: "3" });
    expect(await counts(b)).toEqual({ followers: 1, following: 0 });
  });
});

describe("graph events", () => {
  it("each change of state is published once to JetStream with its edge version; a repeat publishes nothing", async () => {
    const [a, b] = (await signUpMany(2)) as [Account, Account];
    await follow(a, b);
    await follow(a, b);
    await unfollow(a, b);
    await unfollow(a, b);
    const mine = async () =>
      (await graphEventsInStream()).filter((e) => e.followerId === a.id && e.followeeId === b.id).map((e) => [e.subject, e.edgeVersion]);
    await expect.poll(mine, { timeout: 15_000, interval: 250 }).toEqual([
      [EVENTS.userFollowed.subject, 1n],
      [EVENTS.userUnfollowed.subject, 2n],
    ]);
  });
});

describe("ListFollowers and ListFollowing", () => {
  type Page = { users: ApiUser[]; nextPageToken: string };
  const list = (kind: "ListFollowers" | "ListFollowing", userId: bigint, pageSize: number, pageToken = "", token?: string) =>
    call<Page>(`chirp.graph.v1.GraphService/${kind}`, { userId: String(userId), pageSize, pageToken }, token);

  it("page newest first, hydrated, with an empty token at the end", async () => {
    const [owner, ...fans] = (await signUpMany(6)) as [Account, ...Account[]];
    for (const f of fans) await ok("chirp.graph.v1.GraphService/Follow", { userId: String(owner.id) }, f.token);
    const first = await list("ListFollowers", owner.id, 4, "", owner.token);
    expect(first.status).toBe(200);
    expect(first.body.users.map((u) => u.handle)).toEqual([...fans].reverse().slice(0, 4).map((f) => f.handle));
    expect(first.body.nextPageToken).not.toBe("");
    const second = await list("ListFollowers", owner.id, 4, first.body.nextPageToken, owner.token);
    expect(second.body.users.map((u) => u.handle)).toEqual([...fans].reverse().slice(4).map((f) => f.handle));
    expect(second.body.nextPageToken).toBe("");

    const following = await list("ListFollowing", fans[0]!.id, 0, "", fans[0]!.token);
    expect(following.body).toMatchObject({ users: [{ id: String(owner.id), handle: owner.handle }], nextPageToken: "" });
  });

  it("refuse a malformed token, another list's token and an oversized page with InvalidArgument", async () => {
    const [owner, fan] = (await signUpMany(2)) as [Account, Account];
    await ok("chirp.graph.v1.GraphService/Follow", { userId: String(owner.id) }, fan.token);
    const other = (await signUpMany(1))[0]!;
    await ok("chirp.graph.v1.GraphService/Follow", { userId: String(owner.id) }, other.token);
    // As the owner: one's own list is read from the primary (anyone else's may come from a
    // replica up to the lag bound behind, which can miss the follow just made).
    const { nextPageToken } = (await list("ListFollowers", owner.id, 1, "", owner.token)).body;
    expect(nextPageToken).not.toBe("");
    expect((await list("ListFollowers", owner.id, 1, "not-a-token!")).code).toBe("invalid_argument");
    expect((await list("ListFollowers", owner.id, 1, `${nextPageToken}AA`)).code).toBe("invalid_argument");
    expect((await list("ListFollowers", fan.id, 1, nextPageToken)).code).toBe("invalid_argument");
    expect((await list("ListFollowing", owner.id, 1, nextPageToken)).code).toBe("invalid_argument");
    expect((await list("ListFollowers", owner.id, 101)).code).toBe("invalid_argument");
    expect((await list("ListFollowers", owner.id + 1_000_000n, 10)).code).toBe("not_found");
  });

  it("walk every page while the list changes: no duplicates, no edge that stayed is missed", async () => {
    const [owner, ...others] = (await signUpMany(41)) as [Account, ...Account[]];
    const stable = others.slice(0, 30);
    const churn = others.slice(30);
    for (const u of stable) await ok("chirp.graph.v1.GraphService/Follow", { userId: String(owner.id) }, u.token);
    for (const u of stable.slice(0, 15)) await ok("chirp.graph.v1.GraphService/Follow", { userId: String(u.id) }, owner.token);

    let stop = false;
    const churning = (async () => {
      while (!stop) {
        const u = churn[Math.floor(Math.random() * churn.length)]!;
        await (Math.random() < 0.5 ? follow(u, owner) : unfollow(u, owner));
        const v = churn[Math.floor(Math.random() * churn.length)]!;
        await (Math.random() < 0.5 ? follow(owner, v) : unfollow(owner, v));
      }
    })();
    const walk = async (kind: "ListFollowers" | "ListFollowing", pageSize: number): Promise<string[]> => {
      const ids: string[] = [];
      let token = "";
      for (;;) {
        const page = await list(kind, owner.id, pageSize, token);
        expect(page.status).toBe(200);
        ids.push(...page.body.users.map((u) => u.id));
        token = page.body.nextPageToken;
        if (token === "") return ids;
      }
    };
    try {
      for (const pageSize of [1, 4, 9]) {
        const followers = await walk("ListFollowers", pageSize);
        expect(new Set(followers).size).toBe(followers.length);
        for (const u of stable) expect(followers).toContain(String(u.id));
        const following = await walk("ListFollowing", pageSize);
        expect(new Set(following).size).toBe(following.length);
        for (const u of stable.slice(0, 15)) expect(following).toContain(String(u.id));
      }
    } finally {
      stop = true;
      await churning;
    }
  });
});
