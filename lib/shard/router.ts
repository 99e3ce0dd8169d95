// The shard router: which MySQL member runs a statement for a shard, and how.
//
//   const db = await createShardRouter({ topology, credentials, log, metrics });
//   await db.primaryForUser(id).execute("UPDATE chirp.users SET bio = ? WHERE id = ?", [bio, id]);
//   const rows = await db.readerForUser(id).query<UserRow>("SELECT ... FROM chirp.users WHERE id = ?", [id]);
//
// - Tables are written keyspace-qualified (`chirp.users`, as through vtgate);
//   the router substitutes the shard's database (qualify.ts says why not USE).
// - primary(): writes and read-your-writes reads. reader(): a replica whose lag
//   is known to be within maxReplicaLagMs (health.ts), else the primary.
// - Every statement is prepared (mysql2 `execute`) with a per-query timeout.
// - Errors leave as ConnectError through errors.ts; an unreachable shard is
//   `Unavailable` naming the shard.
// - The live topology (NATS KV) is followed: pools for new members, drained
//   pools for removed ones, primaries switched atomically per replica set.
import { Code, ConnectError } from "@connectrpc/connect";
import type { KV } from "@nats-io/kv";
import type { PoolConnection } from "mysql2";
import { pino } from "pino";
import type { MysqlCredentials, ShardInfo } from "./types.js";
import { DB_UNAVAILABLE, toConnectError } from "../errors.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { endDbSpan, startDbSpan } from "../tracing/tracing.js";
import { DB_DEFAULTS } from "./config.js";
import { effectiveLagMs, lagSampleFrom, lagSql, replicaEligible } from "./health.js";
import { ShardMap } from "./keyrange.js";
import { LimiterError } from "./limiter.js";
import { MemberPool, command, executeOn, isServerReply, markNeverSent, memberKey, wasNeverSent } from "./pools.js";
import { ProbePace } from "./probe-pace.js";
import { createQualifier } from "./qualify.js";
import { readTopology, watchTopology, type LiveTopology } from "./topology.js";

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
}

/** A shard by name (`-40`) or as described by the topology. */
export type ShardRef = ShardInfo | string;

export type MemberRole = "primary" | "replica";

export interface ShardRouterOptions {
  /** The starting topology (topologyFromEnv gives epoch 0). */
  readonly topology: LiveTopology;
  /** The application account. */
  readonly credentials: MysqlCredentials;
  /** Default 1000. A replica further behind serves no reads. */
  readonly maxReplicaLagMs?: number;
  /** Connections per member, default 8, at most 256. */
  readonly poolSize?: number;
  /** Statements that may wait for a connection per member (default 256); more fail with ResourceExhausted. */
  readonly poolQueueLimit?: number;
  /** Longest wait for a connection (default 2000 ms), then Unavailable. */
  readonly acquireTimeoutMs?: number;
  /** Per statement (default 5000 ms), then DeadlineExceeded. */
  readonly queryTimeoutMs?: number;
  /** How long a write that never reached its primary waits for a new primary (default 10 000 ms; 0: never). */
  readonly failoverWaitMs?: number;
  /** Default 2000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * Health probes (primary ping, replica lag): default every 250 ms while
   * statements flow, each bounded by probeTimeoutMs (default 1000). Once no
   * statement has been routed for a few intervals (2 s at least), every
   * idleHealthIntervalMs (default 5000) instead, and the first statement
   * after that runs a probe round at once: an idle process costs its
   * database almost nothing, and a busy one still sees lag within 250 ms.
   * Statements run with `background` (relay polls) are not traffic here.
   */
  readonly healthIntervalMs?: number;
  readonly idleHealthIntervalMs?: number;
  readonly probeTimeoutMs?: number;
  /** How long a removed member's in-flight statements may take before its pool is closed (default 10 000 ms). */
  readonly drainTimeoutMs?: number;
  /** Followed when given: the current document is applied before createShardRouter resolves. */
  readonly topologyKv?: KV;
  readonly log?: Logger;
  readonly metrics?: Metrics;
}

