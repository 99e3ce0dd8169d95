// All of the graph service's SQL. A follow edge has two rows: chirp.follows on
// the follower's shard (the source of truth) and chirp.followers on the
// followee's shard (a copy, kept in line by version). Each user's count
// changes only in the transaction that changes the state of that user's row
// of the edge, so counts equal active rows on each side. See
// docs/decisions/0009-two-rows-per-follow-edge.md.
import type { Announce } from "../../lib/events/outbox.js";
import type { Queryable, ShardClient, ShardRouter, SqlValue } from "../../lib/shard/router.js";
import type { ShardInfo } from "../../lib/shard/types.js";
import { adjustUserCount } from "../../lib/user-counts.js";
import { DB_TIME_FORMAT, dbTimeFromMicros, microsFromDbTime } from "./edge-time.js";
import type { FollowListKind, PageCursor } from "./page-token.js";

const ACTIVE = 1;
const REMOVED = 0;

/** One version of an edge as the follower's side recorded it. */
export interface EdgeVersion {
  readonly followerId: bigint;
  readonly followeeId: bigint;
  readonly active: boolean;
  /** 1 for the first follow, +1 for every change of state. */
  readonly version: bigint;
  /** When the current (or, if removed, the last) follow began; us since the epoch. */
  readonly followTimeMicros: bigint;
}

export interface FollowerSideChange {
  /** The edge after the call; undefined when unfollowing an edge that never existed. */
  readonly edge: EdgeVersion | undefined;
  /** Whether this call changed the state (and so the count, the version, and the outbox). */
  readonly changed: boolean;
  /** Whether the followee's side is not yet known to hold `edge.version`. */
  readonly syncPending: boolean;
  /** When the change was committed (us since the epoch); the lock-time clock when unchanged. */
  readonly changeTimeMicros: bigint;
  /** A follow that `refuse` turned down (a block stands): nothing was written. */
  readonly refused?: boolean;
}

/** A change of the follower's side, as announced: the edge's new version and when it was written. */
export interface EdgeChange {
  readonly edge: EdgeVersion;
  /** Us since the epoch: the unfollow time of an unfollow. */
  readonly changeTimeMicros: bigint;
}

interface FollowsRow {
  state: number;
  version: string;
  sync_pending: number;
  follow_time: string;
  now_time: string;
}

/**
 * Sets the follower's side of the edge to `active`, in one transaction on the
 * follower's shard: the edge row (created on a first follow), and, only when
 * the state changes, the next version, the follower's following_count and the
 * event (`announce`). Everything is decided under the edge row's lock, so
 * concurrent calls for one edge serialise and each change is counted once.
 * `refuse`, asked under that lock before a follow is written, turns it down
 * (a block between the two: relations-store.ts blockedBetween).
 */
export async function setFollowerSide(
  router: ShardRouter,
  followerId: bigint,
  followeeId: bigint,
  active: boolean,
  announce: Announce<EdgeChange>,
  refuse?: (tx: Queryable) => Promise<boolean>,
): Promise<FollowerSideChange> {
  return router.transaction(router.shardForUser(followerId), async (tx) => {
    if (active) {
      // Make sure the row exists and hold its lock. A new row starts as removed
      // at version 0 and becomes version 1 below; it never commits like that.
      // (ON DUPLICATE KEY takes the existing row's exclusive lock, so two first
      // follows queue on the row instead of deadlocking on the gap.)
      await tx.execute(
        `INSERT INTO chirp.follows (follower_id, followee_id, state, version, sync_pending)
         VALUES (?, ?, ${REMOVED}, 0, 0) ON DUPLICATE KEY UPDATE follower_id = follower_id`,
        [followerId, followeeId],
      );
    }
    const [row] = await tx.query<FollowsRow>(
      `SELECT state, version, sync_pending, DATE_FORMAT(follow_time, '${DB_TIME_FORMAT}') AS follow_time,
              DATE_FORMAT(UTC_TIMESTAMP(6), '${DB_TIME_FORMAT}') AS now_time
       FROM chirp.follows WHERE follower_id = ? AND followee_id = ? FOR UPDATE`,
      [followerId, followeeId],
    );
    if (row === undefined) {
      // Unfollow of an edge that never existed: nothing to lock, nothing to do.
      return { edge: undefined, changed: false, syncPending: false, changeTimeMicros: 0n };
    }
    const now = microsFromDbTime(row.now_time);
    const current: EdgeVersion = {
      followerId,
      followeeId,
      active: Number(row.state) === ACTIVE,
      version: BigInt(row.version),
      followTimeMicros: microsFromDbTime(row.follow_time),
    };
    if (current.active === active) {
      return { edge: current, changed: false, syncPending: Number(row.sync_pending) === 1, changeTimeMicros: now };
    }
    if (active && refuse !== undefined && (await refuse(tx))) {
      return { edge: current, changed: false, syncPending: false, changeTimeMicros: now, refused: true };
    }
    const next: EdgeVersion = {
      ...current,
      active,
      version: current.version + 1n,
      followTimeMicros: active ? now : current.followTimeMicros,
    };
    await tx.execute(
      `UPDATE chirp.follows SET state = ?, version = ?, follow_time = ?, update_time = ?, sync_pending = 1
       WHERE follower_id = ? AND followee_id = ?`,
      [active ? ACTIVE : REMOVED, next.version, dbTimeFromMicros(next.followTimeMicros), dbTimeFromMicros(now), followerId, followeeId],
    );
    await adjustUserCount(tx, followerId, "following_count", active ? 1 : -1);
    await announce(tx, { edge: next, changeTimeMicros: now });
    return { edge: next, changed: true, syncPending: true, changeTimeMicros: now };
  });
}

