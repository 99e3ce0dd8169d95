// The catch-up phase: the source primary's binlog from the saved GTID
// position, read with @vlasky/zongji. Row events of the source database's
// sharded tables name the keys that changed; after a batch of binlog
// transactions those keys are re-read from the source and REPLACEd into their
// owning target, or DELETEd from every target where the row is gone or owned
// elsewhere. Idempotent, so replaying from an older position is harmless
// (decision 23, "Catch-up applies the row, not the image").
import ZongJi, { MariadbGtidPosition } from "@vlasky/zongji";
import type { Connection } from "mysql2/promise";
import type { HostPort, MysqlCredentials } from "../shard/types.js";
import { fenceDatabase, keyspaceIdOf, targetFor, type ReshardPlan } from "./plan.js";
import { binlogGtidPos, deleteByKeys, readByKeys, readCommitted, replaceRows, type Row, type TableShape } from "./sql.js";
import type { StateHandle } from "./state.js";

export interface CatchUpProgress {
  /** Binlog transactions seen in this run. */
  readonly transactions: number;
  /** Rows re-read and applied in this run. */
  readonly rowsApplied: number;
  /**
   * How long the oldest transaction of the last applied batch waited between
   * reaching this process and its rows being written to the targets; 0 once
   * current. (A binlog event's own timestamp has whole seconds only.)
   */
  readonly lagMs: number;
  readonly current: boolean;
  readonly gtid: string;
  /** Streams restarted for backpressure in this run. */
  readonly restarts: number;
}

export interface CatchUpOptions {
  /** The source primary, for the binlog stream. */
  readonly sourceAddress: HostPort;
  readonly admin: MysqlCredentials;
  /** A connection to the source primary, outside any snapshot: re-reads and its binlog position. */
  readonly source: Connection;
  readonly targets: ReadonlyMap<string, Connection>;
  readonly tables: ReadonlyMap<string, TableShape>;
  /**
   * Where changed rows are re-read (default: the source database). The write
   * switch renames the source's tables into a fence database (switch.ts): the
   * binlog still names the source database, the rows are read from the fence.
   */
  readonly readDatabase?: string;
  /**
   * Reverse replication (switch writes back, decision 23): the stream's
   * databases (each logged database -> where its changed rows are re-read),
   * where the rows go (`apply`), and the state's `reverse` position instead of
   * `catchUp`. `sourceAddress` and `source` are then the targets' primary.
   */
  readonly reverse?: {
    readonly databases: ReadonlyMap<string, string>;
    readonly apply: (table: TableShape, keys: readonly unknown[][], rows: readonly Row[]) => Promise<void>;
  };
  /**
   * "current": stop once everything the source had logged when this run began is
   * applied; a GTID position: stop exactly there; "never": keep the targets
   * current until the signal fires (the position is saved first).
   */
  readonly until: "current" | "never" | string;
  /** Most keys applied at once (default 1000). */
  readonly batchKeys?: number;
  /** Replication server id of the stream (unique among the source's replicas); random by default. */
  readonly serverId?: number;
  /** Events buffered before the stream is stopped, the queue applied and a new stream started (default 20 000). */
  readonly maxQueuedEvents?: number;
  readonly onProgress?: (p: CatchUpProgress) => void;
  readonly signal?: AbortSignal;
  /** Pause, and a new read database and stop position while running (forward only). */
  readonly control?: CatchUpControl;
}

/**
 * Steers a running catch-up from outside: the write switch pauses the
 * follower (its binlog stream stays open), fences the source, then hands it
 * the fence to re-read from and the position to stop at, so the drain inside
 * the hold opens no new stream (hold.ts).
 */
export class CatchUpControl {
  /** Where changed rows are re-read from now on (forward catch-up). */
  readDatabase: string | undefined;
  /** Stop once everything up to this position is applied. */
  until: string | undefined;
  private paused = false;
  private idle: (() => void) | undefined;
  /** Set by the running catch-up: ends its wait for new events. */
  poke: () => void = () => {};