export interface MemberStatus {
  readonly name: string;
  readonly host: string;
  readonly port: number;
  readonly role: MemberRole;
  /** undefined until the first probe. */
  readonly reachable: boolean | undefined;
  /** Replicas: measured lag plus its age; undefined when unknown (no heartbeat yet, unreachable). */
  readonly lagMs: number | undefined;
  /** Replicas: whether reader() would use it now. */
  readonly eligible: boolean;
  readonly inUse: number;
  readonly waiting: number;
  readonly problem: string | undefined;
}

export interface RouterStatus {
  readonly keyspace: string;
  readonly epoch: number;
  readonly replicaSets: readonly { readonly name: string; readonly members: readonly MemberStatus[] }[];
}

export interface TopologyWatch {
  stop(): void;
}

export interface ShardRouter {
  readonly keyspace: string;
  /** The topology in force. */
  topology(): LiveTopology;
  /** The shards in keyrange order. */
  shards(): readonly ShardInfo[];
  shard(name: string): ShardInfo;
  shardForUser(userId: bigint | string): ShardInfo;
  shardForHandle(handle: string): ShardInfo;
  /**
   * Writes and read-your-writes reads. `background`: statements of periodic
   * work (an outbox relay's poll, a sweep) that do not count as traffic, so
   * they do not keep the health probes at their busy pace (healthIntervalMs).
   */
  primary(shard: ShardRef, opts?: { readonly background?: boolean }): ShardClient;
  /** Reads that may be up to maxReplicaLagMs old. */
  reader(shard: ShardRef): ShardClient;
  primaryForUser(userId: bigint | string): ShardClient;
  readerForUser(userId: bigint | string): ShardClient;
  primaryForHandle(handle: string): ShardClient;
  readerForHandle(handle: string): ShardClient;
  /**
   * Runs `fn` in one transaction on the shard's primary. On a deadlock or lock
   * wait timeout (1213/1205) the whole of `fn` runs once more, so it must not
   * have effects outside the transaction; a second conflict is Aborted.
   */
  transaction<T>(shard: ShardRef, fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Groups items by shard (shards in keyrange order, items in input order). */
  byShard<K>(items: Iterable<K>, shardOf: (item: K) => ShardRef): Map<string, { shard: ShardInfo; items: K[] }>;
  /**
   * byShard, then `run` for every shard in parallel; results concatenated in
   * shard order. Rejects with the first failure (the other shards still finish).
   */
  scatter<K, R>(
    items: Iterable<K>,
    shardOf: (item: K) => ShardRef,
    run: (shard: ShardInfo, items: K[]) => Promise<readonly R[]>,
  ): Promise<R[]>;
  /** Switches to `next` unless its epoch is not newer (returns false). Throws TopologyError on an invalid document. */
  applyTopology(next: LiveTopology): boolean;
  /** Applies the KV's current document, then follows it until stop() or close(). */
  followTopology(kv: KV): Promise<TopologyWatch>;
  status(): RouterStatus;
  /** Stops probes and watches, lets in-flight statements finish (bounded), closes every pool. */
  close(): Promise<void>;
}

export class TopologyError extends Error {
  override readonly name = "TopologyError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid topology: ${problems.join("; ")}`);
  }
}

interface SetState {
  readonly name: string;
  readonly primary: MemberPool;
  readonly replicas: readonly MemberPool[];
  /** A shard database of this set: the heartbeat the replicas' lag is read from. */
  readonly probeDatabase: string | undefined;
}

interface State {
  readonly topology: LiveTopology;
  readonly sets: ReadonlyMap<string, SetState>;
  readonly shards: ReadonlyMap<string, ShardInfo>;
  readonly map: ShardMap<ShardInfo>;
}

type Op<T> = (conn: PoolConnection, pool: MemberPool, role: MemberRole) => Promise<T>;

const PLAIN_IDENT = /^[A-Za-z0-9_]{1,64}$/;
const ER_LOCK_WAIT_TIMEOUT = 1205;
const ER_LOCK_DEADLOCK = 1213;
// The server refused a write because it is read-only: a demoted primary. The
// statement did not run, so in autocommit (or with the transaction rolled
// back) it is as safe to re-run on the new primary as one never sent.
const READ_ONLY_ERRNOS = new Set([1290, 1792, 1836]);
const CONNECTION_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENOTCONN", "PROTOCOL_CONNECTION_LOST"]);

