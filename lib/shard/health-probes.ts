// The router's health probes: each primary's binlog position and each
// replica's applied position and heartbeat age, on the probe connection of each
// member's pool (pools.ts), at the pace probe-pace.ts sets. Each probe replaces
// the member's health record, which reader() consults (health.ts has the
// eligibility rule and how the two lag measurements combine), and the lag gauge
// follows it. A round that finds a replica it cannot show current from GTID
// positions asks the topology manager for heartbeats (heartbeat-demand.ts).
import { describeMysqlError, isServerReply } from "../db/mysql-errors.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { betterSample, effectiveLagMs, gtidPosFrom, gtidSample, lagSampleFrom, lagSql, PRIMARY_PROBE_SQL, type PosReading } from "./health.js";
import { DemandPace } from "./heartbeat-demand.js";
import type { MemberRole, Members } from "./members.js";
import type { MemberPool } from "./pools.js";
import { ProbePace } from "./probe-pace.js";

export interface HealthProbeOptions {
  readonly members: Members;
  /** The busy pace (ShardRouterOptions.healthIntervalMs says how the three below combine). */
  readonly healthIntervalMs: number;
  readonly idleHealthIntervalMs: number;
  readonly idleAfterMs: number;
  readonly probeTimeoutMs: number;
  /** Asks for heartbeats (at most once a DEMAND_EVERY_MS); the router forwards it to whoever follows the topology. */
  readonly requestHeartbeats: () => void;
  readonly log: Logger;
  readonly metrics: Metrics | undefined;
}

export interface HealthProbes {
  /** A statement of traffic was routed (not a background one). */
  routed(): void;
  /** Probes every member of the topology in force now. */
  tick(): Promise<void>;
  stop(): void;
}

/** Starts probing at once (a first round now, then on the timer). */
export function startHealthProbes(opts: HealthProbeOptions): HealthProbes {
  const { members, probeTimeoutMs, log, metrics } = opts;

  const noteReachability = (pool: MemberPool, role: MemberRole, wasReachable: boolean | undefined): void => {
    if (pool.health.reachable === wasReachable || wasReachable === undefined) return;
    const fields = { replica_set: pool.replicaSet, member: pool.member.name, role, problem: pool.health.problem };
    if (pool.health.reachable) log.info(fields, "database member reachable again");
    else log.warn(fields, "database member unreachable");
  };

  /** The primary's binlog position, or undefined when it did not answer (or was still busy with the last probe). */
  const probePrimary = (pool: MemberPool): Promise<PosReading | undefined> =>
    pool.probeOnce(async () => {
      const wasReachable = pool.health.reachable;
      const sentAt = performance.now();
      let reading: PosReading | undefined;
      try {
        const pos = gtidPosFrom(await pool.probe<{ pos?: unknown }>(PRIMARY_PROBE_SQL, probeTimeoutMs));
        reading = pos === undefined ? undefined : { pos, at: sentAt };
        pool.health = { reachable: true, lag: undefined, problem: undefined };
      } catch (err) {
        pool.health = { reachable: isServerReply(err), lag: undefined, problem: describeMysqlError(err) };
      }
      noteReachability(pool, "primary", wasReachable);
      return reading;
    });

  /**
   * The replica's heartbeat age at once, then, once the primary's position is
   * in, lag 0 if it had applied it. True when the replica answered and could
   * not be shown current that way: heartbeats are what would measure it.
   */
  const probeReplica = async (pool: MemberPool, database: string | undefined, primary: Promise<PosReading | undefined>): Promise<boolean> => {
    const needs = await pool.probeOnce(async () => {
      const wasReachable = pool.health.reachable;
      const sentAt = performance.now();
      let own: PosReading | undefined;
      let answered = false;
      try {
        // A set with no shard database has no heartbeat row to read: its position alone.
        const sql = database === undefined ? "SELECT @@global.gtid_slave_pos AS pos" : lagSql(database);
        const rows = await pool.probe<{ pos?: unknown; lag_us?: unknown }>(sql, probeTimeoutMs);
        const beat = lagSampleFrom(rows, sentAt);
        const pos = gtidPosFrom(rows);
        own = pos === undefined ? undefined : { pos, at: sentAt };
        pool.health = { reachable: true, lag: beat, problem: beat === undefined ? "no heartbeat row" : undefined };
        answered = true;
      } catch (err) {
        // A server that answers with an error (no heartbeat table yet) is reachable, just not measurable.
        pool.health = { reachable: isServerReply(err), lag: undefined, problem: describeMysqlError(err) };
      }
      setLagGauge(pool, performance.now());
      noteReachability(pool, "replica", wasReachable);
      if (!answered) return false;
      const recorded = pool.health;
      const current = gtidSample(own, await primary);
      if (current === undefined) return true;
      // Unless something replaced the record meanwhile (a read found the replica broken).
      if (pool.health === recorded) {
        pool.health = { reachable: true, lag: betterSample(current, recorded.lag, performance.now()), problem: undefined };
        setLagGauge(pool, performance.now());
      }
      return false;
    });
    return needs === true;
  };

  const setLagGauge = (pool: MemberPool, now: number): void => {
    const lag = effectiveLagMs(pool.health.lag, now);
    const labels = { replica_set: pool.replicaSet, member: pool.member.name };
    if (lag === undefined) metrics?.dbReplicaLag.remove(labels);
    else metrics?.dbReplicaLag.set(labels, lag / 1000);
  };

  // Probe pace (probe-pace.ts): see healthIntervalMs. A statement after idleness probes at once.
  const pace = new ProbePace(opts.healthIntervalMs, opts.idleHealthIntervalMs, opts.idleAfterMs, performance.now());
  const demand = new DemandPace();
  const routed = (): void => {
    if (pace.routed(performance.now())) void tick();
  };

  const tick = async (): Promise<void> => {
    if (members.closed()) return;
    pace.ticked(performance.now());
    const current = members.state();
    const probes: Promise<unknown>[] = [];
    const now = performance.now();
    const asked = (needs: boolean): void => {
      if (needs && demand.needed(performance.now())) opts.requestHeartbeats();
    };
    for (const set of current.sets.values()) {
      const primary = probePrimary(set.primary);
      probes.push(primary);
      metrics?.dbReplicaLag.remove({ replica_set: set.name, member: set.primary.member.name });
      for (const r of set.replicas) {
        probes.push(probeReplica(r, set.probeDatabase, primary).then(asked));
        setLagGauge(r, now);
      }
    }
    await Promise.allSettled(probes);
  };

  const timer = setInterval(() => {
    if (pace.due(performance.now())) void tick();
  }, opts.healthIntervalMs);
  timer.unref();
  void tick();

  return { routed, tick, stop: () => clearInterval(timer) };
}
