// Sessions (issue 21; README.md, "Sessions"). Every sign-up, log-in and
// password change begins a session: a row in user_sessions on the user's
// shard, named by the token's `sid` claim. Ending one writes its id into the
// ended-sessions bucket FIRST (lib/auth/ended-sessions.ts: every gateway
// refuses its tokens from then on), and marks the row after: a failure in
// between leaves a session that is refused yet listed, which ending it again
// mends, never one that is listed as ended yet accepted.
import type { KV } from "@nats-io/kv";
import type { Subscription } from "@nats-io/transport-node";
import { announceSessionsEnded } from "../../lib/auth/ended-sessions.js";
import { SESSION_ACTIVE_SUBJECT } from "../../lib/auth/session-activity.js";
import type { TokenSigner } from "../../lib/auth/token.js";
import type { EventBus } from "../../lib/events/bus.js";
import type { IdGenerator } from "../../lib/ids.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { DB_TIME_FORMAT, dbTimeFromMicros, microsFromDbTime } from "../../lib/db/db-time.js";

/** ListSessions shows at most this many (the newest). */
const LIST_LIMIT = 100;

export interface SessionRow {
  readonly id: bigint;
  readonly createMicros: bigint;
  readonly lastActiveMicros: bigint;
  readonly userAgent: string;
}

export interface Sessions {
  /** A new session of `userId` and a token for it. */
  begin(userId: bigint, userAgent: string): Promise<string>;
  /** A new token for the caller's session `sessionId` (its row's expiry moves on with it). */
  renew(userId: bigint, sessionId: bigint): Promise<string>;
  /** The user's live sessions, newest first (the primary: one's own list). */
  list(userId: bigint): Promise<SessionRow[]>;
  /**
   * Ends `sessionId` of `userId`; false, changing nothing, when the user has
   * no such session. `presented`: the session of the caller's own verified
   * token, ended even without a row (a token signed outside a session, as
   * bulk loads do).
   */
  end(userId: bigint, sessionId: bigint, presented: boolean): Promise<boolean>;
  /** Ends every live session of `userId` but `keep`; how many. */
  endAllBut(userId: bigint, keep: bigint): Promise<number>;
  /**
   * Ends every live session of `userId` and `presented` (the caller's own,
   * even without a row): DeleteAccount. How many.
   */
  endAll(userId: bigint, presented: bigint | undefined): Promise<number>;
  /**
   * A deleted account's sessions: any still live are ended (one begun by a
   * log-in that raced the deletion), then every row of the user is deleted.
   */
  erase(userId: bigint): Promise<number>;
  /**
   * Records gateways' reports that sessions were used: one statement per
   * shard for up to TOUCH_CHUNK of them (last_active_time only moves forward).
   */
  touch(reports: readonly ActivityReport[]): Promise<void>;
}

/** A gateway's report that a session was used at `atMs`. */
export interface ActivityReport {
  readonly userId: bigint;
  readonly sessionId: bigint;
  readonly atMs: number;
}

/** Reports per statement; a statement is padded to a power of two of rows (user 0 matches nothing) so few texts get prepared. */
const TOUCH_CHUNK = 256;

