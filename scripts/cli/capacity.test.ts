// `chirp capacity`: the arithmetic on inputs chosen so every figure can be
// worked out by hand (86,400 users doing x a day = x per second), where the
// per-call figures come from, and the command line.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runChirp, runChirpInProcess, runChirpInProcessEach, type ChirpRun } from "./testing/run-chirp.js";
import { UsageError } from "./args.js";
import { DEFAULT_BENCH_DIR, parseArgs, parseBytes, parseCount } from "./capacity.js";
import { FIGURES, loadFigures } from "./capacity-figures.js";
import { CapacityInputError, estimateCapacity, nextPowerOfTwo, type CapacityFigures, type CapacityInputs } from "./capacity-model.js";
import { COMMANDS } from "./main.js";


const inputs: CapacityInputs = {
  dailyActiveUsers: 86_400,
  registeredUsers: 172_800,
  tweetsPerUser: 1,
  readsPerUser: 10,
  likesPerUser: 2,
  searchesPerUser: 0,
  followsPerUser: 100,
  mediaShare: 0.5,
  videoShare: 0,
  photoBytes: 1000,
  videoBytes: 0,
  thumbBytes: 100,
  tweetTextBytes: 20,
  pageSize: 10,
  peakFactor: 2,
  retentionYears: 1,
  replicationFactor: 2,
  timelineEntries: 800,
  targetUtilization: 0.5,
  shardMaxBytes: 1e9,
};

const figures: CapacityFigures = {
  rpcServerUs: 100,
  rpcClientUs: 100,
  edgeServerUs: 200,
  dbReadUs: 50,
  dbWriteUs: 100,
  redisCommandUs: 10,
  fanOutDeliveryUs: 10,
  imageProcessUs: 1000,
  mediaServeUsPerMiB: 1000,
  searchIndexBytesPerTweet: 100,
  primaryWriteTxPerSec: 1,
  memberReadRowsPerSec: 1000,
  relayEventsPerSec: 1000,
  redisEntryBytes: 100,
  redisFollowingMemberBytes: 10,
  redisNodeOpsPerSec: 100_000,
  redisNodeBytes: 1e12,
  innodbOverhead: 1,
  hydratedTweetBytes: 500,
  requestOverheadBytes: 0,
  mediaOpenShare: 0,
  tweetCacheMissRatio: 0,
};