/** The follower's side of an edge as committed (primary), or undefined if it has no row. */
export async function readFollowerSide(router: ShardRouter, followerId: bigint, followeeId: bigint): Promise<EdgeVersion | undefined> {
  const [row] = await router.primaryForUser(followerId).query<Omit<FollowsRow, "now_time" | "sync_pending">>(
    `SELECT state, version, DATE_FORMAT(follow_time, '${DB_TIME_FORMAT}') AS follow_time
     FROM chirp.follows WHERE follower_id = ? AND followee_id = ?`,
    [followerId, followeeId],
  );
  if (row === undefined) return undefined;
  return {
    followerId,
    followeeId,
    active: Number(row.state) === ACTIVE,
    version: BigInt(row.version),
    followTimeMicros: microsFromDbTime(row.follow_time),
  };
}

/**
 * Brings the followee's side of the edge to `edge`, unless it already holds
 * that version or a newer one: one transaction on the followee's shard that
 * changes the followers row and, only when the state flips, the followee's
 * follower_count. Any order of calls, and any repetition, ends in the state of
 * the highest version applied.
 */
export async function applyFolloweeSide(router: ShardRouter, edge: EdgeVersion): Promise<"applied" | "current"> {
  const { followerId, followeeId } = edge;
  const followTime = dbTimeFromMicros(edge.followTimeMicros);
  return router.transaction(router.shardForUser(followeeId), async (tx) => {
    // As on the follower's side: a missing row is created at version 0
    // (removed, so it counts for nothing) and its lock is held from here on.
    await tx.execute(
      `INSERT INTO chirp.followers (followee_id, follower_id, state, version, follow_time)
       VALUES (?, ?, ${REMOVED}, 0, ?) ON DUPLICATE KEY UPDATE followee_id = followee_id`,
      [followeeId, followerId, followTime],
    );
    const [row] = await tx.query<{ state: number; version: string }>(
      "SELECT state, version FROM chirp.followers WHERE followee_id = ? AND follower_id = ? FOR UPDATE",
      [followeeId, followerId],
    );
    if (row === undefined) throw new Error("followers row missing right after its upsert");
    if (BigInt(row.version) >= edge.version) return "current";
    // An unfollow keeps the time of the follow it ends, as the follower's side does.
    if (edge.active) {
      await tx.execute(
        `UPDATE chirp.followers SET state = ${ACTIVE}, version = ?, follow_time = ? WHERE followee_id = ? AND follower_id = ?`,
        [edge.version, followTime, followeeId, followerId],
      );
    } else {
      await tx.execute(`UPDATE chirp.followers SET state = ${REMOVED}, version = ? WHERE followee_id = ? AND follower_id = ?`, [
        edge.version,
        followeeId,
        followerId,
      ]);
    }
    if ((Number(row.state) === ACTIVE) !== edge.active) {
      await adjustUserCount(tx, followeeId, "follower_count", edge.active ? 1 : -1);
    }
    return "applied";
  });
}

/**
 * Marks `version` of the edge as present on the followee's side. A newer
 * change since then keeps its own mark: it is cleared only with its version.
 */
export async function clearSyncPending(router: ShardRouter, followerId: bigint, followeeId: bigint, version: bigint): Promise<void> {
  await router
    .primaryForUser(followerId)
    .execute("UPDATE chirp.follows SET sync_pending = 0 WHERE follower_id = ? AND followee_id = ? AND version = ? AND sync_pending = 1", [
      followerId,
      followeeId,
      version,
    ]);
}

