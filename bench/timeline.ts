/**
 * Timelines: fan-out on write, and home-timeline reads through the gateway
 * next to a floor, against the whole mesh on a private cluster (as `npm start`
 * runs it).
 *
 *   npm run bench:timeline -- [--followers 10000] [--tweets 10] [--burst 20] [--readers 2000]
 *                             [--concurrency 32] [--seconds 8] [--rounds 2] [--out bench/results/timeline.json]
 *
 * Setup. One author signs up through the gateway. --followers follow edges are
 * INSERTed in bulk straight into the shard databases through the shard router
 * (both rows of each edge, as GraphService/Follow leaves them, and the
 * author's follower_count), not through Follow: 10 000 sign-ups and follows
 * would take longer than the benchmark. The followers are bare user ids (no
 * users rows; nothing here reads them); their session tokens are minted with
 * the launch's signing key. Every follower then reads their home timeline once
 * through the gateway, which builds their Redis list: they are active.
 *
 * Fan-out. The author posts --tweets tweets one at a time through the gateway.
 * For each: the time from PostTweet returning to the tweet being in every
 * follower's Redis home list (what GetHomeTimeline reads), found by polling the
 * follower fan-out writes last (ascending ids) and then checking all of them;
 * and the fan-out handler's own duration (the timeline service's
 * chirp_bus_handler_duration_seconds), giving deliveries per second. Then a
 * burst of --burst tweets posted back to back, and the deliveries per second
 * from the first post to the last tweet in every list.
 *
 * Reads. --concurrency loops call GetHomeTimeline (page of 20, Connect JSON
 * over HTTP/1.1, each call as a random one of --readers followers) for
 * --seconds; then the floor, a bare node:http server in its own process doing
 * the same Redis reads for the same users (bench/timeline-floor.ts), under the
 * same client. The two alternate for --rounds rounds; the table shows each
 * round and the ratio.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { setTimeout as delay } from "node:timers/promises";
import { Redis } from "ioredis";
import { createTokenSigner, generateTokenKeys } from "../lib/auth/token.js";
import { startLocalCluster, type RunningInfra } from "../devcluster/index.js";
import { createIdGenerator } from "../lib/ids.js";
import { launchSystem, serviceInfraEnv, topologyInfraEnv, type Mesh } from "../devcluster/launch.js";
import { loadShardConfig } from "../lib/shard/shard-config.js";
import { topologyFromEnv } from "../lib/shard/config.js";
import { createShardRouter, type ShardRouter } from "../lib/shard/router.js";
import { entryMember } from "../services/timeline/entries.js";
import { KEYS, isBuiltSentinel } from "../services/timeline/lists.js";
import { stopOnInterrupt } from "./interrupt.js";

const { values: args } = parseArgs({
  options: {
    followers: { type: "string", default: "10000" },
    tweets: { type: "string", default: "10" },
    burst: { type: "string", default: "20" },
    readers: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "32" },
    seconds: { type: "string", default: "8" },
    rounds: { type: "string", default: "2" },
    out: { type: "string", default: fileURLToPath(new URL("./results/timeline.json", import.meta.url)) },
  },
});
const FOLLOWERS = Number(args.followers);
const TWEETS = Number(args.tweets);
const BURST = Number(args.burst);
const READERS = Math.min(Number(args.readers), FOLLOWERS);
const CONCURRENCY = Number(args.concurrency);
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);

const say = (line: string): void => console.error(`[bench] ${line}`);
const started = Date.now();
const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(0)} s`;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
const sortNum = (xs: readonly number[]): number[] => [...xs].sort((a, b) => a - b);
const round1 = (x: number): number => Math.round(x * 10) / 10;

let infra: RunningInfra | undefined;
let mesh: Mesh | undefined;
let router: ShardRouter | undefined;
let redis: Redis | undefined;
let floor: ChildProcess | undefined;

async function cleanup(): Promise<void> {
  floor?.kill();
  redis?.disconnect();
  await router?.close().catch(() => {});
  await mesh?.stop().catch(() => {});
  await infra?.stop().catch(() => {});
}
stopOnInterrupt(cleanup, say);

async function api<T>(method: string, body: unknown, token?: string): Promise<T> {
  const res = await fetch(`${mesh!.gatewayUrl}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as T;
  if (res.status !== 200) throw new Error(`${method}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Runs `task` over `items`, `width` at a time, reporting every `every` done. */
