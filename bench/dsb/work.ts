/**
 * The work one request of each type costs, counted by the servers
 * themselves: SQL statements (MariaDB's `Questions`, summed over every member,
 * less this module's own reads of it), Redis commands
 * (`total_commands_processed`, less its own INFO) and Redis round trips
 * (`total_writes_processed`: Redis writes the replies to one connection's
 * pipelined commands at once, so each write is one round trip a client waited
 * for), and the CPU of the system's own processes (/proc), over `count`
 * requests of that type sent one at a time: the same requests twice, the
 * second time counted (the steady state: every cache they touch warm), its
 * latencies giving the unloaded p50. A write's window ends once the event
 * consumers have done its events and the relay has marked its rows sent.
 * Idle background work in the same window (probes, heartbeats, relay polls)
 * is measured right after over the same duration and subtracted.
 */
import { setTimeout as delay } from "node:timers/promises";
import { createConnection, type Connection, type RowDataPacket } from "mysql2/promise";
import type { BenchCluster } from "./cluster.js";
import { Histogram } from "./histogram.js";
import { cpuSeconds } from "./machine.js";
import type { Target } from "./targets.js";
import { OP_KINDS, type Op, type OpKind } from "./workload.js";
import { drainConsumers } from "./drain.js";
import { countUnsent } from "../../lib/events/outbox-store.js";

/** Request types whose work continues after their answer (events, the relay's marks). */
const WRITES: ReadonlySet<OpKind> = new Set(["compose", "repost", "reply"]);

export interface WorkPerRequest {
  readonly requests: number;
  readonly sqlPerRequest: number;
  readonly redisCommandsPerRequest: number;
  readonly redisRoundTripsPerRequest: number;
  /** CPU (user + system) of the system's own processes, summed, per request; undefined without /proc. */
  readonly cpuMsPerRequest: number | undefined;
  /** The same with the servers they use added (every MariaDB member, Redis, NATS): every process but the load generator's. */
  readonly cpuMsPerRequestWithServers: number | undefined;
  /** Latency of a request sent alone, through the whole system. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Background statements and commands per second measured right before (already subtracted). */
  readonly idleSqlPerSecond: number;
  readonly idleRedisPerSecond: number;
}

interface Counts {
  readonly sql: number;
  readonly redis: number;
  readonly redisWrites: number;
  readonly cpu: number | undefined;
  readonly serversCpu: number | undefined;
  readonly at: number;
}

/**
 * Resolves once every shard's outbox has no row left unsent: the relay marks
 * what it published up to CHIRP_RELAY_MARK_DELAY_MS later, and those UPDATEs
 * are the writes' work. Reads each primary every 20 ms; returns how many
 * statements that took (each a statement of the servers' count). Gives up
 * after `timeoutMs` (a relay that cannot reach NATS leaves rows unsent).
 */
async function outboxSent(c: BenchCluster, timeoutMs = 10_000): Promise<number> {
  const shards = c.router.shards().filter((s) => s.serving !== false);
  const giveUpAt = performance.now() + timeoutMs;
  let statements = 0;
  for (;;) {
    const unsent = await Promise.all(shards.map((s) => countUnsent(c.router.primary(s.name))));
    statements += shards.length;
    if (unsent.every((n) => n === 0) || performance.now() > giveUpAt) return statements;
    await delay(20);
  }
}

/**
 * `pids`: the processes whose CPU is the request's (the system's own, or the
 * floor's); `serverPids`: the servers they use (MariaDB members, Redis,
 * NATS), whose CPU is added for the figure over every process.
 */