export function createSessions(deps: {
  router: ShardRouter;
  ids: IdGenerator;
  tokens: TokenSigner;
  tokenTtlSeconds: number;
  /** The ended-sessions bucket, once open (NATS may come later); ending a session without it is Unavailable. */
  ended: () => Promise<KV>;
}): Sessions {
  const { router, tokens, tokenTtlSeconds } = deps;
  const primary = (userId: bigint) => router.primaryForUser(userId);
  const expiry = (now: Date): string => dbTimeFromMicros(BigInt(now.getTime() + tokenTtlSeconds * 1000) * 1000n);
  const sign = (userId: bigint, sessionId: bigint, now: Date): string => tokens.sign(String(userId), tokenTtlSeconds, now, String(sessionId)).token;

  const markEnded = async (userId: bigint, ids: readonly bigint[]): Promise<void> => {
    await announceSessionsEnded(await deps.ended(), userId, ids);
    await primary(userId).execute(
      `UPDATE chirp.user_sessions SET end_time = NOW(6) WHERE user_id = ? AND session_id IN (${ids.map(() => "?").join(", ")}) AND end_time IS NULL`,
      [userId, ...ids],
    );
  };

  /** The ids of the user's sessions not ended and not expired (the primary). */
  const liveIds = async (userId: bigint): Promise<bigint[]> =>
    (
      await primary(userId).query<{ session_id: string }>(
        "SELECT session_id FROM chirp.user_sessions WHERE user_id = ? AND end_time IS NULL AND expire_time > UTC_TIMESTAMP(6)",
        [userId],
      )
    ).map((r) => BigInt(r.session_id));

  return {
    async begin(userId, userAgent) {
      const id = deps.ids.next();
      const now = new Date();
      const at = dbTimeFromMicros(BigInt(now.getTime()) * 1000n);
      await primary(userId).execute(
        "INSERT INTO chirp.user_sessions (user_id, session_id, create_time, last_active_time, expire_time, user_agent) VALUES (?, ?, ?, ?, ?, ?)",
        [userId, id, at, at, expiry(now), userAgent.slice(0, 256)],
      );
      return sign(userId, id, now);
    },

    async renew(userId, sessionId) {
      const now = new Date();
      await primary(userId).execute("UPDATE chirp.user_sessions SET expire_time = ? WHERE user_id = ? AND session_id = ? AND end_time IS NULL", [
        expiry(now),
        userId,
        sessionId,
      ]);
      return sign(userId, sessionId, now);
    },

    async list(userId) {
      const rows = await primary(userId).query<{ session_id: string; create_time: string; last_active_time: string; user_agent: string }>(
        `SELECT session_id, DATE_FORMAT(create_time, '${DB_TIME_FORMAT}') AS create_time, DATE_FORMAT(last_active_time, '${DB_TIME_FORMAT}') AS last_active_time, user_agent
           FROM chirp.user_sessions WHERE user_id = ? AND end_time IS NULL AND expire_time > UTC_TIMESTAMP(6)
          ORDER BY session_id DESC LIMIT ${LIST_LIMIT}`,
        [userId],
      );
      return rows.map((r) => ({
        id: BigInt(r.session_id),
        createMicros: microsFromDbTime(r.create_time),
        lastActiveMicros: microsFromDbTime(r.last_active_time),
        userAgent: r.user_agent,
      }));
    },

    async end(userId, sessionId, presented) {
      const [row] = await primary(userId).query("SELECT 1 AS one FROM chirp.user_sessions WHERE user_id = ? AND session_id = ?", [userId, sessionId]);
      if (row === undefined && !presented) return false;
      await markEnded(userId, [sessionId]);
      return true;
    },

    async endAllBut(userId, keep) {
      const rows = await primary(userId).query<{ session_id: string }>(
        "SELECT session_id FROM chirp.user_sessions WHERE user_id = ? AND session_id <> ? AND end_time IS NULL AND expire_time > UTC_TIMESTAMP(6)",
        [userId, keep],
      );
      const ids = rows.map((r) => BigInt(r.session_id));
      if (ids.length > 0) await markEnded(userId, ids);
      return ids.length;
    },

    async endAll(userId, presented) {
      const ids = await liveIds(userId);
      if (presented !== undefined && !ids.includes(presented)) ids.push(presented);
      if (ids.length > 0) await markEnded(userId, ids);
      return ids.length;
    },

    async erase(userId) {
      const ids = await liveIds(userId);
      if (ids.length > 0) await markEnded(userId, ids);
      const deleted = await primary(userId).execute("DELETE FROM chirp.user_sessions WHERE user_id = ?", [userId]);
      return deleted.affectedRows;
    },

    async touch(reports) {
      const byShard = new Map<string, ActivityReport[]>();
      for (const r of reports) {
        const shard = router.shardForUser(r.userId).name;
        const list = byShard.get(shard);
        if (list === undefined) byShard.set(shard, [r]);
        else list.push(r);
      }
      const writes: Array<Promise<unknown>> = [];
      for (const list of byShard.values()) {
        for (let i = 0; i < list.length; i += TOUCH_CHUNK) {
          const chunk = list.slice(i, i + TOUCH_CHUNK);
          let rows = 1;
          while (rows < chunk.length) rows *= 2;
          const row = "SELECT ? AS user_id, ? AS session_id, CAST(? AS DATETIME(6)) AS at";
          const params: Array<bigint | string> = [];
          for (let j = 0; j < rows; j++) {
            const r = chunk[j];
            params.push(r?.userId ?? 0n, r?.sessionId ?? 0n, dbTimeFromMicros(BigInt(r?.atMs ?? 0) * 1000n));
          }
          writes.push(
            primary(chunk[0]!.userId).execute(
              `UPDATE chirp.user_sessions AS s JOIN (${Array(rows).fill(row).join(" UNION ALL ")}) AS r ON s.user_id = r.user_id AND s.session_id = r.session_id
               SET s.last_active_time = GREATEST(s.last_active_time, r.at) WHERE s.end_time IS NULL`,
              params,
            ),
          );
        }
      }
      await Promise.all(writes);
    },
  };
}

