// Every statement the reshard workflow runs (its store). Connections use the
// admin account; values come back as MySQL printed them (dateStrings, big
// numbers as strings) so a row read here and written back is the same row,
// DATETIME(6) microseconds included.
import { createConnection, type Connection, type RowDataPacket } from "mysql2/promise";
import { quoteIdent } from "../db/mysql-client.js";
import type { HostPort, MysqlCredentials } from "../shard/types.js";
import type { SnapshotPosition } from "./state.js";

export type Row = Record<string, unknown>;

export function openConnection(addr: HostPort, creds: MysqlCredentials): Promise<Connection> {
  return createConnection({
    host: addr.host,
    port: addr.port,
    user: creds.user,
    password: creds.password,
    connectTimeout: 5_000,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    timezone: "Z",
    charset: "utf8mb4_unicode_ci",
  });
}

export interface TableShape {
  readonly name: string;
  readonly columns: readonly string[];
  readonly primaryKey: readonly string[];
  /** BINARY(n) columns and their n: a binlog value may lack the trailing zero bytes. */
  readonly binaryLengths: ReadonlyMap<string, number>;
}

/** Base tables of `database` with their columns and primary key, by name. */
export async function readTables(conn: Connection, database: string): Promise<Map<string, TableShape>> {
  const [cols] = await conn.execute<RowDataPacket[]>(
    "SELECT TABLE_NAME AS t, COLUMN_NAME AS c, DATA_TYPE AS type, CHARACTER_OCTET_LENGTH AS len FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? ORDER BY TABLE_NAME, ORDINAL_POSITION",
    [database],
  );
  const [keys] = await conn.execute<RowDataPacket[]>(
    "SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.KEY_COLUMN_USAGE WHERE TABLE_SCHEMA = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY TABLE_NAME, ORDINAL_POSITION",
    [database],
  );
  const [views] = await conn.execute<RowDataPacket[]>("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE <> 'BASE TABLE'", [database]);
  const skip = new Set(views.map((v) => String(v["t"])));
  const tables = new Map<string, { name: string; columns: string[]; primaryKey: string[]; binaryLengths: Map<string, number> }>();
  for (const r of cols) {
    const t = String(r["t"]);
    if (skip.has(t)) continue;
    let shape = tables.get(t);
    if (shape === undefined) tables.set(t, (shape = { name: t, columns: [], primaryKey: [], binaryLengths: new Map() }));
    shape.columns.push(String(r["c"]));
    if (String(r["type"]).toLowerCase() === "binary") shape.binaryLengths.set(String(r["c"]), Number(r["len"]));
  }
  for (const r of keys) tables.get(String(r["t"]))?.primaryKey.push(String(r["c"]));
  return tables;
}

/**
 * Drops these views of `database` in one statement (inside a hold every round
 * trip counts), unlogged: the views are the primary's own (switch.ts).
 */
export async function dropViews(conn: Connection, database: string, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await conn.query("SET SESSION sql_log_bin = 0");
  try {
    await conn.query(`DROP VIEW IF EXISTS ${names.map((n) => `${quoteIdent(database)}.${quoteIdent(n)}`).join(", ")}`);
  } finally {
    await conn.query("SET SESSION sql_log_bin = 1");
  }
}

/** Names of the base tables (not views) of `database`. */
export async function baseTables(conn: Connection, database: string): Promise<string[]> {
  const [rows] = await conn.execute<RowDataPacket[]>("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE'", [database]);
  return rows.map((r) => String(r["t"]));
}

/**
 * Opens a consistent snapshot on `conn` and returns the binlog position it is
 * consistent with (MariaDB: binlog_snapshot_file/position, and the GTID
 * position BINLOG_GTID_POS gives for them). The transaction stays open until
 * the caller commits.
 */