  /** Resolves once the catch-up applies nothing and will not until `resume`. */
  pause(): Promise<void> {
    this.paused = true;
    const idle = new Promise<void>((resolve) => (this.idle = resolve));
    this.poke();
    return idle;
  }

  resume(): void {
    this.paused = false;
    this.poke();
  }

  /** The loop's side: true while paused (and tells a pause() waiting that it is). */
  holding(): boolean {
    if (!this.paused) return false;
    this.idle?.();
    this.idle = undefined;
    return true;
  }
}

type BinlogEvent = {
  getEventName(): string;
  receivedAt: number;
  timestamp: number;
  gtid?: string;
  tableId?: number;
  tableMap?: Record<number, { parentSchema: string; tableName: string }>;
  rows?: Array<Record<string, unknown> | { before: Record<string, unknown>; after: Record<string, unknown> }>;
  standalone?: boolean;
  query?: string;
};

const SAVE_EVERY_MS = 1000;

/** zongji's own look-up (index.js, TableInfoQuery), for either of two schemas. */
const TABLE_INFO_SQL = `SELECT TABLE_SCHEMA AS s, COLUMN_NAME, COLLATION_NAME, CHARACTER_SET_NAME, COLUMN_COMMENT, COLUMN_TYPE
  FROM INFORMATION_SCHEMA.COLUMNS WHERE TABLE_SCHEMA IN (?, ?) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`;

type ZongJiInternals = {
  ctrlConnection: { execute(sql: string, params: unknown[], cb: (err: Error | null, rows: Array<Record<string, unknown>>) => void): void } | null;
  tableMap: Record<number, unknown>;
  stopped: boolean;
  emit(event: "error", err: Error): boolean;
  _fetchTableInfo(ev: { schemaName: string; tableName: string; tableId: number }, next: () => void): void;
};

/**
 * zongji decodes a row event with the columns of its table, which it looks up
 * in information_schema by the name the binlog logged (on each TABLE_MAP of a
 * table id it has not seen), and halts as fatal ("Insufficient permissions to
 * access: db.table") when the name has no table. A fence moves a table under
 * another name while its rows logged just before are still to be read: the
 * write switch's RENAME into `<db>_resharded` comes before the read-only views
 * that take the names back (and the undo drops the views before renaming
 * back); the switch-back fences the targets without views at all. The table's
 * columns are the same under either name, so a logged database's tables are
 * looked up in its fence too (one statement; again if a RENAME passed between
 * the two schemas' reads). `fences`: logged database -> its fence.
 */
export function lookUpTablesInFences(zongji: ZongJi, fences: ReadonlyMap<string, string>): void {
  const z = zongji as unknown as ZongJiInternals;
  const original = z._fetchTableInfo.bind(z);
  z._fetchTableInfo = (ev, next) => {
    const fence = fences.get(ev.schemaName);
    if (fence === undefined) return original(ev, next);
    const attempt = (left: number): void => {
      const conn = z.ctrlConnection;
      if (conn === null) return original(ev, next);
      try {
        conn.execute(TABLE_INFO_SQL, [ev.schemaName, fence, ev.tableName], (err, rows) => {
          if (err !== null) {
            z.emit("error", err);
            return;
          }
          const logged = rows.filter((r) => r["s"] === ev.schemaName);
          const found = (logged.length > 0 ? logged : rows.filter((r) => r["s"] === fence)).map(({ s: _s, ...column }) => column);
          if (found.length === 0) {
            if (left > 0 && !z.stopped) return void setTimeout(() => attempt(left - 1), 5);
            z.emit("error", new Error(`Insufficient permissions to access: ${ev.schemaName}.${ev.tableName} (nor in ${fence})`));
            return;
          }
          z.tableMap[ev.tableId] = { columnSchemas: found, parentSchema: ev.schemaName, tableName: ev.tableName };
          next();
        });
      } catch (err) {
        z.emit("error", err as Error);
      }
    };
    attempt(3);
  };
}