describe("capacity arithmetic", () => {
  const r = estimateCapacity(inputs, figures);

  it("turns daily habits into rates per second, and peak as a multiple", () => {
    expect(r.average).toEqual({
      tweets: 1,
      timelineReads: 10,
      likes: 2,
      searches: 0,
      mediaUploads: 0.5,
      // 100 followers each, half of them active (their lists exist)
      fanOutDeliveries: 50,
      hydratedTweets: 100,
      thumbnails: 50,
      mediaViews: 0,
      apiRequests: 1 + 10 + 2 + 0.5 + 50,
      events: 3.5,
    });
    expect(r.peak.tweets).toBe(2);
    expect(r.peak.fanOutDeliveries).toBe(100);
  });

  it("adds up storage per year from row sizes, edges and users as a stock, times replication", () => {
    const tweetsPerYear = 86_400 * 365;
    expect(r.storage.perYear.tweets).toBe(tweetsPerYear * (80 + 20));
    expect(r.storage.perYear.indexes).toBe(tweetsPerYear * (21 + 42 + 100));
    expect(r.storage.perYear.likes).toBe(2 * tweetsPerYear * 165);
    expect(r.storage.perYear.mediaRows).toBe(0.5 * tweetsPerYear * 460);
    expect(r.storage.perYear.mediaBlobs).toBe(0.5 * tweetsPerYear * 1100);
    expect(r.storage.edges).toBe(172_800 * 100 * 217);
    expect(r.storage.users).toBe(172_800 * 400);
    const perYear = tweetsPerYear * (100 + 163 + 2 * 165 + 0.5 * 460);
    expect(r.storage.mysqlPerCopyBytes).toBeCloseTo(perYear + 172_800 * (100 * 217 + 400), 0);
    expect(r.storage.mysqlTotalBytes).toBeCloseTo(2 * r.storage.mysqlPerCopyBytes, 0);
    expect(r.storage.mysqlPerYearBytes).toBeCloseTo(2 * perYear, 0);
  });

  it("applies the InnoDB overhead to rows, not to the measured search index or the blobs", () => {
    const r2 = estimateCapacity(inputs, { ...figures, innodbOverhead: 2 });
    expect(r2.storage.perYear.tweets).toBe(2 * r.storage.perYear.tweets);
    expect(r2.storage.perYear.indexes).toBe(86_400 * 365 * (2 * 63 + 100));
    expect(r2.storage.perYear.mediaBlobs).toBe(r.storage.perYear.mediaBlobs);
  });

  it("sizes bandwidth from what crosses the gateway", () => {
    expect(r.bandwidth.ingressAvg).toBe(1 * 20 + 0.5 * 1000);
    expect(r.bandwidth.egressAvg).toBe(100 * 500 + 50 * 100);
    expect(r.bandwidth.egressPeak).toBe(2 * r.bandwidth.egressAvg);
  });

  it("sizes Redis for every active user's timeline list", () => {
    expect(r.redis.timelineBytes).toBe(86_400 * (800 * 100 + 100 * 10 + 300));
    expect(r.redis.tweetCacheBytes).toBe(86_400 * (2 * 20 + 150));
    expect(r.redis.totalBytes).toBeCloseTo((r.redis.timelineBytes + r.redis.tweetCacheBytes) * 1.25, 0);
    expect(r.redis.nodes).toBe(1);
    expect(estimateCapacity(inputs, { ...figures, redisNodeBytes: 1e9 }).redis.nodes).toBe(Math.ceil(r.redis.totalBytes / 1e9));
  });

  it("takes the most shards any limit asks for, rounded up to a power of two", () => {
    expect(r.shards.byStorage).toBe(Math.ceil(r.storage.mysqlPerCopyBytes / 1e9)); // 30
    expect(r.shards.byStorage).toBe(30);
    // peak: 2 tweets, 4 likes and 1 upload, two transactions each
    expect(r.shards.peakWriteTxPerSec).toBe(14);
    expect(r.shards.byWrites).toBe(14);
    expect(r.shards.byReads).toBe(1);
    expect(r.shards.byRelay).toBe(1);
    expect(r.shards.shards).toBe(32);
    expect(r.shards.mysqlServers).toBe(64);
    expect([1, 2, 3, 4, 5, 16, 17].map(nextPowerOfTwo)).toEqual([1, 2, 4, 4, 8, 16, 32]);
  });

  it("gives each service the cores its calls cost at peak, at least two instances", () => {
    const by = Object.fromEntries(r.services.map((s) => [s.service, s]));
    // 20 pages/s x (server 100 + 2 Redis 10 + 3 clients 100) + 100 deliveries x 10 + 2 tweets x 1 follower page x client 100
    expect(by["timeline"]!.cores).toBeCloseTo((20 * 420 + 100 * 10 + 2 * 100) / 1e6, 9);
    // 20 pages/s x (server 100 + 10 authors on 10 shards x 50)
    expect(by["user"]!.cores).toBeCloseTo((20 * 600) / 1e6, 9);
    expect(by["user"]!.perInstance).toBeCloseTo((20 * 0.5) / by["user"]!.cores, 6);
    expect(by["graph"]!.cores).toBeCloseTo((2 * 150) / 1e6, 9);
    for (const s of r.services) expect(s.instances, s.service).toBe(2);
    const big = estimateCapacity({ ...inputs, dailyActiveUsers: 86_400_000, registeredUsers: 172_800_000, shardMaxBytes: 1e15 }, figures);
    for (const s of big.services) expect(s.instances, s.service).toBe(Math.max(2, Math.ceil(s.cores / 0.5)));
    expect(big.services.find((s) => s.service === "timeline")!.instances).toBe(Math.ceil((1000 * 9.6e-3) / 0.5));
    // photos only: 1 upload/s at peak x 1000 µs
    expect(r.imageWorkerCores).toBeCloseTo(1e-3, 9);
  });

  it("refuses inputs it cannot use, naming each", () => {
    expect(() => estimateCapacity({ ...inputs, dailyActiveUsers: 0, mediaShare: 1.5 }, figures)).toThrow(CapacityInputError);
    expect(() => estimateCapacity({ ...inputs, dailyActiveUsers: 0, mediaShare: 1.5 }, figures)).toThrow(/dailyActiveUsers.*mediaShare/);
    expect(() => estimateCapacity({ ...inputs, registeredUsers: 10 }, figures)).toThrow(/registeredUsers/);
    expect(() => estimateCapacity({ ...inputs, peakFactor: 0.5 }, figures)).toThrow(/peakFactor/);
  });
});

