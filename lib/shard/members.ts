// The router's members: one pool per MySQL member of each replica set, the
// topology in force, and switching it. A new topology gets pools for new
// members, drains the pools of removed ones, and replaces the whole routing
// state in one assignment, so a statement routes by the old topology or the
// new one, never a mix. Writes that lost their primary wait here
// (primaryChanged) for the failover to be published.
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { toConnectError, DB_UNAVAILABLE } from "../errors.js";
import { effectiveLagMs, replicaEligible } from "./health.js";
import { ShardMap } from "./keyrange.js";
import { MemberPool, memberKey } from "./pools.js";
import { distinctDatabases, routingLayout } from "./resharding.js";
import type { LiveTopology } from "./topology.js";
import type { MemberAddress, MysqlCredentials, ShardInfo } from "./types.js";

/** A shard by name (`-40`) or as described by the topology. */
export type ShardRef = ShardInfo | string;

export type MemberRole = "primary" | "replica";

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

export class TopologyError extends Error {
  override readonly name = "TopologyError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid topology: ${problems.join("; ")}`);
  }
}

export interface SetState {
  readonly name: string;
  readonly primary: MemberPool;
  readonly replicas: readonly MemberPool[];
  /** A shard database of this set: the heartbeat the replicas' lag is read from. */
  readonly probeDatabase: string | undefined;
}

/** Everything a statement routes by; replaced as a whole on a topology change. */
export interface State {
  readonly topology: LiveTopology;
  readonly sets: ReadonlyMap<string, SetState>;
  readonly shards: ReadonlyMap<string, ShardInfo>;
  /** The ring: serving shards (a split's targets instead of its source once its reads switched). */
  readonly map: ShardMap<ShardInfo>;
  /** Where primary() and reader() of a shard name run (resharding.ts): the shard itself, or a split's source. */
  readonly writeShards: ReadonlyMap<string, ShardInfo>;
  /** The ring in keyrange order, one shard per database (what shards() lists to walkers). */
  readonly walk: readonly ShardInfo[];
  /** Shard names whose writes wait for the next document (empty unless a write switch runs). */
  readonly held: ReadonlySet<string>;
  /** Resolves when this state is replaced (or the router closes). */
  readonly replaced: Promise<void>;
}

export interface MembersOptions {
  readonly topology: LiveTopology;
  readonly credentials: MysqlCredentials;
  readonly poolSize: number;
  readonly poolQueueLimit: number;
  readonly acquireTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly log: Logger;
  readonly metrics: Metrics | undefined;
}

export interface Members {
  readonly keyspace: string;
  /** The routing state in force. */
  state(): State;
  /** True once close() was called: nothing is switched or waited for any more. */
  closed(): boolean;
  /** Switches to `next` unless its epoch is not newer (returns false). Throws TopologyError on an invalid document. */
  apply(next: LiveTopology): boolean;
  /** True once the replica set's primary is no longer `oldKey` (now or within `waitMs`). */
  primaryChanged(replicaSet: string, oldKey: string, waitMs: number): Promise<boolean>;
  /** The shard in the topology in force; Unavailable (naming it) when it is not there. */
  resolveShard(ref: ShardRef): ShardInfo;
  /** Where primary() writes for the shard: itself, or the source of a split whose writes have not switched. */
  resolveWriteShard(ref: ShardRef): ShardInfo;
  /** True once a topology newer than `epoch` is in force (now or within `waitMs`). */
  newerTopology(epoch: number, waitMs: number): Promise<boolean>;
  setOf(shard: ShardInfo): SetState;
  status(maxLagMs: number): RouterStatus;
  /** Wakes every wait, lets in-flight statements finish (bounded), closes every pool. */
  close(): Promise<void>;
}

const PLAIN_IDENT = /^[A-Za-z0-9_]{1,64}$/;