export async function openSnapshot(conn: Connection): Promise<SnapshotPosition> {
  await conn.query("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
  await conn.query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
  const [status] = await conn.query<RowDataPacket[]>("SHOW SESSION STATUS LIKE 'binlog_snapshot_%'");
  const value = (name: string): string | undefined => status.find((r) => String(r["Variable_name"]).toLowerCase() === name)?.["Value"] as string | undefined;
  const file = value("binlog_snapshot_file");
  const position = Number(value("binlog_snapshot_position"));
  if (!file || !Number.isFinite(position)) throw new Error("the source reports no binlog snapshot position (is the binlog on? MariaDB is needed for now)");
  const [[gtid]] = await conn.query<RowDataPacket[]>("SELECT BINLOG_GTID_POS(?, ?) AS g", [file, position]);
  const g = gtid?.["g"];
  if (typeof g !== "string") throw new Error(`BINLOG_GTID_POS(${file}, ${position}) gave no position`);
  return { file, position, gtid: g };
}

/** Makes `conn`'s locking reads take no gap locks (catch-up's re-reads). */
export async function readCommitted(conn: Connection): Promise<void> {
  await conn.query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED");
}

/** The source's current GTID position (what catch-up must reach to be current). */
export async function binlogGtidPos(conn: Connection): Promise<string> {
  const [[row]] = await conn.query<RowDataPacket[]>("SELECT @@GLOBAL.gtid_binlog_pos AS g");
  return String(row?.["g"] ?? "");
}

/** `(a > ?) OR (a = ? AND b > ?) ...`: a keyset condition the optimiser turns into an index range. */
function afterKey(pk: readonly string[], last: readonly unknown[]): { sql: string; params: unknown[] } {
  const ors: string[] = [];
  const params: unknown[] = [];
  for (let i = 0; i < pk.length; i++) {
    const ands = pk.slice(0, i).map((c) => `${quoteIdent(c)} = ?`);
    ands.push(`${quoteIdent(pk[i]!)} > ?`);
    params.push(...last.slice(0, i), last[i]);
    ors.push(`(${ands.join(" AND ")})`);
  }
  return { sql: ors.join(" OR "), params };
}

/** The next `limit` rows of a table after `last` (primary-key order). */
export async function readBatch(conn: Connection, database: string, table: TableShape, last: readonly unknown[] | null, limit: number): Promise<Row[]> {
  const order = table.primaryKey.map(quoteIdent).join(", ");
  const from = `${quoteIdent(database)}.${quoteIdent(table.name)}`;
  const where = last === null ? { sql: "1 = 1", params: [] } : afterKey(table.primaryKey, last);
  const [rows] = await conn.query<RowDataPacket[]>(`SELECT * FROM ${from} WHERE ${where.sql} ORDER BY ${order} LIMIT ${Number(limit)}`, where.params);
  return rows as Row[];
}

/** The rows of a table after `after` (none: from the start) up to and with `upTo` (none: to the end), in primary-key order (verify). */
export async function readKeyRange(conn: Connection, database: string, table: TableShape, after: readonly unknown[] | null, upTo: readonly unknown[] | null): Promise<Row[]> {
  const order = table.primaryKey.map(quoteIdent).join(", ");
  const from = `${quoteIdent(database)}.${quoteIdent(table.name)}`;
  const lower = after === null ? { sql: "1 = 1", params: [] as unknown[] } : afterKey(table.primaryKey, after);
  const upper = upTo === null ? { sql: "1 = 1", params: [] as unknown[] } : afterKey(table.primaryKey, upTo);
  const [rows] = await conn.query<RowDataPacket[]>(`SELECT * FROM ${from} WHERE (${lower.sql}) AND ${upTo === null ? "1 = 1" : `NOT (${upper.sql})`} ORDER BY ${order}`, [...lower.params, ...(upTo === null ? [] : upper.params)]);
  return rows as Row[];
}

/**
 * Rows of a table with these primary keys, as committed now. A locking read:
 * a transaction's binlog events reach a binlog reader before its rows are
 * visible (the binlog is written, and with AFTER_SYNC semi-sync acknowledged,
 * before the engine commits), and a plain read then would miss them; a
 * locking read waits for the row locks that transaction still holds, then
 * reads the committed rows. Run with READ COMMITTED (no gap locks).
 */
export async function readByKeys(conn: Connection, database: string, table: TableShape, keys: readonly unknown[][]): Promise<Row[]> {
  if (keys.length === 0) return [];
  const from = `${quoteIdent(database)}.${quoteIdent(table.name)}`;
  const match = keyMatch(table, keys);
  const [rows] = await conn.query<RowDataPacket[]>(`SELECT * FROM ${from} WHERE ${match.sql} LOCK IN SHARE MODE`, match.params);
  return rows as Row[];
}

function keyMatch(table: TableShape, keys: readonly unknown[][]): { sql: string; params: unknown[] } {
  if (table.primaryKey.length === 1) return { sql: `${quoteIdent(table.primaryKey[0]!)} IN (?)`, params: [keys.map((k) => k[0])] };
  const one = `(${table.primaryKey.map((c) => `${quoteIdent(c)} = ?`).join(" AND ")})`;
  return { sql: keys.map(() => one).join(" OR "), params: keys.flat() };
}

/** REPLACE: a row already there (an earlier batch, a replayed change) is overwritten, so every write is idempotent. */
export async function replaceRows(conn: Connection, database: string, table: TableShape, rows: readonly Row[]): Promise<void> {
  if (rows.length === 0) return;
  const cols = table.columns.map(quoteIdent).join(", ");
  const values = rows.map((r) => table.columns.map((c) => r[c] ?? null));
  await conn.query(`REPLACE INTO ${quoteIdent(database)}.${quoteIdent(table.name)} (${cols}) VALUES ?`, [values]);
}

export async function deleteByKeys(conn: Connection, database: string, table: TableShape, keys: readonly unknown[][]): Promise<void> {
  if (keys.length === 0) return;
  const match = keyMatch(table, keys);
  await conn.query(`DELETE FROM ${quoteIdent(database)}.${quoteIdent(table.name)} WHERE ${match.sql}`, match.params);
}

/** Every row of a table in primary-key order, a batch at a time (verify). */
export async function* scanTable(conn: Connection, database: string, table: TableShape, batch = 2000): AsyncGenerator<Row[]> {
  let last: unknown[] | null = null;
  for (;;) {
    const rows = await readBatch(conn, database, table, last, batch);
    if (rows.length === 0) return;
    yield rows;
    const end = rows[rows.length - 1]!;
    last = table.primaryKey.map((c) => end[c]);
    if (rows.length < batch) return;
  }
}

export async function dropDatabase(conn: Connection, database: string): Promise<void> {
  await conn.query(`DROP DATABASE IF EXISTS ${quoteIdent(database)}`);
}

export async function databaseExists(conn: Connection, database: string): Promise<boolean> {
  const [rows] = await conn.execute<RowDataPacket[]>("SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", [database]);
  return rows.length > 0;
}

/** An estimate of a table's rows (information_schema), for the progress line. */
export async function estimateRows(conn: Connection, database: string, table: string): Promise<number> {
  const [rows] = await conn.execute<RowDataPacket[]>("SELECT TABLE_ROWS AS n FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", [database, table]);
  return Number(rows[0]?.["n"] ?? 0);
}
