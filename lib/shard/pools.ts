// One pool per MySQL member, shared by every shard database on it (tables are
// qualified per statement, see qualify.ts), behind a Limiter that bounds the
// queue and the wait; plus one dedicated connection for health probes, so a
// busy pool cannot starve the lag measurement (or be starved by it).
// The hot path uses mysql2's callback core: its promise wrappers allocate an
// EventEmitter per checkout and capture a stack per statement (measured in
// bench/router-overhead.ts). The rarely used probe/kill connections stay on promises.
import { createPool, type Pool, type PoolConnection } from "mysql2";
import { createConnection, type Connection } from "mysql2/promise";
import type { MemberAddress, MysqlCredentials } from "./types.js";
import { isServerReply } from "../db/mysql-errors.js";
import type { Metrics } from "../metrics.js";
import { UNKNOWN_HEALTH, type MemberHealth } from "./health.js";
import { Limiter } from "./limiter.js";

export interface MemberPoolOptions {
  readonly replicaSet: string;
  readonly member: MemberAddress;
  readonly credentials: MysqlCredentials;
  readonly poolSize: number;
  readonly queueLimit: number;
  readonly acquireTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly metrics?: Metrics | undefined;
}

/** Identity of a member's pool: a member that moves to another address gets a new pool. */
export function memberKey(m: MemberAddress): string {
  return `${m.name}@${m.host}:${m.port}`;
}

// Errors raised before a statement went out on the wire (connecting, session
// setup). Only these make a write safe to re-run elsewhere.
const neverSent = new WeakSet<object>();

export function wasNeverSent(err: unknown): boolean {
  return typeof err === "object" && err !== null && neverSent.has(err);
}

export function markNeverSent(err: unknown): unknown {
  const e = typeof err === "object" && err !== null ? err : new Error(String(err));
  neverSent.add(e);
  return e;
}

/** mysql2 connection options shared by pools and probe connections. */
function connectionOptions(o: MemberPoolOptions) {
  return {
    host: o.member.host,
    port: o.member.port,
    user: o.credentials.user,
    password: o.credentials.password,
    connectTimeout: o.connectTimeoutMs,
    // BIGINT ids stay exact, as strings.
    supportBigNumbers: true,
    bigNumberStrings: true,
    // DATETIMEs are UTC (the session time zone is set to match on connect).
    timezone: "Z",
    enableKeepAlive: true,
    // Each connection prepares each statement once per shard database it serves.
    maxPreparedStatements: 512,
    // A transaction's deferred statements go with its COMMIT in one text query
    // (Transaction.defer). Every value in them is escaped by mysql2 from
    // placeholders; no statement is ever built from a caller's text.
    multipleStatements: true,
  } as const;
}

export class MemberPool {
  readonly key: string;
  readonly replicaSet: string;
  readonly member: MemberAddress;
  readonly limiter: Limiter;
  health: MemberHealth = UNKNOWN_HEALTH;
  #probing = false;
  readonly #pool: Pool;
  readonly #ready = new WeakSet<object>();
  /** Callers waiting for a connection, and connections running a caller's statements (demoted). */
  readonly #checkouts = new Set<(err: Error) => void>();
  readonly #inUse = new Set<PoolConnection>();
  #probeConn: Promise<Connection> | undefined;
  #closing: Promise<void> | undefined;

