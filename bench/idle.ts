/**
 * What the system does with no traffic at all: SQL statements per second on
 * every MariaDB member, Redis commands per second, and CPU per process, from
 * the servers' own counters (SHOW GLOBAL STATUS, INFO) and /proc, for the
 * single process and the mesh over the same private cluster.
 *
 *   npm run bench:idle [-- --seconds 30 --settle 10 --modes single,mesh]
 *
 * Prints a table and writes bench/results/idle.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createConnection, type Connection, type RowDataPacket } from "mysql2/promise";
import { startBenchCluster, type BenchCluster, type SystemMode } from "./dsb/cluster.js";
import { cpuBetween, cpuSnapshot, loadAverage, machine } from "./dsb/machine.js";
import { exitWithUsageIfAsked } from "./usage.js";
import { stopOnInterrupt } from "./interrupt.js";

exitWithUsageIfAsked(`
SQL statements, Redis commands and CPU per second of an idle system, single
process and mesh, from the servers' own counters. Prints a table and writes
bench/results/idle.json.

  npm run bench:idle [-- options]

  --seconds N     measured seconds per mode (30)
  --settle N      seconds to wait after start before measuring (10)
  --modes a,b     single, mesh (single,mesh)
  --out FILE      where the JSON goes
`);

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "30" },
    settle: { type: "string", default: "10" },
    modes: { type: "string", default: "single,mesh" },
    out: { type: "string" },
  },
});
const SECONDS = Number(args.seconds);
const SETTLE = Number(args.settle);
const MODES = args.modes.split(",").map((m) => m.trim()) as SystemMode[];
const started = Date.now();
const say = (line: string): void => void process.stderr.write(`[idle ${((Date.now() - started) / 1000).toFixed(0)} s] ${line}\n`);

/** Questions (statements) and every Com_<kind> counter of SHOW GLOBAL STATUS. */
type Counts = Record<string, number>;

async function statementCounts(conn: Connection): Promise<Counts> {
  const [rows] = await conn.query<RowDataPacket[]>("SHOW GLOBAL STATUS WHERE Variable_name = 'Questions' OR Variable_name LIKE 'Com\\_%'");
  return Object.fromEntries(rows.map((r) => [String(r.Variable_name), Number(r.Value)]));
}

const WRITES = ["Com_insert", "Com_update", "Com_delete", "Com_replace"];

async function redisCommands(c: BenchCluster): Promise<number> {
  const info = await c.redis.info("stats");
  return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
}

interface ModeResult {
  readonly mode: SystemMode;
  readonly seconds: number;
  /** Per member: statements per second (Questions, less this bench's own two), and by kind. */
  readonly members: Record<string, { statementsPerSecond: number; selectsPerSecond: number; writesPerSecond: number }>;
  readonly sqlPerSecond: number;
  /** Statements per second by kind (Com_select, Com_show_status, ...), all members, this bench's own SHOW STATUS left out; nonzero only. */
  readonly byKind: Record<string, number>;
  readonly redisCommandsPerSecond: number;
  readonly processes: Record<string, { percentOfCore: number }>;
}

