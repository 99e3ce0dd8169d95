// Replication admin for MariaDB 10.11+ (the one place with a SQL dialect per
// engine, ARCHITECTURE section 4): what a member's replication state is, and
// the statements that promote, fence and re-point members. Used by the
// topology manager and `chirp topology`; every call takes an admin connection.
import type { Connection, RowDataPacket } from "mysql2/promise";
import { quoteIdent } from "../db/mysql-client.js";
import type { HostPort, MysqlCredentials } from "./types.js";
import { parseGtidList, type Gtid } from "./gtid.js";

export interface SlaveStatus {
  readonly masterHost: string;
  readonly masterPort: number;
  readonly ioRunning: string;
  readonly sqlRunning: string;
  /** What the IO thread has received into the relay log (complete event groups). */
  readonly gtidIoPos: Gtid[];
  readonly secondsBehindMaster: number | null;
  readonly lastIoErrno: number;
  readonly lastIoError: string;
  readonly lastSqlError: string;
}

/**
 * rpl_semi_sync_master_timeout on every member: a year, so a commit waits for
 * a replica's ack however long that takes and semi-sync never falls back to
 * asynchronous (decision 24). Not the type's maximum: the server adds it to
 * the clock in nanoseconds, and a year stays far from overflowing.
 */
export const SEMI_SYNC_TIMEOUT_MS = 31_536_000_000;

export interface SemiSyncState {
  readonly masterEnabled: boolean;
  /** @@rpl_semi_sync_master_timeout: below SEMI_SYNC_TIMEOUT_MS a commit could fall back to async (the manager raises it). */
  readonly masterTimeoutMs: number;
  /** Rpl_semi_sync_master_status: ON while commits wait for an ack; OFF after a timeout fell back to async. */
  readonly masterActive: boolean;
  readonly masterClients: number;
  /** Rpl_semi_sync_master_no_times: how often it has fallen back to async since start. */
  readonly masterOffTimes: number;
  /** Commits that were not acknowledged by a replica. */
  readonly masterNoTx: number;
  /** Rpl_semi_sync_master_wait_sessions: commits waiting for an ack right now (semi-sync never falls back, so with no replica they wait). */
  readonly masterWaitSessions: number;
  readonly slaveEnabled: boolean;
}

export interface MemberState {
  readonly serverId: number;
  readonly readOnly: boolean;
  readonly binlogPos: Gtid[];
  readonly binlogState: Gtid[];
  readonly slavePos: Gtid[];
  /** undefined when no replication is configured (a primary). */
  readonly slave: SlaveStatus | undefined;
  readonly semiSync: SemiSyncState;
}

/**
 * One round trip per part. A read-only member (a replica, or a fenced old
 * primary) commits nothing of its own, so its semi-sync master status is not
 * read: those fields read OFF and 0 until it is writable.
 */
