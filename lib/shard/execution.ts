// Running statements and transactions on a shard's members: the primary, with
// a re-run on a lock conflict and after a failover where that is safe; or an
// eligible replica, handing the read to the primary when the replica breaks.
// Every statement is prepared with a per-query timeout, measured
// (chirp_db_query_duration_seconds, a span when traced) and leaves as a
// ConnectError through errors.ts. lib/db/mysql-errors.ts says what a driver
// error means; this file decides what to do about it.
import { Code, ConnectError } from "@connectrpc/connect";
import type { PoolConnection } from "mysql2";
import { isClientTimeout, isConnectionLoss, isLockConflict, isReadOnlyRefusal, describeMysqlError } from "../db/mysql-errors.js";
import { DB_WRITE_UNCONFIRMED, toConnectError } from "../errors.js";
import type { Logger } from "../logger.js";
import { labelledChildren, type Metrics } from "../metrics.js";
import { endDbSpan, startDbSpan } from "../tracing/tracing.js";
import { replicaEligible } from "./health.js";
import { LimiterError } from "./limiter.js";
import type { MemberRole, Members, ShardRef } from "./members.js";
import { command, executeOn, markNeverSent, wasNeverSent, type MemberPool } from "./pools.js";
import type { ShardInfo } from "./types.js";

/** What may be bound to a `?`. BIGINT ids travel as decimal strings (or bigint). */
export type SqlValue = string | number | bigint | boolean | Date | Buffer | null;
export type Row = Record<string, unknown>;

export interface ExecResult {
  readonly affectedRows: number;
  /** AUTO_INCREMENT id of the row inserted, as a decimal string ("0" when none). */
  readonly insertId: string;
}

/** The typed query surface: plain rows out, prepared statements in. */
export interface Queryable {
  /** A statement that returns rows (SELECT). */
  query<T extends object = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** A statement that changes rows (INSERT, UPDATE, DELETE). */
  execute(sql: string, params?: readonly SqlValue[]): Promise<ExecResult>;
}

export interface ShardClient extends Queryable {
  readonly shard: ShardInfo;
}

/** What a transaction's function gets: its statements, and what to do once it has committed. */
export interface Transaction extends Queryable {
  readonly keyspace: string;
  readonly shard: ShardInfo;
  /** Runs `fn` after the commit succeeds (never after a rollback); a throw in it is ignored. */
  afterCommit(fn: () => void): void;
  /**
   * A statement that changes rows and whose result the caller does not need
   * (an outbox row, a count): sent with the transaction's next statement's
   * round trip or its COMMIT's, one multi-statement text query, instead of a
   * round trip of its own. An error it raises fails that statement or the
   * COMMIT, and with it the transaction, as it would have failed the
   * statement itself.
   */
  defer(sql: string, params?: readonly SqlValue[]): void;
  /**
   * A read deferred like `defer`: it goes in the round trip of what is
   * pending (the COMMIT's, when nothing else follows it) and sees the
   * transaction's own writes before it. Resolves with its rows once that
   * round trip has answered (with the COMMIT's: once committed); rejects
   * with the transaction's error otherwise. Its rows come over the text
   * protocol, typed by the same connection options as every read's (ids as
   * strings, DATETIMEs as UTC Dates).
   */
  deferRead<R extends object = Row>(sql: string, params?: readonly SqlValue[]): Promise<R[]>;
  /** A change deferred like `defer` whose result the caller reads: resolves as `deferRead` does. */
  deferExecute(sql: string, params?: readonly SqlValue[]): Promise<ExecResult>;
  /**
   * Sends what is pending now, in one round trip: the BEGIN if it has not
   * gone yet and every deferred statement, so that a deferred read's rows are
   * there before the transaction goes on (a read that needs its own answer
   * first, sent with the BEGIN instead of in a round trip after it). With
   * nothing deferred and the BEGIN sent, nothing goes out.
   */
  flush(): Promise<void>;
}

export interface TransactionOptions {
  /**
   * The caller runs the whole transaction again whenever it fails, even when
   * its outcome is unknown (an event handler whose event is delivered again),
   * and a second run after a first that committed changes nothing more. Then
   * a transaction whose statements are all deferred goes out as one round
   * trip, its BEGIN with its COMMIT: a connection that breaks there leaves
   * its outcome unknown (Unavailable), where a BEGIN sent alone would have
   * failed as never sent and run again at once.
   */
  readonly rerunnable?: boolean;
}

