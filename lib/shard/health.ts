// What the router knows about a member's health, and the rule that decides
// whether a replica may serve a read.
//
// A replica's lag is measured from the heartbeat row the topology manager
// rewrites on the primary (migration 0002): `UTC_TIMESTAMP(6) - ts` on the
// replica. Between measurements the router assumes the worst, that nothing was
// applied since: effective lag = measured lag + age of the measurement. A
// replica whose SQL thread stalls, whose heartbeat stops, or whose probe hangs
// therefore crosses the bound on its own, and a read never sees data older than
// the bound.

export interface LagSample {
  /** Measured lag; clamped at 0 (clocks of two hosts may disagree a little). */
  readonly lagMs: number;
  /** Monotonic time (performance.now()) when the probe was sent: the conservative end. */
  readonly at: number;
}

/** Lag now, assuming nothing replicated since the sample; undefined when never measured. */
export function effectiveLagMs(sample: LagSample | undefined, now: number): number | undefined {
  if (sample === undefined) return undefined;
  return Math.max(0, sample.lagMs) + Math.max(0, now - sample.at);
}

export function replicaEligible(sample: LagSample | undefined, now: number, maxLagMs: number): boolean {
  const lag = effectiveLagMs(sample, now);
  return lag !== undefined && lag <= maxLagMs;
}

/** Per member; replaced wholesale by each probe so readers see one consistent record. */
export interface MemberHealth {
  /** undefined until the first probe answers or fails. */
  readonly reachable: boolean | undefined;
  /** Replicas only: the last good lag measurement. Cleared when the heartbeat cannot be read. */
  readonly lag: LagSample | undefined;
  /** Short reason for the last failed probe (driver code), for status pages and logs. */
  readonly problem: string | undefined;
}

export const UNKNOWN_HEALTH: MemberHealth = { reachable: undefined, lag: undefined, problem: undefined };

/** The lag query's SQL for a shard database (validated as a plain identifier by the router). */
export function lagSql(database: string): string {
  return `SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) AS lag_us FROM ${database}.heartbeat WHERE id = 1`;
}

/** Turns the lag query's answer into a sample; no row (or NULL) means unknown. */
export function lagSampleFrom(rows: readonly { lag_us?: unknown }[], sentAt: number): LagSample | undefined {
  const raw = rows[0]?.lag_us;
  if (raw === null || raw === undefined) return undefined;
  const us = Number(raw);
  if (!Number.isFinite(us)) return undefined;
  return { lagMs: Math.max(0, us / 1000), at: sentAt };
}
