// The heartbeat writer (like Vitess's): every interval, on each replica set's
// current primary, one statement rewrites `heartbeat.ts` in every shard
// database with UTC_TIMESTAMP(6). Replicas' lag is then the age of their copy.
import type { Connection } from "mysql2/promise";
import { connectMysql } from "../../lib/db/mysql-client.js";
import type { MemberAddress, MysqlCredentials } from "../../lib/shard/types.js";
import type { Logger } from "../../lib/logger.js";
import { writeHeartbeat } from "../../lib/shard/replication.js";
import type { TopologyMetrics } from "./metrics.js";

export interface HeartbeatTarget {
  readonly primary: MemberAddress;
  readonly databases: readonly string[];
}

export class HeartbeatWriter {
  private conn: Connection | undefined;
  private connTo: string | undefined;
  private busy = false;
  private lastProblem: string | undefined;

  constructor(
    readonly replicaSet: string,
    private readonly admin: MysqlCredentials,
    private readonly connectTimeoutMs: number,
    /** Longer than the semi-sync timeout: a beat may wait that long for an ack. */
    private readonly queryTimeoutMs: number,
    private readonly log: Logger,
    private readonly metrics: TopologyMetrics,
  ) {}

  /** One write to `target` (or nothing while the previous write is still running). */
  async beat(target: HeartbeatTarget | undefined): Promise<void> {
    const key = target === undefined ? undefined : `${target.primary.host}:${target.primary.port}`;
    if (this.busy) {
      // A beat stuck on the old primary must not hold up the new one's.
      if (key !== this.connTo) this.close();
      return;
    }
    if (target === undefined) {
      this.close();
      return;
    }
    this.busy = true;
    try {
      if (this.connTo !== key) this.close();
      this.connTo = key;
      this.conn ??= await connectMysql(target.primary, this.admin, { connectTimeoutMs: this.connectTimeoutMs, multipleStatements: true });
      const wrote = await writeHeartbeat(this.conn, target.databases, this.queryTimeoutMs);
      this.metrics.heartbeatWrites.inc({ replica_set: this.replicaSet, result: wrote ? "ok" : "read_only" });
      this.note(wrote ? undefined : "primary is read_only");
    } catch (err) {
      this.close();
      this.metrics.heartbeatWrites.inc({ replica_set: this.replicaSet, result: "error" });
      this.note((err as { code?: string }).code ?? (err as Error).message);
    } finally {
      this.busy = false;
    }
  }

  /** Logs a change of trouble once, not every 250 ms. */
  private note(problem: string | undefined): void {
    if (problem === this.lastProblem) return;
    if (problem === undefined) this.log.info({ replica_set: this.replicaSet }, "heartbeat writes resumed");
    else this.log.warn({ replica_set: this.replicaSet, problem }, "heartbeat write failed");
    this.lastProblem = problem;
  }

  close(): void {
    this.conn?.destroy();
    this.conn = undefined;
    this.connTo = undefined;
  }
}