async function pool<T>(items: readonly T[], width: number, task: (item: T) => Promise<void>, label: string, every = 1000): Promise<void> {
  let next = 0;
  let done = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const item = items[next++]!;
        await task(item);
        if (++done % every === 0) say(`${label}: ${done}/${items.length} (${elapsed()})`);
      }
    }),
  );
}

/** CPU seconds (user + system) each mesh process has used so far, from /proc (Linux). */
function processCpu(): Record<string, number> {
  const pids: Record<string, number> = { gateway: mesh!.gatewayPid };
  for (const [name, svc] of Object.entries(mesh!.services)) pids[name] = svc.pid;
  const tick = 100; // USER_HZ
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      out[name] = (Number(fields[11]) + Number(fields[12])) / tick;
    } catch {
      // not Linux, or gone
    }
  }
  return out;
}

/** Server-side time per call of every RPC the mesh served, from each process's metrics: sum and count by service/method. */
async function rpcTimes(): Promise<Map<string, { sum: number; count: number }>> {
  const ports = [...Object.values(mesh!.services).map((s) => `http://127.0.0.1:${s.metricsPort}/metrics`), mesh!.gatewayMetricsUrl];
  const out = new Map<string, { sum: number; count: number }>();
  for (const [i, url] of ports.entries()) {
    const text = await (await fetch(url)).text();
    for (const line of text.split("\n")) {
      const m = /^chirp_rpc_server_duration_seconds_(sum|count)\{([^}]*)\} ([0-9.e+-]+)$/.exec(line);
      if (m === null) continue;
      const method = /method="([^"]+)"/.exec(m[2]!)?.[1];
      const key = `${i === ports.length - 1 ? "gateway" : "service"} ${method}`;
      const cur = out.get(key) ?? { sum: 0, count: 0 };
      if (m[1] === "sum") cur.sum += Number(m[3]);
      else cur.count += Number(m[3]);
      out.set(key, cur);
    }
  }
  return out;
}

/** Sum and count of the fan-out handler's durations for TweetCreated, from the timeline service's metrics. */
async function fanOutHandler(): Promise<{ sum: number; count: number }> {
  const text = await (await fetch(`http://127.0.0.1:${mesh!.services.timeline.metricsPort}/metrics`)).text();
  const pick = (suffix: string): number => {
    const line = text
      .split("\n")
      .find((l) => l.startsWith(`chirp_bus_handler_duration_seconds_${suffix}{`) && l.includes('durable="timeline-fanout"') && l.includes("tweet_created"));
    return line === undefined ? 0 : Number(line.split(" ").at(-1));
  };
  return { sum: pick("sum"), count: pick("count") };
}

