// Verify (Vitess's VDiff, by aggregates): hold catch-up at a position P taken
// with a fresh consistent snapshot of the source, then compare, per table and
// target, the row count and an order-independent checksum (the sum of each
// row's 64-bit digest) of the source's rows of that target's range, read from
// the snapshot, with the target's rows. Catch-up re-reads current rows, so
// under live writes a target can be ahead of P: a mismatch is retried with a
// new P before it is reported (decision 23, "Verify").
import { createHash } from "node:crypto";
import type { Connection, RowDataPacket } from "mysql2/promise";
import { catchUp, type CatchUpOptions } from "./catch-up.js";
import { keyspaceIdOf, targetFor, type ReshardPlan } from "./plan.js";
import { quoteIdent } from "../db/mysql-client.js";
import { openSnapshot, scanTable, type Row, type TableShape } from "./sql.js";
import type { StateHandle, TableCheck } from "./state.js";

const MOD = 1n << 64n;

/** A row's digest: md5 of its values in column order, the first 8 bytes as an integer. */
export function rowDigest(table: TableShape, row: Row): bigint {
  const h = createHash("md5");
  for (const c of table.columns) {
    const v = row[c];
    if (v === null || v === undefined) h.update("\u0001N");
    else if (Buffer.isBuffer(v)) h.update(`\u0001b${v.toString("hex")}`);
    else h.update(`\u0001s${String(v)}`);
  }
  return h.digest().readBigUInt64BE(0);
}

interface Sum {
  rows: number;
  sum: bigint;
}

export interface VerifyOptions {
  /** A connection for the snapshot (its own: it holds a transaction). */
  readonly snapshot: Connection;
  readonly catchUp: Omit<CatchUpOptions, "until">;
  readonly attempts?: number;
  readonly onAttempt?: (attempt: number, mismatches: number) => void;
}

export async function verify(plan: ReshardPlan, handle: StateHandle, opts: VerifyOptions): Promise<{ ok: boolean; tables: TableCheck[]; attempts: number }> {
  const attempts = opts.attempts ?? 3;
  let checks: TableCheck[] = [];
  let position = "";
  let used = 0;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    used = attempt;
    const p = await openSnapshot(opts.snapshot);
    position = p.gtid;
    try {
      await catchUp(plan, handle, { ...opts.catchUp, until: p.gtid });
      checks = [];
      for (const table of opts.catchUp.tables.values()) {
        const routing = plan.tables.get(table.name)!;
        const expected = new Map<string, Sum>(plan.targets.map((t) => [t.name, { rows: 0, sum: 0n }]));
        for await (const rows of scanTable(opts.snapshot, opts.catchUp.readDatabase ?? plan.source.database, table)) {
          for (const row of rows) {
            const s = expected.get(targetFor(plan, keyspaceIdOf(routing, row[routing.column])).name)!;
            s.rows++;
            s.sum = (s.sum + rowDigest(table, row)) % MOD;
          }
        }
        for (const t of plan.targets) {
          const got: Sum = { rows: 0, sum: 0n };
          for await (const rows of scanTable(opts.catchUp.targets.get(t.name)!, t.database, table)) {
            for (const row of rows) {
              got.rows++;
              got.sum = (got.sum + rowDigest(table, row)) % MOD;
            }
          }
          const want = expected.get(t.name)!;
          checks.push({
            table: table.name,
            target: t.name,
            sourceRows: want.rows,
            targetRows: got.rows,
            sourceChecksum: want.sum.toString(16).padStart(16, "0"),
            targetChecksum: got.sum.toString(16).padStart(16, "0"),
            match: want.rows === got.rows && want.sum === got.sum,
          });
        }
      }
    } finally {
      await opts.snapshot.query("COMMIT").catch(() => {});
    }
    const mismatches = checks.filter((c) => !c.match).length;
    opts.onAttempt?.(attempt, mismatches);
    if (mismatches === 0) break;
  }
  const ok = checks.every((c) => c.match);
  handle.state.verify = { time: new Date().toISOString(), position, attempts: used, ok, tables: checks };
  if (ok) handle.state.phase = "verified";
  await handle.save();
  return { ok, tables: checks, attempts: used };
}

/**
 * The write switch's check while writes are held (switch.ts): nothing can
 * change the fenced source, so one comparison is exact. Per table, the
 * source's row count (and with `digests`, the sum of each row's 64-bit digest:
 * MD5 of its quoted values, computed by the server) against the totals of the
 * targets. Digests read every column of every row: 2.2 s for ~100,000 rows in
 * bench:reshard, inside the pause; counts read an index.
 * Server-side and per table rather than per target: it is inside the write
 * pause, and a row's placement was already checked by the full verify before
 * the read switch (catch-up places every later change by the same vindex code).
 */
export async function verifyTotals(
  plan: ReshardPlan,
  source: Connection,
  sourceDatabase: string,
  targets: ReadonlyMap<string, Connection>,
  tables: Iterable<TableShape>,
  digests = false,
  /**
   * Inside the write switch's hold: each statement's max_statement_time
   * (MariaDB, seconds), asked as it is sent, so the check ends by the hold's
   * deadline (hold.ts). Statements on one connection are then sent one after
   * another, each with what is left.
   */
  statementSeconds?: () => string,
): Promise<{ ok: boolean; tables: TableCheck[] }> {
  const checks: TableCheck[] = [];
  const lanes = new Map<Connection, Promise<unknown>>();
  const inLane = <T>(conn: Connection, work: () => Promise<T>): Promise<T> => {
    if (statementSeconds === undefined) return work();
    const next = (lanes.get(conn) ?? Promise.resolve()).catch(() => undefined).then(work);
    lanes.set(conn, next);
    return next;
  };
  const totals = (conn: Connection, database: string, table: TableShape): Promise<{ rows: number; sum: bigint }> =>
    inLane(conn, async () => {
      const digest = !digests ? "0" : `CONV(LEFT(MD5(CONCAT_WS(0x01, ${table.columns.map((c) => `QUOTE(${quoteIdent(c)})`).join(", ")})), 16), 16, 10)`;
      const limit = statementSeconds === undefined ? "" : `SET STATEMENT max_statement_time = ${statementSeconds()} FOR `;
      const [[row]] = await conn.query<RowDataPacket[]>({
        sql: `${limit}SELECT COUNT(*) AS n, CAST(COALESCE(SUM(CAST(${digest} AS DECIMAL(20,0))), 0) AS CHAR) AS s FROM ${quoteIdent(database)}.${quoteIdent(table.name)}`,
        supportBigNumbers: true,
        bigNumberStrings: true,
      });
      return { rows: Number(row?.["n"] ?? 0), sum: BigInt(String(row?.["s"] ?? "0")) % MOD };
    });
  await Promise.all(
    [...tables].map(async (table) => {
      const [want, ...got] = await Promise.all([totals(source, sourceDatabase, table), ...plan.targets.map((t) => totals(targets.get(t.name)!, t.database, table))]);
      const rows = got.reduce((n, g) => n + g.rows, 0);
      const sum = got.reduce((s, g) => (s + g.sum) % MOD, 0n);
      checks.push({
        table: table.name,
        target: plan.targets.map((t) => t.name).join(","),
        sourceRows: want!.rows,
        targetRows: rows,
        sourceChecksum: want!.sum.toString(16).padStart(16, "0"),
        targetChecksum: sum.toString(16).padStart(16, "0"),
        match: want!.rows === rows && want!.sum === sum,
      });
    }),
  );
  return { ok: checks.every((c) => c.match), tables: checks };
}
