/**
 * The work one request of each type costs, counted by the servers
 * themselves: SQL statements (MariaDB's `Questions`, summed over every member,
 * less this module's own reads of it), Redis commands
 * (`total_commands_processed`, less its own INFO) and Redis round trips
 * (`total_writes_processed`: Redis writes the replies to one connection's
 * pipelined commands at once, so each write is one round trip a client waited
 * for), and the CPU of the system's own processes and of the servers
 * (/proc, to the nanosecond: cpuSecondsPrecise), over at least `count`
 * requests of that type sent one at a time and at least MIN_WINDOW_MS:
 * reads are sent twice, the second time counted (the steady state: every
 * cache they touch warm), its latencies giving the unloaded p50. A write's
 * window ends once the event consumers have done its events and the relay
 * has marked its rows sent. Before each window the processes settle (what
 * the load before left running down, settle()); idle background work
 * (probes, heartbeats, relay polls) is measured right before and right after
 * the window and subtracted.
 */
import { setTimeout as delay } from "node:timers/promises";
import { createConnection, type Connection, type RowDataPacket } from "mysql2/promise";
import type { BenchCluster } from "./cluster.js";
import { Histogram } from "./histogram.js";
import { cpuSecondsPrecise } from "./machine.js";
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
  /** Background statements and commands per second, measured right before and right after the window (already subtracted). */
  readonly idleSqlPerSecond: number;
  readonly idleRedisPerSecond: number;
  /** How long the processes took to settle after what ran before (settle()), before the window. */
  readonly settleSeconds: number;
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
 * after `timeoutMs`, saying how many rows are left (a relay that cannot
 * reach NATS leaves rows unsent).
 */