/**
 * A statement whose result nobody reads (an outbox row, a count): deferred to
 * go with the transaction's next round trip (Transaction.defer) when `q` is a
 * router transaction, run at once otherwise.
 */
export async function executeOrDefer(q: Queryable, sql: string, params: readonly SqlValue[]): Promise<void> {
  if (typeof (q as Partial<Transaction>).defer === "function") (q as Transaction).defer(sql, params);
  else await q.execute(sql, params);
}

export interface ExecutionOptions {
  readonly members: Members;
  /** Called for every statement of traffic (not background ones): it sets the health probes' pace. */
  readonly routed: () => void;
  readonly qualify: (sql: string, database: string) => string;
  readonly maxLagMs: number;
  readonly queryTimeoutMs: number;
  /** A COMMIT, or a statement outside a transaction on the primary: past it, Unavailable (DB_WRITE_UNCONFIRMED). */
  readonly commitTimeoutMs: number;
  readonly failoverWaitMs: number;
  readonly log: Logger;
  readonly metrics: Metrics | undefined;
}

export interface Execution {
  client(ref: ShardRef, mode: "primary" | "reader", background?: boolean): ShardClient;
  transaction<T>(ref: ShardRef, fn: (tx: Transaction) => Promise<T>, opts?: TransactionOptions): Promise<T>;
}

/** `shard`: where it runs (a held or moved write resolves its shard again, resharding.ts). */
type Op<T> = (conn: PoolConnection, pool: MemberPool, role: MemberRole, shard: ShardInfo) => Promise<T>;

/**
 * What a statement on a split's source gets once the write switch fenced its
 * tables (decision 23): the table is gone (1146), or is a read-only view of
 * the fenced rows (1288 UPDATE/DELETE, 1471 INSERT; 1356 if the view cannot be
 * used). Nothing ran.
 */
const FENCED_ERRNOS: ReadonlySet<unknown> = new Set([1146, 1288, 1356, 1471]);
const isFenced = (raw: unknown): boolean => FENCED_ERRNOS.has((raw as { errno?: unknown } | undefined)?.errno);

