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
//
// This file is the client API and puts the parts together:
//   members.ts        pools per member, the topology in force, switching it, failover waits
//   health-probes.ts  primary and replica positions and heartbeat ages, at a pace set by traffic
//   heartbeat-demand.ts  asking the topology manager for heartbeats while lag must be measured
//   execution.ts      statements and transactions: primary or replica, retries, metrics
//   ../db/mysql-errors.ts  what a driver error means (retry, failover, connection lost, Connect code)
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { DB_DEFAULTS } from "./config.js";
import { createExecution, type ShardClient, type Transaction, type TransactionOptions } from "./execution.js";
import { startHealthProbes } from "./health-probes.js";
import { requestHeartbeats } from "./heartbeat-demand.js";
import { createMembers, type RouterStatus, type ShardRef } from "./members.js";
import { createQualifier } from "./qualify.js";
import { readTopology, watchTopology, type LiveTopology } from "./topology.js";
import type { MysqlCredentials, ShardInfo } from "./types.js";

export type { ExecResult, Queryable, Row, ShardClient, SqlValue, Transaction, TransactionOptions } from "./execution.js";
export { executeOrDefer } from "./execution.js";
export { TopologyError, type MemberRole, type MemberStatus, type RouterStatus, type ShardRef } from "./members.js";

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
  /** A write's commit (COMMIT, or a statement outside a transaction on the primary): default 5000 ms, then Unavailable, outcome unknown (semi-sync waits for a replica, decision 24). */
  readonly commitTimeoutMs?: number;
  /** How long a write that never reached its primary waits for a new primary (default 10 000 ms; 0: never). */
  readonly failoverWaitMs?: number;
  /** Default 2000 ms. */
  readonly connectTimeoutMs?: number;
  /**
   * Health probes (primary position, replica position and lag): default every 250 ms while
   * statements flow, each bounded by probeTimeoutMs (default 1000). Once no
   * statement has been routed for a few intervals (2 s at least), every
   * idleHealthIntervalMs (default 10000) instead, and the first statement
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
  /**
   * The NATS connection topologyKv was opened on: through it the router asks
   * the topology manager for heartbeats while it needs them (decision 20).
   * Without it, a replica serves reads while its GTID position shows it
   * current, or while heartbeats some other router asked for are fresh.
   */
  readonly topologyNats?: NatsConnection;
  readonly log?: Logger;
  readonly metrics?: Metrics;
}

export interface TopologyWatch {
  stop(): void;
}

export interface ShardRouter {
  readonly keyspace: string;
  /** The topology in force. */
  topology(): LiveTopology;
  /**
   * The shards in keyrange order, one per database: what a walker visits.
   * While a split's reads are switched and its writes are not, its first
   * target stands for the source's database (resharding.ts); otherwise the
   * ring itself.
   */
  shards(): readonly ShardInfo[];
  /** The ring's shard whose keyrange holds `ksid` (a lookup table's own key, e.g. binaryMd5Vindex of an email). */
  shardForKeyspaceId(ksid: Uint8Array): ShardInfo;
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
  transaction<T>(shard: ShardRef, fn: (tx: Transaction) => Promise<T>, opts?: TransactionOptions): Promise<T>;
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
  /**
   * Applies the KV's current document, then follows it until stop() or
   * close(); with `nc`, also asks the topology manager for heartbeats over it
   * while replica lag must be measured.
   */
  followTopology(kv: KV, nc?: NatsConnection): Promise<TopologyWatch>;
  status(): RouterStatus;
  /** Stops probes and watches, lets in-flight statements finish (bounded), closes every pool. */
  close(): Promise<void>;
}

