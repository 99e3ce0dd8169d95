// The router's health probes: a ping of each primary and a lag read on each
// replica, on the probe connection of each member's pool (pools.ts), at the
// pace probe-pace.ts sets. Each probe replaces the member's health record,
// which reader() consults (health.ts has the eligibility rule), and the lag
// gauge follows it.
import { describeMysqlError, isServerReply } from "../db/mysql-errors.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import { effectiveLagMs, lagSampleFrom, lagSql } from "./health.js";
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
        pool.health = { reachable: isServerReply(err), lag: undefined, problem: describeMysqlError(err) };
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
  const pace = new ProbePace(opts.healthIntervalMs, opts.idleHealthIntervalMs, opts.idleAfterMs, performance.now());
  const routed = (): void => {
    if (pace.routed(performance.now())) void tick();
  };

  const tick = async (): Promise<void> => {
    if (members.closed()) return;
    pace.ticked(performance.now());
    const current = members.state();
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

  const timer = setInterval(() => {
    if (pace.due(performance.now())) void tick();
  }, opts.healthIntervalMs);
  timer.unref();
  void tick();

  return { routed, tick, stop: () => clearInterval(timer) };
}