export function createExecution(opts: ExecutionOptions): Execution {
  const { members, routed, qualify, maxLagMs, queryTimeoutMs, commitTimeoutMs, failoverWaitMs, log, metrics } = opts;
  const keyspace = members.keyspace;
  let roundRobin = 0;

  /**
   * A write's shard once the router may run it: while the topology in force
   * holds writes of the shard (a split's write switch), it waits for the next
   * document and resolves the shard name again (at most failoverWaitMs; then
   * it runs where the document says, the source).
   */
  const writable = async (shard: ShardInfo): Promise<ShardInfo> => {
    const deadline = performance.now() + failoverWaitMs;
    for (let state = members.state(); state.held.has(shard.name) && !members.closed(); state = members.state()) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([state.replaced, new Promise<void>((resolve) => (timer = setTimeout(resolve, left)))]);
      clearTimeout(timer);
      shard = members.resolveWriteShard(shard.name);
    }
    return shard;
  };

  /**
   * The topology in force already sends `shard`'s name to another database: a
   * reference resolved before the write switch (a client kept across awaits, as
   * the outbox relay keeps one from reading its rows to marking them sent) and
   * used after it. No newer document will come for it.
   */
  const movedAway = (shard: ShardInfo): boolean => {
    try {
      const now = members.resolveWriteShard(shard.name);
      return now.database !== shard.database || now.replicaSet !== shard.replicaSet;
    } catch {
      return false;
    }
  };

  /**
   * Runs `op` on the shard's primary, re-running it once on a conflict and once after a failover where that is safe.
   * `write`: the shard was resolved for a write (held writes wait; a fenced split source re-resolves).
   */
  const onPrimary = async <T>(first: ShardInfo, op: Op<T>, background = false, write = true): Promise<T> => {
    if (!background) routed();
    let shard = write && members.state().held.size > 0 ? await writable(first) : first;
    let conflictRetried = false;
    let failoverRetried = false;
    // Refused by a fence: re-routed on each newer document until this deadline (a write switch
    // that gives up and tries again fences the source again; the write did nothing each time).
    let movedUntil: number | undefined;
    for (;;) {
      const epoch = members.state().topology.epoch;
      const set = members.setOf(shard);
      const pool = set.primary;
      try {
        return await pool.withConnection((conn) => op(conn, pool, "primary", shard));
      } catch (err) {
        const raw = rawOf(err);
        if (!conflictRetried && isLockConflict(raw)) {
          conflictRetried = true;
          continue;
        }
        if (write && isFenced(raw) && !members.closed()) {
          // The write reached a split's source after its tables were fenced (the router had not
          // yet seen the write switch): nothing ran; the next document sends it to the target.
          movedUntil ??= performance.now() + failoverWaitMs;
          log.info({ shard: shard.name, database: shard.database, epoch }, "write refused by a fenced reshard source; waiting for a newer topology");
          if (movedAway(shard) || (await members.newerTopology(epoch, movedUntil - performance.now()))) {
            shard = await writable(members.resolveWriteShard(shard.name));
            log.info({ shard: shard.name, database: shard.database }, "write re-routed after a write switch");
            continue;
          }
        }
        if (!failoverRetried && failoverWaitMs > 0 && !members.closed() && (wasNeverSent(raw) || isReadOnlyRefusal(raw))) {
          failoverRetried = true;
          if (await members.primaryChanged(set.name, pool.key, failoverWaitMs)) {
            metrics?.dbFailoverRetries.inc({ replica_set: set.name, result: "retried" });
            log.info({ shard: shard.name, replica_set: set.name }, "retrying on the new primary");
            continue;
          }
          metrics?.dbFailoverRetries.inc({ replica_set: set.name, result: "gave_up" });
        }
        throw err;
      }
    }
  };

  /**
   * onReaderOnce; a read that meets a split's fenced source (its replicas have
   * the write switch's RENAME but not the primary's views) waits for the next
   * document, like a held write, and reads where it says: nothing ran.
   */
  const onReader = async <T>(first: ShardInfo, op: Op<T>): Promise<T> => {
    // While a switch holds the range's writes its reads wait too: the side that
    // serves after it is only current once the switch has drained (reshard switch-back).
    if (members.state().held.has(first.name)) first = await writable(first);
    let movedUntil: number | undefined;
    for (;;) {
      const epoch = members.state().topology.epoch;
      try {
        return await onReaderOnce(first, op);
      } catch (err) {
        const splitting = (members.state().topology.resharding?.length ?? 0) > 0;
        if (!splitting || !isFenced(rawOf(err)) || members.closed()) throw err;
        // As a write: again after each newer document (a switch tried again fences again), up to the deadline.
        movedUntil ??= performance.now() + failoverWaitMs;
        log.info({ shard: first.name, database: first.database, epoch }, "read refused by a fenced reshard source; waiting for a newer topology");
        if (!movedAway(first) && !(await members.newerTopology(epoch, movedUntil - performance.now()))) throw err;
        first = await writable(members.resolveWriteShard(first.name));
      }
    }
  };

  /** An eligible replica (round robin among them), else the primary. */
  const onReaderOnce = async <T>(shard: ShardInfo, op: Op<T>): Promise<T> => {
    routed();
    const set = members.setOf(shard);
    const now = performance.now();
    const eligible = set.replicas.filter((r) => r.health.reachable === true && replicaEligible(r.health.lag, now, maxLagMs));
    const replica = eligible.length === 0 ? undefined : eligible[roundRobin++ % eligible.length];
    if (replica !== undefined) {
      try {
        return await replica.withConnection((conn) => op(conn, replica, "replica", shard));
      } catch (err) {
        // A read is safe to repeat: a replica that broke under us hands over to the primary
        // and serves nothing until a probe finds it well again.
        if (!replicaBroken(err)) throw err;
        replica.health = { reachable: false, lag: undefined, problem: describeMysqlError(err) };
      }
    }
    return onPrimary(shard, op, false, false);
  };

  /**
   * `commits`: the statement commits a write on the primary (autocommit DML).
   * Semi-sync never falls back to asynchronous (decision 24), so such a
   * statement waits while no replica acknowledges; past the commit bound it
   * answers Unavailable: not an acknowledgment, its outcome unknown.
   */
  const runStatement = async (
    conn: PoolConnection,
    pool: MemberPool,
    sql: string,
    params: readonly SqlValue[],
    commits = false,
  ): Promise<unknown> => {
    try {
      return await executeOn(conn, sql, params, commits ? commitTimeoutMs : queryTimeoutMs);
    } catch (err) {
      if (isClientTimeout(err)) {
        // The connection is mid-statement: drop it, and stop the statement on the server.
        const threadId = conn.threadId;
        conn.destroy();
        pool.killQuietly(threadId);
        if (commits) throw writeUnconfirmed(err);
      }
      throw err;
    }
  };

  /** A text query (several statements, values already escaped) under `timeoutMs`; a timed-out one's session is killed, as runStatement does. */
  const textOn = async (conn: PoolConnection, pool: MemberPool, sql: string, timeoutMs: number): Promise<unknown> => {
    try {
      return await command((cb) => conn.query({ sql, timeout: timeoutMs }, (err, result) => cb(err, result)));
    } catch (err) {
      if (isClientTimeout(err)) {
        const threadId = conn.threadId;
        conn.destroy();
        pool.killQuietly(threadId);
      }
      throw err;
    }
  };

  /**
   * COMMIT under the commit bound. A timed-out commit's session is killed like
   * a statement's, so sessions waiting for an ack do not pile up on a primary
   * with no replica: the server may then commit it without one, which is
   * harmless, as the client was told Unavailable, not OK. Resolves to the
   * results of the deferred statements, in order (the COMMIT's left out).
   */
  const commitOn = async (conn: PoolConnection, pool: MemberPool, deferred: readonly string[] = []): Promise<unknown[]> => {
    const sql = deferred.length === 0 ? "COMMIT" : `${deferred.join(";\n")};\nCOMMIT`;
    try {
      const results = await command<unknown>((cb) => conn.query({ sql, timeout: commitTimeoutMs }, (err, result) => cb(err, result)));
      return deferred.length === 0 ? [] : (results as unknown[]).slice(0, deferred.length);
    } catch (err) {
      if (isClientTimeout(err)) {
        const threadId = conn.threadId;
        conn.destroy();
        pool.killQuietly(threadId);
        throw writeUnconfirmed(err);
      }
      throw err;
    }
  };

  const durations = metrics === undefined ? undefined : labelledChildren((labels) => metrics.dbQueryDuration.labels(labels));
  const observeDuration = (shard: string, role: MemberRole, code: string, seconds: number): void =>
    durations?.(`${shard}\u0000${role}\u0000${code}`, () => ({ shard, role, code })).observe(seconds);

  /**
   * Metrics and error mapping around one routed statement (or transaction),
   * and its span when the statement runs inside a traced call.
   */
  const observed = async <T>(shard: ShardInfo, role: () => MemberRole, sql: string, run: () => Promise<T>, unlogged?: (err: unknown) => boolean): Promise<T> => {
    const started = performance.now();
    const span = startDbSpan(shard.name, shard.database, sql);
    let code = "OK";
    let mappedCode: Code | undefined;
    try {
      return await run();
    } catch (err) {
      const mapped = toConnectError(err, unlogged?.(err) === true ? undefined : log, { shard: shard.name });
      code = Code[mapped.code];
      mappedCode = mapped.code;
      throw mapped;
    } finally {
      observeDuration(shard.name, role(), code, (performance.now() - started) / 1000);
      if (span !== undefined) endDbSpan(span, role(), mappedCode);
    }
  };

  const client = (ref: ShardRef, mode: "primary" | "reader", background = false): ShardClient => {
    // A split's target reads, like it writes, the source's database until writes switch (resharding.ts).
    const shard = members.resolveWriteShard(ref);
    const route = mode === "primary" ? onPrimary : onReader;
    const run = <T>(sql: string, params: readonly SqlValue[], shape: (result: unknown) => T): Promise<T> => {
      let served: MemberRole = "primary";
      return observed(
        shard,
        () => served,
        sql,
        () =>
          route(
            shard,
            async (conn, pool, role, where) => {
              served = role;
              return shape(await runStatement(conn, pool, qualify(sql, where.database), params, role === "primary" && shape === execResultOf));
            },
            background,
          ),
      );
    };
    return {
      shard,
      query: <T extends object = Row>(sql: string, params: readonly SqlValue[] = []) => run(sql, params, rowsOf<T>),
      execute: (sql: string, params: readonly SqlValue[] = []) => run(sql, params, execResultOf),
    };
  };

  const transaction = async <T>(ref: ShardRef, fn: (tx: Transaction) => Promise<T>, opts: TransactionOptions = {}): Promise<T> => {
    const shard = members.resolveWriteShard(ref);
    const mapped = (err: unknown): ConnectError => toConnectError(err, log, { shard: shard.name });
    try {
      return await onPrimary(shard, async (conn, pool, _role, where) => {
        // The transaction's BEGIN is not a round trip of its own: it goes out
        // with the first statement that changes rows (sendPending), or alone
        // just before a read or a COMMIT.
        let begun = false;
        let open = true;
        const committed: Array<() => void> = [];
        // Deferred statements: as the text protocol sends them (the connection's own escaping),
        // and with their placeholders, which is what spans show (never the values).
        let deferred: string[] = [];
        let deferredShapes: string[] = [];
        /** Deferred reads waiting for their rows: their places in `deferred`. */
        let reads: Array<{ readonly at: number; readonly resolve: (rows: unknown) => void; readonly reject: (err: unknown) => void }> = [];
        /** Deferred: as the text protocol sends it (the connection's own escaping), and its shape for spans. */
        const queue = (sql: string, params: readonly SqlValue[]): void => {
          deferred.push(conn.format(qualify(sql, where.database), params as unknown[]));
          deferredShapes.push(sql);
        };
        /** Hands each deferred read its result (`results`: one per deferred statement, in order). */
        const answerReads = (results: readonly unknown[]): void => {
          const waiting = reads;
          reads = [];
          for (const r of waiting) r.resolve(results[r.at]);
        };
        /**
         * Sends the pending BEGIN and what was deferred, plus `last` when given,
         * in one text round trip; resolves to the last statement's result. A
         * round trip that carries the BEGIN cannot have committed anything, so
         * when its connection breaks it counts as never sent: as safe to re-run
         * on a new primary as a failed connect.
         */
        const sendPending = async (last?: string): Promise<unknown> => {
          const parts = [...(begun ? [] : ["START TRANSACTION"]), ...deferred, ...(last === undefined ? [] : [last])];
          const opening = !begun;
          const sent = deferred.length;
          begun = true;
          deferred = [];
          deferredShapes = [];
          try {
            const answer = await textOn(conn, pool, parts.join(";\n"), queryTimeoutMs);
            const results = parts.length === 1 ? [answer] : (answer as unknown[]);
            const first = opening ? 1 : 0;
            answerReads(results.slice(first, first + sent));
            return results[parts.length - 1];
          } catch (err) {
            throw opening && isConnectionLoss(err) ? markNeverSent(err) : err;
          }
        };
        /** The BEGIN alone. Nothing of fn went out with it: whatever fails, as safe to re-run elsewhere as a failed connect. */
        const begin = async (): Promise<void> => {
          begun = true;
          try {
            await textOn(conn, pool, "START TRANSACTION", queryTimeoutMs);
          } catch (err) {
            throw markNeverSent(err);
          }
        };
        const statement = <R>(sql: string, params: readonly SqlValue[], shape: (result: unknown) => R, changesRows: boolean): Promise<R> => {
          if (!open) return Promise.reject(mapped(new Error("statement on a finished transaction")));
          const qualified = qualify(sql, where.database);
          // A statement refused by a split's fence is not logged here: onPrimary re-runs the
          // transaction on the new layout, and logs it below only if it gives up.
          if (begun && deferred.length === 0) {
            return observed(where, () => "primary", sql, async () => shape(await runStatement(conn, pool, qualified, params)), isFenced);
          }
          if (changesRows) {
            // Combined: a change's answer (rows affected, the insert id) is the same over the
            // text protocol, so it goes in the round trip of what is pending before it.
            const shapes = [...deferredShapes, sql].join(";\n");
            return observed(where, () => "primary", shapes, async () => shape(await sendPending(conn.format(qualified, params as unknown[]))), isFenced);
          }
          // A read keeps the binary protocol (its rows' types), after a round trip for what is pending.
          return (async () => {
            await flushPending();
            return observed(where, () => "primary", sql, async () => shape(await runStatement(conn, pool, qualified, params)), isFenced);
          })();
        };
        /** Sends the pending BEGIN and deferred statements on their own (before a read or the COMMIT). */
        const flushPending = async (): Promise<void> => {
          if (begun && deferred.length === 0) return;
          const shapes = deferredShapes.join(";\n");
          if (shapes === "") await begin();
          else await observed(where, () => "primary", shapes, () => sendPending(), isFenced);
        };
        /** A deferred statement whose result is handed over, shaped, once its round trip answers. */
        const deferAnswered = <R>(sql: string, params: readonly SqlValue[], shape: (result: unknown) => R): Promise<R> => {
          if (!open) return Promise.reject(mapped(new Error("statement on a finished transaction")));
          const answer = new Promise<unknown>((resolve, reject) => reads.push({ at: deferred.length, resolve, reject }));
          queue(sql, params);
          const shaped = answer.then(shape);
          // The transaction's own failure is its caller's to handle; an unawaited answer must not add another.
          shaped.catch(() => {});
          return shaped;
        };
        const tx: Transaction = {
          keyspace,
          shard: where,
          query: <R extends object = Row>(sql: string, params: readonly SqlValue[] = []) => statement(sql, params, rowsOf<R>, false),
          execute: (sql: string, params: readonly SqlValue[] = []) => statement(sql, params, execResultOf, true),
          afterCommit: (f) => void committed.push(f),
          defer: (sql, params = []) => {
            if (!open) throw mapped(new Error("statement on a finished transaction"));
            queue(sql, params);
          },
          deferRead: <R extends object = Row>(sql: string, params: readonly SqlValue[] = []) => deferAnswered(sql, params, rowsOf<R>),
          deferExecute: (sql: string, params: readonly SqlValue[] = []) => deferAnswered(sql, params, execResultOf),
          flush: () => (open ? flushPending() : Promise.reject(mapped(new Error("statement on a finished transaction")))),
        };
        try {
          const result = await fn(tx);
          open = false;
          // A BEGIN goes alone before a COMMIT that carries statements: a COMMIT whose
          // connection breaks has an unknown outcome, so it must never carry the BEGIN
          // (a broken connection there would turn a write that never ran into Unavailable),
          // unless the caller runs it again whatever the outcome (rerunnable).
          const whole = !begun && deferred.length > 0 && opts.rerunnable === true;
          if (!begun && deferred.length > 0 && !whole) await begin();
          if (whole) {
            begun = true;
            const shapes = `START TRANSACTION;\n${deferredShapes.join(";\n")};\nCOMMIT`;
            answerReads(await observed(where, () => "primary", shapes, () => commitOn(conn, pool, ["START TRANSACTION", ...deferred]), isFenced).then((r) => r.slice(1)));
          } else if (!begun) {
            // Nothing was run: nothing to commit.
          } else if (deferred.length === 0) await commitOn(conn, pool);
          else {
            // Observed as a statement (metrics, a span) since it carries the deferred ones.
            const shapes = `${deferredShapes.join(";\n")};\nCOMMIT`;
            answerReads(await observed(where, () => "primary", shapes, () => commitOn(conn, pool, deferred), isFenced));
          }
          for (const f of committed) {
            try {
              f();
            } catch (err) {
              log.warn({ err, shard: shard.name }, "after-commit callback failed");
            }
          }
          return result;
        } catch (err) {
          open = false;
          for (const r of reads.splice(0)) r.reject(mapped(err));
          if (begun) await command((cb) => conn.rollback(cb)).catch(() => conn.destroy());
          throw err;
        }
      });
    } catch (err) {
      throw isFenced(rawOf(err)) ? mapped(rawOf(err)) : mapped(err);
    }
  };

  return { client, transaction };
}

function rowsOf<T>(result: unknown): T[] {
  if (!Array.isArray(result)) throw new TypeError("query() is for statements that return rows; use execute()");
  return result as T[];
}

function execResultOf(result: unknown): ExecResult {
  if (Array.isArray(result) || typeof result !== "object" || result === null) {
    throw new TypeError("execute() is for statements that change rows; use query()");
  }
  const r = result as { affectedRows?: unknown; insertId?: unknown };
  return { affectedRows: Number(r.affectedRows ?? 0), insertId: String(r.insertId ?? "0") };
}

function writeUnconfirmed(cause: unknown): Error {
  return Object.assign(new Error("the primary did not confirm the commit within the commit bound", { cause }), { code: DB_WRITE_UNCONFIRMED });
}

/** The driver error behind a ConnectError raised inside a transaction. */
function rawOf(err: unknown): unknown {
  return err instanceof ConnectError ? err.cause : err;
}

/** The replica itself failed (its connection broke, or was never made), not the statement. */
function replicaBroken(err: unknown): boolean {
  const raw = rawOf(err);
  if (wasNeverSent(raw)) return !(raw instanceof LimiterError);
  return isConnectionLoss(raw);
}
