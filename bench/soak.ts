/**
 * Soak: the DeathStarBench mix held for a long time (10 minutes by default),
 * open loop at a moderate rate, against a private cluster and mesh with the
 * Reed98 data set (as `npm run bench` prepares it). Not part of CI.
 *
 *   npm run soak [-- --minutes 10 --rate 40 --sample-seconds 10 --out bench/results/soak.json]
 *
 * Every --sample-seconds it records each process's resident set size
 * (/proc/<pid>/status VmRSS: the gateway, every service, the topology
 * manager, the MySQL members, redis, nats) and each Node process's V8 heap in
 * use (its /metrics chirp_nodejs_heap_size_used_bytes). At the end: errors by
 * request type and code, and per process the memory at the start, at the end,
 * the maximum, and the slope (least squares, MiB per minute) after the
 * warm-up (the first fifth of the run or two minutes, whichever is shorter).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startBenchCluster, type BenchCluster } from "./dsb/cluster.js";
import { runLoad, round } from "./dsb/loadgen.js";
import { loadAverage, machine, packageVersions, rssMiB, serverVersions } from "./dsb/machine.js";
import { prepare } from "./dsb/prepare.js";
import { createChirpTarget, type Target } from "./dsb/targets.js";
import { DSB_MIX, OP_KINDS, createOpPicker, reed98 } from "./dsb/workload.js";
import { exitWithUsageIfAsked } from "./usage.js";
import { stopOnInterrupt } from "./interrupt.js";

exitWithUsageIfAsked(`
Soak: the DeathStarBench mix held open loop against a private cluster and mesh
(Reed98), reporting errors by type and code and memory growth per process.
Not part of CI.

  npm run soak [-- options]

  --minutes N          how long (10)
  --rate N             arrivals per second (40)
  --sample-seconds N   how often memory is sampled (10)
  --out FILE           where the JSON goes (bench/results/soak.json)
`);

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: "10" },
    rate: { type: "string", default: "40" },
    "sample-seconds": { type: "string", default: "10" },
    out: { type: "string", default: fileURLToPath(new URL("./results/soak.json", import.meta.url)) },
  },
});
const MINUTES = Number(args.minutes);
const RATE = Number(args.rate);
const SAMPLE_S = Number(args["sample-seconds"]);
const started = Date.now();
const say = (line: string): void => void process.stderr.write(`[soak ${((Date.now() - started) / 1000).toFixed(0)} s] ${line}\n`);

let cluster: BenchCluster | undefined;
let target: Target | undefined;
async function cleanup(): Promise<void> {
  target?.close();
  target = undefined;
  await cluster?.stop();
  cluster = undefined;
}
stopOnInterrupt(cleanup, say);

interface Sample {
  readonly t: number;
  readonly rssMiB: Record<string, number>;
  readonly heapMiB: Record<string, number>;
}

async function heapUsed(url: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(3000) })).text();
    const m = /^chirp_nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text);
    return m === null ? undefined : Number(m[1]) / 2 ** 20;
  } catch {
    return undefined;
  }
}

function slope(points: ReadonlyArray<[number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? NaN : num / den;
}

try {
  const loadAtStart = loadAverage();
  say(`starting a private cluster and mesh (load average ${loadAtStart.join(", ")})`);
  cluster = await startBenchCluster({ say, mode: "single" });
  const c = cluster;
  const versions = await serverVersions(c.router, c.redis);
  const d = reed98();
  const p = await prepare(c, d, say);
  target = createChirpTarget({ gatewayUrl: c.mesh.gatewayUrl, tokenOf: (n) => p.tokens[n]!, userIdOf: (n) => p.loaded.userIds[n]!, timeoutMs: 10_000 });
  const pids = c.pids();
  const metricsUrls: Record<string, string> = {
    gateway: c.mesh.gatewayMetricsUrl,
    ...Object.fromEntries(Object.entries(c.mesh.services).map(([name, s]) => [name, `http://127.0.0.1:${s.metricsPort}/metrics`])),
    ...(c.mesh.topology === undefined ? {} : { topology: `http://127.0.0.1:${c.mesh.topology.metricsPort}/metrics` }),
  };
  const samples: Sample[] = [];
  const sample = async (t: number): Promise<void> => {
    const rss: Record<string, number> = {};
    for (const [name, pid] of Object.entries(pids)) {
      const v = rssMiB(pid);
      if (v !== undefined) rss[name] = round(v, 1);
    }
    const heap: Record<string, number> = {};
    await Promise.all(
      Object.entries(metricsUrls).map(async ([name, url]) => {
        const v = await heapUsed(url);
        if (v !== undefined) heap[name] = round(v, 1);
      }),
    );
    samples.push({ t: round(t, 1), rssMiB: rss, heapMiB: heap });
  };
  await sample(0);
  let nextSample = SAMPLE_S;
  say(`holding the mix open loop at ${RATE}/s for ${MINUTES} min, memory sampled every ${SAMPLE_S} s`);
  const result = await runLoad(target, createOpPicker(d, 21), { label: "soak", mode: "open", rate: RATE, seconds: MINUTES * 60, warmupSeconds: 0, maxInFlight: 2048 }, {
    onSecond: (elapsed) => {
      if (elapsed >= nextSample) {
        nextSample += SAMPLE_S;
        void sample(elapsed);
      }
    },
  });
  await sample(MINUTES * 60);
  const loadAtEnd = loadAverage();
  await cleanup();

  const warmS = Math.min(120, (MINUTES * 60) / 5);
  const growth = (kind: "rssMiB" | "heapMiB") =>
    Object.fromEntries(
      [...new Set(samples.flatMap((s) => Object.keys(s[kind])))].map((name) => {
        const series = samples.filter((s) => s[kind][name] !== undefined).map((s) => [s.t, s[kind][name]!] as [number, number]);
        const after = series.filter(([t]) => t >= warmS);
        return [
          name,
          {
            start: series[0]?.[1],
            afterWarmup: after[0]?.[1],
            end: series.at(-1)?.[1],
            max: Math.max(...series.map((x) => x[1])),
            slopeMiBPerMin: round(slope(after) * 60, 2),
            // Whether growth levels off: the same over the second half of the run only.
            slopeSecondHalfMiBPerMin: round(slope(series.filter(([t]) => t >= (MINUTES * 60) / 2)) * 60, 2),
          },
        ];
      }),
    );
  const rss = growth("rssMiB");
  const heap = growth("heapMiB");
  const errors = Object.fromEntries(OP_KINDS.map((k) => [k, result.byType[k].errors]));
  console.log(`\nSoak: the DeathStarBench mix at ${RATE}/s for ${MINUTES} min on ${d.description}; load average ${loadAtStart.join("/")} at start, ${loadAtEnd.join("/")} at end\n`);
  console.log("| type | ok | p50 ms | p99 ms | p99.9 ms | errors |\n|---|---:|---:|---:|---:|---|");
  for (const k of [...OP_KINDS, "all"] as const) {
    const t = k === "all" ? result.all : result.byType[k];
    console.log(`| ${k} | ${t.ok} | ${t.latency.p50Ms} | ${t.latency.p99Ms} | ${t.latency.p999Ms} | ${Object.entries(t.errors).map(([code, n]) => `${code} ${n}`).join(", ") || "0"} |`);
  }
  console.log(`\nMemory per process (MiB; slope by least squares after the first ${warmS} s)\n`);
  console.log(
    "| process | RSS start | RSS after warm-up | RSS end | RSS max | RSS slope MiB/min | 2nd half | heap start | heap end | heap max | heap slope MiB/min |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  );
  for (const [name, r] of Object.entries(rss)) {
    const h = heap[name];
    console.log(
      `| ${name} | ${r.start} | ${r.afterWarmup} | ${r.end} | ${r.max} | ${r.slopeMiBPerMin} | ${r.slopeSecondHalfMiBPerMin} | ${h?.start ?? ""} | ${h?.end ?? ""} | ${h?.max ?? ""} | ${h?.slopeMiBPerMin ?? ""} |`,
    );
  }
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(
    args.out,
    `${JSON.stringify(
      {
        benchmark: "soak",
        date: new Date().toISOString(),
        machine: { ...machine(), loadAverageAtStart: loadAtStart, loadAverageAtEnd: loadAtEnd },
        versions: { packages: packageVersions(), servers: versions },
        settings: { mix: DSB_MIX, minutes: MINUTES, rate: RATE, sampleSeconds: SAMPLE_S, warmupSecondsForSlope: warmS },
        requests: { all: result.all, byType: result.byType, achievedPerSecond: result.achievedPerSecond, loadgen: result.loadgen },
        errors,
        memory: { rssMiB: rss, heapMiB: heap },
        samples,
      },
      null,
      2,
    )}\n`,
  );
  say(`wrote ${args.out}`);
} catch (err) {
  say(`failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
