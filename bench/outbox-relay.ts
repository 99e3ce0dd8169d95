/**
 * Outbox relay: latency from a committed outbox row to its event stored in
 * JetStream, and how fast a backlog drains, against a private cluster (two
 * MariaDB replica sets with semi-sync replicas, four shards, one nats-server).
 *
 *   node --import tsx bench/outbox-relay.ts [--rate 200] [--seconds 10] [--backlog 20000] [--poll-ms 50] [--batch 256]
 *
 * Latency: one writer commits TweetCreated events (one transaction each,
 * users spread over every shard) at --rate per second while the relay runs;
 * each event's commit time (when the transaction's promise resolved) is
 * compared with the time JetStream stored it (the stream's own timestamp;
 * same machine, same clock). The relay's ack follows the store by one reply.
 *
 * Throughput: with no relay running, --backlog rows are written (32
 * transactions at a time); then a relay starts and the time until every row
 * is in the stream is measured.
 */
import { parseArgs } from "node:util";
import { setTimeout as delay } from "node:timers/promises";
import { create } from "@bufbuild/protobuf";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { pino } from "pino";
import { startLocalCluster } from "../devcluster/index.js";
import { createEventBus } from "../lib/events/bus.js";
import { BUS_DEFAULTS, RELAY_DEFAULTS } from "../lib/events/config.js";
import { EVENT_ID_HEADER } from "../lib/events/headers.js";
import { appendOutbox } from "../lib/events/outbox.js";
import { announceOutboxCommits } from "../lib/events/outbox-wake.js";
import { startOutboxRelay } from "../lib/events/relay.js";
import { EVENT_STREAM, EVENTS } from "../lib/events/subjects.js";
import { createIdGenerator } from "../lib/ids.js";
import { serviceInfraEnv } from "../devcluster/launch.js";
import { createMetrics } from "../lib/metrics.js";
import { loadShardConfig } from "../lib/shard/shard-config.js";
import { topologyFromEnv } from "../lib/shard/config.js";
import { createShardRouter } from "../lib/shard/router.js";

const { values: args } = parseArgs({
  options: {
    rate: { type: "string", default: "200" },
    seconds: { type: "string", default: "10" },
    backlog: { type: "string", default: "20000" },
    "poll-ms": { type: "string", default: String(RELAY_DEFAULTS.pollMs) },
    batch: { type: "string", default: String(RELAY_DEFAULTS.batchSize) },
    // As the services run it: a commit nudges the relay (outbox-wake.ts). --no-wake: polling only.
    wake: { type: "boolean", default: true },
  },
  allowNegative: true,
});
const rate = Number(args.rate);
const seconds = Number(args.seconds);
const backlog = Number(args.backlog);
const config = { ...RELAY_DEFAULTS, pollMs: Number(args["poll-ms"]), batchSize: Number(args.batch) };
const say = (line: string): void => console.error(`[bench] ${line}`);
const log = pino({ level: "warn" });

const cluster = await startLocalCluster({ ephemeral: true, log: () => {} });
const router = await createShardRouter(topologyFromEnv(serviceInfraEnv(cluster), loadShardConfig("local")));
const bus = createEventBus({ config: { ...BUS_DEFAULTS, natsUrl: cluster.natsUrl }, log });
await bus.ready();
const stopAnnouncing = args.wake ? announceOutboxCommits(bus) : () => {};
const nc = await connect({ servers: cluster.natsUrl });
const jsm = await jetstreamManager(nc);
const ids = createIdGenerator(1);
const users = Array.from({ length: 64 }, (_, i) => BigInt(10_000 + i));
const text = "x".repeat(140);
let tweetId = 0n;

const append = async (userId: bigint): Promise<string> => {
  const id = ++tweetId;
  const eventId = await router.transaction(router.shardForUser(userId), (tx) =>
    appendOutbox(tx, ids, { type: EVENTS.tweetCreated, message: create(EVENTS.tweetCreated.schema, { tweetId: id, authorId: userId, text }), userId, requestId: `r${id}` }),
  );
  return String(eventId);
};

/** Stored time (ms, server clock) of every message from `fromSeq` to `toSeq`, by event id. */
const storedTimes = async (fromSeq: number, toSeq: number): Promise<Map<string, number>> => {
  const oc = await jetstream(nc).consumers.get(EVENT_STREAM, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq });
  const out = new Map<string, number>();
  const iter = await oc.consume({ max_messages: 1000 });
  for await (const m of iter) {
    out.set(m.headers?.get(EVENT_ID_HEADER) ?? "", Number(m.info.timestampNanos) / 1e6);
    if (m.seq >= toSeq) break;
  }
  return out;
};

const lastSeq = async (): Promise<number> => (await jsm.streams.info(EVENT_STREAM)).state.last_seq;
const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;

try {
  // --- latency ---------------------------------------------------------------
  const relay = startOutboxRelay({ router, bus, config, log, metrics: createMetrics("bench") });
  for (let i = 0; i < 200; i++) await append(users[i % users.length]!); // warm pools and leases
  await delay(2000);
  const from = (await lastSeq()) + 1;
  const committed = new Map<string, number>();
  const start = performance.now();
  const total = rate * seconds;
  say(`latency: ${total} events at ${rate}/s, ${args.wake ? "woken on commit, " : ""}poll ${config.pollMs} ms, batch ${config.batchSize}`);
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await delay(wait);
    const eventId = await append(users[i % users.length]!);
    committed.set(eventId, Date.now());
  }
  while ((await lastSeq()) < from + total - 1) await delay(50);
  const stored = await storedTimes(from, from + total - 1);
  const lat = [...committed].map(([id, at]) => stored.get(id)! - at).sort((a, b) => a - b);
  const mean = lat.reduce((a, b) => a + b, 0) / lat.length;
  say(`commit -> stored in JetStream (ms): mean ${mean.toFixed(1)}, p50 ${pct(lat, 50).toFixed(1)}, p90 ${pct(lat, 90).toFixed(1)}, p99 ${pct(lat, 99).toFixed(1)}, max ${lat[lat.length - 1]!.toFixed(1)}`);
  await relay.stop();

  // --- throughput ------------------------------------------------------------
  say(`throughput: writing a backlog of ${backlog} rows with no relay running...`);
  const writeStart = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < backlog) {
        const i = next++;
        await append(users[i % users.length]!);
      }
    }),
  );
  say(`  written in ${((performance.now() - writeStart) / 1000).toFixed(1)} s (${Math.round(backlog / ((performance.now() - writeStart) / 1000))} tx/s)`);
  const target = (await lastSeq()) + backlog;
  const drainStart = performance.now();
  const drainer = startOutboxRelay({ router, bus, config, log, metrics: createMetrics("bench-drain") });
  while ((await lastSeq()) < target) await delay(20);
  const drainS = (performance.now() - drainStart) / 1000;
  say(`  drained by one relay (4 shards in parallel) in ${drainS.toFixed(2)} s: ${Math.round(backlog / drainS)} events/s (includes claiming the leases)`);
  await drainer.stop();
} finally {
  stopAnnouncing();
  await nc.close();
  await bus.close();
  await router.close();
  await cluster.stop();
}