export async function measureWork(
  c: BenchCluster,
  target: Target,
  nextOp: () => Op,
  count: number,
  pids: readonly number[],
  serverPids: readonly number[],
  kinds: readonly OpKind[] = OP_KINDS,
): Promise<Partial<Record<OpKind, WorkPerRequest>>> {
  const members = c.infra.mysql.replicaSets.flatMap((rs) => [rs.primary, ...rs.replicas]);
  const conns: Connection[] = await Promise.all(
    members.map((m) => createConnection({ host: m.host, port: m.port, user: c.infra.mysql.adminUser.user, password: c.infra.mysql.adminUser.password })),
  );
  const snapshot = async (): Promise<Counts> => {
    const sql = await Promise.all(
      conns.map(async (conn) => Number((await conn.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Questions'"))[0][0]?.Value ?? 0)),
    );
    const info = await c.redis.info("stats");
    const stat = (name: string): number => Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1] ?? 0);
    return {
      sql: sql.reduce((a, b) => a + b, 0),
      redis: stat("total_commands_processed"),
      redisWrites: stat("total_writes_processed"),
      cpu: cpuSum(pids),
      serversCpu: cpuSum(serverPids),
      at: performance.now(),
    };
  };
  // Each snapshot is itself one statement per member and one Redis command (one reply write).
  const diff = (a: Counts, b: Counts) => ({
    sql: b.sql - a.sql - members.length,
    redis: b.redis - a.redis - 1,
    redisWrites: b.redisWrites - a.redisWrites - 1,
    cpu: a.cpu === undefined || b.cpu === undefined ? undefined : b.cpu - a.cpu,
    serversCpu: a.serversCpu === undefined || b.serversCpu === undefined ? undefined : b.serversCpu - a.serversCpu,
    seconds: (b.at - a.at) / 1000,
  });
  try {
    const out: Partial<Record<OpKind, WorkPerRequest>> = {};
    for (const kind of kinds) {
      const ops: Op[] = [];
      while (ops.length < count) {
        const op = nextOp();
        if (op.kind === kind) ops.push(op);
      }
      // Reads: the first pass warms what these readers touch. A write is never the same twice.
      if (kind === "home" || kind === "user") for (const op of ops) await target.run(op);
      // What the runs before left to the consumers (a closed loop's backlog, lingering group
      // commits) is done before the count starts: it is not this request type's work, and, still
      // running down, it would not be in the idle window that is subtracted either.
      await drainConsumers(c.infra.natsUrl, () => {});
      await outboxSent(c);
      const latency = new Histogram();
      const t0 = await snapshot();
      for (const op of ops) {
        const start = performance.now();
        await target.run(op);
        latency.recordMs(performance.now() - start);
      }
      // A write's work goes on after its answer: the event consumers (held up to their linger
      // for group commit) and the relay's marking of its rows as sent. All of it is the
      // request's, so the counted window ends once it is done, and the idle window after it
      // holds none of it (it would be subtracted as background work).
      let polls = 0;
      if (WRITES.has(kind)) {
        await drainConsumers(c.infra.natsUrl, () => {});
        polls = await outboxSent(c);
      }
      const t1 = await snapshot();
      const busy = diff(t0, t1);
      // The waiting's own reads of the outboxes are not the requests'.
      busy.sql -= polls;
      // The same time with nothing sent: what the system does anyway.
      await delay(Math.min(busy.seconds, 5) * 1000);
      const t2 = await snapshot();
      const idle = diff(t1, t2);
      const idleSql = idle.sql / idle.seconds;
      const idleRedis = idle.redis / idle.seconds;
      const perRequest = (used: number, idlePerSecond: number): number => round(Math.max(0, used - idlePerSecond * busy.seconds) / count);
      const l = latency.summary();
      out[kind] = {
        requests: count,
        sqlPerRequest: perRequest(busy.sql, idleSql),
        redisCommandsPerRequest: perRequest(busy.redis, idleRedis),
        redisRoundTripsPerRequest: perRequest(busy.redisWrites, idle.redisWrites / idle.seconds),
        cpuMsPerRequest: busy.cpu === undefined || idle.cpu === undefined ? undefined : perRequest(busy.cpu * 1000, (idle.cpu * 1000) / idle.seconds),
        cpuMsPerRequestWithServers:
          busy.cpu === undefined || idle.cpu === undefined || busy.serversCpu === undefined || idle.serversCpu === undefined
            ? undefined
            : perRequest((busy.cpu + busy.serversCpu) * 1000, ((idle.cpu + idle.serversCpu) * 1000) / idle.seconds),
        p50Ms: l.p50Ms,
        p99Ms: l.p99Ms,
        idleSqlPerSecond: round(idleSql),
        idleRedisPerSecond: round(idleRedis),
      };
    }
    return out;
  } finally {
    await Promise.all(conns.map((conn) => conn.end().catch(() => {})));
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

/** The processes' CPU seconds summed; undefined when one cannot be read. */
function cpuSum(pids: readonly number[]): number | undefined {
  let total = 0;
  for (const pid of pids) {
    const s = cpuSeconds(pid);
    if (s === undefined) return undefined;
    total += s;
  }
  return total;
}

export function workTable(byMode: Readonly<Record<string, Partial<Record<OpKind, WorkPerRequest>>>>): string {
  const lines = [
    "| system | type | SQL statements / request | Redis commands / request | Redis round trips / request | CPU ms / request: its own processes | CPU ms / request: with MariaDB, Redis, NATS | p50 ms alone | p99 ms alone | idle SQL/s, Redis/s (subtracted) |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const [mode, work] of Object.entries(byMode)) {
    for (const kind of OP_KINDS) {
      const w = work[kind];
      if (w === undefined) continue;
      lines.push(
        `| ${mode} | ${kind} | ${w.sqlPerRequest} | ${w.redisCommandsPerRequest} | ${w.redisRoundTripsPerRequest} | ${w.cpuMsPerRequest ?? "-"} | ${w.cpuMsPerRequestWithServers ?? "-"} | ${w.p50Ms} | ${w.p99Ms} | ${w.idleSqlPerSecond}, ${w.idleRedisPerSecond} |`,
      );
    }
  }
  return lines.join("\n");
}