async function measureMode(c: BenchCluster, mode: SystemMode): Promise<ModeResult> {
  const members = c.infra.mysql.replicaSets.flatMap((rs) => [rs.primary, ...rs.replicas]);
  const conns = await Promise.all(
    members.map((m) => createConnection({ host: m.host, port: m.port, user: c.infra.mysql.adminUser.user, password: c.infra.mysql.adminUser.password })),
  );
  try {
    say(`${mode}: settling ${SETTLE} s`);
    await delay(SETTLE * 1000);
    say(`${mode}: measuring ${SECONDS} s of idle`);
    const pids = c.pids();
    const cpuBefore = cpuSnapshot(pids);
    const before = await Promise.all(conns.map(statementCounts));
    const redisBefore = await redisCommands(c);
    const t0 = performance.now();
    await delay(SECONDS * 1000);
    const after = await Promise.all(conns.map(statementCounts));
    const redisAfter = await redisCommands(c);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = cpuBetween(cpuBefore, cpuSnapshot(pids), 0, seconds);
    const perSecond = (n: number): number => Math.round((n / seconds) * 10) / 10;
    const byMember: ModeResult["members"] = {};
    const kinds: Record<string, number> = {};
    let total = 0;
    members.forEach((m, i) => {
      const a = after[i]!;
      const b = before[i]!;
      const delta = (name: string): number => (a[name] ?? 0) - (b[name] ?? 0);
      // One SHOW GLOBAL STATUS of this bench's is counted in the window.
      const statements = delta("Questions") - 1;
      total += statements;
      for (const name of Object.keys(a)) if (name.startsWith("Com_")) kinds[name] = (kinds[name] ?? 0) + delta(name) - (name === "Com_show_status" ? 1 : 0);
      byMember[m.name] = {
        statementsPerSecond: perSecond(statements),
        selectsPerSecond: perSecond(delta("Com_select")),
        writesPerSecond: perSecond(WRITES.reduce((sum, w) => sum + delta(w), 0)),
      };
    });
    const byKind = Object.fromEntries(
      Object.entries(kinds)
        .filter(([, n]) => n > 0)
        .sort((x, y) => y[1] - x[1])
        .map(([name, n]) => [name.slice(4), perSecond(n)]),
    );
    const result: ModeResult = {
      mode,
      seconds: Math.round(seconds * 10) / 10,
      members: byMember,
      sqlPerSecond: perSecond(total),
      byKind,
      // One INFO of this bench's is counted in the window.
      redisCommandsPerSecond: perSecond(redisAfter - redisBefore - 1),
      processes: Object.fromEntries(Object.entries(cpu).map(([name, v]) => [name, { percentOfCore: v.percentOfCore }])),
    };
    say(`${mode}: ${result.sqlPerSecond} SQL statements/s, ${result.redisCommandsPerSecond} Redis commands/s`);
    return result;
  } finally {
    await Promise.all(conns.map((conn) => conn.end().catch(() => {})));
  }
}

let cluster: BenchCluster | undefined;
stopOnInterrupt(() => cluster?.stop(), say);

try {
  const loadAtStart = loadAverage();
  say(`starting a private cluster and the ${MODES[0]} system`);
  cluster = await startBenchCluster({ say, mode: MODES[0]! });
  const results: ModeResult[] = [];
  for (const [i, mode] of MODES.entries()) {
    if (i > 0) await cluster.relaunch(mode);
    results.push(await measureMode(cluster, mode));
  }
  await cluster.stop();
  cluster = undefined;

  const memberNames = Object.keys(results[0]!.members);
  console.log(`\nIdle: no requests; ${SECONDS} s measured after ${SETTLE} s settling; load average ${loadAtStart.join("/")} at start\n`);
  console.log(`| mode | SQL statements/s (all members) | ${memberNames.map((n) => `${n} stmts/s (SELECT, writes)`).join(" | ")} | Redis commands/s |`);
  console.log(`|---|---:|${memberNames.map(() => "---:").join("|")}|---:|`);
  for (const r of results) {
    console.log(
      `| ${r.mode} | ${r.sqlPerSecond} | ${memberNames.map((n) => `${r.members[n]!.statementsPerSecond} (${r.members[n]!.selectsPerSecond}, ${r.members[n]!.writesPerSecond})`).join(" | ")} | ${r.redisCommandsPerSecond} |`,
    );
  }
  console.log("\nStatements by kind, per second, all members (Com_ counters; a replica's applied writes are counted here though not among its client statements):\n");
  for (const r of results) console.log(`- ${r.mode}: ${Object.entries(r.byKind).map(([k, n]) => `${k} ${n}`).join(", ")}`);
  const processNames = [...new Set(results.flatMap((r) => Object.keys(r.processes)))];
  console.log(`\n| process | ${results.map((r) => `${r.mode} % of a core`).join(" | ")} |\n|---|${results.map(() => "---:").join("|")}|`);
  for (const n of processNames) console.log(`| ${n} | ${results.map((r) => r.processes[n]?.percentOfCore ?? "").join(" | ")} |`);
  const out = args.out ?? join(fileURLToPath(new URL("./results/", import.meta.url)), "idle.json");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify({ benchmark: "idle", date: new Date().toISOString(), machine: { ...machine(), loadAverageAtEnd: loadAverage() }, settings: { seconds: SECONDS, settle: SETTLE }, results }, null, 2)}\n`);
  say(`wrote ${out}`);
} catch (err) {
  say(`failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await cluster?.stop();
}
