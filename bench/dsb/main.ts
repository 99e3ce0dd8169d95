/**
 * The DeathStarBench social-network workload against Chirp, next to a floor.
 *
 *   npm run bench [-- --seconds 20 --warmup 5 --concurrency 32 --rate N --rates a,b,c --no-floor --profile --out FILE]
 *   npm run bench:sweep [-- --users 10240 --sweep-rate 60 --seconds 20]
 *
 * Default run (about 3-4 minutes here): a private cluster and mesh, the
 * socfb-Reed98 data set bulk-loaded and checked through the API, every home
 * list built; then the mix (60 % home, 30 % user timeline, 10 % compose)
 * closed loop against Chirp and against the floor (bare node:http doing the
 * same Redis and MySQL work, floor-server.ts), then open loop at --rate
 * (default: half the closed-loop Chirp throughput, rounded) against both, and
 * at each of --rates. Prints the tables and writes bench/results/dsb.json.
 *
 * --sweep: the same with the Reed98 set and a synthetic power-law set of
 * --users users (10x: 10,240 by default, with authors of 10,000+ followers),
 * each on a fresh cluster, Chirp only: closed loop, and open loop at
 * --sweep-rate. Home timelines are read by --readers users (2,048 by default,
 * a random sample; all 962 of Reed98), whose lists are built first. Writes
 * bench/results/dsb-sweep.json.
 *
 * --profile: every mesh process samples its CPU (V8's profiler, 1 ms) during
 * the closed-loop Chirp window (cpu-profile-preload.mjs); the profiles are
 * summarized as self time by function and by package per process. Profiling
 * slows the mesh a little: a profiled run's figures are marked as such.
 */
import { fork, type ChildProcess } from "node:child_process";
import { createConnection, type RowDataPacket } from "mysql2/promise";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startBenchCluster, type BenchCluster, type SystemMode } from "./cluster.js";
import { runLoad, round, type RunResult, type RunSpec } from "./loadgen.js";
import { drainConsumers } from "./drain.js";
import { cpuBetween, cpuSnapshot, loadAverage, machine, packageVersions, serverVersions, type CpuTimes, type ProcessCpu } from "./machine.js";
import { prepare, type Prepared } from "./prepare.js";
import { findAllocations, findProfiles, summarizeProfile, type ProcessProfile } from "./profile.js";
import { createChirpTarget, createFloorTarget, type Target } from "./targets.js";
import { exitWithUsageIfAsked } from "../usage.js";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { UserService } from "../../gen/chirp/user/v1/user_service_pb.js";
import { createProgress, mapConcurrent } from "../../scripts/cli/progress.js";
import { SEED_PASSWORD } from "../../scripts/cli/seed.js";
import { DSB_MIX, OP_KINDS, SOCIAL_MIX, createOpPicker, handleOf, reed98, synthetic, type Dataset, type OpKind } from "./workload.js";
import { measureWork, workTable, type WorkPerRequest } from "./work.js";
import { stopOnInterrupt } from "../interrupt.js";

