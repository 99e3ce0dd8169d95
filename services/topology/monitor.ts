// One probe per member: a kept-open admin connection that checks the member
// every interval, and counts consecutive failures. Its replication state
// (read-only, replication threads, GTID positions, a primary's semi-sync
// status) is read every stateMs (the manager sets it, pacing.ts: slower while
// nothing in the replica set changes, and at once when trouble begins), with
// a protocol ping (no statement to parse or run, not counted as one by the
// server) in between to see it is alive. A
// primary's semi-sync history only decides whether a failover is reported as
// possibly losing writes (failover.ts), so a fallback to async in the last
// stateMs before a primary dies can go unreported; liveness, and so failover
// itself, is as fast as before. A new connection always reads the state, so a
// member that comes back is seen as it is. A kill -9 closes the socket, so the next probe fails
// at connect (refused) at once; a hung server fails by the probe timeout.
import type { Connection } from "mysql2/promise";
import { connectMysql } from "../../lib/db/mysql-client.js";
import type { MemberAddress, MysqlCredentials } from "../../lib/shard/types.js";
import { readMemberState, type MemberState } from "../../lib/shard/replication.js";

export class MemberProbe {
  /** Last successful reading; kept while the member is down (its last known state). */
  state: MemberState | undefined;
  /** Whether the last state read differed from the one before it (or was the first). */
  stateChanged = true;
  up: boolean | undefined;
  failures = 0;
  /** Date.now() of the first failure in the current run of failures. */
  firstFailureAt: number | undefined;
  lastError: string | undefined;
  private conn: Connection | undefined;
  private inFlight: Promise<void> | undefined;
  /** Date.now() of the last state read on the kept connection. */
  private stateAt = 0;

  constructor(
    readonly replicaSet: string,
    readonly address: MemberAddress,
    private readonly admin: MysqlCredentials,
    private readonly timeoutMs: number,
    /** How often the member's state is read; the probes between are pings. 0: every probe. */
    private stateMs = 0,
  ) {}

  /** Changes how often the state is read (from the next probe on). */
  setStatePace(ms: number): void {
    this.stateMs = ms;
  }

  /** The next probe reads the state, whenever it was last read. */
  readStateNext(): void {
    this.stateAt = 0;
  }

  get name(): string {
    return this.address.name;
  }

  /** One probe; never throws. A probe still running when the next is due is not doubled. */
  probe(): Promise<void> {
    if (this.inFlight === undefined) this.probeStartedAt = Date.now();
    this.inFlight ??= this.runProbe().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Date.now() when the probe in flight began. */
  private probeStartedAt = 0;

  /** How long the probe in flight has run (0 when none is): a hung member's shows before it fails. */
  get probeRunningMs(): number {
    return this.inFlight === undefined ? 0 : Date.now() - this.probeStartedAt;
  }

  private async runProbe(): Promise<void> {
    try {
      if (this.conn === undefined) {
        this.conn = await connectMysql(this.address, this.admin, { connectTimeoutMs: this.timeoutMs });
        this.stateAt = 0;
      }
      if (Date.now() - this.stateAt >= this.stateMs) {
        const generation = this.generation;
        const state = await readMemberState(this.conn, this.timeoutMs);
        // A refresh() since this read began (a failover's step) holds a newer state: keep it.
        if (generation === this.generation) this.record(state);
      } else {
        await pingWithin(this.conn, this.timeoutMs);
      }
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

  /** A fresh admin connection, the caller's to close (fence() opens a second one through it). */
  connect(connectTimeoutMs = this.timeoutMs): Promise<Connection> {
    return connectMysql(this.address, this.admin, { connectTimeoutMs });
  }

  /** Reads the state now (on a fresh connection), updating the cached one. */
  async refresh(): Promise<MemberState> {
    this.generation++;
    const state = await this.withAdmin((c) => readMemberState(c, this.timeoutMs * 4));
    this.record(state);
    return state;
  }

  /** Bumped by every refresh(), so a probe's read that began before it does not overwrite what it read. */
  private generation = 0;

  /** Date.now() when `state` was read (0 before the first reading). */
  stateReadAt = 0;

  private record(state: MemberState): void {
    this.stateChanged = this.state === undefined || stateKey(this.state) !== stateKey(state);
    this.state = state;
    this.stateAt = Date.now();
    this.stateReadAt = this.stateAt;
  }

  close(): void {
    this.conn?.destroy();
    this.conn = undefined;
  }
}

/** A reading as text, to tell whether anything changed (GTID sequence numbers are bigints). */
function stateKey(s: MemberState): string {
  return JSON.stringify(s, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

/** A protocol ping, failed after `timeoutMs` (a hung server answers nothing). */
async function pingWithin(c: Connection, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      c.ping(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error("ping timed out"), { code: "PROBE_TIMEOUT" })), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
