/**
 * The work one request of each type costs, counted by the servers
 * themselves: SQL statements (MariaDB's `Questions`, summed over every member,
 * less this module's own reads of it) and Redis commands
 * (`total_commands_processed`, less its own INFO), over `count` requests of
 * that type sent one at a time: the same requests twice, the second time
 * counted (the steady state: every cache they touch warm). Idle
 * background work in the same window (probes, heartbeats, relay polls) is
 * measured just before over the same duration and subtracted.
 */
import { setTimeout as delay } from "node:timers/promises";
import { createConnection, type Connection, type RowDataPacket } from "mysql2/promise";
import type { BenchCluster } from "./cluster.js";
import type { Target } from "./targets.js";
import { OP_KINDS, type Op, type OpKind } from "./workload.js";

export interface WorkPerRequest {
  readonly requests: number;
  readonly sqlPerRequest: number;
  readonly redisCommandsPerRequest: number;
  /** Background statements and commands per second measured right before (already subtracted). */
  readonly idleSqlPerSecond: number;
  readonly idleRedisPerSecond: number;
}

interface Counts {
  readonly sql: number;
  readonly redis: number;
  readonly at: number;
}

export async function measureWork(c: BenchCluster, target: Target, nextOp: () => Op, count: number): Promise<Record<OpKind, WorkPerRequest>> {
  const members = c.infra.mysql.replicaSets.flatMap((rs) => [rs.primary, ...rs.replicas]);
  const conns: Connection[] = await Promise.all(
    members.map((m) => createConnection({ host: m.host, port: m.port, user: c.infra.mysql.adminUser.user, password: c.infra.mysql.adminUser.password })),
  );
  const snapshot = async (): Promise<Counts> => {
    const sql = await Promise.all(
      conns.map(async (conn) => Number((await conn.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Questions'"))[0][0]?.Value ?? 0)),
    );
    const info = await c.redis.info("stats");
    return { sql: sql.reduce((a, b) => a + b, 0), redis: Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0), at: performance.now() };
  };
  // Each snapshot is itself one statement per member and one Redis command.
  const diff = (a: Counts, b: Counts): { sql: number; redis: number; seconds: number } => ({
    sql: b.sql - a.sql - members.length,
    redis: b.redis - a.redis - 1,
    seconds: (b.at - a.at) / 1000,
  });
  try {
    const out = {} as Record<OpKind, WorkPerRequest>;
    for (const kind of OP_KINDS) {
      const ops: Op[] = [];
      while (ops.length < count) {
        const op = nextOp();
        if (op.kind === kind) ops.push(op);
      }
      // Reads: the first pass warms what these readers touch. A compose is never the same twice.
      if (kind !== "compose") for (const op of ops) await target.run(op);
      const t0 = await snapshot();
      for (const op of ops) await target.run(op);
      const t1 = await snapshot();
      const busy = diff(t0, t1);
      // The same time with nothing sent: what the system does anyway.
      await delay(Math.min(busy.seconds, 5) * 1000);
      const t2 = await snapshot();
      const idle = diff(t1, t2);
      const idleSql = idle.sql / idle.seconds;
      const idleRedis = idle.redis / idle.seconds;
      const round = (x: number): number => Math.round(x * 100) / 100;
      out[kind] = {
        requests: count,
        sqlPerRequest: round(Math.max(0, busy.sql - idleSql * busy.seconds) / count),
        redisCommandsPerRequest: round(Math.max(0, busy.redis - idleRedis * busy.seconds) / count),
        idleSqlPerSecond: round(idleSql),
        idleRedisPerSecond: round(idleRedis),
      };
    }
    return out;
  } finally {
    await Promise.all(conns.map((conn) => conn.end().catch(() => {})));
  }
}

export function workTable(byMode: Readonly<Record<string, Record<OpKind, WorkPerRequest>>>): string {
  const lines = ["| system | type | SQL statements / request | Redis commands / request | idle SQL/s, Redis/s (subtracted) |", "|---|---|---:|---:|---:|"];
  for (const [mode, work] of Object.entries(byMode)) {
    for (const kind of OP_KINDS) {
      const w = work[kind];
      lines.push(`| ${mode} | ${kind} | ${w.sqlPerRequest} | ${w.redisCommandsPerRequest} | ${w.idleSqlPerSecond}, ${w.idleRedisPerSecond} |`);
    }
  }
  return lines.join("\n");
}
