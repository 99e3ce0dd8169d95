/**
 * Search: query latency over a large index, and indexing lag, against a
 * private cluster (two MariaDB replica sets with semi-sync replicas, four
 * shards, Redis, one nats-server).
 *
 *   npm run bench:search -- [--tweets 1000000] [--queries 2000] [--rates 10,100,200] [--seconds 20]
 *
 * 1. Load: --tweets synthetic tweets (Zipf-distributed words, hashtags,
 *    mentions, authors; see `makeTweet`) are analysed by the service's own
 *    analyzer and written straight into search_docs and search_postings on
 *    the shard primaries (not through PostTweet or events), postings in key
 *    order so the clustered index grows by appending. Replicas apply it all
 *    by replication, as they would in production.
 * 2. Queries: --queries searches (after a warm-up), one at a time, each the
 *    service's own parse + fan-out (services/search/fan-out.ts: every shard
 *    in parallel on its replica, merged newest first, page of 20), built
 *    from words, phrases, hashtags, mentions and authors of random loaded
 *    tweets, so they have matches. Hydration (the tweet service's
 *    BatchGetTweets) is not part of it. p50/p99 per kind of query.
 * 3. Lag: TweetCreated events are committed to the outbox (one transaction
 *    each, authors over every shard) at each of --rates per second for
 *    --seconds, while the relay (default 50 ms poll) publishes them and the
 *    search-index consumer indexes them; a poller searches the run's word
 *    every 10 ms through the same fan-out. Lag = first search that returns
 *    the tweet - the commit's promise resolving.
 *
 * Prints progress to stderr, a table to stdout, and writes
 * bench/results/search.json (--out).
 */
