/**
 * What the spare replica costs (decision 24): the same private cluster with one
 * and with two semi-sync replicas per replica set, durable settings as
 * `npm start` runs it. For each: commit latency of single-row INSERTs through
 * the shard router on rs0 (shard -40), one writer back to back and then
 * `--writers` at once, p50/p99; and with nothing running, each mariadbd's CPU
 * (from /proc over `--idle` seconds) and resident memory.
 *
 *   npm run bench:replica-cost [-- --seconds 20 --writers 8 --idle 30 --replicas 1,2]
 *
 * Prints a table and writes bench/results/replica-cost.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createConnection, type RowDataPacket } from "mysql2/promise";
import { newTestDataDir, startLocalCluster, type RunningInfra } from "../devcluster/index.js";
import { loadShardConfig } from "../lib/shard/shard-config.js";
import { createShardRouter, type ShardRouter } from "../lib/shard/router.js";
import { cpuBetween, cpuSnapshot, machine } from "./dsb/machine.js";
import { PROBE_TABLE, PROBE_TABLE_DDL } from "../test/support/write-load.js";
import { exitWithUsageIfAsked } from "./usage.js";

exitWithUsageIfAsked(`
Commit latency (1 and N writers) and idle CPU and memory per mariadbd, with one
and with two semi-sync replicas per replica set. Writes
bench/results/replica-cost.json.

  npm run bench:replica-cost [-- options]

  --seconds N     measured seconds per write phase (20)
  --writers N     concurrent writers in the second phase (8)
  --idle N        seconds of idle CPU measurement (30)
  --replicas a,b  replicas per set to compare (1,2)
  --out FILE      where the JSON goes
`);

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    writers: { type: "string", default: "8" },
    idle: { type: "string", default: "30" },
    replicas: { type: "string", default: "1,2" },
    out: { type: "string" },
  },
});
const seconds = Number(args.seconds);
const writers = Number(args.writers);
const idleSeconds = Number(args.idle);
const replicaCounts = args.replicas.split(",").map(Number);
const out = args.out ?? fileURLToPath(new URL("./results/replica-cost.json", import.meta.url));
const log = (line: string): void => console.error(`[bench] ${line}`);

interface Latency {
  writes: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface Result {
  replicasPerSet: number;
  oneWriter: Latency;
  manyWriters: Latency & { writers: number };
  idle: { member: string; cpuPercentOfCore: number; rssMiB: number }[];
}

const results: Result[] = [];
for (const replicasPerSet of replicaCounts) {
  const dataDir = newTestDataDir();
  let infra: RunningInfra | undefined;
  let router: ShardRouter | undefined;
  try {
    log(`starting a durable cluster with ${replicasPerSet} replica(s) per set...`);
    infra = await startLocalCluster({ dataDir, replicasPerSet, log: () => {} });
    const cluster = infra;
    const rs0 = cluster.mysql.replicaSets.find((r) => r.name === "rs0")!;
    const shard = cluster.mysql.shards.find((s) => s.name === "-40")!;
    const c = await createConnection({ host: rs0.primary.host, port: rs0.primary.port, user: cluster.mysql.adminUser.user, password: cluster.mysql.adminUser.password, database: shard.database });
    await c.query(PROBE_TABLE_DDL);
    await c.end();
    router = await createShardRouter({
      topology: {
        keyspace: "chirp",
        epoch: 0,
        replicaSets: cluster.mysql.replicaSets,
        shards: cluster.mysql.shards.map((s) => ({ name: s.name, replicaSet: s.replicaSet, database: s.database })),
        updateTime: new Date().toISOString(),
      },
      credentials: cluster.mysql.appUser,
    });
    let nextId = 0;
    const phase = async (n: number): Promise<Latency> => {
      const samples: number[] = [];
      const until = performance.now() + seconds * 1000;
      await Promise.all(
        Array.from({ length: n }, async () => {
          while (performance.now() < until) {
            const t = performance.now();
            await router!.primary("-40").execute(`INSERT INTO ${router!.keyspace}.${PROBE_TABLE} (id, ack_time) VALUES (?, UTC_TIMESTAMP(6))`, [++nextId]);
            samples.push(performance.now() - t);
          }
        }),
      );
      samples.sort((a, b) => a - b);
      const q = (p: number): number => round(samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] ?? 0);
      return { writes: samples.length, perSecond: Math.round(samples.length / seconds), p50Ms: q(0.5), p99Ms: q(0.99), maxMs: round(samples.at(-1) ?? 0) };
    };
    // Warm up (connections, prepared statements, buffer pool), then measure.
    const warmUntil = performance.now() + 3000;
    while (performance.now() < warmUntil) await router.primary("-40").execute(`INSERT INTO ${router.keyspace}.${PROBE_TABLE} (id) VALUES (?)`, [++nextId]);
    const oneWriter = await phase(1);
    log(`${replicasPerSet} replica(s): 1 writer p50 ${oneWriter.p50Ms} ms p99 ${oneWriter.p99Ms} ms (${oneWriter.perSecond}/s)`);
    const many = await phase(writers);
    log(`${replicasPerSet} replica(s): ${writers} writers p50 ${many.p50Ms} ms p99 ${many.p99Ms} ms (${many.perSecond}/s)`);
    await router.close();
    router = undefined;

    // Idle means caught up: every replica has applied what its primary has.
    for (const rs of cluster.mysql.replicaSets) {
      const admin = { user: cluster.mysql.adminUser.user, password: cluster.mysql.adminUser.password };
      const p = await createConnection({ host: rs.primary.host, port: rs.primary.port, ...admin });
      const [[row]] = await p.query<RowDataPacket[]>("SELECT @@global.gtid_binlog_pos AS pos");
      await p.end();
      for (const r of rs.replicas) {
        const c = await createConnection({ host: r.host, port: r.port, ...admin });
        await c.query("SELECT MASTER_GTID_WAIT(?, 120)", [String(row?.["pos"] ?? "")]);
        await c.end();
      }
    }
    await delay(5000);
    const members = cluster.processes.filter((p) => /^rs\d-[a-z]$/.test(p.name));
    const pids = Object.fromEntries(members.map((p) => [p.name, p.pid]));
    const before = cpuSnapshot(pids);
    await delay(idleSeconds * 1000);
    const after = cpuSnapshot(pids);
    const idle = members.map((p) => ({
      member: p.name,
      cpuPercentOfCore: cpuBetween(before, after, 0, idleSeconds)[p.name]?.percentOfCore ?? NaN,
      rssMiB: rssMiB(p.pid),
    }));
    log(`${replicasPerSet} replica(s) idle: ${idle.map((m) => `${m.member} ${m.cpuPercentOfCore}% ${m.rssMiB} MiB`).join(", ")}`);
    results.push({ replicasPerSet, oneWriter, manyWriters: { ...many, writers }, idle });
  } finally {
    await router?.close();
    await infra?.stop().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  }
}

const lines = [
  "| replicas per set | 1 writer p50 / p99 (ms) | 1 writer writes/s | " + `${writers} writers p50 / p99 (ms) | ${writers} writers writes/s | idle CPU per member (% of a core) | RSS per member (MiB) |`,
  "|---|---|---|---|---|---|---|",
  ...results.map((r) => {
    const cpu = r.idle.map((m) => m.cpuPercentOfCore);
    const rss = r.idle.map((m) => m.rssMiB);
    const range = (xs: number[]): string => `${Math.min(...xs)}-${Math.max(...xs)}`;
    return `| ${r.replicasPerSet} | ${r.oneWriter.p50Ms} / ${r.oneWriter.p99Ms} | ${r.oneWriter.perSecond} | ${r.manyWriters.p50Ms} / ${r.manyWriters.p99Ms} | ${r.manyWriters.perSecond} | ${range(cpu)} | ${range(rss)} |`;
  }),
];
console.log(lines.join("\n"));
mkdirSync(dirname(out), { recursive: true });
writeFileSync(
  out,
  `${JSON.stringify({ benchmark: "replica-cost", date: new Date().toISOString(), machine: machine(), parameters: { seconds, writers, idleSeconds, durability: "durable", shardConfig: loadShardConfig("local").replicaSets.map((r) => r.members.length) }, results }, null, 2)}\n`,
);
log(`wrote ${out}`);

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : 0;
  } catch {
    return 0;
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
