// The event plumbing against a private cluster (real mariadbd replica sets and
// nats-server): outbox rows written with appendOutbox reach JetStream through
// the relay in order per shard, with their headers and message id; nothing is
// lost or repeated across a NATS outage, two relays, or a relay killed
// without releasing its leases; sent rows are purged after the retention; and
// the durable consumer helper acks, retries, dead-letters and stops cleanly.
import { formatServiceKeys, generateMeshSecret, parseMeshSecrets } from "../../lib/auth/assertion.js";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { setTimeout as delay } from "node:timers/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { DeliverPolicy, jetstream, jetstreamManager, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect as connectNats, headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import { pino } from "pino";
import { createConnection } from "mysql2/promise";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startLocalCluster, type RunningInfra } from "../../devcluster/index.js";
import { createEventBus, type EventBus } from "../../lib/events/bus.js";
import { BUS_DEFAULTS, RELAY_DEFAULTS, type RelayConfig } from "../../lib/events/config.js";
import { eventMetrics } from "../../lib/events/metrics.js";
import { consume, type ConsumedEvent, type EventConsumer } from "../../lib/events/consumer.js";
import { EVENT_ID_HEADER, REQUEST_ID_HEADER, USER_ID_HEADER } from "../../lib/events/headers.js";
import { announceOutboxCommits } from "../../lib/events/outbox-wake.js";
import { appendOutbox } from "../../lib/events/outbox.js";
import { RELAY_LEASE_BUCKET, startOutboxRelay, type OutboxRelay } from "../../lib/events/relay.js";
import { EVENT_STREAM, EVENTS } from "../../lib/events/subjects.js";
import { createIdGenerator } from "../../lib/ids.js";
import { serviceInfraEnv } from "../../devcluster/launch.js";
import { envName } from "../../lib/mesh.js";
import { createMetrics, type Metrics } from "../../lib/metrics.js";
import { loadShardConfig } from "../../lib/shard/shard-config.js";
import { topologyFromEnv } from "../../lib/shard/config.js";
import { createShardRouter, type ShardRouter } from "../../lib/shard/router.js";
import { eventually } from "../support/eventually.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const log = pino({ level: process.env["TEST_LOG_LEVEL"] ?? "silent" });

let cluster: RunningInfra;
let router: ShardRouter;
let nc: NatsConnection;
let jsm: JetStreamManager;
let metrics: Metrics;
const ids = createIdGenerator(1);
const buses: EventBus[] = [];
const relays: OutboxRelay[] = [];
const consumers: EventConsumer[] = [];
const children: ChildProcess[] = [];
let bucketSeq = 0;

