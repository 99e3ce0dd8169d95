// The graph service's SQL for blocks and mutes (migration 0015). A block has
// two rows, like a follow edge: chirp.blocks on the blocker's shard (the
// source of truth, versioned under its row lock) and chirp.blocked_by on the
// blocked user's shard (a copy that only moves to a higher version). A mute
// is one row on the muter's shard. services/graph/README.md, "Blocks and mutes".
import type { Announce } from "../../lib/events/outbox.js";
import type { Queryable, ShardClient, ShardRouter, SqlValue } from "../../lib/shard/router.js";
import { DB_TIME_FORMAT, dbTimeFromMicros, microsFromDbTime } from "./edge-time.js";
import type { PageCursor } from "./page-token.js";

const ACTIVE = 1;
const REMOVED = 0;

/** One version of a block as the blocker's side recorded it. */
export interface BlockVersion {
  readonly blockerId: bigint;
  readonly blockedId: bigint;
  readonly active: boolean;
  /** 1 for the first block, +1 for every change of state. */
  readonly version: bigint;
}

export interface BlockChange {
  /** The block after the call; undefined when unblocking a block that never existed. */
  readonly block: BlockVersion | undefined;
  /** Whether this call changed the state (and so the version and the outbox). */
  readonly changed: boolean;
  /** Whether the blocked user's copy is not yet known to hold `block.version`. */
  readonly syncPending: boolean;
}

/** What a change announces: the new version and when it was committed (us since the epoch). */
export interface AnnouncedBlock {
  readonly block: BlockVersion;
  readonly changeTimeMicros: bigint;
}

/**
 * Sets the blocker's side to `active`, in one transaction on the blocker's
 * shard: the row (created on a first block), and, only when the state
 * changes, the next version and the event (`announce`).
 */
export async function setBlockerSide(
  router: ShardRouter,
  blockerId: bigint,
  blockedId: bigint,
  active: boolean,
  announce: Announce<AnnouncedBlock>,
): Promise<BlockChange> {
  return router.transaction(router.shardForUser(blockerId), async (tx) => {
    if (active) {
      // Created removed at version 0 (it never commits so) and its lock held from here on.
      await tx.execute(
        `INSERT INTO chirp.blocks (blocker_id, blocked_id, state, version) VALUES (?, ?, ${REMOVED}, 0)
         ON DUPLICATE KEY UPDATE blocker_id = blocker_id`,
        [blockerId, blockedId],
      );
    }
    const [row] = await tx.query<{ state: number; version: string; sync_pending: number; now_time: string }>(
      `SELECT state, version, sync_pending, DATE_FORMAT(UTC_TIMESTAMP(6), '${DB_TIME_FORMAT}') AS now_time
       FROM chirp.blocks WHERE blocker_id = ? AND blocked_id = ? FOR UPDATE`,
      [blockerId, blockedId],
    );
    if (row === undefined) return { block: undefined, changed: false, syncPending: false };
    const current: BlockVersion = { blockerId, blockedId, active: Number(row.state) === ACTIVE, version: BigInt(row.version) };
    if (current.active === active) return { block: current, changed: false, syncPending: Number(row.sync_pending) === 1 };
    const next: BlockVersion = { ...current, active, version: current.version + 1n };
    const now = microsFromDbTime(row.now_time);
    const nowText = dbTimeFromMicros(now);
    await tx.execute(
      `UPDATE chirp.blocks SET state = ?, version = ?, update_time = ?, sync_pending = 1${active ? ", block_time = ?" : ""}
       WHERE blocker_id = ? AND blocked_id = ?`,
      active ? [ACTIVE, next.version, nowText, nowText, blockerId, blockedId] : [REMOVED, next.version, nowText, blockerId, blockedId],
    );
    await announce(tx, { block: next, changeTimeMicros: now });
    return { block: next, changed: true, syncPending: true };
  });
}

/** The blocker's side as committed (primary), or undefined without a row. */
export async function readBlockerSide(router: ShardRouter, blockerId: bigint, blockedId: bigint): Promise<BlockVersion | undefined> {
  const [row] = await router
    .primaryForUser(blockerId)
    .query<{ state: number; version: string }>("SELECT state, version FROM chirp.blocks WHERE blocker_id = ? AND blocked_id = ?", [blockerId, blockedId]);
  return row === undefined ? undefined : { blockerId, blockedId, active: Number(row.state) === ACTIVE, version: BigInt(row.version) };
}