import { writeFileSync } from "node:fs";
import { cpus, loadavg, platform, release, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { setTimeout as delay } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { connect as connectNats } from "@nats-io/transport-node";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { pino } from "pino";
import { startLocalCluster } from "../devcluster/index.js";
import { createEventBus } from "../lib/events/bus.js";
import { BUS_DEFAULTS, RELAY_DEFAULTS } from "../lib/events/config.js";
import { consume } from "../lib/events/consumer.js";
import { appendOutbox } from "../lib/events/outbox.js";
import { startOutboxRelay } from "../lib/events/relay.js";
import { EVENTS } from "../lib/events/subjects.js";
import { createIdGenerator } from "../lib/ids.js";
import { serviceInfraEnv } from "../devcluster/launch.js";
import { createMetrics } from "../lib/metrics.js";
import { loadShardConfig } from "../lib/shard/shard-config.js";
import { topologyFromEnv } from "../lib/shard/config.js";
import { createShardRouter } from "../lib/shard/router.js";
import { openTopologyKv } from "../lib/shard/topology.js";
import { topologyConfigFor } from "../services/topology/config.js";
import { TopologyManager } from "../services/topology/manager.js";
import { createTopologyMetrics } from "../services/topology/metrics.js";
import { analyzeTweet, authorTerm, mentionTerm, phraseNeedle } from "../services/search/analyze.js";
import { SEARCH_EVENTS, SEARCH_INDEX_DURABLE, indexHandler } from "../services/search/events.js";
import { loadSearchConfig } from "../services/search/config.js";
import { searchAllShards, type FanOutOptions } from "../services/search/fan-out.js";
import { createIndexWriter } from "../services/search/index-writer.js";
import { parseQuery } from "../services/search/query.js";
import { createSearchStore, type IndexedDoc } from "../services/search/store.js";
import { createRng as rng } from "../scripts/cli/rng.js";
import { COMMON, syntheticTweets, type Synthetic } from "./search-data.js";

const { values: args } = parseArgs({
  options: {
    tweets: { type: "string", default: "1000000" },
    queries: { type: "string", default: "2000" },
    warmup: { type: "string", default: "300" },
    rates: { type: "string", default: "10,100,200" },
    seconds: { type: "string", default: "20" },
    users: { type: "string", default: "100000" },
    seed: { type: "string", default: "7" },
    out: { type: "string", default: "bench/results/search.json" },
  },
});
const N = Number(args.tweets);
const QUERIES = Number(args.queries);
const WARMUP = Number(args.warmup);
const RATES = args.rates.split(",").map(Number);
const SECONDS = Number(args.seconds);
const USERS = Number(args.users);
const SEED = Number(args.seed);
const TWEET_BITS = 2 ** 22;
if (!(N > 0 && N < TWEET_BITS)) throw new RangeError(`--tweets must be in 1..${TWEET_BITS - 1}`);

const say = (line: string): void => console.error(`[bench] ${line}`);
/** The search service's defaults (CHIRP_SEARCH_* from the environment apply, as in the service). */
const SEARCH_CONFIG = loadSearchConfig(process.env);
const log = pino({ level: "warn" });
const started = performance.now();
const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(0)} s`;

// --- synthetic tweets ---------------------------------------------------------

const synthetic = syntheticTweets({ n: N, users: USERS, seed: SEED });
const VOCAB = synthetic.vocabulary;
const makeTweet = synthetic.tweet;
const tweetIdOf = synthetic.tweetId;
const userId = synthetic.userId;

const docOf = (t: Synthetic): IndexedDoc => ({ tweetId: t.tweetId, authorId: t.authorId, ...analyzeTweet(t) });

// --- the cluster ---------------------------------------------------------------

say(`starting a private cluster...`);
const cluster = await startLocalCluster({ ephemeral: true, log: () => {} });
// The topology manager writes the heartbeats that tell the router how far
// behind each replica is while the router asks for them (over nc): without
// them a replica serves reads only while it is current by GTID.
const nc = await connectNats({ servers: cluster.natsUrl });
const kv = await openTopologyKv(nc);
const manager = new TopologyManager(topologyConfigFor(cluster, loadShardConfig("local")), { log: pino({ level: "warn" }), metrics: createTopologyMetrics(), kv, nc });
const topology = await manager.start();
const router = await createShardRouter({ ...topologyFromEnv(serviceInfraEnv(cluster), loadShardConfig("local")), topology, topologyKv: kv, topologyNats: nc, poolSize: 16 });
const store = createSearchStore(router);
const shards = router.shards();
const shardIndex = new Map(shards.map((s, i) => [s.name, i]));
const fanOut: FanOutOptions = { router, store, timeoutMs: 10_000 };
const pct = (sorted: readonly number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? NaN;
const [{ version: mysqlVersion }] = (await router.primary(shards[0]!).query<{ version: string }>("SELECT VERSION() AS version")) as [{ version: string }];

const results: Record<string, unknown> = {
  benchmark: "search",
  date: new Date().toISOString(),
  machine: {
    cpus: `${cpus().length} x ${cpus()[0]?.model ?? "?"}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    platform: `${platform()} ${release()}`,
    node: process.version,
    mysql: mysqlVersion,
  },
  parameters: { tweets: N, queries: QUERIES, warmup: WARMUP, rates: RATES, seconds: SECONDS, users: USERS, seed: SEED, pageSize: 20, relayPollMs: RELAY_DEFAULTS.pollMs, indexConcurrency: SEARCH_CONFIG.indexConcurrency },
};