exitWithUsageIfAsked(`
The DeathStarBench social-network mix (60 % home timeline, 30 % user timeline,
10 % compose) through the gateway of a private cluster and mesh loaded with
socfb-Reed98, next to a floor (bare node:http doing the same Redis and MySQL
work). Prints per-type tables and writes bench/results/dsb.json.

  npm run bench [-- options]
  npm run bench:sweep [-- options]       (same as --sweep)

  --seconds N        measured seconds per run (20)
  --warmup N         warm-up seconds per run (5)
  --concurrency N    closed loop: requests in flight (32)
  --rate N           open loop: arrivals per second (default: half the closed-loop throughput)
  --rates a,b,c      more open-loop rates, for the latency/throughput plot
  --modes a,b        which deployments, in order: single (one process), mesh (single,mesh)
  --processes N      single: N processes of it behind the same ports (1)
  --work N           requests of each type sent one at a time to count SQL statements and Redis commands per request (200; 0: skip)
  --no-floor         skip the floor
  --no-closed        skip the closed-loop runs
  --profile          V8 CPU profiles of every mesh process over the closed-loop window
  --binary           Connect binary instead of JSON
  --mix M            the mix: dsb (default: home 60 %, user 30 %, compose 10 %), social (the
                     same scaled to 90 %, with repost 5 % and reply 5 % of loaded tweets), or
                     K=F,... over home, user, compose, repost, reply (home=1 profiles home
                     reads alone)
  --timeout-ms N     per-request deadline (10000)
  --target-url URL   drive an already running gateway instead (your deployment, seeded with
                     \`npx chirp seed\`): log in as the seeded accounts, run the mix closed
                     and open loop, print latencies (no per-process CPU or server counters)
  --out FILE         where the JSON goes
  --sweep            Reed98 and a synthetic power-law set, Chirp only (dsb-sweep.json)
  --users N          sweep: users of the synthetic set (10240)
  --readers N        sweep: home-timeline readers sampled (2048)
  --sweep-rate N     sweep: open-loop rate (60)
`);

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "20" },
    warmup: { type: "string", default: "5" },
    concurrency: { type: "string", default: "32" },
    rate: { type: "string" },
    rates: { type: "string", default: "" },
    modes: { type: "string", default: "single,mesh" },
    processes: { type: "string", default: "1" },
    work: { type: "string", default: "200" },
    "no-floor": { type: "boolean", default: false },
    "no-closed": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    sweep: { type: "boolean", default: false },
    users: { type: "string", default: "10240" },
    readers: { type: "string", default: "2048" },
    "sweep-rate": { type: "string", default: "60" },
    "timeout-ms": { type: "string", default: "10000" },
    binary: { type: "boolean", default: false },
    mix: { type: "string" },
    out: { type: "string" },
    "target-url": { type: "string" },
  },
});

const MODES = args.modes.split(",").map((m) => m.trim()) as SystemMode[];
for (const m of MODES) if (m !== "single" && m !== "mesh") throw new Error(`--modes: unknown mode ${m} (single, mesh)`);
const MIX = args.mix === undefined ? DSB_MIX : parseMix(args.mix);
const SECONDS = Number(args.seconds);
const WARMUP = Number(args.warmup);
const CONCURRENCY = Number(args.concurrency);
const TIMEOUT_MS = Number(args["timeout-ms"]);
/** Sweep: home readers per data set (their lists are built first); the Reed98 set has fewer users, so all. */
const READERS = Number(args.readers);
const RESULTS = fileURLToPath(new URL("../results/", import.meta.url));
const started = Date.now();
const say = (line: string): void => void process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0)} s] ${line}\n`);

let cluster: BenchCluster | undefined;
/** The loaded data set's tweet ids: what the social mix's reposts and replies name (set once it is loaded). */
let loadedTweetIds: bigint[] = [];
let floorProc: ChildProcess | undefined;
const targets: Target[] = [];
async function cleanup(): Promise<void> {
  for (const t of targets.splice(0)) t.close();
  floorProc?.kill();
  floorProc = undefined;
  await cluster?.stop();
  cluster = undefined;
}
stopOnInterrupt(cleanup, say);

interface Measured extends RunResult {
  /** CPU per recorded request and percent of a core, by process (mesh, servers, floor, this load generator). */
  readonly processes: Record<string, ProcessCpu>;
}

/** The floor's own table on every shard database (the services' MySQL user may not create tables; the admin may). */
async function createFloorTables(c: BenchCluster): Promise<void> {
  for (const rs of c.infra.mysql.replicaSets) {
    const conn = await createConnection({ host: rs.primary.host, port: rs.primary.port, user: c.infra.mysql.adminUser.user, password: c.infra.mysql.adminUser.password });
    try {
      const [dbs] = await conn.query<RowDataPacket[]>("SHOW DATABASES LIKE 'chirp%'");
      for (const row of dbs) {
        const db = String(Object.values(row)[0]);
        await conn.query(
          `CREATE TABLE IF NOT EXISTS \`${db}\`.floor_tweets (id BIGINT UNSIGNED NOT NULL PRIMARY KEY, author_id BIGINT UNSIGNED NOT NULL, text VARCHAR(2800) NOT NULL) ENGINE=InnoDB`,
        );
      }
    } finally {
      await conn.end();
    }
  }
}