export function createMembers(opts: MembersOptions): Members {
  const { log, metrics } = opts;
  const keyspace = opts.topology.keyspace;
  const pools = new Map<string, MemberPool>();
  const draining = new Set<Promise<void>>();
  // Woken on every topology change; each checks its own condition.
  const topologyListeners = new Set<() => void>();
  let closed = false;

  const poolFor = (replicaSet: string, member: MemberAddress): MemberPool => {
    const key = memberKey(member);
    let pool = pools.get(key);
    if (pool === undefined) {
      pool = new MemberPool({
        replicaSet,
        member,
        credentials: opts.credentials,
        poolSize: opts.poolSize,
        queueLimit: opts.poolQueueLimit,
        acquireTimeoutMs: opts.acquireTimeoutMs,
        connectTimeoutMs: opts.connectTimeoutMs,
        metrics,
      });
      pools.set(key, pool);
    }
    return pool;
  };

  let replace: () => void = () => {};
  const build = (topology: LiveTopology, before?: State): State => {
    const problems = topologyProblems(topology, keyspace);
    const layout = routingLayout(topology);
    problems.push(...layout.problems);
    let map: ShardMap<ShardInfo> | undefined;
    try {
      map = new ShardMap(layout.ring);
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
        probeDatabase: probeDatabaseOf(rs.name, topology, before?.sets.get(rs.name)?.probeDatabase),
      });
    }
    const replaced = new Promise<void>((resolve) => (replace = resolve));
    return { topology, sets, shards: new Map(topology.shards.map((s) => [s.name, s])), map, writeShards: layout.writeShards, walk: distinctDatabases(map.shards, layout.writeShards), held: layout.held, replaced };
  };

  let state = build(opts.topology);
  metrics?.dbTopologyEpoch.set(state.topology.epoch);

  const apply = (next: LiveTopology): boolean => {
    if (closed) return false;
    if (next.keyspace !== keyspace) throw new TopologyError([`keyspace ${next.keyspace}, want ${keyspace}`]);
    if (next.epoch <= state.topology.epoch) return false;
    const before = state;
    const release = replace;
    const after = build(next, before);
    state = after; // the one switch: every statement from here on routes by `after`
    release(); // writes held by `before` resolve again against `after`
    const live = new Set<string>();
    for (const set of after.sets.values()) for (const p of [set.primary, ...set.replicas]) live.add(p.key);
    for (const [key, pool] of pools) {
      if (live.has(key)) continue;
      pools.delete(key);
      const closing = pool.close(opts.drainTimeoutMs).finally(() => draining.delete(closing));
      draining.add(closing);
    }
    // A member that changed role starts its new role with no lag on record.
    for (const set of after.sets.values()) {
      const old = before.sets.get(set.name);
      // Writes waiting for a connection to the old primary go to the new one at once; those in flight there fail now (pools.ts).
      if (old !== undefined && old.primary.key !== set.primary.key) old.primary.demoted(`${set.name}: the primary is now ${set.primary.member.name}`);
      for (const r of set.replicas) if (old?.replicas.includes(r) !== true) r.health = { ...r.health, lag: undefined };
    }
    metrics?.dbTopologyEpoch.set(next.epoch);
    log.info(
      { epoch: next.epoch, primaries: Object.fromEntries([...after.sets.values()].map((s) => [s.name, s.primary.member.name])) },
      "shard topology applied",
    );
    for (const wake of [...topologyListeners]) wake();
    return true;
  };

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

  const resolveWriteShard = (ref: ShardRef): ShardInfo => {
    const shard = state.writeShards.get(typeof ref === "string" ? ref : ref.name);
    return shard ?? resolveShard(ref);
  };

  const newerTopology = (epoch: number, waitMs: number): Promise<boolean> => {
    if (state.topology.epoch > epoch) return Promise.resolve(true);
    if (closed || waitMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!closed && state.topology.epoch <= epoch) return;
        clearTimeout(timer);
        topologyListeners.delete(check);
        resolve(!closed);
      };
      const timer = setTimeout(() => {
        topologyListeners.delete(check);
        resolve(false);
      }, waitMs);
      topologyListeners.add(check);
    });
  };

  const setOf = (shard: ShardInfo): SetState => {
    const set = state.sets.get(shard.replicaSet);
    if (set === undefined) throw Object.assign(new Error(`no replica set ${shard.replicaSet}`), { code: DB_UNAVAILABLE });
    return set;
  };

  return {
    keyspace,
    state: () => state,
    closed: () => closed,
    apply,
    primaryChanged,
    resolveShard,
    resolveWriteShard,
    newerTopology,
    setOf,
    status: (maxLagMs) => statusOf(state, maxLagMs),
    close: async () => {
      closed = true;
      replace();
      for (const wake of [...topologyListeners]) wake();
      const all = [...pools.values()];
      pools.clear();
      await Promise.allSettled([...all.map((p) => p.close(opts.drainTimeoutMs)), ...draining]);
    },
  };
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

/**
 * The shard database whose heartbeat measures a replica set's lag: the one
 * used so far while it is still a serving shard of the set, else the set's
 * first serving shard. The topology manager writes heartbeats into the live
 * document's serving shards (services/topology/document.ts), so after a split's
 * write switch both move from the source to the targets.
 */
function probeDatabaseOf(replicaSet: string, topology: LiveTopology, before: string | undefined): string | undefined {
  const serving = topology.shards.filter((s) => s.replicaSet === replicaSet && s.serving !== false);
  if (before !== undefined && serving.some((s) => s.database === before)) return before;
  return serving[0]?.database;
}