export async function createShardRouter(opts: ShardRouterOptions): Promise<ShardRouter> {
  const log = opts.log ?? pino({ level: "silent" });
  const metrics = opts.metrics;
  const keyspace = opts.topology.keyspace;
  const maxLagMs = opts.maxReplicaLagMs ?? DB_DEFAULTS.maxReplicaLagMs;
  const poolSize = opts.poolSize ?? DB_DEFAULTS.poolSize;
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 256) throw new RangeError("poolSize must be an integer in [1, 256]");
  const queryTimeoutMs = opts.queryTimeoutMs ?? DB_DEFAULTS.queryTimeoutMs;
  const failoverWaitMs = opts.failoverWaitMs ?? DB_DEFAULTS.failoverWaitMs;
  const healthIntervalMs = opts.healthIntervalMs ?? 250;
  const idleHealthIntervalMs = Math.max(healthIntervalMs, opts.idleHealthIntervalMs ?? 5000);
  const idleAfterMs = Math.max(2000, 4 * healthIntervalMs);
  const probeTimeoutMs = opts.probeTimeoutMs ?? 1000;
  const drainTimeoutMs = opts.drainTimeoutMs ?? 10_000;
  const qualify = createQualifier(keyspace);

  const pools = new Map<string, MemberPool>();
  const draining = new Set<Promise<void>>();
  const watches = new Set<TopologyWatch>();
  // Woken on every topology change; each checks its own condition.
  const topologyListeners = new Set<() => void>();
  let roundRobin = 0;
  let closed = false;

  const poolFor = (replicaSet: string, member: LiveTopology["replicaSets"][number]["primary"]): MemberPool => {
    const key = memberKey(member);
    let pool = pools.get(key);
    if (pool === undefined) {
      pool = new MemberPool({
        replicaSet,
        member,
        credentials: opts.credentials,
        poolSize,
        queueLimit: opts.poolQueueLimit ?? DB_DEFAULTS.poolQueueLimit,
        acquireTimeoutMs: opts.acquireTimeoutMs ?? DB_DEFAULTS.acquireTimeoutMs,
        connectTimeoutMs: opts.connectTimeoutMs ?? 2000,
        metrics,
      });
      pools.set(key, pool);
    }
    return pool;
  };

  const build = (topology: LiveTopology): State => {
    const problems = topologyProblems(topology, keyspace);
    let map: ShardMap<ShardInfo> | undefined;
    try {
      map = new ShardMap(topology.shards);
    } catch (err) {
      problems.push((err as Error).message);
    }
    if (problems.length > 0 || map === undefined) throw new TopologyError(problems);
    const sets = new Map<string, SetState>();
    for (const rs of topology.replicaSets) {
      sets.set(rs.name, {
        name: rs.name,
        primary: poolFor(rs.name, rs.primary),
        replicas: rs.replicas.map((m) => poolFor(rs.name, m)),
        probeDatabase: topology.shards.find((s) => s.replicaSet === rs.name)?.database,
      });
    }
    return { topology, sets, shards: new Map(topology.shards.map((s) => [s.name, s])), map };
  };

  let state = build(opts.topology);
  metrics?.dbTopologyEpoch.set(state.topology.epoch);

  const applyTopology = (next: LiveTopology): boolean => {
    if (closed) return false;
    if (next.keyspace !== keyspace) throw new TopologyError([`keyspace ${next.keyspace}, want ${keyspace}`]);
    if (next.epoch <= state.topology.epoch) return false;
    const before = state;
    const after = build(next);
    state = after; // the one switch: every statement from here on routes by `after`
    const live = new Set<string>();
    for (const set of after.sets.values()) for (const p of [set.primary, ...set.replicas]) live.add(p.key);
    for (const [key, pool] of pools) {
      if (live.has(key)) continue;
      pools.delete(key);
      const closing = pool.close(drainTimeoutMs).finally(() => draining.delete(closing));
      draining.add(closing);
    }
    // A member that changed role starts its new role with no lag on record.
    for (const set of after.sets.values()) {
      const old = before.sets.get(set.name);
      for (const r of set.replicas) if (old?.replicas.includes(r) !== true) r.health = { ...r.health, lag: undefined };
    }
    metrics?.dbTopologyEpoch.set(next.epoch);
    log.info(
      { epoch: next.epoch, primaries: Object.fromEntries([...after.sets.values()].map((s) => [s.name, s.primary.member.name])) },
      "shard topology applied",
    );
    for (const wake of [...topologyListeners]) wake();
    void healthTick();
    return true;
  };

  /** True once the replica set's primary is no longer `oldKey` (now or within `waitMs`). */
  const primaryChanged = (replicaSet: string, oldKey: string, waitMs: number): Promise<boolean> => {
    const changed = (): boolean => {
      const current = state.sets.get(replicaSet)?.primary.key;
      return current !== undefined && current !== oldKey;
    };
    if (changed()) return Promise.resolve(true);
    if (closed || waitMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (result: boolean): void => {
        clearTimeout(timer);
        topologyListeners.delete(check);
        resolve(result);
      };
      const check = (): void => {
        if (closed) done(false);
        else if (changed()) done(true);
      };
      const timer = setTimeout(() => done(false), waitMs);
      topologyListeners.add(check);
    });
  };

  const resolveShard = (ref: ShardRef): ShardInfo => {
    const name = typeof ref === "string" ? ref : ref.name;
    const shard = state.shards.get(name);
    if (shard === undefined) {
      // A shard that left the topology (resharding): routing again by id finds its successor.
      throw toConnectError(Object.assign(new Error(`no shard ${name}`), { code: DB_UNAVAILABLE }), log, { shard: name });
    }
    return shard;
  };

  const setOf = (shard: ShardInfo): SetState => {
    const set = state.sets.get(shard.replicaSet);
    if (set === undefined) throw Object.assign(new Error(`no replica set ${shard.replicaSet}`), { code: DB_UNAVAILABLE });
    return set;
  };

  /** Runs `op` on the shard's primary, re-running it once on a conflict and once after a failover where that is safe. */
  const onPrimary = async <T>(shard: ShardInfo, op: Op<T>, background = false): Promise<T> => {
    if (!background) routed();
    let conflictRetried = false;
    let failoverRetried = false;
    for (;;) {
      const set = setOf(shard);
      const pool = set.primary;
      try {
        return await pool.withConnection((conn) => op(conn, pool, "primary"));
      } catch (err) {
        const raw = rawOf(err);
        if (!conflictRetried && isConflict(raw)) {
          conflictRetried = true;
          continue;
        }
        if (!failoverRetried && failoverWaitMs > 0 && !closed && (wasNeverSent(raw) || isReadOnlyRefusal(raw))) {
          failoverRetried = true;
          if (await primaryChanged(set.name, pool.key, failoverWaitMs)) {
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

  /** An eligible replica (round robin among them), else the primary. */
  const onReader = async <T>(shard: ShardInfo, op: Op<T>): Promise<T> => {
    routed();
    const set = setOf(shard);
    const now = performance.now();
    const eligible = set.replicas.filter((r) => r.health.reachable === true && replicaEligible(r.health.lag, now, maxLagMs));
    const replica = eligible.length === 0 ? undefined : eligible[roundRobin++ % eligible.length];
    if (replica !== undefined) {
      try {
        return await replica.withConnection((conn) => op(conn, replica, "replica"));
      } catch (err) {
        // A read is safe to repeat: a replica that broke under us hands over to the primary
        // and serves nothing until a probe finds it well again.
        if (!isConnectionLevel(err)) throw err;
        replica.health = { reachable: false, lag: undefined, problem: describe(err) };
      }
    }
    return onPrimary(shard, op);
  };

  const runStatement = async (conn: PoolConnection, pool: MemberPool, sql: string, params: readonly SqlValue[]): Promise<unknown> => {
    try {
      return await executeOn(conn, sql, params, queryTimeoutMs);
    } catch (err) {
      if ((err as { code?: unknown }).code === "PROTOCOL_SEQUENCE_TIMEOUT") {
        // The connection is mid-statement: drop it, and stop the statement on the server.
        const threadId = conn.threadId;
        conn.destroy();
        pool.killQuietly(threadId);
      }
      throw err;
    }
  };

  // Labelled children, looked up once: prom-client hashes the label object on every observe otherwise.
  const durations = new Map<string, { observe(seconds: number): void }>();
  const observeDuration = (shard: string, role: MemberRole, code: string, seconds: number): void => {
    if (metrics === undefined) return;
    const key = `${shard}\u0000${role}\u0000${code}`;
    let child = durations.get(key);
    if (child === undefined) {
      child = metrics.dbQueryDuration.labels({ shard, role, code });
      durations.set(key, child);
    }
    child.observe(seconds);
  };

  /**
   * Metrics and error mapping around one routed statement (or transaction),
   * and its span when the statement runs inside a traced call.
   */
  const observed = async <T>(shard: ShardInfo, role: () => MemberRole, sql: string, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const span = startDbSpan(shard.name, shard.database, sql);
    let code = "OK";
    let mappedCode: Code | undefined;
    try {
      return await run();
    } catch (err) {
      const mapped = toConnectError(err, log, { shard: shard.name });
      code = Code[mapped.code];
      mappedCode = mapped.code;
      throw mapped;
    } finally {
      observeDuration(shard.name, role(), code, (performance.now() - started) / 1000);
      if (span !== undefined) endDbSpan(span, role(), mappedCode);
    }
  };

  const client = (ref: ShardRef, mode: "primary" | "reader", background = false): ShardClient => {
    const shard = resolveShard(ref);
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
            async (conn, pool, role) => {
              served = role;
              return shape(await runStatement(conn, pool, qualify(sql, shard.database), params));
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

  const transaction = async <T>(ref: ShardRef, fn: (tx: Transaction) => Promise<T>): Promise<T> => {
    const shard = resolveShard(ref);
    const mapped = (err: unknown): ConnectError => toConnectError(err, log, { shard: shard.name });
    try {
      return await onPrimary(shard, async (conn, pool) => {
        try {
          await command((cb) => conn.beginTransaction(cb));
        } catch (err) {
          // Nothing of fn went out: as safe to re-run elsewhere as a failed connect.
          throw markNeverSent(err);
        }
        let open = true;
        const statement = <R>(sql: string, params: readonly SqlValue[], shape: (result: unknown) => R): Promise<R> => {
          if (!open) return Promise.reject(mapped(new Error("statement on a finished transaction")));
          return observed(shard, () => "primary", sql, async () => shape(await runStatement(conn, pool, qualify(sql, shard.database), params)));
        };
        const committed: Array<() => void> = [];
        const tx: Transaction = {
          keyspace,
          shard,
          query: <R extends object = Row>(sql: string, params: readonly SqlValue[] = []) => statement(sql, params, rowsOf<R>),
          execute: (sql: string, params: readonly SqlValue[] = []) => statement(sql, params, execResultOf),
          afterCommit: (f) => void committed.push(f),
        };
        try {
          const result = await fn(tx);
          open = false;
          await command((cb) => conn.commit(cb));
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
          await command((cb) => conn.rollback(cb)).catch(() => conn.destroy());
          throw err;
        }
      });
    } catch (err) {
      throw mapped(err);
    }
  };

  const byShard = <K>(items: Iterable<K>, shardOf: (item: K) => ShardRef): Map<string, { shard: ShardInfo; items: K[] }> => {
    const grouped = new Map<string, { shard: ShardInfo; items: K[] }>();
    for (const shard of state.map.shards) grouped.set(shard.name, { shard, items: [] });
    for (const item of items) {
      const shard = resolveShard(shardOf(item));
      grouped.get(shard.name)!.items.push(item);
    }
    for (const [name, group] of grouped) if (group.items.length === 0) grouped.delete(name);
    return grouped;
  };

  const scatter = async <K, R>(
    items: Iterable<K>,
    shardOf: (item: K) => ShardRef,
    run: (shard: ShardInfo, items: K[]) => Promise<readonly R[]>,
  ): Promise<R[]> => {
    const groups = [...byShard(items, shardOf).values()];
    const results = await Promise.all(groups.map((g) => run(g.shard, g.items)));
    return results.flat() as R[];
  };

  // --- health --------------------------------------------------------------

  const probe = (pool: MemberPool, role: MemberRole, database: string | undefined): Promise<void> =>
    pool.probeOnce(async () => {
      const wasReachable = pool.health.reachable;
      const sentAt = performance.now();
      try {
        if (role === "primary" || database === undefined) {
          await pool.probe("SELECT 1", probeTimeoutMs);
          pool.health = { reachable: true, lag: undefined, problem: undefined };
        } else {
          const lag = lagSampleFrom(await pool.probe<{ lag_us?: unknown }>(lagSql(database), probeTimeoutMs), sentAt);
          pool.health = { reachable: true, lag, problem: lag === undefined ? "no heartbeat row" : undefined };
        }
      } catch (err) {
        // A server that answers with an error (no heartbeat table yet) is reachable, just not measurable.
        pool.health = { reachable: isServerReply(err), lag: undefined, problem: describe(err) };
      }
      if (role === "replica") setLagGauge(pool, performance.now());
      if (pool.health.reachable !== wasReachable && wasReachable !== undefined) {
        const fields = { replica_set: pool.replicaSet, member: pool.member.name, role, problem: pool.health.problem };
        if (pool.health.reachable) log.info(fields, "database member reachable again");
        else log.warn(fields, "database member unreachable");
      }
    });

  const setLagGauge = (pool: MemberPool, now: number): void => {
    const lag = effectiveLagMs(pool.health.lag, now);
    const labels = { replica_set: pool.replicaSet, member: pool.member.name };
    if (lag === undefined) metrics?.dbReplicaLag.remove(labels);
    else metrics?.dbReplicaLag.set(labels, lag / 1000);
  };

  // Probe pace (probe-pace.ts): see healthIntervalMs. A statement after idleness probes at once.
  const pace = new ProbePace(healthIntervalMs, idleHealthIntervalMs, idleAfterMs, performance.now());
  const routed = (): void => {
    if (pace.routed(performance.now())) void healthTick();
  };

  const healthTick = async (): Promise<void> => {
    if (closed) return;
    pace.ticked(performance.now());
    const current = state;
    const probes: Promise<void>[] = [];
    const now = performance.now();
    for (const set of current.sets.values()) {
      probes.push(probe(set.primary, "primary", set.probeDatabase));
      metrics?.dbReplicaLag.remove({ replica_set: set.name, member: set.primary.member.name });
      for (const r of set.replicas) {
        probes.push(probe(r, "replica", set.probeDatabase));
        setLagGauge(r, now);
      }
    }
    await Promise.allSettled(probes);
  };

  const healthTimer = setInterval(() => {
    if (pace.due(performance.now())) void healthTick();
  }, healthIntervalMs);
  healthTimer.unref();
  void healthTick();

  // --- topology watch -------------------------------------------------------

  const applyQuietly = (next: LiveTopology, source: string): void => {
    try {
      if (!applyTopology(next)) log.debug({ epoch: next.epoch, current: state.topology.epoch }, "older topology ignored");
    } catch (err) {
      log.error({ err, source }, "ignored an invalid topology document");
    }
  };

  const followTopology = async (kv: KV): Promise<TopologyWatch> => {
    // The current document first, so the router has it when this resolves.
    try {
      const current = await readTopology(kv, keyspace);
      if (current !== undefined) applyQuietly(current.topology, "kv");
    } catch (err) {
      log.error({ err }, "ignored an unreadable topology document");
    }
    const watcher = await watchTopology(
      kv,
      keyspace,
      (next) => applyQuietly(next, "kv"),
      (err) => log.error({ err }, "ignored an unreadable topology document"),
    );
    const watch: TopologyWatch = {
      stop: () => {
        watches.delete(watch);
        watcher.stop();
      },
    };
    watches.add(watch);
    return watch;
  };

  const router: ShardRouter = {
    keyspace,
    topology: () => state.topology,
    shards: () => state.map.shards,
    shard: (name) => resolveShard(name),
    shardForUser: (id) => state.map.shardForUser(id),
    shardForHandle: (handle) => state.map.shardForHandle(handle),
    primary: (ref, opts) => client(ref, "primary", opts?.background),
    reader: (ref) => client(ref, "reader"),
    primaryForUser: (id) => client(state.map.shardForUser(id), "primary"),
    readerForUser: (id) => client(state.map.shardForUser(id), "reader"),
    primaryForHandle: (handle) => client(state.map.shardForHandle(handle), "primary"),
    readerForHandle: (handle) => client(state.map.shardForHandle(handle), "reader"),
    transaction,
    byShard,
    scatter,
    applyTopology,
    followTopology,
    status: () => statusOf(state, maxLagMs),
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(healthTimer);
      for (const w of [...watches]) w.stop();
      for (const wake of [...topologyListeners]) wake();
      const all = [...pools.values()];
      pools.clear();
      await Promise.allSettled([...all.map((p) => p.close(drainTimeoutMs)), ...draining]);
    },
  };

  if (opts.topologyKv !== undefined) {
    try {
      await followTopology(opts.topologyKv);
    } catch (err) {
      await router.close();
      throw err;
    }
  }
  return router;
}

function topologyProblems(t: LiveTopology, keyspace: string): string[] {
  const problems: string[] = [];
  if (t.keyspace !== keyspace) problems.push(`keyspace ${t.keyspace}, want ${keyspace}`);
  const sets = new Set<string>();
  for (const rs of t.replicaSets) {
    if (sets.has(rs.name)) problems.push(`duplicate replica set ${rs.name}`);
    sets.add(rs.name);
    for (const m of [rs.primary, ...(rs.replicas ?? [])]) {
      if (typeof m?.host !== "string" || !Number.isInteger(m.port) || typeof m.name !== "string") {
        problems.push(`replica set ${rs.name}: member without name, host and port`);
      }
    }
  }
  for (const s of t.shards) {
    if (!sets.has(s.replicaSet)) problems.push(`shard ${s.name}: no replica set ${s.replicaSet}`);
    // Spliced into SQL text (qualified names, heartbeat probe): plain identifiers only.
    if (!PLAIN_IDENT.test(s.database)) problems.push(`shard ${s.name}: database name must be a plain identifier`);
  }
  return problems;
}

function statusOf(state: State, maxLagMs: number): RouterStatus {
  const now = performance.now();
  const member = (p: MemberPool, role: MemberRole): MemberStatus => ({
    name: p.member.name,
    host: p.member.host,
    port: p.member.port,
    role,
    reachable: p.health.reachable,
    lagMs: role === "replica" ? effectiveLagMs(p.health.lag, now) : undefined,
    eligible: role === "replica" && p.health.reachable === true && replicaEligible(p.health.lag, now, maxLagMs),
    inUse: p.limiter.active,
    waiting: p.limiter.waiting,
    problem: p.health.problem,
  });
  return {
    keyspace: state.topology.keyspace,
    epoch: state.topology.epoch,
    replicaSets: [...state.sets.values()].map((s) => ({
      name: s.name,
      members: [member(s.primary, "primary"), ...s.replicas.map((r) => member(r, "replica"))],
    })),
  };
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

/** The driver error behind a ConnectError raised inside a transaction. */
function rawOf(err: unknown): unknown {
  return err instanceof ConnectError ? err.cause : err;
}

function errnoOf(err: unknown): unknown {
  return (err as { errno?: unknown } | null | undefined)?.errno;
}

function isConflict(err: unknown): boolean {
  const errno = errnoOf(err);
  return errno === ER_LOCK_DEADLOCK || errno === ER_LOCK_WAIT_TIMEOUT;
}

function isReadOnlyRefusal(err: unknown): boolean {
  return READ_ONLY_ERRNOS.has(errnoOf(err) as number);
}

function isConnectionLevel(err: unknown): boolean {
  const raw = rawOf(err);
  if (wasNeverSent(raw)) return !(raw instanceof LimiterError);
  const e = raw as { code?: unknown; fatal?: unknown } | null;
  return (typeof e?.code === "string" && CONNECTION_CODES.has(e.code)) || (e?.fatal === true && e.code !== "PROTOCOL_SEQUENCE_TIMEOUT");
}

/** A short, safe reason for logs and status: the driver's code, never its message (it may echo SQL). */
function describe(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown } | null;
  if (typeof e?.code === "string") return e.code;
  if (typeof e?.errno === "number") return `errno ${e.errno}`;
  return err instanceof Error ? err.name : "unknown";
}