async function startFloor(c: BenchCluster, p: Prepared): Promise<Target> {
  await createFloorTables(c);
  floorProc = fork(fileURLToPath(new URL("./floor-server.ts", import.meta.url)), [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, ...c.env },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  floorProc.send({ userIds: p.loaded.userIds.map(String) });
  const port = await new Promise<number>((resolve, reject) => {
    floorProc!.once("message", (m: { port: number }) => resolve(m.port));
    floorProc!.once("exit", (code) => reject(new Error(`floor server exited (${code})`)));
  });
  const t = createFloorTarget({ port, timeoutMs: TIMEOUT_MS });
  targets.push(t);
  return t;
}

/** The servers every target uses (each MariaDB member, Redis, NATS): the cluster's processes that are not Chirp's own. */
function serverPids(c: BenchCluster): number[] {
  const own = c.meshPids();
  return Object.entries(c.pids())
    .filter(([name]) => !(name in own))
    .map(([, pid]) => pid);
}

/** SIGUSR2 to every mesh process: starts, then stops and writes, its CPU profile (cpu-profile-preload.mjs). */
function toggleProfilers(c: BenchCluster): void {
  for (const pid of Object.values(c.meshPids())) {
    try {
      process.kill(pid, "SIGUSR2");
    } catch {
      // gone
    }
  }
}

/** `c` undefined: a deployment this run did not start (--target-url); only the load generator's CPU is known. */
async function measure(c: BenchCluster | undefined, d: Dataset, readers: readonly number[], target: Target, spec: RunSpec, seed: number, profile = false): Promise<Measured> {
  const pids = { ...c?.pids(), ...(floorProc?.pid === undefined ? {} : { floor: floorProc.pid }), loadgen: process.pid };
  let before: Record<string, CpuTimes> = {};
  let after: Record<string, CpuTimes> = {};
  const result = await runLoad(target, createOpPicker(d, seed, readers.length === d.users ? undefined : readers, MIX, loadedTweetIds), spec, {
    onWindowStart: () => {
      before = cpuSnapshot(pids);
      if (profile && c !== undefined) toggleProfilers(c);
    },
    onWindowEnd: () => {
      after = cpuSnapshot(pids);
      if (profile && c !== undefined) toggleProfilers(c);
    },
  });
  const recorded = result.achievedPerSecond * result.seconds;
  const processes = cpuBetween(before, after, recorded, result.seconds);
  const l = result.all.latency;
  say(
    `${spec.label}: ${result.achievedPerSecond}/s, p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, errors ${JSON.stringify(result.all.errors)}; load generator ${result.loadgen.cpuPercent} % CPU, event loop ${result.loadgen.eventLoopUtilization}`,
  );
  return { ...result, processes };
}

/** "dsb", "social", "home=1" or "home=0.5,user=0.5": the request types' shares (missing ones 0), normalised to sum to 1. */
function parseMix(spec: string): Record<OpKind, number> {
  if (spec === "dsb") return { ...DSB_MIX };
  if (spec === "social") return { ...SOCIAL_MIX };
  const mix: Record<OpKind, number> = { home: 0, user: 0, compose: 0, repost: 0, reply: 0 };
  for (const part of spec.split(",")) {
    const [kind, share] = part.split("=");
    if (!OP_KINDS.includes(kind as OpKind) || !(Number(share) >= 0)) throw new Error(`--mix: "${part}" is not <${OP_KINDS.join("|")}>=<share>`);
    mix[kind as OpKind] = Number(share);
  }
  const sum = OP_KINDS.reduce((a, k) => a + mix[k], 0);
  if (sum <= 0) throw new Error("--mix: the shares add up to 0");
  for (const k of OP_KINDS) mix[k] /= sum;
  return mix;
}

const fmt = (x: number): string => (Number.isNaN(x) ? "-" : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** The request types the mix sends, then "all". */
const SHOWN_KINDS = [...OP_KINDS.filter((k) => MIX[k] > 0), "all"] as const;

function table(runs: readonly Measured[]): string {
  const lines = ["| run | type | ok/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors |", "|---|---|---:|---:|---:|---:|---:|---|"];
  for (const r of runs) {
    for (const k of SHOWN_KINDS) {
      const t = k === "all" ? r.all : r.byType[k];
      const errors = Object.entries(t.errors).map(([code, n]) => `${code} ${n}`).join(", ") || "0";
      lines.push(`| ${r.label} | ${k} | ${fmt(t.perSecond)} | ${fmt(t.latency.p50Ms)} | ${fmt(t.latency.p90Ms)} | ${fmt(t.latency.p99Ms)} | ${fmt(t.latency.p999Ms)} | ${errors} |`);
    }
  }
  return lines.join("\n");
}

interface Ratio {
  readonly run: string;
  readonly floorRun: string;
  readonly byType: Record<string, { throughput: number; p50: number; p90: number; p99: number; p999: number }>;
}

function ratios(runs: readonly Measured[]): Ratio[] {
  const out: Ratio[] = [];
  for (const r of runs.filter((x) => x.target === "chirp")) {
    const f = runs.find((x) => x.target === "floor" && x.mode === r.mode && x.rate === r.rate && x.concurrency === r.concurrency);
    if (f === undefined) continue;
    const byType: Ratio["byType"] = {};
    for (const k of SHOWN_KINDS) {
      const a = k === "all" ? r.all : r.byType[k];
      const b = k === "all" ? f.all : f.byType[k];
      byType[k] = {
        throughput: round(a.perSecond / b.perSecond, 3),
        p50: round(a.latency.p50Ms / b.latency.p50Ms, 1),
        p90: round(a.latency.p90Ms / b.latency.p90Ms, 1),
        p99: round(a.latency.p99Ms / b.latency.p99Ms, 1),
        p999: round(a.latency.p999Ms / b.latency.p999Ms, 1),
      };
    }
    out.push({ run: r.label, floorRun: f.label, byType });
  }
  return out;
}

function ratioTable(rs: readonly Ratio[]): string {
  const lines = ["| Chirp run ÷ floor run | type | ok/s × | p50 × | p90 × | p99 × | p99.9 × |", "|---|---|---:|---:|---:|---:|---:|"];
  for (const r of rs) for (const [k, v] of Object.entries(r.byType)) lines.push(`| ${r.run} ÷ ${r.floorRun} | ${k} | ${v.throughput} | ${v.p50} | ${v.p90} | ${v.p99} | ${v.p999} |`);
  return lines.join("\n");
}

function cpuTable(runs: readonly Measured[]): string {
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.processes)))];
  const lines = [`| process | ${runs.map((r) => `${r.label} CPU ms/req (% core; kernel's share)`).join(" | ")} |`, `|---|${runs.map(() => "---:").join("|")}|`];
  const cell = (c: ProcessCpu | undefined): string => (c === undefined ? "" : `${c.cpuMsPerRequest} (${c.percentOfCore} %; ${c.kernelPercent} %)`);
  for (const n of names) lines.push(`| ${n} | ${runs.map((r) => cell(r.processes[n])).join(" | ")} |`);
  return lines.join("\n");
}

function write(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(value, (_, v: unknown) => (typeof v === "bigint" ? String(v) : v), 2)}\n`);
  say(`wrote ${path}`);
}

function datasetInfo(d: Dataset, p: Prepared): Record<string, unknown> {
  let maxFollowers = 0;
  for (const f of p.loaded.followers) maxFollowers = Math.max(maxFollowers, f);
  return {
    name: d.name,
    description: d.description,
    users: d.users,
    follows: d.follower.length,
    tweets: p.loaded.tweets.length,
    maxFollowers,
    hotAuthors: p.hotAuthors,
    readers: p.readers.length,
    rowsLoaded: p.loaded.rows,
    checkedUsers: p.checkedUsers,
    timingsMs: Object.fromEntries(Object.entries(p.timings).map(([k, v]) => [k, Math.round(v)])),
  };
}

async function bench(): Promise<void> {
  const d = reed98();
  const profileDir = args.profile ? mkdtempSync(join(tmpdir(), "chirp-bench-prof-")) : undefined;
  const loadAtStart = loadAverage();
  say(`starting a private cluster and the ${MODES[0]} system (load average ${loadAtStart.join(", ")})${profileDir ? `; CPU profiles in ${profileDir}` : ""}`);
  cluster = await startBenchCluster({ say, mode: MODES[0]!, processes: Number(args.processes), ...(profileDir === undefined ? {} : { profileDir }) });
  const c = cluster;
  say(`system up`);
  const versions = await serverVersions(c.router, c.redis);
  const p = await prepare(c, d, say);
  loadedTweetIds = p.loaded.tweets.map((t) => t.id);
  const floor = args["no-floor"] ? undefined : await startFloor(c, p);
  const runs: Measured[] = [];
  const rates: Record<string, number> = {};
  const work: Record<string, Partial<Record<OpKind, WorkPerRequest>>> = {};
  // Only the types the mix sends (the picker gives no other).
  const workKinds = OP_KINDS.filter((k) => MIX[k] > 0);
  const workCount = Number(args.work);
  const picker = (seed: number) => createOpPicker(d, seed, p.readers.length === d.users ? undefined : p.readers, MIX, loadedTweetIds);
  let meshPids: Record<string, number> = {};
  const floorDone = new Set<string>();
  for (const [m, mode] of MODES.entries()) {
    if (m > 0) await c.relaunch(mode);
    const chirp = createChirpTarget({ gatewayUrl: c.mesh.gatewayUrl, tokenOf: (n) => p.tokens[n]!, userIdOf: (n) => p.loaded.userIds[n]!, timeoutMs: TIMEOUT_MS, binary: args.binary });
    targets.push(chirp);
    // The floor once per load shape: every mode is compared with the same floor run.
    const both = async (shape: "open" | "closed", n: number, seed: number): Promise<void> => {
      const tag = shape === "open" ? `open ${n}/s` : `closed ${n}`;
      const spec = { mode: shape, seconds: SECONDS, warmupSeconds: WARMUP, ...(shape === "open" ? { rate: n } : { concurrency: n }) };
      // Not measured: the events of the run before (drain.ts).
      await drainConsumers(c.infra.natsUrl, say);
      // The first closed-loop Chirp run of each mode is the one profiled (--profile).
      runs.push(await measure(c, d, p.readers, chirp, { ...spec, label: `chirp ${mode} ${tag}` }, seed, profileDir !== undefined && shape === "closed"));
      if (floor !== undefined && !floorDone.has(tag)) {
        floorDone.add(tag);
        await drainConsumers(c.infra.natsUrl, say);
        runs.push(await measure(c, d, p.readers, floor, { ...spec, label: `floor ${tag}` }, seed));
      }
    };
    if (!args["no-closed"]) await both("closed", CONCURRENCY, 11);
    const closedChirp = runs.find((r) => r.target === "chirp" && r.mode === "closed" && r.label.startsWith(`chirp ${mode} `));
    const rate = args.rate !== undefined ? Number(args.rate) : Math.max(10, Math.round((closedChirp?.achievedPerSecond ?? 100) / 2 / 10) * 10);
    rates[mode] = rate;
    await both("open", rate, 12);
    const curve = (args.rates ?? "").split(",").filter((s) => s !== "").map(Number);
    for (const [i, r] of curve.entries()) if (r !== rate) await both("open", r, 13 + i);
    if (workCount > 0) {
      await drainConsumers(c.infra.natsUrl, say);
      say(`${mode}: counting SQL statements and Redis commands per request (${workCount} of each type, one at a time)`);
      // The system's own processes; not the topology manager (an operator's tool, idle between failovers).
      const own = Object.entries(c.meshPids()).filter(([name]) => name !== "topology");
      work[mode] = await measureWork(c, chirp, picker(21), workCount, own.map(([, pid]) => pid), serverPids(c), workKinds, say);
    }
    meshPids = { ...meshPids, ...Object.fromEntries(Object.entries(c.meshPids()).map(([k, v]) => [`${mode}:${k}`, v])) };
  }
  if (workCount > 0 && floor !== undefined) work.floor = await measureWork(c, floor, picker(21), workCount, floorProc?.pid === undefined ? [] : [floorProc.pid], serverPids(c), workKinds, say);
  const curve = (args.rates ?? "").split(",").filter((s) => s !== "").map(Number);
  const closedChirp = runs.find((r) => r.target === "chirp" && r.mode === "closed");
  const loadAtEnd = loadAverage();
  await cleanup();

  let profile: ProcessProfile[] | undefined;
  const allocations: Record<string, Record<string, number>> = {};
  if (profileDir !== undefined && closedChirp !== undefined) {
    const files = findProfiles(profileDir, meshPids);
    profile = Object.entries(files).map(([name, file]) => summarizeProfile(name, file, { start: 0, end: Number.POSITIVE_INFINITY }));
    for (const pr of profile) {
      say(`profile ${pr.process}: busy ${pr.busyMs} of ${pr.windowMs} ms sampled; top: ${pr.topFunctions.slice(0, 4).map((f) => `${f.name} ${f.percentOfBusy} %`).join("; ")}`);
    }
    // Per request of the profiled run (each mode's first closed-loop run).
    for (const [name, counts] of Object.entries(findAllocations(profileDir, meshPids))) {
      const mode = name.split(":")[0];
      const run = runs.find((r) => r.target === "chirp" && r.mode === "closed" && r.label.startsWith(`chirp ${mode} `));
      const requests = run === undefined ? 0 : run.achievedPerSecond * run.seconds;
      if (requests > 0) allocations[name] = Object.fromEntries(Object.entries(counts).map(([k, n]) => [k, round(n / requests, 3)]));
    }
  }

  const rs = ratios(runs);
  console.log(`\nDeathStarBench social-network mix (${Object.entries(MIX).map(([k, v]) => `${k} ${v * 100} %`).join(", ")}) on ${d.description}`);
  console.log(`${SECONDS} s measured after ${WARMUP} s warm-up per run; load average ${loadAtStart.join("/")} at start, ${loadAtEnd.join("/")} at end\n`);
  console.log(table(runs));
  if (rs.length > 0) console.log(`\nChirp as a multiple of the floor (throughput: Chirp ÷ floor; latency: Chirp ÷ floor)\n\n${ratioTable(rs)}`);
  console.log(`\nCPU per request by process\n\n${cpuTable(runs)}\n`);
  if (Object.keys(work).length > 0) console.log(`Work per request, from the servers' counters (requests one at a time, caches warm)\n\n${workTable(work)}\n`);
  if (Object.keys(allocations).length > 0) {
    const kinds = [...new Set(Object.values(allocations).flatMap((a) => Object.keys(a)))];
    const rows = Object.entries(allocations).map(([name, a]) => `| ${name} | ${kinds.map((k) => a[k] ?? "-").join(" | ")} |`);
    console.log(`Per request over the profiled closed-loop window (cpu-profile-preload.mjs)\n\n| process | ${kinds.join(" | ")} |\n|---|${kinds.map(() => "---:").join("|")}|\n${rows.join("\n")}\n`);
  }

  const stripped = runs.map(({ histograms, ...rest }) => ({ ...rest, histograms }));
  write(args.out ?? join(RESULTS, "dsb.json"), {
    benchmark: "dsb-social-network",
    date: new Date().toISOString(),
    machine: { ...machine(), loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAtEnd, shared: "other agents' tests and builds ran on the same 2 cores" },
    versions: { packages: packageVersions(), servers: versions },
    settings: {
      mix: MIX,
      seconds: SECONDS,
      warmupSeconds: WARMUP,
      concurrency: CONCURRENCY,
      openRate: rates,
      modes: MODES,
      curveRates: curve,
      timeoutMs: TIMEOUT_MS,
      encoding: args.binary ? "connect+proto over HTTP/1.1 (connect-node client)" : "connect+json over HTTP/1.1 (node:http client, gzip)",
      profiled: profileDir !== undefined,
      system: "single: every service and the gateway in one process; mesh: one process per service and the gateway; default settings, LOG_LEVEL=warn, topology manager running; the modes run one after the other over the same servers and data",
    },
    dataset: datasetInfo(d, p),
    runs: stripped,
    ratios: rs,
    work,
    ...(profile === undefined ? {} : { profile, allocationsPerRequest: allocations }),
  });
}