/** Edges on `shard` whose followee side has not been confirmed for at least `olderThanMs`, oldest first. */
export async function listSyncPending(
  router: ShardRouter,
  shard: ShardInfo,
  olderThanMs: number,
  limit: number,
): Promise<Array<{ followerId: bigint; followeeId: bigint }>> {
  // A periodic scan, not traffic: it leaves the router's probes at their idle pace.
  const rows = await router.primary(shard, { background: true }).query<{ follower_id: string; followee_id: string }>(
    `SELECT follower_id, followee_id FROM chirp.follows
     WHERE sync_pending = 1 AND update_time < DATE_SUB(UTC_TIMESTAMP(6), INTERVAL ? MICROSECOND)
     ORDER BY update_time LIMIT ${sqlLimit(limit)}`,
    [olderThanMs * 1000],
  );
  return rows.map((r) => ({ followerId: BigInt(r.follower_id), followeeId: BigInt(r.followee_id) }));
}

export interface EdgeListRow {
  /** The follower (ListFollowers) or the followee (ListFollowing). */
  readonly otherUserId: bigint;
  readonly followTimeMicros: bigint;
}

const LISTS: Record<FollowListKind, { table: string; owner: string; other: string }> = {
  followers: { table: "chirp.followers", owner: "followee_id", other: "follower_id" },
  following: { table: "chirp.follows", owner: "follower_id", other: "followee_id" },
};

/**
 * One page of a user's active edges, newest follow first, strictly after
 * `after` in that order (follow_time DESC, other id DESC: a total order, so a
 * keyset never repeats or skips an edge that stays put). Followers are read
 * on the followee's shard, following on the follower's. `primary` is for
 * read-your-writes; otherwise a replica within the lag bound answers.
 */
export async function listEdges(
  router: ShardRouter,
  kind: FollowListKind,
  userId: bigint,
  after: PageCursor | undefined,
  limit: number,
  primary: boolean,
): Promise<EdgeListRow[]> {
  const { table, owner, other } = LISTS[kind];
  const db: ShardClient = primary ? router.primaryForUser(userId) : router.readerForUser(userId);
  const params: SqlValue[] = [userId];
  let keyset = "";
  if (after !== undefined) {
    const t = dbTimeFromMicros(after.followTimeMicros);
    // Written as one index range (follow_time <= t) plus a filter for the
    // ties, so the index is read backwards in order and stops at the LIMIT.
    keyset = ` AND follow_time <= CAST(? AS DATETIME(6)) AND (follow_time < CAST(? AS DATETIME(6)) OR ${other} < ?)`;
    params.push(t, t, after.otherUserId);
  }
  const rows = await db.query<{ other_id: string; follow_time: string }>(
    `SELECT ${other} AS other_id, DATE_FORMAT(follow_time, '${DB_TIME_FORMAT}') AS follow_time
     FROM ${table} WHERE ${owner} = ? AND state = ${ACTIVE}${keyset}
     ORDER BY follow_time DESC, ${other} DESC LIMIT ${sqlLimit(limit)}`,
    params,
  );
  return rows.map((r) => ({ otherUserId: BigInt(r.other_id), followTimeMicros: microsFromDbTime(r.follow_time) }));
}

/**
 * One page of a user's active edges as bare ids, ascending, strictly after
 * `afterId`: followers on the followee's shard, following on the follower's,
 * always from the primary (fan-out must see every edge whose Follow has
 * returned). The primary key (owner, other) is the keyset, so the page is one
 * index range; removed rows in it are skipped by the state filter.
 */
export async function listEdgeIds(router: ShardRouter, kind: FollowListKind, userId: bigint, afterId: bigint, limit: number): Promise<bigint[]> {
  const { table, owner, other } = LISTS[kind];
  const rows = await router.primaryForUser(userId).query<{ other_id: string }>(
    `SELECT ${other} AS other_id FROM ${table} WHERE ${owner} = ? AND ${other} > ? AND state = ${ACTIVE}
     ORDER BY ${other} LIMIT ${idListLimit(limit)}`,
    [userId, afterId],
  );
  return rows.map((r) => BigInt(r.other_id));
}

/** The id lists page up to 5000 (+1 to see whether more follow). */
function idListLimit(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 5001) throw new RangeError(`bad limit ${n}`);
  return n;
}

// LIMIT is written into the statement: a bound LIMIT parameter is refused by
// MySQL 8.0.22+ over the binary protocol when sent as a double. The value is
// an integer checked here, never client text.
function sqlLimit(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new RangeError(`bad limit ${n}`);
  return n;
}