export async function createShardRouter(opts: ShardRouterOptions): Promise<ShardRouter> {
  const log = opts.log ?? pino({ level: "silent" });
  const metrics = opts.metrics;
  const keyspace = opts.topology.keyspace;
  const maxLagMs = opts.maxReplicaLagMs ?? DB_DEFAULTS.maxReplicaLagMs;
  const poolSize = opts.poolSize ?? DB_DEFAULTS.poolSize;
  if (!Number.isInteger(poolSize) || poolSize < 1 || poolSize > 256) throw new RangeError("poolSize must be an integer in [1, 256]");
  const healthIntervalMs = opts.healthIntervalMs ?? 250;
  // Where asks for heartbeats go: one per followed topology connection.
  const demandSinks = new Set<NatsConnection>();

  const members = createMembers({
    topology: opts.topology,
    credentials: opts.credentials,
    poolSize,
    poolQueueLimit: opts.poolQueueLimit ?? DB_DEFAULTS.poolQueueLimit,
    acquireTimeoutMs: opts.acquireTimeoutMs ?? DB_DEFAULTS.acquireTimeoutMs,
    connectTimeoutMs: opts.connectTimeoutMs ?? 2000,
    drainTimeoutMs: opts.drainTimeoutMs ?? 10_000,
    log,
    metrics,
  });
  const health = startHealthProbes({
    members,
    healthIntervalMs,
    idleHealthIntervalMs: Math.max(healthIntervalMs, opts.idleHealthIntervalMs ?? 10_000),
    idleAfterMs: Math.max(2000, 4 * healthIntervalMs),
    probeTimeoutMs: opts.probeTimeoutMs ?? 1000,
    requestHeartbeats: () => {
      for (const nc of demandSinks) requestHeartbeats(nc, keyspace);
    },
    log,
    metrics,
  });
  const { client, transaction } = createExecution({
    members,
    routed: health.routed,
    qualify: createQualifier(keyspace),
    maxLagMs,
    queryTimeoutMs: opts.queryTimeoutMs ?? DB_DEFAULTS.queryTimeoutMs,
    commitTimeoutMs: opts.commitTimeoutMs ?? DB_DEFAULTS.commitTimeoutMs,
    failoverWaitMs: opts.failoverWaitMs ?? DB_DEFAULTS.failoverWaitMs,
    log,
    metrics,
  });
  const watches = new Set<TopologyWatch>();

  const applyTopology = (next: LiveTopology): boolean => {
    if (!members.apply(next)) return false;
    void health.tick();
    return true;
  };

  const applyQuietly = (next: LiveTopology, source: string): void => {
    try {
      if (!applyTopology(next)) log.debug({ epoch: next.epoch, current: members.state().topology.epoch }, "older topology ignored");
    } catch (err) {
      log.error({ err, source }, "ignored an invalid topology document");
    }
  };

  const followTopology = async (kv: KV, nc?: NatsConnection): Promise<TopologyWatch> => {
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
    if (nc !== undefined) demandSinks.add(nc);
    const watch: TopologyWatch = {
      stop: () => {
        watches.delete(watch);
        if (nc !== undefined) demandSinks.delete(nc);
        watcher.stop();
      },
    };
    watches.add(watch);
    return watch;
  };

  const byShard = <K>(items: Iterable<K>, shardOf: (item: K) => ShardRef): Map<string, { shard: ShardInfo; items: K[] }> => {
    const grouped = new Map<string, { shard: ShardInfo; items: K[] }>();
    for (const shard of members.state().map.shards) grouped.set(shard.name, { shard, items: [] });
    for (const item of items) {
      const shard = members.resolveShard(shardOf(item));
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

  const router: ShardRouter = {
    keyspace,
    topology: () => members.state().topology,
    shards: () => members.state().walk,
    shardForKeyspaceId: (ksid) => members.state().map.shardFor(ksid),
    shard: (name) => members.resolveShard(name),
    shardForUser: (id) => members.state().map.shardForUser(id),
    shardForHandle: (handle) => members.state().map.shardForHandle(handle),
    primary: (ref, opts) => client(ref, "primary", opts?.background),
    reader: (ref) => client(ref, "reader"),
    primaryForUser: (id) => client(members.state().map.shardForUser(id), "primary"),
    readerForUser: (id) => client(members.state().map.shardForUser(id), "reader"),
    primaryForHandle: (handle) => client(members.state().map.shardForHandle(handle), "primary"),
    readerForHandle: (handle) => client(members.state().map.shardForHandle(handle), "reader"),
    transaction,
    byShard,
    scatter,
    applyTopology,
    followTopology,
    status: () => members.status(maxLagMs),
    close: async () => {
      if (members.closed()) return;
      health.stop();
      for (const w of [...watches]) w.stop();
      await members.close();
    },
  };

  if (opts.topologyKv !== undefined) {
    try {
      await followTopology(opts.topologyKv, opts.topologyNats);
    } catch (err) {
      await router.close();
      throw err;
    }
  }
  return router;
}
