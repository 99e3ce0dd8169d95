// What the router knows about a member's health, and the rule that decides
// whether a replica may serve a read.
//
// A replica's lag is known two ways, and the router keeps the better of the
// two each probe round (decision 20):
// - GTID: the replica has applied the primary's last GTID (gtid.ts,
//   gtidPosCurrent), so it held everything the primary had when either was
//   asked: lag 0 as of the earlier of the two probes. This is what makes an
//   idle system need no heartbeats: nothing is written, nothing lags.
// - Heartbeat: the row the topology manager rewrites on the primary (migration
//   0002) while some router asks for it: `UTC_TIMESTAMP(6) - ts` on the
//   replica. However old the last heartbeat, its age is an upper bound.
// Between measurements the router assumes the worst, that nothing was applied
// since: effective lag = measured lag + age of the measurement. A replica whose
// SQL thread stalls, whose heartbeat stops, or whose probe hangs therefore
// crosses the bound on its own, and a read never sees data older than the bound.
import { gtidPosCurrent, parseGtidList, type Gtid } from "./gtid.js";

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

/** The primary's probe: its binlog position (the statement a plain ping would have cost anyway). */
export const PRIMARY_PROBE_SQL = "SELECT @@global.gtid_binlog_pos AS pos";

/**
 * A replica's probe, one statement: what it has applied from its primary and
 * the age of its heartbeat row in a shard database (validated as a plain
 * identifier by the router). No row gives a NULL age.
 */
export function lagSql(database: string): string {
  return (
    "SELECT @@global.gtid_slave_pos AS pos, " +
    `(SELECT TIMESTAMPDIFF(MICROSECOND, ts, UTC_TIMESTAMP(6)) FROM ${database}.heartbeat WHERE id = 1) AS lag_us`
  );
}

/** Turns the lag query's answer into a sample; no row (or NULL) means unknown. */
export function lagSampleFrom(rows: readonly { lag_us?: unknown }[], sentAt: number): LagSample | undefined {
  const raw = rows[0]?.lag_us;
  if (raw === null || raw === undefined) return undefined;
  const us = Number(raw);
  if (!Number.isFinite(us)) return undefined;
  return { lagMs: Math.max(0, us / 1000), at: sentAt };
}

/** A GTID position as a probe read it; undefined when there was no answer or it cannot be parsed. */
export function gtidPosFrom(rows: readonly { pos?: unknown }[]): Gtid[] | undefined {
  const raw = rows[0]?.pos;
  if (typeof raw !== "string") return undefined;
  try {
    return parseGtidList(raw);
  } catch {
    return undefined;
  }
}

/** One probe's reading of a position, with when the probe was sent (monotonic). */
export interface PosReading {
  readonly pos: readonly Gtid[];
  readonly at: number;
}

/**
 * Lag 0 when the replica had applied what the primary had committed, as of the
 * earlier of the two probes: whichever answered first, the replica then held
 * everything the primary held at that moment (positions only grow). Undefined
 * when it had not, or either position is unknown.
 */
export function gtidSample(replica: PosReading | undefined, primary: PosReading | undefined): LagSample | undefined {
  if (replica === undefined || primary === undefined) return undefined;
  if (!gtidPosCurrent(replica.pos, primary.pos)) return undefined;
  return { lagMs: 0, at: Math.min(replica.at, primary.at) };
}

/** Of two samples, the one giving the lower lag now (both are upper bounds). */
export function betterSample(a: LagSample | undefined, b: LagSample | undefined, now: number): LagSample | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return effectiveLagMs(a, now)! <= effectiveLagMs(b, now)! ? a : b;
}