describe("capacity figures", () => {
  it("reads per-call costs from the committed benchmark results and names the file and field", () => {
    const set = loadFigures(DEFAULT_BENCH_DIR, inputs);
    const rpc = JSON.parse(readFileSync(join(DEFAULT_BENCH_DIR, "rpc-overhead.json"), "utf8")) as {
      pairs: { name: string; median: { serverCpuUsPerCall: number; clientCpuUsPerCall: number } }[];
    };
    const grpc = rpc.pairs.find((p) => p.name === "grpc-js -> grpc-js")!;
    expect(set.rpcServerUs).toMatchObject({ value: grpc.median.serverCpuUsPerCall, kind: "measured" });
    expect(set.rpcServerUs.source).toMatch(/^bench\/results\/rpc-overhead\.json \(\d{4}-\d\d-\d\d\): pairs\["grpc-js -> grpc-js"\]/);
    expect(set.rpcClientUs.value).toBe(grpc.median.clientCpuUsPerCall);
    expect(set.dbWriteUs).toMatchObject({ kind: "measured" });
    expect(set.dbWriteUs.source).toContain("router-overhead.json");
    // No benchmark measures these: labelled as assumptions.
    expect(set.memberReadRowsPerSec.kind).toBe("assumed");
    expect(set.memberReadRowsPerSec.source).toMatch(/^assumption/);
  });

  it("falls back to a labelled assumption when a result is missing or lacks the field; --set wins", () => {
    const dir = mkdtempSync(join(tmpdir(), "chirp-capacity-"));
    try {
      writeFileSync(join(dir, "rpc-overhead.json"), JSON.stringify({ date: "2030-01-02T00:00:00Z", pairs: [{ name: "grpc-js -> grpc-js", median: { serverCpuUsPerCall: 77 } }] }));
      writeFileSync(join(dir, "timeline.json"), JSON.stringify({ fanOut: { deliveriesPerSecond: { p50: 50_000 } } }));
      const set = loadFigures(dir, inputs, { dbReadUs: 42 });
      expect(set.rpcServerUs).toMatchObject({ value: 77, kind: "measured" });
      expect(set.rpcServerUs.source).toContain("(2030-01-02)");
      expect(set.rpcClientUs.kind).toBe("assumed");
      expect(set.rpcClientUs.source).toContain("rpc-overhead.json has no");
      expect(set.dbWriteUs.kind).toBe("assumed");
      expect(set.dbWriteUs.source).toContain("router-overhead.json not run yet");
      expect(set.fanOutDeliveryUs).toMatchObject({ value: 20, kind: "measured" });
      expect(set.dbReadUs).toMatchObject({ value: 42, kind: "set" });
      expect(Object.keys(set).sort()).toEqual(Object.keys(FIGURES).sort());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("capacity arguments", () => {
  it("parses counts and sizes with units", () => {
    expect(["1M", "2.5k", "1e6", "1_000", "3B", "7"].map(parseCount)).toEqual([1e6, 2500, 1e6, 1000, 3e9, 7]);
    expect(["300kB", "5MB", "1GiB", "2 MiB", "1000"].map(parseBytes)).toEqual([3e5, 5e6, 2 ** 30, 2 * 2 ** 20, 1000]);
    for (const bad of ["", "x", "-1", "1Q"]) expect(() => parseCount(bad), bad).toThrow(UsageError);
    for (const bad of ["5 parsecs", "-3kB"]) expect(() => parseBytes(bad), bad).toThrow(UsageError);
  });

  it("defaults registered users to twice the daily actives, and reads --set", () => {
    const a = parseArgs(["--dau", "10M", "--media-share=0.25", "--set", "dbWriteUs=150", "--set=rpcServerUs=90", "--json"]);
    expect(a.inputs.dailyActiveUsers).toBe(1e7);
    expect(a.inputs.registeredUsers).toBe(2e7);
    expect(a.inputs.mediaShare).toBe(0.25);
    expect(a.inputs.photoBytes).toBe(300_000);
    expect(a.overrides).toEqual({ dbWriteUs: 150, rpcServerUs: 90 });
    expect(a.json).toBe(true);
    expect(parseArgs(["--dau", "1k", "--users", "5k"]).inputs.registeredUsers).toBe(5000);
    expect(() => parseArgs(["--set", "nope=1"])).toThrow(UsageError);
    expect(() => parseArgs(["--frobnicate"])).toThrow(UsageError);
    expect(() => parseArgs(["extra"])).toThrow(UsageError);
  });
});

const chirp = (...args: string[]) => runChirp(args);

describe("chirp capacity (the command)", () => {
  it("prints traffic, storage, bandwidth, Redis, shards, instances and every figure's source", async () => {
    const run = await chirp("capacity", "--dau", "2M");
    expect(run.code).toBe(0);
    expect(run.stderr).toBe("");
    for (const heading of ["Traffic", "Storage", "Bandwidth", "Redis", "MySQL shards", "Service instances", "Figures"]) expect(run.stdout).toContain(heading);
    expect(run.stdout).toContain("2,000,000 daily active users");
    expect(run.stdout).toContain("bench/results/rpc-overhead.json");
    expect(run.stdout).toMatch(/No benchmark measures these yet; they are assumptions: .*memberReadRowsPerSec/);
  });

  it("--json gives inputs, figures with sources, and the report; ten times the users is ten times the traffic", async () => {
    const [one, ten] = (await runChirpInProcessEach([["capacity", "--json"], ["capacity", "--json", "--dau", "10M"]])) as [ChirpRun, ChirpRun];
    expect(one.code).toBe(0);
    const a = JSON.parse(one.stdout) as { inputs: CapacityInputs; figures: Record<string, { source: string }>; report: ReturnType<typeof estimateCapacity> };
    const b = JSON.parse(ten.stdout) as typeof a;
    expect(a.inputs.dailyActiveUsers).toBe(1e6);
    expect(a.figures["rpcServerUs"]!.source).toContain("rpc-overhead.json");
    expect(b.report.peak.tweets).toBeCloseTo(10 * a.report.peak.tweets, 6);
    expect(b.report.redis.timelineBytes).toBeCloseTo(10 * a.report.redis.timelineBytes, 0);
    expect(b.report.shards.shards).toBeGreaterThanOrEqual(a.report.shards.shards);
  });

  it("exits 2 with one line on bad input", async () => {
    const bad = [["--dau", "lots"], ["--media-share", "2"], ["--set", "x=1"], ["--nope"], ["--dau"]];
    const runs = await runChirpInProcessEach(bad.map((args) => ["capacity", ...args]));
    runs.forEach((run, i) => {
      const what = bad[i]!.join(" ");
      expect(run.code, what).toBe(2);
      expect(run.stdout, what).toBe("");
      expect(run.stderr.trimEnd().split("\n"), what).toHaveLength(1);
    });
  });
});

describe("chirp <command> --help", () => {
  const inProcess = (...argv: string[]): Promise<ChirpRun> => runChirpInProcess(argv);

  it("every command prints its usage and options and exits 0 without running", async () => {
    const names = Object.keys(COMMANDS);
    expect(names).toEqual(expect.arrayContaining(["seed", "topology", "shard-of", "vschema", "capacity"]));
    for (const name of names) {
      for (const argv of [[name, "--help"], [name, "-h"], ["help", name], [name, "--env", "local", "--help"]]) {
        const run = await inProcess(...argv);
        const what = argv.join(" ");
        expect(run.code, what).toBe(0);
        expect(run.stderr, what).toBe("");
        expect(run.stdout, what).toMatch(new RegExp(`^usage: chirp ${name}`));
        expect(run.stdout.split("\n").length, what).toBeGreaterThan(4);
      }
    }
  });

  it("answers --help through bin/chirp.js too, and chirp --help lists every command", async () => {
    const [capacity, all] = await Promise.all([chirp("capacity", "--help"), chirp("--help")]);
    expect(capacity.code).toBe(0);
    expect(capacity.stdout).toMatch(/^usage: chirp capacity/);
    expect(capacity.stdout).toContain("--dau");
    expect(all.code).toBe(0);
    for (const name of Object.keys(COMMANDS)) expect(all.stdout).toContain(`chirp ${name}`);
  });
});