/**
 * Brings the blocked user's copy to `block` unless it holds that version or a
 * newer one (one transaction on the blocked user's shard); then clears the
 * blocker row's pending mark for this version.
 */
export async function applyBlockedSide(router: ShardRouter, block: BlockVersion): Promise<"applied" | "current"> {
  const { blockerId, blockedId } = block;
  const result = await router.transaction(router.shardForUser(blockedId), async (tx) => {
    await tx.execute(
      `INSERT INTO chirp.blocked_by (blocked_id, blocker_id, state, version) VALUES (?, ?, ${REMOVED}, 0)
       ON DUPLICATE KEY UPDATE blocked_id = blocked_id`,
      [blockedId, blockerId],
    );
    const [row] = await tx.query<{ version: string }>("SELECT version FROM chirp.blocked_by WHERE blocked_id = ? AND blocker_id = ? FOR UPDATE", [
      blockedId,
      blockerId,
    ]);
    if (row !== undefined && BigInt(row.version) >= block.version) return "current" as const;
    await tx.execute("UPDATE chirp.blocked_by SET state = ?, version = ? WHERE blocked_id = ? AND blocker_id = ?", [
      block.active ? ACTIVE : REMOVED,
      block.version,
      blockedId,
      blockerId,
    ]);
    return "applied" as const;
  });
  await router
    .primaryForUser(blockerId)
    .execute("UPDATE chirp.blocks SET sync_pending = 0 WHERE blocker_id = ? AND blocked_id = ? AND version = ? AND sync_pending = 1", [
      blockerId,
      blockedId,
      block.version,
    ]);
  return result;
}

/**
 * Inside a follow's transaction on the follower's shard: whether a block
 * stands between follower and followee, either way. Both rows live on the
 * follower's shard (their block in blocks, the followee's in blocked_by).
 */
export async function blockedBetween(tx: Queryable, followerId: bigint, followeeId: bigint): Promise<boolean> {
  const rows = await tx.query<{ n: number }>(
    `SELECT 1 AS n FROM chirp.blocks WHERE blocker_id = ? AND blocked_id = ? AND state = ${ACTIVE}
     UNION ALL SELECT 1 AS n FROM chirp.blocked_by WHERE blocked_id = ? AND blocker_id = ? AND state = ${ACTIVE}`,
    [followerId, followeeId, followerId, followeeId],
  );
  return rows.length > 0;
}

/** Mutes `mutedId` for `muterId` (kept at its first time if already muted); whether it was new. */
export async function setMute(router: ShardRouter, muterId: bigint, mutedId: bigint, active: boolean): Promise<boolean> {
  const db = router.primaryForUser(muterId);
  const result = active
    ? await db.execute("INSERT INTO chirp.mutes (muter_id, muted_id, mute_time) VALUES (?, ?, UTC_TIMESTAMP(6)) ON DUPLICATE KEY UPDATE muter_id = muter_id", [
        muterId,
        mutedId,
      ])
    : await db.execute("DELETE FROM chirp.mutes WHERE muter_id = ? AND muted_id = ?", [muterId, mutedId]);
  // An upsert that found the row reports 0 affected rows (the update changed nothing).
  return result.affectedRows === 1;
}

export type RelationListKind = "blocked" | "muted";

const LISTS: Record<RelationListKind, { table: string; owner: string; other: string; time: string; state: string }> = {
  blocked: { table: "chirp.blocks", owner: "blocker_id", other: "blocked_id", time: "block_time", state: ` AND state = ${ACTIVE}` },
  muted: { table: "chirp.mutes", owner: "muter_id", other: "muted_id", time: "mute_time", state: "" },
};

/**
 * One page of a user's blocks or mutes, newest first, strictly after `after`
 * (time DESC, other id DESC), from the owner's primary (the caller's own list:
 * read-your-writes). The same keyset as the follow lists (store.ts listEdges).
 */