try {
  // --- 1. load -------------------------------------------------------------------
  say(`load: analysing ${N.toLocaleString()} synthetic tweets...`);
  const dict = new Map<string, number>();
  const terms: string[] = [];
  const keys: number[][] = shards.map(() => []);
  const shardOfTweet = new Uint8Array(N);
  let lastReport = performance.now();
  for (let i = 0; i < N; i++) {
    const t = makeTweet(i);
    const s = shardIndex.get(store.shardOf(t.tweetId).name)!;
    shardOfTweet[i] = s;
    for (const term of analyzeTweet(t).terms) {
      let id = dict.get(term);
      if (id === undefined) {
        id = terms.length;
        terms.push(term);
        dict.set(term, id);
      }
      keys[s]!.push(id * TWEET_BITS + i);
    }
    if (performance.now() - lastReport > 5000) {
      lastReport = performance.now();
      say(`  analysed ${i.toLocaleString()} (${elapsed()})`);
    }
  }
  // Postings go in in the clustered key's order (term bytes, then tweet id), so InnoDB appends.
  const byBytes = terms.map((t, id) => ({ id, bytes: Buffer.from(t) })).sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  const rankOf = new Uint32Array(terms.length);
  byBytes.forEach((t, rank) => (rankOf[t.id] = rank));
  const termsByRank = byBytes.map((t) => terms[t.id]!);
  const sorted = keys.map((list) => Float64Array.from(list, (k) => rankOf[Math.floor(k / TWEET_BITS)]! * TWEET_BITS + (k % TWEET_BITS)).sort());
  keys.length = 0;
  const postings = sorted.reduce((n, a) => n + a.length, 0);
  say(`  ${postings.toLocaleString()} postings, ${terms.length.toLocaleString()} distinct terms; writing docs (${elapsed()})...`);

  const loadStart = performance.now();
  let docsDone = 0;
  let postingsDone = 0;
  const progress = setInterval(() => {
    const s = (performance.now() - loadStart) / 1000;
    say(`  docs ${docsDone.toLocaleString()}/${N.toLocaleString()}, postings ${postingsDone.toLocaleString()}/${postings.toLocaleString()} (${Math.round((docsDone + postingsDone) / s).toLocaleString()} rows/s, ${elapsed()})`);
  }, 10_000);
  await Promise.all(
    shards.map(async (shard, s) => {
      let batch: IndexedDoc[] = [];
      for (let i = 0; i < N; i++) {
        if (shardOfTweet[i] !== s) continue;
        batch.push(docOf(makeTweet(i)));
        if (batch.length === 1000) {
          await store.bulkInsert(shard, batch, []);
          docsDone += batch.length;
          batch = [];
        }
      }
      await store.bulkInsert(shard, batch, []);
      docsDone += batch.length;
      const list = sorted[s]!;
      for (let k = 0; k < list.length; k += 5000) {
        const rows: [string, bigint][] = [];
        for (let j = k; j < Math.min(list.length, k + 5000); j++) {
          const key = list[j]!;
          rows.push([termsByRank[Math.floor(key / TWEET_BITS)]!, tweetIdOf(key % TWEET_BITS)]);
        }
        await store.bulkInsert(shard, [], rows);
        postingsDone += rows.length;
      }
    }),
  );
  clearInterval(progress);
  const loadS = (performance.now() - loadStart) / 1000;
  say(`  loaded in ${loadS.toFixed(0)} s; waiting for the replicas to catch up...`);
  const caughtUp = (): boolean => router.status().replicaSets.every((rs) => rs.members.every((m) => m.role === "primary" || (m.eligible && (m.lagMs ?? Infinity) < 500)));
  const waitStart = performance.now();
  while (!caughtUp()) {
    if (performance.now() - waitStart > 600_000) throw new Error("replicas did not catch up within 10 minutes");
    await delay(500);
  }
  const sizes = await Promise.all(
    shards.map(async (shard) => {
      const rows = await router
        .primary(shard)
        .query<{ t: string; bytes: string; rows_est: string }>(
          "SELECT table_name AS t, data_length + index_length AS bytes, table_rows AS rows_est FROM information_schema.tables WHERE table_schema = ? AND table_name LIKE 'search_%'",
          [shard.database],
        )
        .catch(() => []);
      return { shard: shard.name, tables: Object.fromEntries(rows.map((r) => [r.t, Math.round(Number(r.bytes) / 2 ** 20)])) };
    }),
  );
  results["load"] = { seconds: Math.round(loadS), docs: N, postings, distinctTerms: terms.length, rowsPerSecond: Math.round((N + postings) / loadS), sizesMiB: sizes };
  say(`  index ready; replicas serve reads: ${caughtUp()} (${elapsed()})`);

  // --- 2. queries ----------------------------------------------------------------
  const pickI = rng(SEED + 1);
  const randomTweet = (): Synthetic => makeTweet(Math.floor(pickI() * N));
  const randomWord = (t: Synthetic): string => t.words[Math.floor(pickI() * t.words.length)]!;
  const vocabRank = new Map(VOCAB.map((w, i) => [w, i]));
  const rare = (t: Synthetic): string => [...t.words].sort((a, b) => vocabRank.get(b)! - vocabRank.get(a)!)[0]!;
  type Kind = { name: string; make: () => { text: string; extra: string[] } };
  const kinds: Kind[] = [
    { name: "common word", make: () => ({ text: COMMON[Math.floor(pickI() * 10)]!, extra: [] }) },
    { name: "one word", make: () => ({ text: randomWord(randomTweet()), extra: [] }) },
    { name: "rare word", make: () => ({ text: rare(randomTweet()), extra: [] }) },
    {
      name: "two words",
      make: () => {
        const t = randomTweet();
        return { text: `${randomWord(t)} ${randomWord(t)}`, extra: [] };
      },
    },
    { name: "two common words", make: () => ({ text: `${COMMON[Math.floor(pickI() * 20)]} ${COMMON[20 + Math.floor(pickI() * 20)]}`, extra: [] }) },
    {
      name: "three words",
      make: () => {
        const t = randomTweet();
        return { text: `${randomWord(t)} ${randomWord(t)} ${randomWord(t)}`, extra: [] };
      },
    },
    {
      name: "phrase",
      make: () => {
        const t = randomTweet();
        const k = Math.floor(pickI() * (t.words.length - 1));
        return { text: `"${t.words[k]} ${t.words[k + 1]}"`, extra: [] };
      },
    },
    {
      name: "#hashtag",
      make: () => {
        for (;;) {
          const t = randomTweet();
          if (t.hashtags.length > 0) return { text: `#${t.hashtags[0]}`, extra: [] };
        }
      },
    },
    {
      name: "#hashtag word",
      make: () => {
        for (;;) {
          const t = randomTweet();
          if (t.hashtags.length > 0) return { text: `#${t.hashtags[0]} ${randomWord(t)}`, extra: [] };
        }
      },
    },
    // @handle and from:handle resolve a handle through the user service first;
    // here the resolved term is given directly.
    {
      name: "@mention",
      make: () => {
        for (;;) {
          const t = randomTweet();
          if (t.mentions.length > 0) return { text: "", extra: [mentionTerm(t.mentions[0]!)] };
        }
      },
    },
    { name: "from:author", make: () => ({ text: "", extra: [authorTerm(randomTweet().authorId)] }) },
    {
      name: "from:author word",
      make: () => {
        const t = randomTweet();
        return { text: randomWord(t), extra: [authorTerm(t.authorId)] };
      },
    },
  ];
  const runQuery = async (q: { text: string; extra: string[] }): Promise<{ ms: number; hits: number }> => {
    const t0 = performance.now();
    const parsed = q.text === "" ? { terms: [], phrases: [] } : parseQuery(q.text);
    const page = await searchAllShards(fanOut, {
      terms: [...new Set([...parsed.terms, ...q.extra])],
      needles: parsed.phrases.map(phraseNeedle),
      before: undefined,
      limit: 20,
    });
    if (page.unavailable.length > 0) throw new Error(`shards unavailable: ${page.unavailable.join(", ")}`);
    return { ms: performance.now() - t0, hits: page.hits.length };
  };
  say(`queries: ${WARMUP} warm-up, then ${QUERIES} (${kinds.length} kinds, one at a time)...`);
  for (let i = 0; i < WARMUP; i++) await runQuery(kinds[i % kinds.length]!.make());
  const byKind = new Map<string, { ms: number[]; hits: number[] }>(kinds.map((k) => [k.name, { ms: [], hits: [] }]));
  const all: number[] = [];
  for (let i = 0; i < QUERIES; i++) {
    const kind = kinds[i % kinds.length]!;
    const { ms, hits } = await runQuery(kind.make());
    byKind.get(kind.name)!.ms.push(ms);
    byKind.get(kind.name)!.hits.push(hits);
    all.push(ms);
    if ((i + 1) % 500 === 0) say(`  ${i + 1}/${QUERIES} (${elapsed()})`);
  }
  const summary = (ms: number[], hits?: number[]): Record<string, number> => {
    const s = [...ms].sort((a, b) => a - b);
    const out: Record<string, number> = { n: s.length, p50: +pct(s, 50).toFixed(2), p90: +pct(s, 90).toFixed(2), p99: +pct(s, 99).toFixed(2), max: +(s[s.length - 1] ?? NaN).toFixed(2) };
    if (hits !== undefined) out["meanHits"] = +(hits.reduce((a, b) => a + b, 0) / hits.length).toFixed(1);
    return out;
  };
  results["queries"] = { all: summary(all), byKind: Object.fromEntries([...byKind].map(([k, v]) => [k, summary(v.ms, v.hits)])) };

  // --- 3. indexing lag -------------------------------------------------------------
  const metrics = createMetrics("bench");
  const bus = createEventBus({ config: { ...BUS_DEFAULTS, natsUrl: cluster.natsUrl }, log });
  await bus.ready();
  const relay = startOutboxRelay({ router, bus, config: RELAY_DEFAULTS, log, metrics });
  // Stage times per tweet (wall clock, one machine): stored in JetStream, index rows committed.
  const stages = new Map<bigint, { stored: number; indexed: number }>();
  const index = indexHandler(store, createIndexWriter(store));
  const consumer = consume({
    bus,
    durable: SEARCH_INDEX_DURABLE,
    subjects: SEARCH_EVENTS,
    concurrency: SEARCH_CONFIG.indexConcurrency,
    handler: async (event) => {
      await index(event);
      if (event.subject === EVENTS.tweetCreated.subject) stages.set(event.message.tweetId, { stored: event.publishTime.getTime(), indexed: Date.now() });
    },
    log,
    metrics,
  });
  await consumer.started();
  const ids = createIdGenerator(9);
  const authors = Array.from({ length: 256 }, (_, i) => userId(i * 389));
  const lagResults: Record<string, number>[] = [];
  const commitEvent = async (word: string, k: number): Promise<{ tweetId: bigint; committedAt: number }> => {
    const author = authors[k % authors.length]!;
    const tweetId = ids.next();
    const body = makeTweet(k % N);
    const message = create(EVENTS.tweetCreated.schema, {
      tweetId,
      authorId: author,
      text: `${word} ${body.words.join(" ")}`,
      hashtags: [...body.hashtags],
      createTime: timestampFromMs(Date.now()),
    });
    await router.transaction(router.shardForUser(author), (tx) => appendOutbox(tx, ids, { type: EVENTS.tweetCreated, message, userId: author, requestId: undefined }));
    return { tweetId, committedAt: Date.now() };
  };
  // Warm the relay's leases and the consumer.
  for (let k = 0; k < 50; k++) await commitEvent("lagwarmup", k);
  await delay(3000);

  for (const rate of RATES) {
    const word = `lagrun${rate}x${SEED}`;
    const total = Math.round(rate * SECONDS);
    say(`lag: ${total} TweetCreated at ${rate}/s through outbox -> relay -> JetStream -> search-index, polled every 10 ms...`);
    const committed = new Map<bigint, number>();
    const visible = new Map<bigint, number>();
    let writing = true;
    let lastCommit = Date.now();
    // Walks the run's matches from the newest pending (committed, not yet
    // seen) tweet down past the oldest pending one, so a tweet indexed late,
    // below newer ones, is still seen. Tweets not yet known to have committed
    // are left for a later poll.
    const poller = (async () => {
      while (writing || visible.size < committed.size) {
        const pending = [...committed.keys()].filter((id) => !visible.has(id));
        if (pending.length > 0) {
          const newest = pending.reduce((a, b) => (a > b ? a : b));
          const oldest = pending.reduce((a, b) => (a < b ? a : b));
          let before: bigint | undefined = newest + 1n;
          for (let pageNo = 0; pageNo < 50 && before !== undefined; pageNo++) {
            const page = await searchAllShards(fanOut, { terms: [word], needles: [], before, limit: 999 });
            const now = Date.now();
            for (const h of page.hits) if (committed.has(h.tweetId) && !visible.has(h.tweetId)) visible.set(h.tweetId, now);
            const last = page.hits[page.hits.length - 1]?.tweetId;
            before = page.hasMore && last !== undefined && last > oldest ? last : undefined;
          }
        }
        await delay(10);
        if (!writing && Date.now() - lastCommit > 60_000) break;
      }
    })();
    const start = performance.now();
    const start0 = Date.now();
    const pending: Promise<void>[] = [];
    for (let k = 0; k < total; k++) {
      const due = start + (k * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await delay(wait);
      // Open loop: a slow commit does not hold back the next one.
      pending.push(
        commitEvent(word, k).then(({ tweetId, committedAt }) => {
          committed.set(tweetId, committedAt);
          lastCommit = committedAt;
        }),
      );
    }
    await Promise.all(pending);
    writing = false;
    await poller;
    const lags = [...committed]
      .map(([id, at]) => (visible.has(id) ? visible.get(id)! - at : Number.POSITIVE_INFINITY))
      .sort((a, b) => a - b);
    const missing = lags.filter((l) => !Number.isFinite(l)).length;
    const found = lags.filter(Number.isFinite);
    const sm = summary(found);
    const row: Record<string, number> = { rate, events: total, missing, ...sm, mean: +(found.reduce((a, b) => a + b, 0) / found.length).toFixed(1), within2s: +((found.filter((l) => l < 2000).length / total) * 100).toFixed(2) };
    // Where the time went: commit -> stored in JetStream (relay), stored -> indexed (consumer), indexed -> seen (replica, poll).
    const stage = (f: (id: bigint, committedAt: number) => number | undefined): Record<string, number> =>
      summary([...committed].map(([id, at]) => f(id, at)).filter((x): x is number => x !== undefined));
    row["relayP50"] = stage((id, at) => (stages.has(id) ? stages.get(id)!.stored - at : undefined))["p50"]!;
    row["consumerP50"] = stage((id) => (stages.has(id) ? stages.get(id)!.indexed - stages.get(id)!.stored : undefined))["p50"]!;
    row["visibleP50"] = stage((id) => (stages.has(id) && visible.has(id) ? visible.get(id)! - stages.get(id)!.indexed : undefined))["p50"]!;
    row["achievedPerSecond"] = +(total / ((Math.max(...[...stages.values()].map((v) => v.indexed)) - start0) / 1000)).toFixed(1);
    lagResults.push(row);
    say(`  stages p50 (ms): commit -> JetStream ${row["relayP50"]}, JetStream -> indexed ${row["consumerP50"]}, indexed -> searchable ${row["visibleP50"]}`);
    say(`  commit -> searchable (ms): p50 ${sm["p50"]}, p99 ${sm["p99"]}, max ${sm["max"]}; ${row["within2s"]}% within 2 s; ${missing} never seen`);
  }
  results["lag"] = lagResults;
  await consumer.stop();
  await relay.stop();
  await bus.close();

  // --- report ----------------------------------------------------------------------
  results["machine"] = { ...(results["machine"] as object), loadAverageAtEnd: loadavg().map((x) => +x.toFixed(2)) };
  writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
  const q = results["queries"] as { all: Record<string, number>; byKind: Record<string, Record<string, number>> };
  const line = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
  const table = [
    `search over ${N.toLocaleString()} tweets (${postings.toLocaleString()} postings, 4 shards on 2 replica sets), page of 20, no hydration`,
    line(["query", "n", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean hits"]),
    line(["---", "---", "---", "---", "---", "---", "---"]),
    ...Object.entries(q.byKind).map(([k, v]) => line([k, v["n"]!, v["p50"]!, v["p90"]!, v["p99"]!, v["max"]!, v["meanHits"]!])),
    line(["all", q.all["n"]!, q.all["p50"]!, q.all["p90"]!, q.all["p99"]!, q.all["max"]!, ""]),
    "",
    "indexing lag, outbox commit -> searchable (relay poll 50 ms, search poll 10 ms)",
    line(["rate/s", "events", "p50 ms", "p99 ms", "max ms", "within 2 s", "never seen", "p50 commit->JetStream", "p50 JetStream->indexed", "p50 indexed->seen", "indexed/s"]),
    line(["---", "---", "---", "---", "---", "---", "---", "---", "---", "---", "---"]),
    ...lagResults.map((r) =>
      line([r["rate"] as number, r["events"] as number, r["p50"] as number, r["p99"] as number, r["max"] as number, `${r["within2s"]}%`, r["missing"] as number, r["relayP50"] as number, r["consumerP50"] as number, r["visibleP50"] as number, r["achievedPerSecond"] as number]),
    ),
    "",
    `load: ${(results["load"] as { seconds: number }).seconds} s (${(results["load"] as { rowsPerSecond: number }).rowsPerSecond.toLocaleString()} rows/s); results in ${args.out}`,
  ];
  console.log(table.join("\n"));
} finally {
  await router.close();
  await manager.stop();
  await nc.close();
  await cluster.stop();
}
