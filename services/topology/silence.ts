// Whether a primary's replicas still hear from it, known well before their IO
// thread gives up on it (slave_net_timeout, 2 s), and the early freeze that
// builds on it (decision 27, "freezing before the IO thread is stuck").
//
// A primary sends its replicas an event or, with nothing to send, a heartbeat
// at least every MASTER_HEARTBEAT_PERIOD_S (0.5 s). So a replica whose
// received-heartbeat count and read position stay the same for longer than
// that has heard nothing from the primary in that time. The manager samples
// them while the primary's probe hangs or fails; when every replica has been
// silent for SILENT_MS it stops their IO threads then, while each is still in
// an ordinary read of the primary's socket (a STOP SLAVE IO_THREAD that ends
// in milliseconds), rather than at the failover decision, by which time a
// frozen primary's replicas are reconnecting to it and the stop waits out the
// server's 2 s re-signal loop.
import type { Connection, RowDataPacket } from "mysql2/promise";
import { MASTER_HEARTBEAT_PERIOD_S, stopReceiving } from "../../lib/shard/replication.js";

/** Silent this long (the heartbeat period and a margin for a busy machine) means the primary is not reaching it. */
export const SILENT_MS = MASTER_HEARTBEAT_PERIOD_S * 1_000 + 150;

/**
 * What a replica has received from its primary, as one comparable text: the
 * heartbeats counted and the position read. undefined when it has no
 * replication configured.
 */
export async function readHearing(c: Connection, timeoutMs: number): Promise<string | undefined> {
  const [rows] = await c.query<RowDataPacket[]>({ sql: "SHOW ALL SLAVES STATUS", timeout: timeoutMs });
  const s = rows.find((r) => String(r["Connection_name"] ?? "") === "");
  if (s === undefined || String(s["Master_Host"] ?? "") === "") return undefined;
  return `${String(s["Slave_received_heartbeats"])} ${String(s["Master_Log_File"])}:${String(s["Read_Master_Log_Pos"])}`;
}

/** Per replica: what it had received when last sampled, and since when that has not changed. */
export class Hearing {
  private readonly seen = new Map<string, { key: string; since: number }>();

  /** Records a sample taken at `at`. */
  record(member: string, key: string, at: number): void {
    const last = this.seen.get(member);
    if (last === undefined || last.key !== key) this.seen.set(member, { key, since: at });
  }

  /** Whether `member` has received nothing for SILENT_MS as of `now` (false before two samples span that long). */
  silent(member: string, now: number): boolean {
    const last = this.seen.get(member);
    return last !== undefined && now - last.since >= SILENT_MS;
  }

  clear(): void {
    this.seen.clear();
  }

  get sampling(): boolean {
    return this.seen.size > 0;
  }
}

/**
 * rpl_semi_sync_slave_kill_conn_timeout while freezing: a semi-sync replica's
 * STOP SLAVE IO_THREAD first connects to the primary to end its dump thread
 * there, and waits for that connection up to this many seconds. A frozen
 * primary never answers it, so the stop takes that long: the default 5 gave
 * 2.0 s a stop, 1 gives 1.0 s, 0 (no timeout) 24 s; measured on 10.11.19,
 * freezing a replica of a SIGSTOPped primary 0.8 s and 2.5 s after the
 * freeze alike. Neither slave_net_timeout nor killing the IO thread first
 * changes it (decision 27).
 */
export const FREEZE_KILL_CONN_TIMEOUT_S = 1;

/** Freezes a replica's relay log (STOP SLAVE IO_THREAD; returns once the IO thread has exited) with the short wait above. */
export async function freezeRelayLog(c: Connection): Promise<void> {
  await c.query(`SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout = ${FREEZE_KILL_CONN_TIMEOUT_S}`);
  await stopReceiving(c);
}