export async function readMemberState(c: Connection, timeoutMs: number): Promise<MemberState> {
  const [[v]] = await c.query<RowDataPacket[]>({
    sql:
      "SELECT @@global.server_id AS server_id, @@global.read_only AS ro, @@global.gtid_binlog_pos AS binlog_pos, " +
      "@@global.gtid_binlog_state AS binlog_state, @@global.gtid_slave_pos AS slave_pos, " +
      "@@global.rpl_semi_sync_master_enabled AS m_en, @@global.rpl_semi_sync_slave_enabled AS s_en, " +
      "@@global.rpl_semi_sync_master_timeout AS m_to",
    timeout: timeoutMs,
  });
  const [status] =
    Number(v?.["ro"]) === 1
      ? [[] as RowDataPacket[]]
      : await c.query<RowDataPacket[]>({
          sql:
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('Rpl_semi_sync_master_status', 'Rpl_semi_sync_master_clients', " +
            "'Rpl_semi_sync_master_no_times', 'Rpl_semi_sync_master_no_tx', 'Rpl_semi_sync_master_wait_sessions')",
          timeout: timeoutMs,
        });
  const [slaves] = await c.query<RowDataPacket[]>({ sql: "SHOW SLAVE STATUS", timeout: timeoutMs });
  const stat = (name: string): string =>
    String(status.find((r) => String(r["Variable_name"]).toLowerCase() === name.toLowerCase())?.["Value"] ?? "");
  const s = slaves[0];
  const slave: SlaveStatus | undefined =
    s === undefined || String(s["Master_Host"] ?? "") === ""
      ? undefined
      : {
          masterHost: String(s["Master_Host"]),
          masterPort: Number(s["Master_Port"]),
          ioRunning: String(s["Slave_IO_Running"]),
          sqlRunning: String(s["Slave_SQL_Running"]),
          gtidIoPos: parseGtidList(String(s["Gtid_IO_Pos"] ?? "")),
          secondsBehindMaster: s["Seconds_Behind_Master"] === null ? null : Number(s["Seconds_Behind_Master"]),
          lastIoErrno: Number(s["Last_IO_Errno"] ?? 0),
          lastIoError: String(s["Last_IO_Error"] ?? ""),
          lastSqlError: String(s["Last_SQL_Error"] ?? ""),
        };
  return {
    serverId: Number(v?.["server_id"]),
    readOnly: Number(v?.["ro"]) === 1,
    binlogPos: parseGtidList(String(v?.["binlog_pos"] ?? "")),
    binlogState: parseGtidList(String(v?.["binlog_state"] ?? "")),
    slavePos: parseGtidList(String(v?.["slave_pos"] ?? "")),
    slave,
    semiSync: {
      masterEnabled: Number(v?.["m_en"]) === 1,
      masterTimeoutMs: Number(v?.["m_to"] ?? 0),
      masterActive: stat("Rpl_semi_sync_master_status") === "ON",
      masterClients: Number(stat("Rpl_semi_sync_master_clients") || 0),
      masterOffTimes: Number(stat("Rpl_semi_sync_master_no_times") || 0),
      masterNoTx: Number(stat("Rpl_semi_sync_master_no_tx") || 0),
      masterWaitSessions: Number(stat("Rpl_semi_sync_master_wait_sessions") || 0),
      slaveEnabled: Number(v?.["s_en"]) === 1,
    },
  };
}

/** A member replicating from `primary` with both threads running. */
export function isReplicatingFrom(state: MemberState, primary: HostPort): boolean {
  const s = state.slave;
  return s !== undefined && s.masterHost === primary.host && s.masterPort === primary.port && s.ioRunning === "Yes" && s.sqlRunning === "Yes";
}

/**
 * Freezes what a replica has received: after this its relay log no longer
 * grows, so Gtid_IO_Pos is final. Everything the old primary acknowledged
 * (AFTER_SYNC) is in the relay log of the replica that acknowledged it.
 */
export async function stopReceiving(c: Connection): Promise<void> {
  await c.query("STOP SLAVE IO_THREAD");
}

/**
 * Waits until the SQL thread has applied `target` (the frozen Gtid_IO_Pos).
 * MASTER_GTID_WAIT answers 0 when reached, -1 on timeout.
 */
export async function waitApplied(c: Connection, target: string, timeoutMs: number): Promise<boolean> {
  if (target === "") return true;
  const [[row]] = await c.query<RowDataPacket[]>({
    sql: "SELECT MASTER_GTID_WAIT(?, ?) AS r",
    values: [target, timeoutMs / 1000],
    timeout: timeoutMs + 5_000,
  });
  return Number(row?.["r"]) === 0;
}

/**
 * Makes a replica the primary: replication configuration gone, slave-side
 * semi-sync off, primary-side semi-sync on (always, in a replica set with
 * replicas: its commits wait for a replica's ack, however long; decision 24),
 * writable.
 */
export async function promote(c: Connection, opts: { semiSync: boolean }): Promise<void> {
  await c.query("STOP SLAVE");
  await c.query("RESET SLAVE ALL");
  await c.query("SET GLOBAL rpl_semi_sync_slave_enabled = OFF");
  await c.query(`SET GLOBAL rpl_semi_sync_master_enabled = ${opts.semiSync ? "ON" : "OFF"}`);
  await c.query("SET GLOBAL read_only = OFF");
}

/** Turns the primary side of semi-sync on or off (a replica attached or left). */
export async function setSemiSyncMaster(c: Connection, on: boolean): Promise<void> {
  await c.query(`SET GLOBAL rpl_semi_sync_master_enabled = ${on ? "ON" : "OFF"}`);
}

/** Semi-sync that never falls back to async: the timeout back to SEMI_SYNC_TIMEOUT_MS. */
export async function setSemiSyncNeverFallBack(c: Connection): Promise<void> {
  await c.query(`SET GLOBAL rpl_semi_sync_master_timeout = ${SEMI_SYNC_TIMEOUT_MS}`);
}

/**
 * Stops a member taking writes: read_only (waits for commits in flight), then
 * closes every client connection except the admin account's (ours; it has
 * READ ONLY ADMIN anyway) and server threads, so no session keeps a
 * transaction open on a member that is no longer the primary.
 *
 * A commit waiting for a semi-sync ack that no replica will send (a woken
 * frozen primary whose replicas were re-pointed) waits forever, since
 * semi-sync never falls back (decision 24), and read_only with it. So when
 * read_only has not taken hold within STALLED_FENCE_MS and `another` can open
 * a second connection: with read_only pending no new write can start; the
 * waiting clients' connections are closed, so none of them can be told OK;
 * then the member's semi-sync is switched off and their commits end without
 * the ack (on this member only: what the rebuild saves as errant).
 */
export async function fence(c: Connection, adminUser: string, timeoutMs: number, another?: () => Promise<Connection>): Promise<number> {
  const readOnly = c.query({ sql: "SET GLOBAL read_only = ON", timeout: timeoutMs });
  readOnly.catch(() => undefined);
  let killed = 0;
  if (another !== undefined && !(await settlesWithin(readOnly, Math.min(STALLED_FENCE_MS, timeoutMs / 2)))) {
    const d = await another();
    try {
      killed += await killClients(d, adminUser, timeoutMs);
      await d.query({ sql: "SET GLOBAL rpl_semi_sync_master_enabled = OFF", timeout: timeoutMs });
    } finally {
      d.destroy();
    }
  }
  await readOnly;
  return killed + (await killClients(c, adminUser, timeoutMs));
}

/** How long fence() lets read_only wait for commits in flight before it ends stalled ones. */
export const STALLED_FENCE_MS = 1_000;

function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function killClients(c: Connection, adminUser: string, timeoutMs: number): Promise<number> {
  const [rows] = await c.query<RowDataPacket[]>({
    sql:
      "SELECT ID AS id FROM information_schema.PROCESSLIST " +
      "WHERE ID <> CONNECTION_ID() AND USER NOT IN (?, 'system user', 'event_scheduler', 'unauthenticated user')",
    values: [adminUser],
    timeout: timeoutMs,
  });
  let killed = 0;
  for (const r of rows) {
    try {
      await c.query({ sql: `KILL CONNECTION ${Number(r["id"])}`, timeout: timeoutMs });
      killed++;
    } catch {
      // Already gone.
    }
  }
  return killed;
}

/**
 * Makes a member a read-only semi-sync replica of `primary`. Its replication
 * position becomes its own binlog position: for a former primary the old
 * gtid_slave_pos is stale, and its binlog (checked to hold nothing the new
 * primary lacks) is exactly what it has applied. For a replica with
 * log_slave_updates the two are the same.
 */
export async function pointAt(c: Connection, primary: HostPort, repl: MysqlCredentials): Promise<void> {
  await c.query("STOP SLAVE");
  await c.query("SET GLOBAL read_only = ON");
  await c.query("SET GLOBAL rpl_semi_sync_master_enabled = OFF");
  // Read by the IO thread when it connects, so before START SLAVE.
  await c.query("SET GLOBAL rpl_semi_sync_slave_enabled = ON");
  await c.query("SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos");
  await c.query(`SET GLOBAL slave_net_timeout = ${REPLICA_NET_TIMEOUT_S}`);
  await c.query(CHANGE_MASTER, [primary.host, primary.port, repl.user, repl.password]);
  await c.query("START SLAVE");
}

/**
 * How a replica notices a primary that stopped answering without closing its
 * connection (frozen, partitioned): the primary sends a heartbeat event every
 * MASTER_HEARTBEAT_PERIOD_S while it has nothing to send, and a replica that
 * hears nothing for REPLICA_NET_TIMEOUT_S drops the connection and retries,
 * so its IO thread shows the loss ("Connecting") within that time instead of
 * MariaDB's default 60 s. The topology manager fails a primary over at once
 * when its replicas have lost it too (manager.ts), which is what bounds the
 * write pause of a frozen primary.
 */
export const REPLICA_NET_TIMEOUT_S = 2;
export const MASTER_HEARTBEAT_PERIOD_S = 0.5;

/** CHANGE MASTER for a replica of (host, port) as (user, password), by GTID, with the liveness settings above. */
export const CHANGE_MASTER =
  "CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, " +
  `MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1, MASTER_HEARTBEAT_PERIOD = ${MASTER_HEARTBEAT_PERIOD_S}`;

/** Restarts both replication threads of an already configured replica. */
export async function startReplication(c: Connection): Promise<void> {
  await c.query("SET GLOBAL rpl_semi_sync_slave_enabled = ON");
  await c.query("START SLAVE");
}

/**
 * The heartbeat write: one transaction over every shard database of a primary.
 * The read_only guard matters because the admin account may write to a
 * read-only server: a heartbeat must never land on a fenced or demoted member
 * (it would be a transaction its primary lacks). A guarded UPDATE that matches
 * nothing writes no binlog event.
 */
export async function writeHeartbeat(c: Connection, databases: readonly string[], timeoutMs: number): Promise<boolean> {
  if (databases.length === 0) return false;
  // One statement, one commit, for every shard database of the replica set:
  // a multi-table UPDATE (each table's row 1, which its migration inserts).
  const tables = databases.map((db, i) => `${quoteIdent(db)}.heartbeat h${i}`).join(", ");
  const set = databases.map((_, i) => `h${i}.ts = UTC_TIMESTAMP(6)`).join(", ");
  const where = databases.map((_, i) => `h${i}.id = 1`).join(" AND ");
  const [result] = await c.query({ sql: `UPDATE ${tables} SET ${set} WHERE ${where} AND @@global.read_only = 0`, timeout: timeoutMs });
  return ((result as { affectedRows?: number }).affectedRows ?? 0) > 0;
}

/** Lag of a replica from the heartbeat of one shard database, in ms (the router's contract). */
export async function readHeartbeatLagMs(c: Connection, database: string, timeoutMs: number): Promise<number | undefined> {
  const [[row]] = await c.query<RowDataPacket[]>({
    sql: `SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) AS lag_us FROM ${quoteIdent(database)}.heartbeat WHERE id = 1`,
    timeout: timeoutMs,
  });
  return row === undefined ? undefined : Number(row["lag_us"]) / 1000;
}