  constructor(private readonly opts: MemberPoolOptions) {
    this.key = memberKey(opts.member);
    this.replicaSet = opts.replicaSet;
    this.member = opts.member;
    const labels = { replica_set: opts.replicaSet, member: opts.member.name };
    const inUse = opts.metrics?.dbPoolInUse.labels(labels);
    const waiting = opts.metrics?.dbPoolWaiting.labels(labels);
    this.limiter = new Limiter({
      capacity: opts.poolSize,
      queueLimit: opts.queueLimit,
      onChange: (active, queued) => {
        inUse?.set(active);
        waiting?.set(queued);
      },
    });
    this.#pool = createPool({
      ...connectionOptions(opts),
      // The limiter admits at most poolSize callers, so mysql2 never queues.
      connectionLimit: opts.poolSize,
      maxIdle: opts.poolSize,
      idleTimeout: 60_000,
      waitForConnections: true,
      queueLimit: 0,
    });
  }

  /**
   * Runs `fn` on a pooled connection. Errors thrown before `fn` runs (limiter
   * aside) are marked as never sent: see wasNeverSent.
   */
  async withConnection<T>(fn: (conn: PoolConnection) => Promise<T>): Promise<T> {
    const release = await this.limiter.acquire(this.opts.acquireTimeoutMs);
    let conn: PoolConnection | undefined;
    try {
      try {
        conn = await this.#checkout();
        if (!this.#ready.has(conn)) {
          // Session setup, once per connection; a constant, so plain text protocol.
          const fresh = conn;
          await command((cb) => fresh.query("SET time_zone = '+00:00'", cb));
          this.#ready.add(conn);
        }
      } catch (err) {
        conn?.destroy();
        conn = undefined;
        throw markNeverSent(err);
      }
      this.#inUse.add(conn);
      return await fn(conn);
    } finally {
      if (conn !== undefined) {
        this.#inUse.delete(conn);
        conn.release();
      }
      release();
    }
  }

  /**
   * This member stopped being the primary its callers came for (a failover).
   * Callers still waiting for a connection (nothing of theirs was sent) fail
   * with a never-sent error, which the router retries on the new primary; a
   * connection that arrives later goes back to the pool. Statements already
   * sent have their connections closed: their outcome is unknown either way,
   * and their callers hear so now rather than after the query timeout on a
   * frozen or partitioned member.
   */
  demoted(reason: string): void {
    for (const abandon of [...this.#checkouts]) abandon(new Error(reason));
    for (const conn of [...this.#inUse]) {
      // Destroying the socket fails its pending statement at once (mysql2's
      // destroy() alone only half-closes it, and a frozen server never answers).
      const lost = Object.assign(new Error(`${reason}; the statement's outcome is unknown`), { code: "PROTOCOL_CONNECTION_LOST" });
      (conn as unknown as { stream?: { destroy(err: Error): void } }).stream?.destroy(lost);
      conn.destroy();
    }
  }

  /** A pooled connection, unless demoted() comes first. */
  #checkout(): Promise<PoolConnection> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const abandon = (err: Error): void => {
        settled = true;
        this.#checkouts.delete(abandon);
        reject(err);
      };
      this.#checkouts.add(abandon);
      this.#pool.getConnection((err, conn) => {
        if (settled) {
          if (!err) conn.release();
          return;
        }
        settled = true;
        this.#checkouts.delete(abandon);
        if (err) reject(err);
        else resolve(conn);
      });
    });
  }

  /** A statement on the probe connection; a connection-level failure drops it so the next probe reconnects. */
  async probe<T>(sql: string, timeoutMs: number): Promise<T[]> {
    const pending = (this.#probeConn ??= this.#connectProbe());
    const drop = (): void => {
      if (this.#probeConn === pending) this.#probeConn = undefined;
      pending.then((c) => c.destroy(), () => {});
    };
    let conn: Connection;
    try {
      conn = await pending;
    } catch (err) {
      drop();
      throw err;
    }
    try {
      const [rows] = await conn.execute({ sql, timeout: timeoutMs });
      return rows as T[];
    } catch (err) {
      // A server's error reply (missing table...) leaves the connection usable; nothing else does.
      if (!isServerReply(err)) drop();
      throw err;
    }
  }

  /** Runs one probe at a time: a hung member is not asked again until its probe times out (undefined: not run). */
  async probeOnce<T>(run: () => Promise<T>): Promise<T | undefined> {
    if (this.#probing || this.#closing) return undefined;
    this.#probing = true;
    try {
      return await run();
    } finally {
      this.#probing = false;
    }
  }

  /**
   * Stops a statement the client gave up on (query timeout): the connection
   * was destroyed, but the server would run the statement to its end.
   * Best effort, on a fresh connection (the app account may kill its own threads).
   */
  killQuietly(threadId: number | null | undefined): void {
    if (typeof threadId !== "number" || !Number.isInteger(threadId)) return;
    void (async () => {
      const conn = await createConnection(connectionOptions(this.opts));
      conn.on("error", () => {});
      try {
        await conn.query(`KILL ${threadId}`);
      } finally {
        conn.destroy();
      }
    })().catch(() => {});
  }

  /** Lets what holds or waits for a connection finish (up to `drainMs`), then closes everything. */
  close(drainMs: number): Promise<void> {
    this.#closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        this.limiter.whenIdle(),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, drainMs);
        }),
      ]);
      clearTimeout(timer);
      this.limiter.close("member removed from the topology");
      const probe = this.#probeConn;
      this.#probeConn = undefined;
      await Promise.allSettled([
        new Promise<void>((resolve) => this.#pool.end(() => resolve())),
        probe?.then((c) => c.destroy()),
      ]);
      const labels = { replica_set: this.replicaSet, member: this.member.name };
      this.opts.metrics?.dbPoolInUse.remove(labels);
      this.opts.metrics?.dbPoolWaiting.remove(labels);
      this.opts.metrics?.dbReplicaLag.remove(labels);
    })();
    return this.#closing;
  }

  #connectProbe(): Promise<Connection> {
    const pending: Promise<Connection> = createConnection(connectionOptions(this.opts)).then((conn) => {
      // An idle connection whose server goes away reports it as an event; unheard, that would crash the process.
      conn.on("error", () => {
        if (this.#probeConn === pending) this.#probeConn = undefined;
        conn.destroy();
      });
      return conn;
    });
    return pending;
  }
}

/** Runs one callback-style mysql2 command as a promise. */
export function command<R = unknown>(start: (cb: (err: unknown, result?: R) => void) => void): Promise<R> {
  return new Promise((resolve, reject) => start((err, result) => (err ? reject(err) : resolve(result as R))));
}

/** A prepared statement (mysql2 `execute`: prepared once per connection and SQL text) with a client-side timeout. */
export function executeOn(conn: PoolConnection, sql: string, values: readonly unknown[], timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    conn.execute({ sql, timeout: timeoutMs, values: values as unknown[] }, (err, result) => (err ? reject(err) : resolve(result)));
  });
}