export async function listRelations(
  router: ShardRouter,
  kind: RelationListKind,
  userId: bigint,
  after: PageCursor | undefined,
  limit: number,
): Promise<Array<{ otherUserId: bigint; timeMicros: bigint }>> {
  const { table, owner, other, time, state } = LISTS[kind];
  const db: ShardClient = router.primaryForUser(userId);
  const params: SqlValue[] = [userId];
  let keyset = "";
  if (after !== undefined) {
    const t = dbTimeFromMicros(after.followTimeMicros);
    keyset = ` AND ${time} <= CAST(? AS DATETIME(6)) AND (${time} < CAST(? AS DATETIME(6)) OR ${other} < ?)`;
    params.push(t, t, after.otherUserId);
  }
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new RangeError(`bad limit ${limit}`);
  const rows = await db.query<{ other_id: string; t: string }>(
    `SELECT ${other} AS other_id, DATE_FORMAT(${time}, '${DB_TIME_FORMAT}') AS t
     FROM ${table} WHERE ${owner} = ?${state}${keyset}
     ORDER BY ${time} DESC, ${other} DESC LIMIT ${limit}`,
    params,
  );
  return rows.map((r) => ({ otherUserId: BigInt(r.other_id), timeMicros: microsFromDbTime(r.t) }));
}

/** Bound on each list of ListRelationIds: a user's relations are cached whole. */
const RELATION_IDS_LIMIT = 10_000;

/** Everyone the user blocks, is blocked by and mutes: three index ranges on the user's primary, in one statement. */
export async function listRelationIds(router: ShardRouter, userId: bigint): Promise<{ blocked: bigint[]; blockedBy: bigint[]; muted: bigint[] }> {
  const rows = await router.primaryForUser(userId).query<{ k: number; id: string }>(
    `(SELECT 1 AS k, blocked_id AS id FROM chirp.blocks WHERE blocker_id = ? AND state = ${ACTIVE} LIMIT ${RELATION_IDS_LIMIT})
     UNION ALL (SELECT 2 AS k, blocker_id AS id FROM chirp.blocked_by WHERE blocked_id = ? AND state = ${ACTIVE} LIMIT ${RELATION_IDS_LIMIT})
     UNION ALL (SELECT 3 AS k, muted_id AS id FROM chirp.mutes WHERE muter_id = ? LIMIT ${RELATION_IDS_LIMIT})`,
    [userId, userId, userId],
  );
  const of = (k: number): bigint[] => rows.filter((r) => Number(r.k) === k).map((r) => BigInt(r.id));
  return { blocked: of(1), blockedBy: of(2), muted: of(3) };
}

/**
 * A page of the user's active blocks as bare ids, ascending, after `afterId`:
 * "blocked", whom the user blocks (their blocks rows), or "blockedBy", who
 * blocks the user (the copies on the user's shard). The primary: account
 * erasure must see every block that has been made.
 */
export async function listBlockIds(router: ShardRouter, side: "blocked" | "blockedBy", userId: bigint, afterId: bigint, limit: number): Promise<bigint[]> {
  const sql =
    side === "blocked"
      ? `SELECT blocked_id AS id FROM chirp.blocks WHERE blocker_id = ? AND blocked_id > ? AND state = ${ACTIVE} ORDER BY blocked_id LIMIT ${eraseLimit(limit)}`
      : `SELECT blocker_id AS id FROM chirp.blocked_by WHERE blocked_id = ? AND blocker_id > ? AND state = ${ACTIVE} ORDER BY blocker_id LIMIT ${eraseLimit(limit)}`;
  const rows = await router.primaryForUser(userId).query<{ id: string }>(sql, [userId, afterId]);
  return rows.map((r) => BigInt(r.id));
}

/** Deletes up to `limit` of the user's own mutes; how many went (fewer than `limit`: none left). */
export async function deleteMutes(router: ShardRouter, muterId: bigint, limit: number): Promise<number> {
  const result = await router.primaryForUser(muterId).execute(`DELETE FROM chirp.mutes WHERE muter_id = ? LIMIT ${eraseLimit(limit)}`, [muterId]);
  return result.affectedRows;
}

function eraseLimit(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new RangeError(`bad limit ${n}`);
  return n;
}
