// The targets' binlog from the write switch until abort or complete (decision
// 23): switching writes back replays it from the GTID position the write
// switch saved (state.reverse), so it must still be on the targets' current
// primary when abort runs.
//
// What could remove it: binlog expiry (`binlog_expire_logs_seconds`, which
// `expire_logs_days` sets too; 0, never, is MariaDB's default and the local
// cluster's), a `PURGE BINARY LOGS` by hand, and a member whose binlog was
// started again (`RESET MASTER`: the topology manager's rebuild of a member
// refused for errant transactions does that) becoming primary. Chirp runs no
// PURGE. The position is a GTID position: with log_slave_updates and
// gtid_strict_mode (the local cluster, docker/mariadb/replication.cnf) every
// member logs the same GTIDs, so it is valid on whichever member is primary,
// if that member's binlog reaches back to it.
//
// So: the write switch turns binlog expiry off on every member of the
// targets' replica set that has it on and says so (saved in the state,
// restored by complete and abort); `chirp reshard status` checks the binlog
// is there and warns about expiry it finds on again (a restarted server reads
// its config file); and abort checks before it changes anything, refusing
// with what is missing and what the operator can do.
import type { Connection, RowDataPacket } from "mysql2/promise";
import { formatGtidList, parseGtidList, type Gtid } from "../shard/gtid.js";
import type { MemberAddress, MysqlCredentials } from "../shard/types.js";
import { openConnection } from "./sql.js";

/** What a member's binlog holds, compared with the position a replay starts from. */
export interface BinlogCoverage {
  /** The replay's start (a GTID position). */
  readonly from: string;
  /** The member's oldest binlog file, and the GTID position at its start. */
  readonly oldestFile: string;
  readonly oldestStart: string;
  /** @@gtid_binlog_pos: the newest. */
  readonly current: string;
  /** Per domain: transactions after `from` logged before the oldest file (purged). */
  readonly missing: readonly Gtid[];
  /** Per domain: `from` is past what the member has logged (a member that never had them). */
  readonly ahead: readonly Gtid[];
  readonly ok: boolean;
}

/** Compares a start position with a binlog's oldest start and its newest position (pure). */
export function binlogGap(from: string, oldestStart: string, current: string): { missing: Gtid[]; ahead: Gtid[] } {
  const start = parseGtidList(from);
  const seqIn = (list: readonly Gtid[], domain: number): bigint | undefined => {
    const inDomain = list.filter((g) => g.domain === domain).map((g) => g.seq);
    return inDomain.length === 0 ? undefined : inDomain.reduce((a, b) => (a > b ? a : b));
  };
  // A domain's transactions up to its seq in the oldest file's start are gone; the replay needs
  // every one after its own seq there (none of that domain at all: every one).
  const missing = parseGtidList(oldestStart).filter((g) => {
    const s = seqIn(start, g.domain);
    return s === undefined || s < g.seq;
  });
  const have = parseGtidList(current);
  const ahead = start.filter((g) => {
    const c = seqIn(have, g.domain);
    return c === undefined || c < g.seq;
  });
  return { missing, ahead };
}

/** Whether `conn`'s member still has its binlog from `from` on. */
export async function binlogCoverage(conn: Connection, from: string): Promise<BinlogCoverage> {
  const [[on]] = await conn.query<RowDataPacket[]>("SELECT @@GLOBAL.log_bin AS b, @@GLOBAL.gtid_binlog_pos AS g");
  if (Number(on?.["b"]) !== 1) throw new ReshardBinlogError("the targets' primary writes no binlog (log_bin is off): switching writes back replays it");
  const [logs] = await conn.query<RowDataPacket[]>("SHOW BINARY LOGS");
  const oldestFile = String(logs[0]?.["Log_name"] ?? "");
  const [[pos]] = await conn.query<RowDataPacket[]>("SELECT BINLOG_GTID_POS(?, 4) AS p", [oldestFile]);
  const oldestStart = String(pos?.["p"] ?? "");
  const current = String(on?.["g"] ?? "");
  const { missing, ahead } = binlogGap(from, oldestStart, current);
  return { from, oldestFile, oldestStart, current, missing, ahead, ok: missing.length === 0 && ahead.length === 0 };
}

/** Switching writes back would lose the targets' changes: refused, nothing changed. */
export class ReshardBinlogError extends Error {
  override readonly name = "ReshardBinlogError";
}

/** Why a replay from `c.from` cannot run on `member` (for a refusal or `status`). */
export function describeGap(c: BinlogCoverage, member: string): string {
  const parts: string[] = [];
  if (c.missing.length > 0) {
    parts.push(`its oldest binlog file ${c.oldestFile} starts at ${c.oldestStart}: the transactions after ${c.from} up to ${formatGtidList(c.missing)} are gone (purged, expired, or this member's binlog was started again by a rebuild)`);
  }
  if (c.ahead.length > 0) parts.push(`it has logged only up to ${c.current || "nothing"}, short of ${formatGtidList(c.ahead)} (it never had them: a member that was behind when it was promoted?)`);
  return `${member} ${parts.join("; ")}`;
}

/** binlog_expire_logs_seconds of a member (0: never; expire_logs_days sets the same). */
export async function binlogExpirySeconds(conn: Connection): Promise<number> {
  const [[row]] = await conn.query<RowDataPacket[]>("SELECT @@GLOBAL.binlog_expire_logs_seconds AS s");
  return Number(row?.["s"] ?? 0);
}

