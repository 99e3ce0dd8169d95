// The copy phase: one consistent snapshot of the source database, every
// sharded table read in primary-key order in bounded batches, each row
// REPLACEd into the target that owns its keyspace id. The state records each
// table's last key after every batch, so a killed run resumes from there on a
// new snapshot (decision 23, "Resuming the copy").
import type { Connection } from "mysql2/promise";
import { keyspaceIdOf, targetFor, type ReshardPlan } from "./plan.js";
import { estimateRows, openSnapshot, readBatch, replaceRows, type Row, type TableShape } from "./sql.js";
import { decodeKey, encodeKey, type StateHandle } from "./state.js";

export interface CopyProgress {
  readonly table: string;
  readonly tablesDone: number;
  readonly tables: number;
  /** Rows copied so far in this workflow (all tables, all runs). */
  readonly rows: number;
  /** Rows the source holds, estimated (information_schema). */
  readonly estimatedRows: number;
  /** Rows per second in this run. */
  readonly rate: number;
}

export interface CopyOptions {
  readonly source: Connection;
  /** One connection per target shard name. */
  readonly targets: ReadonlyMap<string, Connection>;
  readonly tables: readonly TableShape[];
  readonly batchRows: number;
  readonly onProgress?: (p: CopyProgress) => void;
  /** Checked between batches: the run stops with the signal's reason (a crash, as far as the state knows). */
  readonly signal?: AbortSignal;
}

export async function copySnapshot(plan: ReshardPlan, handle: StateHandle, opts: CopyOptions): Promise<void> {
  const state = handle.state;
  const db = plan.source.database;
  const estimates = new Map<string, number>();
  for (const t of opts.tables) estimates.set(t.name, await estimateRows(opts.source, db, t.name));
  const estimatedRows = [...estimates.values()].reduce((a, b) => a + b, 0);
  const position = await openSnapshot(opts.source);
  try {
    // The first snapshot's position is where catch-up starts; a resumed copy's newer one is not needed.
    if (state.snapshot === undefined) state.snapshot = position;
    state.copyStartTime ??= new Date().toISOString();
    state.phase = "copying";
    for (const t of opts.tables) state.copy[t.name] ??= { lastPk: null, rows: 0, done: false };
    await handle.save();

    const started = performance.now();
    let copiedThisRun = 0;
    const total = (): number => Object.values(state.copy).reduce((n, c) => n + c.rows, 0);
    for (const table of opts.tables) {
      const progress = state.copy[table.name]!;
      const routing = plan.tables.get(table.name)!;
      while (!progress.done) {
        opts.signal?.throwIfAborted();
        const rows = await readBatch(opts.source, db, table, progress.lastPk === null ? null : decodeKey(progress.lastPk), opts.batchRows);
        const byTarget = new Map<string, Row[]>();
        for (const row of rows) {
          const target = targetFor(plan, keyspaceIdOf(routing, row[routing.column]));
          let list = byTarget.get(target.name);
          if (list === undefined) byTarget.set(target.name, (list = []));
          list.push(row);
        }
        for (const t of plan.targets) await replaceRows(opts.targets.get(t.name)!, t.database, table, byTarget.get(t.name) ?? []);
        if (rows.length > 0) {
          const last = rows[rows.length - 1]!;
          progress.lastPk = encodeKey(table.primaryKey.map((c) => last[c]));
          progress.rows += rows.length;
          copiedThisRun += rows.length;
        }
        if (rows.length < opts.batchRows) progress.done = true;
        await handle.save();
        opts.onProgress?.({
          table: table.name,
          tablesDone: opts.tables.filter((x) => state.copy[x.name]?.done).length,
          tables: opts.tables.length,
          rows: total(),
          estimatedRows,
          rate: copiedThisRun / Math.max((performance.now() - started) / 1000, 1e-3),
        });
      }
    }
    state.copyEndTime = new Date().toISOString();
    state.phase = "catching-up";
    await handle.save();
  } finally {
    await opts.source.query("COMMIT").catch(() => {});
  }
}
