// Continuous writes (and lag-bounded reads) through the shard router, recording
// what was acknowledged and when. Shared by the failover test and benchmark.
import { performance } from "node:perf_hooks";
import type { ShardRouter } from "../../lib/shard/router.js";

export const PROBE_TABLE = "failover_probe";

/** The table the load writes, created by the admin account on each shard's primary. */
export const PROBE_TABLE_DDL = `CREATE TABLE IF NOT EXISTS ${PROBE_TABLE} (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  ack_time DATETIME(6) NULL
) ENGINE=InnoDB`;

export interface Ack {
  readonly id: number;
  /** performance.now() when the statement was sent. */
  readonly sentAt: number;
  /** performance.now() when the client got OK. */
  readonly at: number;
}

export interface WriteLoad {
  readonly shard: string;
  readonly acked: Ack[];
  /** Ids whose write failed (not acknowledged: may or may not have landed). */
  readonly failed: number[];
  /** The same failures with when each was sent and failed (performance.now()). */
  readonly failures: Ack[];
  /** The last write error (for failure messages). */
  readonly lastError: unknown;
  /**
   * The first acknowledged write that was sent after `t`, waiting up to
   * `timeoutMs` (a write in flight at `t` may still be acknowledged by a
   * primary killed at `t`: it committed before the kill).
   */
  firstAckSentAfter(t: number, timeoutMs: number): Promise<Ack>;
  /** The ack just before `ack`: together they bound the longest write pause around it. */
  ackBefore(ack: Ack): Ack | undefined;
  /** Resolves once `n` more writes were acknowledged (deadline). */
  acksAtLeast(n: number, timeoutMs: number): Promise<void>;
  /** Longest time between consecutive acks within [from, to]. */
  maxGap(from: number, to: number): number;
  lastAckBefore(t: number): Ack | undefined;
  /** Writes sent before `t` that ended (acknowledged or failed) after it: what a fault at `t` hit. */
  inFlightAt(t: number): Ack[];
  stop(): Promise<void>;
}

/** Writes id = 1, 2, 3, ... to `shard`'s primary, one at a time, as fast as acks come. */
export function startWriteLoad(router: ShardRouter, shard: string, idBase = 0): WriteLoad {
  const acked: Ack[] = [];
  const failed: number[] = [];
  const failures: Ack[] = [];
  let lastError: unknown;
  let running = true;
  let waiters: (() => void)[] = [];
  const wake = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const nextEvent = (timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      waiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  const loop = (async () => {
    let id = idBase;
    while (running) {
      id++;
      const sentAt = performance.now();
      try {
        await router.primary(shard).execute(`INSERT INTO ${router.keyspace}.${PROBE_TABLE} (id, ack_time) VALUES (?, UTC_TIMESTAMP(6))`, [id]);
        acked.push({ id, sentAt, at: performance.now() });
      } catch (err) {
        lastError = err;
        failed.push(id);
        failures.push({ id, sentAt, at: performance.now() });
        // Do not spin on a dead primary: the router already waited for a new one.
        await new Promise((r) => setTimeout(r, 20));
      }
      wake();
    }
  })();
  return {
    shard,
    acked,
    failed,
    failures,
    get lastError() {
      return lastError;
    },
    ackBefore(ack) {
      const i = acked.indexOf(ack);
      return i > 0 ? acked[i - 1] : undefined;
    },
    async firstAckSentAfter(t, timeoutMs) {
      const deadline = performance.now() + timeoutMs;
      for (;;) {
        const a = acked.find((x) => x.sentAt > t);
        if (a) return a;
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`no write acknowledged on ${shard} within ${timeoutMs} ms`, { cause: lastError });
        await nextEvent(left);
      }
    },
    async acksAtLeast(n, timeoutMs) {
      const target = acked.length + n;
      const deadline = performance.now() + timeoutMs;
      while (acked.length < target) {
        const left = deadline - performance.now();
        if (left <= 0) throw new Error(`${shard}: ${acked.length}/${target} acks after ${timeoutMs} ms`, { cause: lastError });
        await nextEvent(left);
      }
    },
    maxGap(from, to) {
      let prev = from;
      let gap = 0;
      for (const a of acked) {
        if (a.at < from) continue;
        if (a.at > to) break;
        gap = Math.max(gap, a.at - prev);
        prev = a.at;
      }
      return Math.max(gap, to - prev);
    },
    inFlightAt(t) {
      return [...acked, ...failures].filter((a) => a.sentAt < t && a.at > t);
    },
    lastAckBefore(t) {
      let last: Ack | undefined;
      for (const a of acked) if (a.at < t) last = a;
      return last;
    },
    async stop() {
      running = false;
      wake();
      await loop;
    },
  };
}

export interface StaleRead {
  readonly readAt: number;
  readonly sawMaxId: number;
  readonly expectedAtLeast: number;
}

/**
 * Reads max(id) through the router's reader (a replica within the lag bound,
 * or the primary) and checks each answer against the writes: everything
 * acknowledged more than `maxLagMs` before the read started must be visible.
 */
export function startReadCheck(router: ShardRouter, load: WriteLoad, maxLagMs: number): { stale: StaleRead[]; reads(): number; stop(): Promise<void> } {
  const stale: StaleRead[] = [];
  let reads = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      const start = performance.now();
      try {
        const rows = await router.reader(load.shard).query<{ m: string | null }>(`SELECT MAX(id) AS m FROM ${router.keyspace}.${PROBE_TABLE}`);
        reads++;
        const saw = Number(rows[0]?.m ?? 0);
        const expected = load.lastAckBefore(start - maxLagMs)?.id ?? 0;
        if (saw < expected) stale.push({ readAt: start, sawMaxId: saw, expectedAtLeast: expected });
      } catch {
        // No member to read from for a moment (failover): not a stale read.
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    stale,
    reads: () => reads,
    async stop() {
      running = false;
      await loop;
    },
  };
}