/** How long reports are gathered before they are written; at most this many are gathered. */
const ACTIVITY_FLUSH_MS = 1000;
const ACTIVITY_BATCH = 1024;

/**
 * Takes the gateways' activity reports (lib/auth/session-activity.ts) as one of a queue group, so each report is recorded
 * once whichever user-service process gets it, and writes them in batches
 * (for up to a second, one statement per shard: the reports arrive at about
 * one per active session per 5 minutes, and at a gateway's start one per
 * session at once). Best effort: a report lost while NATS is away, or in a
 * batch whose write failed, only leaves last_active_time older.
 */
export function recordSessionActivity(bus: EventBus, sessions: Sessions, log: { warn(obj: object, msg: string): void }): () => void {
  let sub: Subscription | undefined;
  let stopped = false;
  let pending = new Map<string, ActivityReport>();
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending.size === 0) return;
    const batch = [...pending.values()];
    pending = new Map();
    sessions.touch(batch).catch((err: unknown) => {
      log.warn({ err: (err as Error).message, reports: batch.length }, "session activity not recorded");
    });
  };
  const add = (r: ActivityReport): void => {
    const key = `${r.userId} ${r.sessionId}`;
    const had = pending.get(key);
    if (had === undefined || had.atMs < r.atMs) pending.set(key, r);
    if (pending.size >= ACTIVITY_BATCH) flush();
    else timer ??= setTimeout(flush, ACTIVITY_FLUSH_MS);
  };
  const start = async (): Promise<void> => {
    while (!stopped) {
      const { nc } = await bus.ready();
      if (stopped) return;
      sub = nc.subscribe(SESSION_ACTIVE_SUBJECT, { queue: "chirp-user-sessions" });
      for await (const m of sub) {
        const [user, session, at] = m.string().split(" ");
        if (!/^\d{1,20}$/.test(user ?? "") || !/^\d{1,20}$/.test(session ?? "") || !/^\d{1,15}$/.test(at ?? "")) continue;
        add({ userId: BigInt(user!), sessionId: BigInt(session!), atMs: Math.min(Number(at), Date.now()) });
      }
    }
  };
  start().catch((err: unknown) => {
    if (!stopped) log.warn({ err: (err as Error).message }, "session activity reports stopped");
  });
  return () => {
    stopped = true;
    sub?.unsubscribe();
    flush();
  };
}