/** A member whose binlog expiry the write switch turned off, and what it was. */
export interface KeptBinlog {
  readonly member: string;
  readonly expireLogsSeconds: number;
}

const addressOf = (m: MemberAddress): string => `${m.host}:${m.port}`;

/**
 * Turns binlog expiry off (SET GLOBAL binlog_expire_logs_seconds = 0) on each
 * member that has it on, so the binlog the write switch's position needs stays
 * until abort or complete; returns the members changed and their old values.
 * A member it cannot reach or change is reported through `log` (status warns).
 */
export async function keepBinlog(members: readonly MemberAddress[], admin: MysqlCredentials, log: (line: string) => void): Promise<KeptBinlog[]> {
  const kept: KeptBinlog[] = [];
  for (const m of members) {
    let c: Connection | undefined;
    try {
      c = await openConnection(m, admin);
      const seconds = await binlogExpirySeconds(c);
      if (seconds === 0) continue;
      await c.query("SET GLOBAL binlog_expire_logs_seconds = 0");
      kept.push({ member: addressOf(m), expireLogsSeconds: seconds });
      log(`binlog expiry on ${addressOf(m)} turned off (binlog_expire_logs_seconds ${seconds} -> 0) until complete or abort: abort replays the targets' binlog from the write switch`);
    } catch (err) {
      log(`WARNING: could not keep the binlog on ${addressOf(m)} (${(err as Error).message}): abort needs the targets' binlog from the write switch on; chirp reshard status checks it`);
    } finally {
      await c?.end().catch(() => c?.destroy());
    }
  }
  return kept;
}

/** Puts back what keepBinlog changed (complete, abort); a member it cannot reach is reported. */
export async function restoreBinlogExpiry(kept: readonly KeptBinlog[], admin: MysqlCredentials, log: (line: string) => void): Promise<void> {
  for (const k of kept) {
    const [host, port] = [k.member.slice(0, k.member.lastIndexOf(":")), Number(k.member.slice(k.member.lastIndexOf(":") + 1))];
    let c: Connection | undefined;
    try {
      c = await openConnection({ host, port }, admin);
      // Only if nobody changed it since (0 is what the write switch left).
      if ((await binlogExpirySeconds(c)) === 0) await c.query("SET GLOBAL binlog_expire_logs_seconds = ?", [k.expireLogsSeconds]);
      log(`binlog expiry on ${k.member} back to ${k.expireLogsSeconds} s`);
    } catch (err) {
      log(`WARNING: could not put binlog_expire_logs_seconds back to ${k.expireLogsSeconds} on ${k.member} (${(err as Error).message}): set it by hand`);
    } finally {
      await c?.end().catch(() => c?.destroy());
    }
  }
}

/** What `chirp reshard status` says about the binlog a switch-back needs. */
export interface BinlogReport {
  readonly primary: string;
  readonly coverage?: BinlogCoverage;
  readonly error?: string;
  /** Every member of the targets' replica set and its binlog_expire_logs_seconds (undefined: unreachable). */
  readonly expiry: ReadonlyArray<{ readonly member: string; readonly seconds: number | undefined }>;
}

export async function inspectBinlog(from: string, primary: MemberAddress, members: readonly MemberAddress[], admin: MysqlCredentials): Promise<BinlogReport> {
  const expiry: Array<{ member: string; seconds: number | undefined }> = [];
  let coverage: BinlogCoverage | undefined;
  let error: string | undefined;
  for (const m of members) {
    let c: Connection | undefined;
    try {
      c = await openConnection(m, admin);
      expiry.push({ member: addressOf(m), seconds: await binlogExpirySeconds(c) });
      if (m.host === primary.host && m.port === primary.port) coverage = await binlogCoverage(c, from);
    } catch (err) {
      if (m.host === primary.host && m.port === primary.port) error = (err as Error).message;
      if (!expiry.some((e) => e.member === addressOf(m))) expiry.push({ member: addressOf(m), seconds: undefined });
    } finally {
      await c?.end().catch(() => c?.destroy());
    }
  }
  return { primary: addressOf(primary), ...(coverage === undefined ? {} : { coverage }), ...(error === undefined ? {} : { error }), expiry };
}

/** The status lines of a BinlogReport; `sinceSwitchMs`: how long ago writes switched. */
export function formatBinlogReport(r: BinlogReport, sinceSwitchMs: number): string[] {
  const lines: string[] = [];
  if (r.coverage !== undefined) {
    lines.push(
      r.coverage.ok
        ? `targets' binlog from the write switch: on ${r.primary} (oldest file ${r.coverage.oldestFile}), abort can switch writes back`
        : `WARNING: abort cannot switch writes back: ${describeGap(r.coverage, r.primary)}`,
    );
  } else lines.push(`WARNING: could not check the targets' binlog on ${r.primary}: ${r.error ?? "unreachable"}`);
  const since = Math.round(sinceSwitchMs / 1000);
  for (const e of r.expiry) {
    if (e.seconds === undefined) lines.push(`WARNING: ${e.member} unreachable: its binlog expiry is unknown`);
    else if (e.seconds > 0 && e.seconds <= since) {
      lines.push(`WARNING: ${e.member} expires binlog older than ${e.seconds} s and writes switched ${since} s ago: the binlog abort needs may be gone (set binlog_expire_logs_seconds = 0 until complete or abort)`);
    } else if (e.seconds > 0) {
      lines.push(`WARNING: ${e.member} expires binlog older than ${e.seconds} s: abort must run within ${e.seconds - since} s (set binlog_expire_logs_seconds = 0 until complete or abort)`);
    }
  }
  return lines;
}