async function outboxSent(c: BenchCluster, say: (line: string) => void, timeoutMs = 10_000): Promise<number> {
  const shards = c.router.shards().filter((s) => s.serving !== false);
  const giveUpAt = performance.now() + timeoutMs;
  let statements = 0;
  for (;;) {
    const unsent = await Promise.all(shards.map((s) => countUnsent(c.router.primary(s.name))));
    statements += shards.length;
    if (unsent.every((n) => n === 0)) return statements;
    if (performance.now() > giveUpAt) {
      const left = unsent.reduce((a, b) => a + b, 0);
      say(`${left} outbox rows still unsent after ${timeoutMs / 1000} s (a relay that cannot publish?): the count leaves out their marks`);
      return statements;
    }
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
  say: (line: string) => void = () => {},
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
  const diff = (a: Counts, b: Counts): Spell => ({
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
      const another = (): Op => {
        for (;;) {
          const op = nextOp();
          if (op.kind === kind) return op;
        }
      };
      const ops: Op[] = [];
      while (ops.length < count) ops.push(another());
      const reads = kind === "home" || kind === "user";
      // Reads: the first pass warms what these readers touch. A write is never the same twice.
      if (reads) for (const op of ops) await target.run(op);
      // What the runs before left to the consumers (a closed loop's backlog, lingering group
      // commits) is done before the count starts: it is not this request type's work, and, still
      // running down, it would not be in the idle window that is subtracted either.
      await drainConsumers(c.infra.natsUrl, () => {});
      await outboxSent(c, say);
      // What the load before leaves the servers and processes to do once the consumers are done
      // (InnoDB flushing and purging its writes, the router's probes at traffic pace) decays over
      // seconds; it is waited out, and the idle rate is read on both sides of the window.
      const settledAfter = await settle([...pids, ...serverPids], say);
      const idleFrom = await snapshot();
      await delay(IDLE_BEFORE_MS);
      const latency = new Histogram();
      const t0 = await snapshot();
      // At least `count` requests and MIN_WINDOW_MS: reads go round the warmed ones again, writes are new.
      const windowEnds = performance.now() + MIN_WINDOW_MS;
      let sent = 0;
      while (sent < count || performance.now() < windowEnds) {
        const op = sent < ops.length ? ops[sent]! : reads ? ops[sent % ops.length]! : another();
        const start = performance.now();
        await target.run(op);
        latency.recordMs(performance.now() - start);
        sent++;
      }
      // A write's work goes on after its answer: the event consumers (held up to their linger
      // for group commit) and the relay's marking of its rows as sent. All of it is the
      // request's, so the counted window ends once it is done, and the idle window after it
      // holds none of it (it would be subtracted as background work).
      let polls = 0;
      if (WRITES.has(kind)) {
        await drainConsumers(c.infra.natsUrl, () => {});
        polls = await outboxSent(c, say);
      }
      const t1 = await snapshot();
      // The waiting's own reads of the outboxes are not the requests'.
      const counted = diff(t0, t1);
      const busy = { ...counted, sql: counted.sql - polls };
      // The same time with nothing sent: what the system does anyway, averaged with the spell
      // before the window (background work still running down counts as much on both sides).
      await delay(Math.min(busy.seconds, 5) * 1000);
      const t2 = await snapshot();
      const idle = sumIdle(diff(idleFrom, t0), diff(t1, t2));
      const idleSql = idle.sql / idle.seconds;
      const idleRedis = idle.redis / idle.seconds;
      const perRequest = (used: number, idlePerSecond: number): number => round(Math.max(0, used - idlePerSecond * busy.seconds) / sent);
      const l = latency.summary();
      out[kind] = {
        requests: sent,
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
        settleSeconds: round(settledAfter),
      };
    }
    return out;
  } finally {
    await Promise.all(conns.map((conn) => conn.end().catch(() => {})));
  }
}

const round = (x: number): number => Math.round(x * 100) / 100;

/** Each type's counted window lasts at least this long: GC cycles and the servers' own rhythms average out. */
const MIN_WINDOW_MS = 3000;
/** The idle spell read before each window: short, as what it measures is still running down. */
const IDLE_BEFORE_MS = 1000;
/** settle(): the CPU of the processes is read over spells this long... */
const SETTLE_SPELL_MS = 500;
/** ...until a spell used less than this share of a core... */
const SETTLED_SHARE = 0.05;
/** ...or no less than this share of the spell before it (no longer running down)... */
const SETTLED_DECAY = 0.85;
/** ...or this long has passed. */
const SETTLE_MAX_MS = 15_000;

/**
 * Waits until the processes' summed CPU stops running down: reads it over
 * spells of SETTLE_SPELL_MS until one is under SETTLED_SHARE of a core or
 * no longer below SETTLED_DECAY of the spell before (at most SETTLE_MAX_MS).
 * Returns how long it waited, in seconds; without /proc, at once.
 */
async function settle(pids: readonly number[], say: (line: string) => void): Promise<number> {
  const start = performance.now();
  const seconds = (): number => (performance.now() - start) / 1000;
  let before = cpuSum(pids);
  if (before === undefined) return 0;
  let previous = Number.POSITIVE_INFINITY;
  for (;;) {
    const at = performance.now();
    await delay(SETTLE_SPELL_MS);
    const now = cpuSum(pids);
    if (now === undefined) return seconds();
    const share = (now - before) / ((performance.now() - at) / 1000);
    before = now;
    if (share < SETTLED_SHARE || share >= SETTLED_DECAY * previous || performance.now() - start >= SETTLE_MAX_MS) {
      if (seconds() * 1000 > 2 * SETTLE_SPELL_MS) say(`settled after ${seconds().toFixed(1)} s: the processes at ${(share * 100).toFixed(1)} % of a core`);
      return seconds();
    }
    previous = share;
  }
}

interface Spell {
  readonly sql: number;
  readonly redis: number;
  readonly redisWrites: number;
  readonly cpu: number | undefined;
  readonly serversCpu: number | undefined;
  readonly seconds: number;
}

/** Two idle spells as one (their counts and time added). */
function sumIdle(a: Spell, b: Spell): Spell {
  const add = (x: number | undefined, y: number | undefined): number | undefined => (x === undefined || y === undefined ? undefined : x + y);
  return {
    sql: a.sql + b.sql,
    redis: a.redis + b.redis,
    redisWrites: a.redisWrites + b.redisWrites,
    cpu: add(a.cpu, b.cpu),
    serversCpu: add(a.serversCpu, b.serversCpu),
    seconds: a.seconds + b.seconds,
  };
}

/** The processes' CPU seconds summed; undefined when one cannot be read. */
function cpuSum(pids: readonly number[]): number | undefined {
  let total = 0;
  for (const pid of pids) {
    const s = cpuSecondsPrecise(pid);
    if (s === undefined) return undefined;
    total += s;
  }
  return total;
}

export function workTable(byMode: Readonly<Record<string, Partial<Record<OpKind, WorkPerRequest>>>>): string {
  const lines = [
    "| system | type | SQL statements / request | Redis commands / request | Redis round trips / request | CPU ms / request: its own processes | CPU ms / request: with MariaDB, Redis, NATS | p50 ms alone | p99 ms alone | idle SQL/s, Redis/s (subtracted) | settled after, s |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const [mode, work] of Object.entries(byMode)) {
    for (const kind of OP_KINDS) {
      const w = work[kind];
      if (w === undefined) continue;
      lines.push(
        `| ${mode} | ${kind} | ${w.sqlPerRequest} | ${w.redisCommandsPerRequest} | ${w.redisRoundTripsPerRequest} | ${w.cpuMsPerRequest ?? "-"} | ${w.cpuMsPerRequestWithServers ?? "-"} | ${w.p50Ms} | ${w.p99Ms} | ${w.idleSqlPerSecond}, ${w.idleRedisPerSecond} | ${w.settleSeconds ?? "-"} |`,
      );
    }
  }
  return lines.join("\n");
}