try {
  say(`starting a private cluster and the mesh (${os.cpus().length} cores, load ${os.loadavg()[0]!.toFixed(1)})`);
  infra = await startLocalCluster({ ephemeral: true, log: () => {} });
  const env = serviceInfraEnv(infra);
  const keys = generateTokenKeys();
  mesh = await launchSystem({
    mode: "mesh",
    env: { ...env, LOG_LEVEL: "warn" },
    topologyEnv: topologyInfraEnv(infra, loadShardConfig("local")),
    ports: "ephemeral",
    stdio: "inherit",
    tokenKeys: { privateKey: keys.privateKey, publicKeys: [keys.publicKey] },
  });
  router = await createShardRouter({ ...topologyFromEnv(env, loadShardConfig("local")) });
  redis = new Redis(infra.redisUrl, { maxRetriesPerRequest: 1 });
  const signer = createTokenSigner(keys.privateKey);
  say(`mesh up (${elapsed()})`);

  // --- setup: the author, the follow edges, active followers -------------------
  const { user } = await api<{ user: { id: string } }>("chirp.user.v1.UserService/SignUp", {
    handle: "bench_author",
    displayName: "Bench author",
    email: "bench_author@example.com",
    password: "correct horse battery",
  });
  const authorId = BigInt(user.id);
  const authorToken = signer.sign(String(authorId), 3600).token;
  const mint = createIdGenerator(1000);
  const followers = Array.from({ length: FOLLOWERS }, () => mint.next()).sort((a, b) => (a < b ? -1 : 1));

  const setupStart = performance.now();
  const BATCH = 1000;
  for (let i = 0; i < followers.length; i += BATCH) {
    const chunk = followers.slice(i, i + BATCH);
    await router
      .primaryForUser(authorId)
      .execute(
        `INSERT INTO chirp.followers (followee_id, follower_id, state, version, follow_time) VALUES ${chunk.map(() => "(?, ?, 1, 1, UTC_TIMESTAMP(6))").join(", ")}`,
        chunk.flatMap((f) => [authorId, f]),
      );
    const byShard = router.byShard(chunk, (f) => router!.shardForUser(f));
    for (const { shard, items } of byShard.values()) {
      await router
        .primary(shard)
        .execute(
          `INSERT INTO chirp.follows (follower_id, followee_id, state, version, follow_time, update_time, sync_pending) VALUES ${items
            .map(() => "(?, ?, 1, 1, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6), 0)")
            .join(", ")}`,
          items.flatMap((f) => [f, authorId]),
        );
    }
    say(`follow edges: ${Math.min(i + BATCH, followers.length)}/${followers.length} (${elapsed()})`);
  }
  await router.primaryForUser(authorId).execute("UPDATE chirp.users SET follower_count = ? WHERE id = ?", [followers.length, authorId]);
  const edgesMs = performance.now() - setupStart;

  const tokens = new Map(followers.map((f) => [f, signer.sign(String(f), 3600).token]));
  const warmStart = performance.now();
  await pool(followers, 32, (f) => api("chirp.timeline.v1.TimelineService/GetHomeTimeline", { pageSize: 1 }, tokens.get(f)).then(() => {}), "first home reads (lists built)");
  // A first read that fell back to MySQL (Redis busy past its timeout) left no list: read again until every list is built.
  for (let attempt = 1; ; attempt++) {
    const p = redis.pipeline();
    for (const f of followers) p.zrange(KEYS.home(f), "0", "0");
    const heads = (await p.exec()) ?? [];
    const unbuilt = followers.filter((_, i) => !isBuiltSentinel((heads[i]?.[1] as string[] | undefined)?.[0]));
    if (unbuilt.length === 0) break;
    if (attempt > 5) throw new Error(`${unbuilt.length} home lists still not built`);
    say(`${unbuilt.length} lists not built yet; reading those again`);
    await pool(unbuilt, 8, (f) => api("chirp.timeline.v1.TimelineService/GetHomeTimeline", { pageSize: 1 }, tokens.get(f)).then(() => {}), "second reads");
  }
  const warmMs = performance.now() - warmStart;
  say(`setup done: edges ${(edgesMs / 1000).toFixed(1)} s, ${followers.length} lists built in ${(warmMs / 1000).toFixed(1)} s (${elapsed()})`);

  // --- fan-out ---------------------------------------------------------------------
  const lastFollower = followers.at(-1)!;
  const everywhere = async (tweetId: bigint, since: number, timeoutMs = 60_000): Promise<number> => {
    const member = entryMember({ id: tweetId, authorId });
    // Fan-out writes followers in ascending id order: the last one last.
    while ((await redis!.zscore(KEYS.home(lastFollower), member)) === null) {
      if (performance.now() - since > timeoutMs) throw new Error("tweet never reached the last follower");
      await delay(2);
    }
    let missing = followers;
    while (missing.length > 0) {
      const p = redis!.pipeline();
      for (const f of missing) p.zscore(KEYS.home(f), member);
      const results = (await p.exec()) ?? [];
      missing = missing.filter((_, i) => results[i]?.[1] === null);
      if (missing.length > 0) {
        if (performance.now() - since > timeoutMs) throw new Error(`${missing.length} followers never got the tweet`);
        await delay(5);
      }
    }
    return performance.now();
  };
  const post = async (text: string): Promise<bigint> =>
    BigInt((await api<{ tweet: { id: string } }>("chirp.tweet.v1.TweetService/PostTweet", { text }, authorToken)).tweet.id);

  const single: Array<{ visibleMs: number; handlerMs: number; deliveriesPerSecond: number }> = [];
  for (let i = 0; i < TWEETS; i++) {
    const before = await fanOutHandler();
    const id = await post(`fan-out ${i}`);
    const returned = performance.now();
    const visibleAt = await everywhere(id, returned);
    let after = await fanOutHandler();
    while (after.count <= before.count) {
      await delay(20);
      after = await fanOutHandler();
    }
    const handlerMs = ((after.sum - before.sum) / (after.count - before.count)) * 1000;
    single.push({ visibleMs: visibleAt - returned, handlerMs, deliveriesPerSecond: followers.length / (handlerMs / 1000) });
    say(`tweet ${i + 1}/${TWEETS}: in all ${followers.length} lists ${(visibleAt - returned).toFixed(0)} ms after PostTweet returned; fan-out handler ${handlerMs.toFixed(0)} ms`);
    await delay(200);
  }

  const burstStart = performance.now();
  const burstIds: bigint[] = [];
  for (let i = 0; i < BURST; i++) burstIds.push(await post(`burst ${i}`));
  const postedAt = performance.now();
  let burstEnd = postedAt;
  for (const id of burstIds) burstEnd = await everywhere(id, burstStart, 120_000);
  const burstSeconds = (burstEnd - burstStart) / 1000;
  const burst = {
    tweets: BURST,
    postingMs: postedAt - burstStart,
    totalMs: burstEnd - burstStart,
    deliveriesPerSecond: (BURST * followers.length) / burstSeconds,
  };
  say(`burst: ${BURST} tweets in every list ${burst.totalMs.toFixed(0)} ms after the first post (${elapsed()})`);

  // --- reads ---------------------------------------------------------------------
  floor = fork(fileURLToPath(new URL("./timeline-floor.ts", import.meta.url)), [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, REDIS_URL: infra.redisUrl },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const floorPort = await new Promise<number>((resolve, reject) => {
    floor!.once("message", (m: { port: number }) => resolve(m.port));
    floor!.once("exit", (code) => reject(new Error(`floor server exited (${code})`)));
  });
  const readers = followers.slice(0, READERS);
  const gatewayUrl = mesh.gatewayUrl;
  const pageLength = Math.min(20, TWEETS + BURST);
  const pick = (): bigint => readers[Math.floor(Math.random() * readers.length)]!;
  const viaGateway = async (): Promise<void> => {
    const who = pick();
    const res = await fetch(`${gatewayUrl}/chirp.timeline.v1.TimelineService/GetHomeTimeline`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${tokens.get(who)}` },
      body: JSON.stringify({ pageSize: 20 }),
    });
    const body = (await res.json()) as { tweets?: unknown[] };
    if (res.status !== 200 || body.tweets?.length !== pageLength) throw new Error(`gateway read: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
  };
  const viaFloor = async (): Promise<void> => {
    const res = await fetch(`http://127.0.0.1:${floorPort}/home?user=${pick()}&n=20`);
    const body = (await res.json()) as { ids?: unknown[] };
    if (res.status !== 200 || body.ids?.length !== pageLength) throw new Error(`floor read: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
  };
  const measure = async (read: () => Promise<void>): Promise<{ reads: number; perSecond: number; p50Ms: number; p99Ms: number }> => {
    const warmUntil = performance.now() + 1000;
    const end = warmUntil + SECONDS * 1000;
    const latencies: number[] = [];
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (performance.now() < end) {
          const t0 = performance.now();
          await read();
          if (t0 >= warmUntil) latencies.push(performance.now() - t0);
        }
      }),
    );
    const sorted = sortNum(latencies);
    return { reads: latencies.length, perSecond: latencies.length / SECONDS, p50Ms: percentile(sorted, 50), p99Ms: percentile(sorted, 99) };
  };
  const rounds: Array<{ gateway: Awaited<ReturnType<typeof measure>>; floor: Awaited<ReturnType<typeof measure>> }> = [];
  let breakdown: Record<string, { calls: number; meanMs: number }> = {};
  let cpuPerRead: Record<string, number> = {};
  for (let r = 0; r < ROUNDS; r++) {
    const cpu0 = processCpu();
    const rpc0 = await rpcTimes();
    const g = await measure(viaGateway);
    if (r === 0) {
      // Where a read's time and CPU go, in the first gateway round.
      const cpu1 = processCpu();
      const rpc1 = await rpcTimes();
      const total = g.reads;
      cpuPerRead = Object.fromEntries(Object.entries(cpu1).map(([k, v]) => [k, Math.round(((v - (cpu0[k] ?? 0)) / total) * 1e6) / 1000]));
      breakdown = Object.fromEntries(
        [...rpc1].flatMap(([k, v]) => {
          const before = rpc0.get(k) ?? { sum: 0, count: 0 };
          const calls = v.count - before.count;
          return calls > 0 ? [[k, { calls, meanMs: round1(((v.sum - before.sum) / calls) * 1000) }]] : [];
        }),
      );
    }
    say(`round ${r + 1} gateway: ${g.perSecond.toFixed(0)} reads/s, p99 ${g.p99Ms.toFixed(1)} ms (${elapsed()})`);
    const f = await measure(viaFloor);
    say(`round ${r + 1} floor:   ${f.perSecond.toFixed(0)} reads/s, p99 ${f.p99Ms.toFixed(1)} ms (${elapsed()})`);
    rounds.push({ gateway: g, floor: f });
  }

  // --- report ----------------------------------------------------------------------
  const visible = sortNum(single.map((s) => s.visibleMs));
  const handler = sortNum(single.map((s) => s.handlerMs));
  const rates = sortNum(single.map((s) => s.deliveriesPerSecond));
  const summary = {
    fanOut: {
      followers: followers.length,
      tweets: single.length,
      visibleInAllMs: { p50: round1(percentile(visible, 50)), p99: round1(percentile(visible, 99)), max: round1(visible.at(-1)!) },
      handlerMs: { p50: round1(percentile(handler, 50)), p99: round1(percentile(handler, 99)) },
      deliveriesPerSecond: { p50: Math.round(percentile(rates, 50)), min: Math.round(rates[0]!) },
      burst: { ...burst, postingMs: round1(burst.postingMs), totalMs: round1(burst.totalMs), deliveriesPerSecond: Math.round(burst.deliveriesPerSecond) },
    },
    reads: rounds.map((r) => ({
      gateway: { ...r.gateway, perSecond: Math.round(r.gateway.perSecond), p50Ms: round1(r.gateway.p50Ms), p99Ms: round1(r.gateway.p99Ms) },
      floor: { ...r.floor, perSecond: Math.round(r.floor.perSecond), p50Ms: round1(r.floor.p50Ms), p99Ms: round1(r.floor.p99Ms) },
      throughputVsFloor: round1((r.gateway.perSecond / r.floor.perSecond) * 100) / 100,
    })),
  };

  console.log("\nFan-out (one author, %d active followers)", followers.length);
  console.table({
    "PostTweet returned -> in every follower's list (ms)": { p50: summary.fanOut.visibleInAllMs.p50, p99: summary.fanOut.visibleInAllMs.p99 },
    "fan-out handler (ms)": { p50: summary.fanOut.handlerMs.p50, p99: summary.fanOut.handlerMs.p99 },
    "deliveries per second, one tweet at a time": { p50: summary.fanOut.deliveriesPerSecond.p50, p99: "" },
    [`deliveries per second, ${BURST} tweets back to back`]: { p50: summary.fanOut.burst.deliveriesPerSecond, p99: "" },
  });
  console.log("GetHomeTimeline, page of 20, %d loops, %d readers", CONCURRENCY, readers.length);
  console.table(
    Object.fromEntries(
      summary.reads.flatMap((r, i) => [
        [`round ${i + 1} gateway`, { "reads/s": r.gateway.perSecond, "p50 ms": r.gateway.p50Ms, "p99 ms": r.gateway.p99Ms, "× floor": r.throughputVsFloor }],
        [`round ${i + 1} floor (node:http + the same Redis reads)`, { "reads/s": r.floor.perSecond, "p50 ms": r.floor.p50Ms, "p99 ms": r.floor.p99Ms, "× floor": 1 }],
      ]),
    ),
  );

  console.log("Where a gateway read goes (first round): server-side mean per call, and CPU ms per home read by process");
  console.table(breakdown);
  console.table(cpuPerRead);

  const result = {
    benchmark: "timeline",
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, loadavg: os.loadavg(), node: process.version },
    parameters: { followers: FOLLOWERS, tweets: TWEETS, burst: BURST, readers: READERS, concurrency: CONCURRENCY, seconds: SECONDS, rounds: ROUNDS },
    setup: { edgesMs: Math.round(edgesMs), listsBuiltMs: Math.round(warmMs) },
    ...summary,
    gatewayReadBreakdown: { rpcServerMeanMs: breakdown, cpuMsPerRead: cpuPerRead },
    raw: { single },
  };
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
  say(`wrote ${args.out} (${elapsed()})`);
} finally {
  await cleanup();
}