beforeAll(async () => {
  cluster = await startLocalCluster({ ephemeral: true, log: () => {} });
  // A shard whose primary is down answers Unavailable after half a second instead of waiting for a failover.
  router = await createShardRouter({ ...topologyFromEnv(serviceInfraEnv(cluster), loadShardConfig("local")), failoverWaitMs: 500 });
  nc = await connectNats({ servers: cluster.natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  metrics = createMetrics("outbox-test");
  // The stream exists before the first test reads it.
  await (await newBus()).ready(AbortSignal.timeout(10_000));
  jsm = await jetstreamManager(nc);
});

/** What a test started, stopped after it: relays left running would publish the next test's rows too. */
async function stopStarted(): Promise<void> {
  for (const c of children.splice(0)) c.kill("SIGKILL");
  for (const c of consumers.splice(0)) await c.stop();
  for (const r of relays.splice(0)) await r.stop();
  for (const b of buses.splice(1)) await b.close();
}

afterEach(stopStarted);

afterAll(async () => {
  await stopStarted();
  for (const b of buses) await b.close();
  await nc?.close();
  await router?.close();
  await cluster?.stop();
});

async function newBus(): Promise<EventBus> {
  const bus = createEventBus({ config: { ...BUS_DEFAULTS, natsUrl: cluster.natsUrl }, log, reconnectMinMs: 50, reconnectMaxMs: 500 });
  buses.push(bus);
  return bus;
}

function relayConfig(overrides: Partial<RelayConfig> = {}): RelayConfig {
  return {
    ...RELAY_DEFAULTS,
    pollMs: 20,
    retryMinMs: 50,
    retryMaxMs: 500,
    leaseTtlMs: 3000,
    leaseRenewMs: 500,
    leaseClaimMs: 200,
    publishTimeoutMs: 2000,
    ...overrides,
  };
}

async function newRelay(opts: { bucket: string; config?: Partial<RelayConfig>; bus?: EventBus }): Promise<OutboxRelay> {
  const relay = startOutboxRelay({
    router,
    bus: opts.bus ?? (await newBus()),
    config: relayConfig(opts.config),
    log,
    metrics,
    leaseBucket: opts.bucket,
  });
  relays.push(relay);
  return relay;
}

/** Each test's relays use their own lease bucket: a bucket's max age is fixed by whoever creates it. */
const freshBucket = (): string => `outbox_test_${++bucketSeq}`;

/** Relays poll, leases expire, NATS restarts: waits here are generous. */
const WAIT = { timeoutMs: 15_000 } as const;

interface Appended {
  readonly eventId: string;
  readonly userId: string;
  readonly text: string;
  readonly requestId: string;
}

let tweetSeq = 0n;

/** One committed transaction per call: a TweetCreated event in the author's outbox. */
async function appendTweetEvent(userId: string): Promise<Appended> {
  const tweetId = ++tweetSeq;
  const text = `tweet ${tweetId} by ${userId}`;
  const requestId = `req-${tweetId}`;
  const eventId = await router.transaction(router.shardForUser(userId), (tx) =>
    appendOutbox(tx, ids, {
      type: EVENTS.tweetCreated,
      message: create(EVENTS.tweetCreated.schema, { tweetId, authorId: BigInt(userId), text }),
      userId,
      requestId,
    }),
  );
  return { eventId: String(eventId), userId, text, requestId };
}

/** Every message of the stream from `fromSeq` on, in stream order. */
async function streamMessages(fromSeq = 1): Promise<JsMsg[]> {
  const info = await jsm.streams.info(EVENT_STREAM);
  const last = info.state.last_seq;
  if (last < fromSeq) return [];
  const js = jetstream(nc);
  const oc = await js.consumers.get(EVENT_STREAM, { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: fromSeq });
  const out: JsMsg[] = [];
  const iter = await oc.consume({ max_messages: 1000 });
  for await (const m of iter) {
    out.push(m);
    if (m.seq >= last) break;
  }
  return out;
}

/** Waits until every event id is in the stream; returns the messages carrying them, in stream order. */
async function awaitPublished(eventIds: readonly string[], fromSeq = 1, timeoutMs = 20_000): Promise<JsMsg[]> {
  const want = new Set(eventIds);
  return eventually(
    `${want.size} events in the stream`,
    async () => {
      const mine = (await streamMessages(fromSeq)).filter((m) => want.has(m.headers?.get(EVENT_ID_HEADER) ?? ""));
      return new Set(mine.map((m) => m.headers!.get(EVENT_ID_HEADER))).size === want.size ? mine : undefined;
    },
    { timeoutMs },
  );
}

async function lastSeq(): Promise<number> {
  return (await jsm.streams.info(EVENT_STREAM)).state.last_seq;
}

/** Outbox rows by event id, from every shard's primary. */
async function outboxRows(eventIds: readonly string[]): Promise<Map<string, { id: string; shard: string; sent: boolean }>> {
  const out = new Map<string, { id: string; shard: string; sent: boolean }>();
  if (eventIds.length === 0) return out;
  for (const shard of router.shards()) {
    const rows = await router
      .primary(shard)
      .query<{ id: string; event_id: string; sent_time: Date | null }>(
        `SELECT id, event_id, sent_time FROM chirp.outbox WHERE event_id IN (${eventIds.map(() => "?").join(",")})`,
        eventIds,
      );
    for (const r of rows) out.set(String(r.event_id), { id: String(r.id), shard: shard.name, sent: r.sent_time !== null });
  }
  return out;
}

async function publishedDuplicates(): Promise<number> {
  const { values } = await eventMetrics(metrics.registry).relayPublished.get();
  return values.filter((v) => v.labels["result"] === "duplicate").reduce((n, v) => n + v.value, 0);
}

async function relayFailures(stage: string): Promise<number> {
  const { values } = await eventMetrics(metrics.registry).relayFailures.get();
  return values.filter((v) => v.labels["stage"] === stage).reduce((n, v) => n + v.value, 0);
}

/** Users spread over every shard. */
const users = Array.from({ length: 24 }, (_, i) => String(1000 + i));

describe("outbox relay", () => {
  it("publishes committed outbox rows in id order per shard, with payload, headers and the event id as message id", async () => {
    const from = (await lastSeq()) + 1;
    await newRelay({ bucket: freshBucket() });
    const appended: Appended[] = [];
    for (let round = 0; round < 3; round++) for (const u of users) appended.push(await appendTweetEvent(u));
    expect(new Set(users.map((u) => router.shardForUser(u).name)).size).toBe(router.shards().length);

    const msgs = await awaitPublished(appended.map((a) => a.eventId), from);
    expect(msgs).toHaveLength(appended.length); // each exactly once
    const byEvent = new Map(appended.map((a) => [a.eventId, a]));
    for (const m of msgs) {
      const eventId = m.headers!.get(EVENT_ID_HEADER);
      const a = byEvent.get(eventId)!;
      expect(m.subject).toBe(EVENTS.tweetCreated.subject);
      expect(m.headers!.get("Nats-Msg-Id")).toBe(a.eventId);
      expect(m.headers!.get(USER_ID_HEADER)).toBe(a.userId);
      expect(m.headers!.get(REQUEST_ID_HEADER)).toBe(a.requestId);
      const decoded = fromBinary(EVENTS.tweetCreated.schema, m.data);
      expect(decoded.text).toBe(a.text);
      expect(String(decoded.authorId)).toBe(a.userId);
    }

    // Per shard, the stream holds the rows in outbox id order.
    const rows = await outboxRows(appended.map((a) => a.eventId));
    const seen = new Map<string, bigint>();
    for (const m of msgs) {
      const row = rows.get(m.headers!.get(EVENT_ID_HEADER))!;
      const before = seen.get(row.shard);
      if (before !== undefined) expect(BigInt(row.id) > before, `shard ${row.shard} order`).toBe(true);
      seen.set(row.shard, BigInt(row.id));
    }
    await eventually("rows marked sent", async () => [...(await outboxRows(appended.map((a) => a.eventId))).values()].every((r) => r.sent), WAIT);
  });

  it("is woken by a commit: rows are published at once, not at the next poll", async () => {
    // Polling once a minute: within this test only the nudge a commit sends (outbox-wake.ts) can publish.
    const bus = await newBus();
    const stopAnnouncing = announceOutboxCommits(bus);
    try {
      await bus.ready();
      const relay = await newRelay({ bucket: freshBucket(), config: { pollMs: 60_000 }, bus });
      await eventually("every shard's lease held", () => relay.heldShards().length === router.shards().length, WAIT);
      // A row on every shard, published: each shard's worker has read past it, so the rows
      // below are published only when a nudge wakes it (or after the minute's poll).
      const warm: Appended[] = [];
      for (const u of users) warm.push(await appendTweetEvent(u));
      await awaitPublished(warm.map((a) => a.eventId), 1, 10_000);
      const from = (await lastSeq()) + 1;
      const appended: Appended[] = [];
      for (const u of users.slice(0, 8)) appended.push(await appendTweetEvent(u));
      const msgs = await awaitPublished(appended.map((a) => a.eventId), from, 10_000);
      expect(msgs).toHaveLength(appended.length);
    } finally {
      stopAnnouncing();
    }
  });

  it("takes rows committed in this process from their transaction: published without reading the shard, marked sent later in one go", async () => {
    // No poll and no nudges within the test, and marks held for a minute: a row published
    // while still unsent in MySQL was handed over, not read (a read marks what it published).
    const relay = await newRelay({ bucket: freshBucket(), config: { pollMs: 60_000, markDelayMs: 60_000 } });
    await eventually("every shard's lease held", () => relay.heldShards().length === router.shards().length, WAIT);
    const from = (await lastSeq()) + 1;
    const appended: Appended[] = [];
    for (const u of users) appended.push(await appendTweetEvent(u));
    const msgs = await awaitPublished(appended.map((a) => a.eventId), from, 10_000);
    expect(msgs).toHaveLength(appended.length);
    const byEvent = new Map(appended.map((a) => [a.eventId, a]));
    for (const m of msgs) {
      const a = byEvent.get(m.headers!.get(EVENT_ID_HEADER))!;
      expect(m.headers!.get(USER_ID_HEADER)).toBe(a.userId);
      expect(m.headers!.get(REQUEST_ID_HEADER)).toBe(a.requestId);
      expect(fromBinary(EVENTS.tweetCreated.schema, m.data).text).toBe(a.text);
    }
    expect([...(await outboxRows(appended.map((a) => a.eventId))).values()].filter((r) => r.sent)).toEqual([]);
    // Stopping marks what it published, so that the next holder does not publish it again.
    await relay.stop();
    expect([...(await outboxRows(appended.map((a) => a.eventId))).values()].every((r) => r.sent)).toBe(true);
  });

  it("publishes nothing for a rolled-back transaction", async () => {
    const from = (await lastSeq()) + 1;
    await newRelay({ bucket: freshBucket() });
    const user = users[0]!;
    let rolledBack = "";
    await expect(
      router.transaction(router.shardForUser(user), async (tx) => {
        rolledBack = String(
          await appendOutbox(tx, ids, {
            type: EVENTS.tweetCreated,
            message: create(EVENTS.tweetCreated.schema, { tweetId: 1n, authorId: BigInt(user), text: "never" }),
            userId: user,
          }),
        );
        throw new Error("abort the transaction");
      }),
    ).rejects.toThrow();
    // A later row on the same shard is published: the relay has been past that point.
    const after = await appendTweetEvent(user);
    await awaitPublished([after.eventId], from);
    const ids_ = (await streamMessages(from)).map((m) => m.headers?.get(EVENT_ID_HEADER));
    expect(ids_).not.toContain(rolledBack);
    expect((await outboxRows([rolledBack])).size).toBe(0);
  });

  it("loses and repeats nothing across a NATS outage: rows written meanwhile are published once it is back", async () => {
    const from = (await lastSeq()) + 1;
    // Polling once a minute, woken by commits: the rows written during the outage (their nudges
    // lost) are published because the relay reads every shard when its connection comes back.
    const bus = await newBus();
    const stopAnnouncing = announceOutboxCommits(bus);
    try {
      await bus.ready();
      const relay = await newRelay({ bucket: freshBucket(), config: { pollMs: 60_000 }, bus });
      await eventually("every lease held", async () => relay.heldShards().length === router.shards().length, WAIT);
      const before = await appendTweetEvent(users[1]!);
      await awaitPublished([before.eventId], from);

      const natsPid = cluster.processes.find((p) => p.name === "nats")!.pid;
      process.kill(natsPid, "SIGKILL");
      const during: Appended[] = [];
      for (const u of users) during.push(await appendTweetEvent(u));
      await delay(1500);
      const pending = await outboxRows(during.map((a) => a.eventId));
      expect([...pending.values()].some((r) => !r.sent)).toBe(true);

      const restartAt = Date.now();
      await cluster.restartNats();
      log.info({ ms: Date.now() - restartAt }, "nats restarted");
      for (const u of users.slice(0, 6)) during.push(await appendTweetEvent(u));
      const msgs = await awaitPublished(during.map((a) => a.eventId), from, 30_000);
      log.info({ ms: Date.now() - restartAt }, "outage backlog published after the restart began");
      // Exactly once each: the dedupe window drops any re-publish of a row whose ack was lost.
      expect(msgs).toHaveLength(during.length);
      await eventually("rows marked sent", async () => [...(await outboxRows(during.map((a) => a.eventId))).values()].every((r) => r.sent), WAIT);
    } finally {
      stopAnnouncing();
    }
  });

  it("with two relays running, each shard has one lease holder and every event is published once; a stopped relay hands over at once", async () => {
    const from = (await lastSeq()) + 1;
    const bucket = freshBucket();
    // A long lease: a handover within it shows the release, not the expiry.
    const config = { leaseTtlMs: 30_000, leaseRenewMs: 1000 };
    const all = router.shards().map((s) => s.name).sort();
    const a = await newRelay({ bucket, config });
    await eventually("the first relay holds every shard", async () => a.heldShards().sort().join() === all.join(), WAIT);
    const b = await newRelay({ bucket, config });
    await delay(1000); // b tries to claim every 200 ms meanwhile
    expect(b.heldShards()).toEqual([]);
    expect(a.heldShards().sort()).toEqual(all);

    const duplicatesBefore = await publishedDuplicates();
    const appended = await Promise.all(users.flatMap((u) => [appendTweetEvent(u), appendTweetEvent(u)]));
    const msgs = await awaitPublished(appended.map((x) => x.eventId), from);
    expect(msgs).toHaveLength(appended.length);

    const handoverStart = Date.now();
    await a.stop();
    await eventually("the other relay holds every shard", async () => b.heldShards().sort().join() === all.join(), { timeoutMs: 10_000 });
    log.info({ ms: Date.now() - handoverStart }, "handover after a graceful stop");
    const later = await Promise.all(users.map((u) => appendTweetEvent(u)));
    expect(await awaitPublished(later.map((x) => x.eventId), from)).toHaveLength(later.length);
    // Not even an attempt was repeated: the leases kept the relays off each other's shards.
    expect(await publishedDuplicates()).toBe(duplicatesBefore);
  });

  it("a relay killed without releasing its leases is replaced once they expire", async () => {
    const from = (await lastSeq()) + 1;
    const kv = await new Kvm(nc).create(RELAY_LEASE_BUCKET, { history: 1, ttl: 3000 });
    const child = await startTweetService({
      CHIRP_RELAY_LEASE_TTL_MS: "3000",
      CHIRP_RELAY_LEASE_RENEW_MS: "500",
      CHIRP_RELAY_POLL_MS: "20",
    });
    const keys = router.shards().map((s) => `${router.keyspace}.${s.name}`);
    await eventually(
      "the tweet service holds every shard's lease",
      async () => {
        for (const key of keys) {
          const e = await kv.get(key);
          if (e?.operation !== "PUT" || (JSON.parse(e.string()) as { pid: number }).pid !== child.pid) return false;
        }
        return true;
      },
      WAIT,
    );
    const viaChild = await appendTweetEvent(users[2]!);
    await awaitPublished([viaChild.eventId], from);

    const standby = await newRelay({ bucket: RELAY_LEASE_BUCKET, config: { leaseTtlMs: 3000, leaseRenewMs: 500, leaseClaimMs: 100 } });
    await delay(1000);
    expect(standby.heldShards()).toEqual([]);

    child.kill("SIGKILL");
    await once(child, "exit");
    const killedAt = Date.now();
    const during = await Promise.all(users.map((u) => appendTweetEvent(u)));
    await eventually("the standby holds every shard", async () => standby.heldShards().length === keys.length, WAIT);
    log.info({ ms: Date.now() - killedAt }, "takeover after a kill");
    const msgs = await awaitPublished(during.map((x) => x.eventId), from);
    expect(msgs).toHaveLength(during.length);
  });

  it("keeps sent rows for the retention period, then purges them", async () => {
    const from = (await lastSeq()) + 1;
    const bucket = freshBucket();
    const keeping = await newRelay({ bucket, config: { retentionMs: 3_600_000, purgeIntervalMs: 100 } });
    const appended = await Promise.all(users.map((u) => appendTweetEvent(u)));
    await awaitPublished(appended.map((x) => x.eventId), from);
    await eventually("rows marked sent", async () => [...(await outboxRows(appended.map((a) => a.eventId))).values()].every((r) => r.sent), WAIT);
    await delay(500);
    expect((await outboxRows(appended.map((a) => a.eventId))).size).toBe(appended.length);
    await keeping.stop();

    await newRelay({ bucket, config: { retentionMs: 200, purgeIntervalMs: 100, purgeBatch: 5 } });
    await eventually("sent rows purged", async () => (await outboxRows(appended.map((a) => a.eventId))).size === 0, WAIT);
  });
  it("backs off a shard whose primary is down while the other shards keep publishing, and catches up when it returns", async () => {
    const rs1 = cluster.mysql.replicaSets.find((rs) => rs.name === "rs1")!;
    const onRs1 = users.filter((u) => router.shardForUser(u).replicaSet === "rs1");
    const onRs0 = users.filter((u) => router.shardForUser(u).replicaSet === "rs0");
    expect(onRs1.length).toBeGreaterThan(0);
    expect(onRs0.length).toBeGreaterThan(0);
    const from = (await lastSeq()) + 1;
    // Written while no relay runs, then the replica set's primary dies with them unsent.
    const stranded = await Promise.all(onRs1.map((u) => appendTweetEvent(u)));
    process.kill(cluster.processes.find((p) => p.name === rs1.primary.name)!.pid, "SIGKILL");
    const failuresBefore = await relayFailures("read");

    await newRelay({ bucket: freshBucket() });
    const meanwhile = await Promise.all(onRs0.map((u) => appendTweetEvent(u)));
    await awaitPublished(meanwhile.map((x) => x.eventId), from);
    await eventually("reads on the dead primary fail", async () => (await relayFailures("read")) > failuresBefore, WAIT);
    const ids_ = new Set((await streamMessages(from)).map((m) => m.headers?.get(EVENT_ID_HEADER)));
    expect(stranded.some((x) => ids_.has(x.eventId))).toBe(false);

    // Back on its old port (read-only, as the topology manager would find it), then writable.
    await cluster.restartMysqlMember(rs1.primary.name);
    const admin = await createConnection({ host: rs1.primary.host, port: rs1.primary.port, ...cluster.mysql.adminUser });
    await admin.query("SET GLOBAL read_only = OFF");
    await admin.end();
    const msgs = await awaitPublished(stranded.map((x) => x.eventId), from, 30_000);
    expect(msgs).toHaveLength(stranded.length);
  });
  it("creates the stream again when a server lost it, and publishes into it", async () => {
    await newRelay({ bucket: freshBucket() });
    const before = await appendTweetEvent(users[3]!);
    await awaitPublished([before.eventId], (await lastSeq()));
    await jsm.streams.delete(EVENT_STREAM);
    const after = await Promise.all(users.slice(0, 8).map((u) => appendTweetEvent(u)));
    const msgs = await awaitPublished(after.map((x) => x.eventId), 1);
    expect(msgs).toHaveLength(after.length);
    expect((await jsm.streams.info(EVENT_STREAM)).config.duplicate_window).toBe(BUS_DEFAULTS.duplicateWindowMs * 1_000_000);
  });
});

describe("consumer helper", () => {
  it("acks handled events, retries a failed one with its redelivery count, dead-letters one that always fails, and stops cleanly", async () => {
    const bucket = freshBucket();
    await newRelay({ bucket });
    const bus = await newBus();
    const calls = new Map<string, number[]>(); // event id -> redelivery counts seen
    let failOnce = "";
    let alwaysFail = "";
    const handled: ConsumedEvent<typeof EVENTS.userFollowed | typeof EVENTS.userUnfollowed>[] = [];
    const consumer = consume({
      bus,
      durable: "outbox-test-graph",
      subjects: [EVENTS.userFollowed, EVENTS.userUnfollowed],
      log,
      metrics,
      concurrency: 4,
      maxDeliver: 3,
      retryMinMs: 100,
      retryMaxMs: 200,
      handler: async (event) => {
        calls.set(event.eventId, [...(calls.get(event.eventId) ?? []), event.redeliveryCount]);
        if (event.eventId === alwaysFail) throw new Error("always fails");
        if (event.eventId === failOnce && event.redeliveryCount === 0) throw new Error("fails once");
        handled.push(event);
      },
    });
    consumers.push(consumer);
    expect(consumer.filterSubject).toBe("chirp.graph.v1.*");
    await consumer.started();

    const follow = async (follower: string, followee: string, unfollow = false): Promise<string> => {
      const eventId = await router.transaction(router.shardForUser(follower), (tx) =>
        unfollow
          ? appendOutbox(tx, ids, {
              type: EVENTS.userUnfollowed,
              message: create(EVENTS.userUnfollowed.schema, { followerId: BigInt(follower), followeeId: BigInt(followee) }),
              userId: follower,
              requestId: `follow-${follower}-${followee}`,
            })
          : appendOutbox(tx, ids, {
              type: EVENTS.userFollowed,
              message: create(EVENTS.userFollowed.schema, { followerId: BigInt(follower), followeeId: BigInt(followee) }),
              userId: follower,
              requestId: `follow-${follower}-${followee}`,
            }),
      );
      return String(eventId);
    };
    // The ids are known before the events can be consumed: the handler's checks see them.
    const ok1 = await follow("2001", "2002");
    failOnce = await follow("2003", "2004");
    alwaysFail = await follow("2005", "2006");
    const ok2 = await follow("2001", "2002", true);

    await eventually("handled events", async () => handled.length === 3, WAIT);
    await eventually("dead-lettered after max deliveries", async () => (calls.get(alwaysFail)?.length ?? 0) === 3, WAIT);
    expect(calls.get(failOnce)).toEqual([0, 1]);
    expect(calls.get(ok1)).toEqual([0]);
    expect(calls.get(alwaysFail)).toEqual([0, 1, 2]);
    const unfollow = handled.find((e) => e.eventId === ok2)!;
    expect(unfollow.subject).toBe(EVENTS.userUnfollowed.subject);
    expect(unfollow.message).toMatchObject({ followerId: 2001n, followeeId: 2002n });
    expect(unfollow.userId).toBe("2001");
    expect(unfollow.requestId).toBe("follow-2001-2002");

    await eventually(
      "nothing left unacked",
      async () => {
        const info = await jsm.consumers.info(EVENT_STREAM, "outbox-test-graph");
        return info.num_ack_pending === 0 && info.num_pending === 0;
      },
      WAIT,
    );
    await delay(500);
    expect(calls.get(alwaysFail)).toHaveLength(3); // terminated: no further deliveries

    // A handler still running at stop() finishes and is acked.
    let release!: () => void;
    const slow = new Promise<void>((r) => (release = r));
    let slowStarted = false;
    const slowConsumer = consume({
      bus,
      durable: "outbox-test-slow",
      subjects: [EVENTS.userFollowed],
      deliverPolicy: "new",
      log,
      handler: async () => {
        slowStarted = true;
        await slow;
      },
    });
    consumers.push(slowConsumer);
    await slowConsumer.started();
    await follow("2007", "2008");
    await eventually("slow handler running", async () => slowStarted, WAIT);
    let stopped = false;
    const stopping = slowConsumer.stop().then(() => (stopped = true));
    await delay(200);
    expect(stopped).toBe(false);
    release();
    await stopping;
    const info = await jsm.consumers.info(EVENT_STREAM, "outbox-test-slow");
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_redelivered).toBe(0);
  });
  it("does not run the handler twice for an event it already handled", async () => {
    const bus = await newBus();
    const seen = new Map<string, number>();
    const consumer = consume({
      bus,
      durable: "outbox-test-dedupe",
      subjects: [EVENTS.userFollowed],
      deliverPolicy: "new",
      log,
      handler: async (event) => void seen.set(event.eventId, (seen.get(event.eventId) ?? 0) + 1),
    });
    consumers.push(consumer);
    await consumer.started();
    // The same event arriving twice past JetStream's own de-duplication (as a
    // redelivery whose ack was lost does): one handler call.
    const { js } = await bus.ready();
    const payload = toBinary(EVENTS.userFollowed.schema, create(EVENTS.userFollowed.schema, { followerId: 3001n, followeeId: 3002n }));
    for (const msgID of ["dedupe-a", "dedupe-b"]) {
      const h = natsHeaders();
      h.set(EVENT_ID_HEADER, "424242");
      await js.publish(EVENTS.userFollowed.subject, payload, { msgID, headers: h });
    }
    await eventually(
      "both deliveries acked",
      async () => {
        const info = await jsm.consumers.info(EVENT_STREAM, "outbox-test-dedupe");
        return info.delivered.consumer_seq >= 2 && info.num_ack_pending === 0;
      },
      WAIT,
    );
    expect(seen.get("424242")).toBe(1);
  });
});

/** The real tweet service process, relay and all, on ephemeral ports. */
async function startTweetService(extra: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "services/tweet/main.ts"], {
    cwd: ROOT,
    env: {
      PATH: process.env["PATH"],
      ...serviceInfraEnv(cluster),
      [envName.grpcPort("tweet")]: "0",
      [envName.metricsPort("tweet")]: "0",
      // A service process starts only with its key for the callers' assertions (decision 22); no caller is vouched for here.
      CHIRP_MESH_KEYS: formatServiceKeys(parseMeshSecrets(generateMeshSecret()), ["tweet"]),
      LOG_LEVEL: "warn",
      ...extra,
    },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("tweet service not ready")), 60_000);
    child.on("message", (m: { type?: string }) => {
      if (m.type === "ready") {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("exit", (code) => reject(new Error(`tweet service exited (${code})`)));
  });
  return child;
}
