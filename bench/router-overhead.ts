/**
 * Shard router overhead: the same point select and single-row insert, one at
 * a time, through the router (routing by user id, keyspace-qualified SQL,
 * admission, metrics) and through a raw mysql2 pool on the same primary and
 * database, in the same run against a private cluster.
 *
 *   npm run bench:router -- [--queries 4000] [--warmup 1000] [--rounds 5] [--block 100] [--out bench/results/router-overhead.json]
 *
 * Reports per query: latency (mean, p50, p99) and this process's CPU
 * (user + system over the measured queries / queries). Within a round the
 * variants take turns in blocks of --block queries (the machine's load drifts;
 * this way each variant sees the same drift); rounds rotate which goes first.
 * The table shows the median over rounds, and the overhead (router minus raw,
 * and router / raw) computed per round, then the median.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createPool, type Pool } from "mysql2/promise";
import { startLocalCluster, type RunningInfra } from "../devcluster/index.js";
import { createMetrics } from "../lib/metrics.js";
import { createQualifier } from "../lib/shard/qualify.js";
import { createShardRouter, type ShardRouter } from "../lib/shard/router.js";

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const DEFAULT_OUT = fileURLToPath(new URL("./results/router-overhead.json", import.meta.url));
const SHARD = "-40";

type Workload = "point select" | "insert one row";
type Variant = "raw mysql2" | "router" | "router, no metrics";
const WORKLOADS: readonly Workload[] = ["point select", "insert one row"];
const VARIANTS: readonly Variant[] = ["raw mysql2", "router", "router, no metrics"];

interface Figures {
  readonly meanUs: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly cpuUsPerQuery: number;
}

type Query = (i: number) => Promise<unknown>;

const say = (line: string): void => console.error(`[bench] ${line}`);

function percentile(sorted: Float64Array, p: number): number {
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * One round of one workload: every variant warms up, then the variants take
 * turns in blocks of `block` queries until each has run `queries`. The load on
 * a shared machine drifts in phases; taking turns lets every variant see the
 * same phases.
 */
async function measureRound(
  variants: readonly { name: Variant; query: Query }[],
  queries: number,
  warmup: number,
  block: number,
  next: () => number,
): Promise<Map<Variant, Figures>> {
  for (const v of variants) for (let i = 0; i < warmup; i++) await v.query(next());
  const latencies = new Map(variants.map((v) => [v.name, new Float64Array(queries)]));
  const cpuMicros = new Map(variants.map((v) => [v.name, 0]));
  for (let done = 0; done < queries; done += block) {
    const n = Math.min(block, queries - done);
    for (const v of variants) {
      const into = latencies.get(v.name)!;
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await v.query(next());
        into[done + i] = (performance.now() - t0) * 1000;
      }
      const cpu = process.cpuUsage(cpu0);
      cpuMicros.set(v.name, cpuMicros.get(v.name)! + cpu.user + cpu.system);
    }
  }
  const figures = new Map<Variant, Figures>();
  for (const v of variants) {
    const l = latencies.get(v.name)!;
    let sum = 0;
    for (const x of l) sum += x;
    l.sort();
    figures.set(v.name, {
      meanUs: sum / queries,
      p50Us: percentile(l, 50),
      p99Us: percentile(l, 99),
      cpuUsPerQuery: cpuMicros.get(v.name)! / queries,
    });
  }
  return figures;
}

function packageVersion(name: string): string {
  const file = fileURLToPath(new URL(`../node_modules/${name}/package.json`, import.meta.url));
  return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
}