/**
 * --target-url: the mix against a gateway this run did not start, seeded
 * with `npx chirp seed` (Reed98's accounts and follows; tweets come from the
 * mix's composes). Logs in as every seeded account first.
 */
async function benchTargetUrl(url: string): Promise<void> {
  const d = reed98();
  const users = createClient(UserService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
  const tokens: string[] = new Array<string>(d.users);
  const ids: bigint[] = new Array<bigint>(d.users);
  say(`driving ${url}: logging in as ${handleOf(d, 0)} .. ${handleOf(d, d.users - 1)} (seeded by \`npx chirp seed\`)`);
  const progress = createProgress("log-ins", d.users);
  await mapConcurrent(
    Array.from({ length: d.users }, (_, n) => n),
    8,
    async (n) => {
      let res;
      try {
        res = await users.logIn({ handle: handleOf(d, n), password: SEED_PASSWORD });
      } catch (err) {
        throw new Error(`log-in as ${handleOf(d, n)} failed (${(err as Error).message}): seed the deployment first with \`npx chirp seed\``);
      }
      tokens[n] = res.token;
      ids[n] = res.user!.id;
      progress.tick();
    },
  );
  progress.done();
  const chirp = createChirpTarget({ gatewayUrl: url, tokenOf: (n) => tokens[n]!, userIdOf: (n) => ids[n]!, timeoutMs: TIMEOUT_MS, binary: args.binary });
  targets.push(chirp);
  const everyone = Array.from({ length: d.users }, (_, n) => n);
  const runs: Measured[] = [];
  const base = { seconds: SECONDS, warmupSeconds: WARMUP };
  if (!args["no-closed"]) runs.push(await measure(undefined, d, everyone, chirp, { ...base, label: `target closed ${CONCURRENCY}`, mode: "closed", concurrency: CONCURRENCY }, 11));
  const rate = args.rate !== undefined ? Number(args.rate) : Math.max(10, Math.round((runs[0]?.achievedPerSecond ?? 100) / 2 / 10) * 10);
  runs.push(await measure(undefined, d, everyone, chirp, { ...base, label: `target open ${rate}/s`, mode: "open", rate }, 12));
  for (const [i, r] of (args.rates ?? "").split(",").filter((x) => x !== "").map(Number).entries()) {
    if (r !== rate) runs.push(await measure(undefined, d, everyone, chirp, { ...base, label: `target open ${r}/s`, mode: "open", rate: r }, 13 + i));
  }
  console.log(`\nDeathStarBench social-network mix against ${url}\n\n${table(runs)}\n`);
  write(args.out ?? join(RESULTS, "dsb-target.json"), {
    benchmark: "dsb-social-network-target",
    date: new Date().toISOString(),
    target: url,
    machine: { ...machine(), loadAverageAtEnd: loadAverage() },
    settings: { mix: MIX, seconds: SECONDS, warmupSeconds: WARMUP, concurrency: CONCURRENCY, openRate: rate, timeoutMs: TIMEOUT_MS },
    runs,
  });
}

async function sweep(): Promise<void> {
  const sets = [reed98(), synthetic(Number(args.users))];
  const rate = Number(args["sweep-rate"]);
  const scales: Array<Record<string, unknown>> = [];
  const loadAtStart = loadAverage();
  let versions: Record<string, string> = {};
  for (const d of sets) {
    say(`--- ${d.name}: starting a fresh private cluster and mesh (load average ${loadAverage().join(", ")})`);
    cluster = await startBenchCluster({ say, mode: MODES[0]! });
    const c = cluster;
    versions = await serverVersions(c.router, c.redis);
    const p = await prepare(c, d, say, { readers: READERS });
    loadedTweetIds = p.loaded.tweets.map((t) => t.id);
    const chirp = createChirpTarget({ gatewayUrl: c.mesh.gatewayUrl, tokenOf: (n) => p.tokens[n]!, userIdOf: (n) => p.loaded.userIds[n]!, timeoutMs: TIMEOUT_MS, binary: args.binary });
    targets.push(chirp);
    const closed = await measure(c, d, p.readers, chirp, { label: `${d.name} closed ${CONCURRENCY}`, mode: "closed", concurrency: CONCURRENCY, seconds: SECONDS, warmupSeconds: WARMUP }, 11);
    await drainConsumers(c.infra.natsUrl, say);
    const open = await measure(c, d, p.readers, chirp, { label: `${d.name} open ${rate}/s`, mode: "open", rate, seconds: SECONDS, warmupSeconds: WARMUP }, 12);
    await cleanup();
    scales.push({ dataset: datasetInfo(d, p), closed, open });
  }
  const runs = scales.flatMap((s) => [s.closed as Measured, s.open as Measured]);
  console.log(`\nScale sweep: the same mix on ${sets.map((s) => s.description).join("; and on ")}\n`);
  console.log(table(runs));
  console.log(`\nCPU per request by process\n\n${cpuTable(runs)}\n`);
  write(args.out ?? join(RESULTS, "dsb-sweep.json"), {
    benchmark: "dsb-social-network-sweep",
    date: new Date().toISOString(),
    machine: { ...machine(), loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAverage(), shared: "other agents' tests and builds ran on the same 2 cores" },
    versions: { packages: packageVersions(), servers: versions },
    settings: { mix: MIX, seconds: SECONDS, warmupSeconds: WARMUP, concurrency: CONCURRENCY, openRate: rate, timeoutMs: TIMEOUT_MS },
    scales,
  });
}

try {
  await (args["target-url"] !== undefined ? benchTargetUrl(args["target-url"]) : args.sweep ? sweep() : bench());
} catch (err) {
  say(`failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