/** Runs until `until` is reached (or the signal fires); the state holds the applied position. */
export async function catchUp(plan: ReshardPlan, handle: StateHandle, opts: CatchUpOptions): Promise<CatchUpProgress> {
  const state = handle.state;
  const slot = opts.reverse === undefined ? state.catchUp : state.reverse;
  const start = opts.reverse === undefined ? (state.catchUp?.gtid ?? state.snapshot?.gtid) : state.reverse?.gtid;
  if (start === undefined) throw new Error(opts.reverse === undefined ? "no snapshot position: the copy has not started" : "no reverse position: writes have not switched");
  const databases = opts.reverse?.databases ?? new Map([[plan.source.database, opts.readDatabase ?? plan.source.database]]);
  const batchKeys = opts.batchKeys ?? 1000;
  const applied = { pos: start };
  let pendingPos = MariadbGtidPosition.parse(start);
  /** Changed keys per logged database and table. */
  const pending = new Map<string, Map<string, Map<string, unknown[]>>>();
  let pendingKeys = 0;
  let transactions = 0;
  let rowsApplied = 0;
  /** When the oldest commit not yet applied arrived (performance.now()), and the lag of the last flush. */
  let oldestPending: number | undefined;
  let lastLagMs = 0;
  let lastSave = 0;
  const baseEvents = slot?.events ?? 0;
  const baseRows = slot?.rowsApplied ?? 0;

  await readCommitted(opts.source);
  const queue: BinlogEvent[] = [];
  let wake: (() => void) | undefined;
  let failure: unknown;
  // Backpressure: zongji pushes events as fast as it reads them (a long copy leaves a long
  // backlog). Past maxQueued the stream is stopped, the queue applied and the position
  // saved, and a new stream starts from there: the unfinished transaction at the end of
  // the queue is read again, which is harmless (pausing the socket instead would race
  // zongji's own pauses while it fetches table metadata).
  const maxQueued = opts.maxQueuedEvents ?? 20_000;
  let stream: { zongji: ZongJi; stopped: boolean } | undefined;
  let restartWanted = false;
  let restarts = 0;
  const openStream = async (from: string): Promise<void> => {
    const zongji = new ZongJi({ host: opts.sourceAddress.host, port: opts.sourceAddress.port, user: opts.admin.user, password: opts.admin.password, dateStrings: true });
    lookUpTablesInFences(zongji, new Map([...databases.keys()].map((d) => [d, fenceDatabase(d)])));
    const current = { zongji, stopped: false };
    stream = current;
    zongji.on("binlog", (ev: unknown) => {
      if (current.stopped) return;
      (ev as BinlogEvent).receivedAt = performance.now();
      queue.push(ev as BinlogEvent);
      if (queue.length >= maxQueued) {
        current.stopped = true;
        restartWanted = true;
        zongji.stop();
      }
      wake?.();
    });
    zongji.on("error", (err: Error & { errno?: number }) => {
      if (current.stopped) return;
      // 1236: the source has purged the binlog this position needs.
      failure ??=
        err.errno === 1236
          ? new Error(
              opts.reverse === undefined
                ? `the source no longer has the binlog from ${from} (purged?): abort this reshard and start it again`
                : `the targets' primary no longer has the binlog from ${from} (purged?): their changes since the write switch cannot be replayed into the source (binlog.ts)`,
              { cause: err },
            )
          : err;
      wake?.();
    });
    // Opening a stream is a connection and a handshake: inside the write switch's hold it must not outlast the budget.
    let onAbort: (() => void) | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      zongji.once("ready", () => resolve());
      zongji.once("error", reject);
      onAbort = () => reject(opts.signal!.reason);
      if (opts.signal?.aborted === true) onAbort();
      else opts.signal?.addEventListener("abort", onAbort, { once: true });
    }).finally(() => opts.signal?.removeEventListener("abort", onAbort!));
    zongji.start({
      // A new replication server id per stream: a stopped stream's may linger on the server a moment.
      serverId: opts.serverId ?? 0x40000000 + Math.floor(Math.random() * 0x3fffffff),
      gtidSet: from,
      includeEvents: ["tablemap", "writerows", "updaterows", "deleterows", "xid", "mariadbgtid", "query"],
      includeSchema: Object.fromEntries([...databases.keys()].map((d) => [d, [...opts.tables.keys()]])),
    });
    await ready;
  };

  const keyOf = (table: TableShape, row: Record<string, unknown>): unknown[] =>
    table.primaryKey.map((c) => {
      const v = row[c];
      const n = table.binaryLengths.get(c);
      // BINARY(n) is stored zero-padded; a binlog value may lack the trailing zeros; zongji pads
      // them back when it reads the column type from information_schema (the MariaDB default,
      // binlog_row_metadata=NO_LOG), which the row test covers. This keeps keys whole if not.
      return n !== undefined && Buffer.isBuffer(v) && v.length < n ? Buffer.concat([v, Buffer.alloc(n - v.length)]) : v;
    });
  const keyText = (key: readonly unknown[]): string => key.map((v) => (Buffer.isBuffer(v) ? `b:${v.toString("hex")}` : `s:${String(v)}`)).join("\u0000");
  const note = (logged: string, table: TableShape, row: Record<string, unknown>): void => {
    const key = keyOf(table, row);
    // binlog_row_image=MINIMAL: an update's after image lacks the key unless it changed (its before image has it).
    if (key.some((v) => v === undefined)) return;
    let tables = pending.get(logged);
    if (tables === undefined) pending.set(logged, (tables = new Map()));
    let keys = tables.get(table.name);
    if (keys === undefined) tables.set(table.name, (keys = new Map()));
    const k = keyText(key);
    if (!keys.has(k)) {
      keys.set(k, key);
      pendingKeys++;
    }
  };

  const flush = async (): Promise<void> => {
    const changed = [...pending].flatMap(([logged, tables]) => [...tables].map(([name, keys]) => [logged, name, keys] as const));
    for (const [logged, name, keys] of changed) {
      const table = opts.tables.get(name)!;
      const routing = plan.tables.get(name)!;
      const all = [...keys.values()];
      for (let i = 0; i < all.length; i += 500) {
        // A drain inside the write switch's hold stops at its deadline (hold.ts); the keys of this flush stay unapplied.
        opts.signal?.throwIfAborted();
        const chunk = all.slice(i, i + 500);
        const rows = await readByKeys(opts.source, (opts.reverse === undefined ? opts.control?.readDatabase : undefined) ?? databases.get(logged)!, table, chunk);
        if (opts.reverse !== undefined) {
          await opts.reverse.apply(table, chunk, rows);
          rowsApplied += chunk.length;
          continue;
        }
        const owner = new Map<string, string>();
        const byTarget = new Map<string, Row[]>();
        for (const row of rows) {
          const t = targetFor(plan, keyspaceIdOf(routing, row[routing.column])).name;
          owner.set(keyText(keyOf(table, row)), t);
          let list = byTarget.get(t);
          if (list === undefined) byTarget.set(t, (list = []));
          list.push(row);
        }
        for (const t of plan.targets) {
          const conn = opts.targets.get(t.name)!;
          await deleteByKeys(conn, t.database, table, chunk.filter((k) => owner.get(keyText(k)) !== t.name));
          await replaceRows(conn, t.database, table, byTarget.get(t.name) ?? []);
        }
        rowsApplied += chunk.length;
      }
    }
    pending.clear();
    pendingKeys = 0;
    applied.pos = pendingPos.toString();
    lastLagMs = oldestPending === undefined ? 0 : Math.round(performance.now() - oldestPending);
    oldestPending = undefined;
  };

  const save = async (lagMs: number, force = false): Promise<void> => {
    if (!force && performance.now() - lastSave < SAVE_EVERY_MS) return;
    lastSave = performance.now();
    const saved = {
      gtid: applied.pos,
      events: baseEvents + transactions,
      rowsApplied: baseRows + rowsApplied,
      lagMs,
      updateTime: new Date().toISOString(),
    };
    if (opts.reverse === undefined) state.catchUp = saved;
    else state.reverse = saved;
    await handle.save();
  };

  const covers = (pos: string, target: string): boolean => {
    const have = MariadbGtidPosition.parse(pos);
    return target.split(",").filter((g) => g.trim() !== "").every((g) => have.covers(g.trim()));
  };

  const progress = (current: boolean): CatchUpProgress => ({
    transactions,
    rowsApplied,
    lagMs: current ? 0 : lastLagMs,
    current,
    gtid: applied.pos,
    restarts,
  });

  const onAbort = (): void => wake?.();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  if (opts.control !== undefined) opts.control.poke = () => wake?.();
  try {
    await openStream(start);
    // "current" is what the source had logged as the run began: a target re-read as it goes
    // moves with every write, and under steady writes on a loaded machine it was chased for
    // tens of seconds (bench:reshard). What comes after is the next run's (or the drain's).
    const fixedTarget = opts.until === "current" ? await binlogGtidPos(opts.source) : opts.until === "never" ? undefined : opts.until;
    const targetNow = (): string | undefined => opts.control?.until ?? fixedTarget;
    const reachedTarget = async (): Promise<CatchUpProgress> => {
      await save(0, true);
      if (opts.until === "current") opts.onProgress?.(progress(true));
      return progress(true);
    };
    for (;;) {
      if (failure !== undefined) throw failure;
      opts.signal?.throwIfAborted();
      if (opts.control?.holding() === true) {
        // Paused (the write switch fences the source meanwhile): events queue, nothing is re-read.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 100);
          wake = () => (clearTimeout(timer), resolve());
        });
        wake = undefined;
        continue;
      }
      const target = targetNow();
      let reached = false;
      while (queue.length > 0 && !reached) {
        const ev = queue.shift()!;
        const name = ev.getEventName();
        if (name === "writerows" || name === "deleterows" || name === "updaterows") {
          const meta = ev.tableMap?.[ev.tableId ?? -1];
          const table = meta && databases.has(meta.parentSchema) ? opts.tables.get(meta.tableName) : undefined;
          if (table === undefined) continue;
          for (const r of ev.rows ?? []) {
            if (name === "updaterows") {
              const change = r as { before: Record<string, unknown>; after: Record<string, unknown> };
              note(meta!.parentSchema, table, change.before);
              note(meta!.parentSchema, table, change.after);
            } else note(meta!.parentSchema, table, r as Record<string, unknown>);
          }
          continue;
        }
        const commits = name === "xid" || (name === "mariadbgtid" && ev.standalone === true) || (name === "query" && ev.query === "COMMIT");
        if (!commits || ev.gtid === undefined) continue;
        const [domainId, serverId, seqNo] = ev.gtid.split("-");
        pendingPos.add({ domainId: Number(domainId), serverId: Number(serverId), seqNo: seqNo! });
        transactions++;
        oldestPending ??= ev.receivedAt;
        if (target !== undefined && covers(pendingPos.toString(), target)) reached = true;
        if (pendingKeys >= batchKeys) break;
      }
      if (pendingKeys > 0 || pendingPos.toString() !== applied.pos) await flush();
      if (reached) return await reachedTarget();
      if (restartWanted && queue.length === 0) {
        // Everything the stopped stream delivered is applied: go on from the saved position.
        await save(lastLagMs, true);
        restartWanted = false;
        restarts++;
        await openStream(applied.pos);
        continue;
      }
      if (queue.length > 0) {
        opts.onProgress?.(progress(false));
        await save(progress(false).lagMs);
        continue;
      }
      // Nothing buffered: already at the position asked for (no transaction since)?
      if (target !== undefined && covers(applied.pos, target)) return await reachedTarget();
      opts.onProgress?.(progress(false));
      await save(progress(false).lagMs);
      if (opts.signal?.aborted === true) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        wake = () => (clearTimeout(timer), resolve());
      });
      wake = undefined;
    }
  } catch (err) {
    // Stopped (a kill, the end of following, a hold's deadline): what is applied is saved, so the next run goes on from it.
    if (opts.signal?.aborted === true && failure === undefined) await save(lastLagMs, true);
    throw err;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    if (stream !== undefined) {
      stream.stopped = true;
      stream.zongji.stop();
    }
  }
}
