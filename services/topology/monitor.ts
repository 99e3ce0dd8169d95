// One probe per member: a kept-open admin connection that reads the member's
// replication state every interval, and counts consecutive failures. A
// kill -9 closes the socket, so the next probe fails at connect (refused) at
// once; a hung server fails by the probe timeout.
import type { Connection } from "mysql2/promise";
import { connectMysql } from "../lib/cluster/mysql-client.js";
import type { MemberAddress, MysqlCredentials } from "../lib/cluster/types.js";
import { readMemberState, type MemberState } from "../lib/shard/replication.js";

export class MemberProbe {
  /** Last successful reading; kept while the member is down (its last known state). */
  state: MemberState | undefined;
  up: boolean | undefined;
  failures = 0;
  /** Date.now() of the first failure in the current run of failures. */
  firstFailureAt: number | undefined;
  lastError: string | undefined;
  private conn: Connection | undefined;
  private inFlight: Promise<void> | undefined;

  constructor(
    readonly replicaSet: string,
    readonly address: MemberAddress,
    private readonly admin: MysqlCredentials,
    private readonly timeoutMs: number,
  ) {}

  get name(): string {
    return this.address.name;
  }

  /** One probe; never throws. A probe still running when the next is due is not doubled. */
  probe(): Promise<void> {
    this.inFlight ??= this.runProbe().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async runProbe(): Promise<void> {
    try {
      this.conn ??= await connectMysql(this.address, this.admin, { connectTimeoutMs: this.timeoutMs });
      this.state = await readMemberState(this.conn, this.timeoutMs);
      this.up = true;
      this.failures = 0;
      this.firstFailureAt = undefined;
      this.lastError = undefined;
    } catch (err) {
      this.conn?.destroy();
      this.conn = undefined;
      this.up = false;
      this.failures++;
      this.firstFailureAt ??= Date.now();
      this.lastError = (err as { code?: string }).code ?? (err as Error).message;
    }
  }

  /** A fresh admin connection for one action (so a long wait never blocks the probes). */
  async withAdmin<T>(fn: (c: Connection) => Promise<T>, connectTimeoutMs = this.timeoutMs, multipleStatements = false): Promise<T> {
    const c = await connectMysql(this.address, this.admin, { connectTimeoutMs, multipleStatements });
    try {
      return await fn(c);
    } finally {
      await c.end().catch(() => c.destroy());
    }
  }

  /** Reads the state now (on a fresh connection), updating the cached one. */
  async refresh(): Promise<MemberState> {
    const state = await this.withAdmin((c) => readMemberState(c, this.timeoutMs * 4));
    this.state = state;
    return state;
  }

  close(): void {
    this.conn?.destroy();
    this.conn = undefined;
  }
}