function fmt(n: number, digits = 0): string {
  return n.toFixed(digits);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      queries: { type: "string", default: "4000" },
      warmup: { type: "string", default: "1000" },
      rounds: { type: "string", default: "5" },
      block: { type: "string", default: "100" },
      out: { type: "string", default: DEFAULT_OUT },
    },
  });
  const params = {
    queries: Number(values.queries),
    warmup: Number(values.warmup),
    rounds: Number(values.rounds),
    block: Number(values.block),
  };
  for (const [k, v] of Object.entries(params)) if (!Number.isInteger(v) || v < 1) throw new Error(`--${k} must be a positive integer`);
  const out = values.out!;
  const started = new Date();

  say("starting a private cluster...");
  let cluster: RunningInfra | undefined;
  let raw: Pool | undefined;
  const routers: ShardRouter[] = [];
  try {
    cluster = await startLocalCluster({ ephemeral: true, log: () => {} });
    const { keyspace, replicaSets, shards } = cluster.toJSON().mysql;
    const topology = { keyspace, replicaSets, shards, epoch: 0, updateTime: started.toISOString() };
    const shard = topology.shards.find((s) => s.name === SHARD)!;
    const primary = topology.replicaSets.find((rs) => rs.name === shard.replicaSet)!.primary;
    const credentials = cluster.mysql.appUser;

    // The baseline: what a hand-written store would do against one known database.
    raw = createPool({
      host: primary.host,
      port: primary.port,
      user: credentials.user,
      password: credentials.password,
      database: shard.database,
      connectionLimit: 8,
      supportBigNumbers: true,
      bigNumberStrings: true,
      timezone: "Z",
    });
    const withMetrics = await createShardRouter({ topology, credentials, metrics: createMetrics("bench") });
    const bare = await createShardRouter({ topology, credentials });
    routers.push(withMetrics, bare);

    // Users that all live on the benchmarked shard.
    const ids: string[] = [];
    for (let n = 1n; ids.length < 1000; n++) if (withMetrics.shardForUser(n).name === SHARD) ids.push(String(n));
    say(`seeding ${ids.length} users on shard ${SHARD} (${shard.database} on ${primary.name})...`);
    for (const id of ids) {
      await raw.execute("INSERT INTO users (id, handle, email, password_hash, bio) VALUES (?, ?, ?, ?, ?)", [id, `u${id}`, `u${id}@example.com`, "x", "bench"]);
    }
    const liker = ids[0]!;
    const version = ((await raw.query("SELECT VERSION() AS v")) as unknown as [{ v: string }[]])[0][0]!.v;

    const selectSql = "SELECT id, handle, bio, follower_count FROM users WHERE id = ?";
    const insertSql = "INSERT INTO likes (user_id, tweet_id) VALUES (?, ?)";
    const pick = (i: number): string => ids[(i * 7919) % ids.length]!;
    const rawPool = raw;
    const viaRouter = (r: ShardRouter): Record<Workload, Query> => ({
      "point select": (i) => r.primaryForUser(pick(i)).query(selectSql.replace("FROM users", "FROM chirp.users"), [pick(i)]),
      "insert one row": (i) => r.primaryForUser(liker).execute(insertSql.replace("INTO likes", "INTO chirp.likes"), [liker, String(i)]),
    });
    const queriesFor: Record<Variant, Record<Workload, Query>> = {
      "raw mysql2": {
        "point select": (i) => rawPool.execute(selectSql, [pick(i)]),
        "insert one row": (i) => rawPool.execute(insertSql, [liker, String(i)]),
      },
      router: viaRouter(withMetrics),
      "router, no metrics": viaRouter(bare),
    };

    // Two pieces every routed statement pays, timed in-process as context for the table.
    const time = (fn: (i: number) => unknown, n = 200_000): number => {
      for (let i = 0; i < n / 10; i++) fn(i);
      const t0 = performance.now();
      for (let i = 0; i < n; i++) fn(i);
      return ((performance.now() - t0) * 1000) / n;
    };
    const qualifyCached = createQualifier("chirp");
    const inProcess = {
      shardForUserUs: time((i) => withMetrics.shardForUser(ids[i % ids.length]!)),
      qualifyCachedUs: time(() => qualifyCached("SELECT id, handle, bio, follower_count FROM chirp.users WHERE id = ?", shard.database)),
    };
    say(`in-process, per statement: shardForUser (hash vindex + keyrange lookup) ${inProcess.shardForUserUs.toFixed(2)} µs; qualified SQL (cache hit) ${inProcess.qualifyCachedUs.toFixed(2)} µs`);

    const perRound = new Map<string, Figures[]>();
    const key = (w: Workload, v: Variant): string => `${w}|${v}`;
    let counter = 0; // distinct tweet ids for every insert of the run
    const next = (): number => counter++;
    for (let round = 0; round < params.rounds; round++) {
      for (const workload of WORKLOADS) {
        const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
        const figures = await measureRound(
          order.map((name) => ({ name, query: queriesFor[name][workload] })),
          params.queries,
          params.warmup,
          params.block,
          next,
        );
        for (const variant of VARIANTS) {
          const f = figures.get(variant)!;
          perRound.set(key(workload, variant), [...(perRound.get(key(workload, variant)) ?? []), f]);
          say(
            `round ${round + 1}/${params.rounds} ${workload.padEnd(14)} ${variant.padEnd(18)} mean ${fmt(f.meanUs)} µs, p50 ${fmt(f.p50Us)}, p99 ${fmt(f.p99Us)}, CPU ${fmt(f.cpuUsPerQuery)} µs/query`,
          );
        }
      }
    }

    const medianOf = (items: readonly Figures[]): Figures => ({
      meanUs: median(items.map((f) => f.meanUs)),
      p50Us: median(items.map((f) => f.p50Us)),
      p99Us: median(items.map((f) => f.p99Us)),
      cpuUsPerQuery: median(items.map((f) => f.cpuUsPerQuery)),
    });
    const overhead = (w: Workload, v: Variant) => {
      const base = perRound.get(key(w, "raw mysql2"))!;
      const mine = perRound.get(key(w, v))!;
      const per = (pickF: (f: Figures) => number) => ({
        diff: median(mine.map((f, i) => pickF(f) - pickF(base[i]!))),
        ratio: median(mine.map((f, i) => pickF(f) / pickF(base[i]!))),
      });
      return { meanUs: per((f) => f.meanUs), p50Us: per((f) => f.p50Us), p99Us: per((f) => f.p99Us), cpuUsPerQuery: per((f) => f.cpuUsPerQuery) };
    };

    const rows = WORKLOADS.flatMap((w) =>
      VARIANTS.map((v) => ({ workload: w, variant: v, median: medianOf(perRound.get(key(w, v))!), overhead: v === "raw mysql2" ? undefined : overhead(w, v) })),
    );
    const lines = [
      `| workload | variant | mean µs | p50 µs | p99 µs | client CPU µs/query | mean − raw | p50 − raw | CPU − raw | mean × raw | CPU × raw |`,
      `|----------|---------|--------:|-------:|-------:|--------------------:|-----------:|----------:|----------:|-----------:|----------:|`,
      ...rows.map((r) => {
        const o = r.overhead;
        const cells = o
          ? [`${fmt(o.meanUs.diff)}`, `${fmt(o.p50Us.diff)}`, `${fmt(o.cpuUsPerQuery.diff)}`, `${fmt(o.meanUs.ratio, 2)}`, `${fmt(o.cpuUsPerQuery.ratio, 2)}`]
          : ["", "", "", "", ""];
        return `| ${r.workload} | ${r.variant} | ${fmt(r.median.meanUs)} | ${fmt(r.median.p50Us)} | ${fmt(r.median.p99Us)} | ${fmt(r.median.cpuUsPerQuery)} | ${cells.join(" | ")} |`;
      }),
    ];
    console.log(
      `\n${params.queries} queries per variant and round, one at a time, variants taking turns every ${params.block}; median of ${params.rounds} rounds (overheads: per round, then median):\n`,
    );
    console.log(lines.join("\n"));

    const cpus = os.cpus();
    const result = {
      benchmark: "router-overhead",
      date: started.toISOString(),
      durationSec: Math.round((Date.now() - started.getTime()) / 100) / 10,
      machine: {
        cpus: cpus.length,
        cpuModel: cpus[0]?.model ?? "unknown",
        platform: `${os.platform()} ${os.release()} ${os.arch()}`,
        node: process.version,
        loadAverageAtEnd: os.loadavg(),
      },
      packages: { mysql2: packageVersion("mysql2"), "prom-client": packageVersion("prom-client"), server: version },
      parameters: {
        ...params,
        concurrency: 1,
        shard: SHARD,
        database: shard.database,
        select: selectSql,
        insert: insertSql,
        transport: "loopback 127.0.0.1, semi-sync replica acknowledging inserts, ephemeral cluster (sync_binlog=0)",
      },
      inProcessUs: inProcess,
      rows: rows.map((r) => ({ ...r, rounds: perRound.get(key(r.workload, r.variant)) })),
    };
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`\nwrote ${out.startsWith(BENCH_DIR) ? `bench${out.slice(BENCH_DIR.length)}` : out}`);
  } finally {
    for (const r of routers) await r.close();
    await raw?.end();
    await cluster?.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
