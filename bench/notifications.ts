/**
 * Notifications (issue 20, item 5): a tweet that mentions many users, a like
 * storm on one tweet, and what the inbox reads cost, against the single
 * process on a private cluster (as `npm start` runs it).
 *
 *   npm run bench:notifications -- [--mentions 1000] [--likes 10000] [--readers 200] [--follows 25]
 *                                  [--reads 300] [--out bench/results/notifications.json]
 *
 * Setup. An author signs up through the gateway and posts two tweets (the
 * mentioning one and the liked one). max(--mentions, --likes) + --follows
 * users are INSERTed in bulk straight into the shard databases (users and
 * user_handles rows as SignUp leaves them; session tokens minted with the
 * launch's key).
 *
 * Events. The events are written into the author's outbox with the same
 * columns appendOutbox writes, in one transaction, and the relay is nudged as
 * a service's commit nudges it: the relay publishes them, and the
 * notification service's durable consumers take them from JetStream as they
 * take any event. A 280-character tweet cannot name 1,000 users, so the
 * mention storm is one TweetCreated of the mentioning tweet with --mentions
 * ids in `mentions`; the like storm is --likes TweetLiked of the liked tweet,
 * each by another user. Each --readers reader (the first mentioned users) is
 * also followed by --follows users (UserFollowed events), so their inbox
 * holds a mention and --follows follows: a page of 20 is full.
 *
 * Fan-in. From the commit of the outbox rows to the last inbox row being
 * visible (polled every 25 ms on the shards' primaries), and notifications
 * per second; the notification consumer's handler time for the mentioning
 * TweetCreated (chirp_bus_handler_duration_seconds); SQL statements (the
 * servers' `Questions`, less this bench's own polls), Redis commands, and the
 * CPU (/proc) of the chirp process and of the servers per notification. The floor: the same rows written
 * by this process directly, one transaction per inbox (INSERT the row and its
 * outbox event, commit), as many at once as the consumer writes
 * (CHIRP_NOTIFICATION_FAN_OUT, 8): the least a durable, per-recipient inbox
 * must write.
 *
 * Reads. Through the gateway (Connect JSON over HTTP/1.1), one request at a
 * time, --reads requests of each kind after as many unmeasured ones (caches
 * warm): ListNotifications flat and grouped (page of 20) and GetUnreadCount,
 * for the readers (spread over them) and for the author after the storm
 * (10,000 likes of one tweet in the inbox; its grouped page also with the
 * inbox cache's hash deleted before each read: the cost of a miss), and the author's grouped view
 * paged to its end once (pages, entries, time, statements). For each read kind: SQL statements and
 * Redis commands and round trips (replies written: `total_writes_processed`)
 * per request from the servers' counters (idle background
 * work, measured right after over the same time, subtracted), CPU ms per
 * request of the chirp process and of the servers (MariaDB, Redis, NATS,
 * /proc), p50 and p99 alone. The floor: a bare node:http
 * server (bench/notifications-floor.ts) answering each request with one Redis
 * GET of the gateway's own answer to it, prepared: what a cache-first read
 * must at least do.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { setTimeout as delay } from "node:timers/promises";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createConnection, type Connection, type RowDataPacket } from "mysql2/promise";
import { createEventBus, type EventBus } from "../lib/events/bus.js";
import { loadBusConfig } from "../lib/events/config.js";
import { announceOutboxCommits, outboxCommitted } from "../lib/events/outbox-wake.js";
import { EVENTS } from "../lib/events/subjects.js";
import { createIdGenerator } from "../lib/ids.js";
import { createLogger } from "../lib/logger.js";
import { Cause } from "../services/notification/causes.js";
import { NotificationKind } from "../gen/chirp/notification/v1/notification_pb.js";
import { startBenchCluster, type BenchCluster } from "./dsb/cluster.js";
import { Histogram } from "./dsb/histogram.js";
import { cpuSeconds, machine, serverVersions } from "./dsb/machine.js";
import { stopOnInterrupt } from "./interrupt.js";

const { values: args } = parseArgs({
  options: {
    mentions: { type: "string", default: "1000" },
    likes: { type: "string", default: "10000" },
    readers: { type: "string", default: "200" },
    follows: { type: "string", default: "25" },
    reads: { type: "string", default: "300" },
    out: { type: "string", default: fileURLToPath(new URL("./results/notifications.json", import.meta.url)) },
  },
});
const MENTIONS = Number(args.mentions);
const LIKES = Number(args.likes);
const READERS = Math.min(Number(args.readers), MENTIONS);
const FOLLOWS = Number(args.follows);
const READS = Number(args.reads);
/** CHIRP_NOTIFICATION_FAN_OUT's default: the consumer's inbox writes at once per event. */
const FAN_OUT = 8;

const say = (line: string): void => console.error(`[bench] ${line}`);
const started = Date.now();
const elapsed = (): string => `${((Date.now() - started) / 1000).toFixed(0)} s`;
const round2 = (x: number): number => Math.round(x * 100) / 100;

let c: BenchCluster | undefined;
let bus: EventBus | undefined;
let stopNudges: (() => void) | undefined;
let floor: ChildProcess | undefined;
let conns: Connection[] = [];

async function cleanup(): Promise<void> {
  floor?.kill();
  stopNudges?.();
  await bus?.close().catch(() => {});
  await Promise.all(conns.map((x) => x.end().catch(() => {})));
  await c?.stop().catch(() => {});
}
stopOnInterrupt(cleanup, say);

async function api<T>(method: string, body: unknown, token?: string): Promise<T> {
  const res = await fetch(`${c!.mesh.gatewayUrl}/${method}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${method}: ${res.status} ${text}`);
  return JSON.parse(text) as T;
}

/** The servers' own counters: SQL statements over every member, Redis commands, the chirp process's CPU. */
interface Counts {
  sql: number;
  redis: number;
  /** Redis replies written: each is one round trip a client waited for (pipelined commands share one). */
  redisWrites: number;
  /** The measured process (chirp, or the floor). */
  cpu: number;
  /** MariaDB, Redis and NATS together. */
  serversCpu: number;
  at: number;
}
let serverPids: number[] = [];
const cpuOf = (pids: readonly number[]): number => pids.reduce((a, p) => a + (cpuSeconds(p) ?? NaN), 0);
async function snapshot(pid: number): Promise<Counts> {
  const sql = await Promise.all(conns.map(async (x) => Number((await x.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Questions'"))[0][0]?.Value ?? 0)));
  const info = await c!.redis.info("stats");
  return {
    // Each snapshot is itself one statement per member and one Redis command.
    sql: sql.reduce((a, b) => a + b, 0) - conns.length,
    redis: Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0) - 1,
    redisWrites: Number(/total_writes_processed:(\d+)/.exec(info)?.[1] ?? 0) - 1,
    cpu: cpuSeconds(pid) ?? NaN,
    serversCpu: cpuOf(serverPids),
    at: performance.now(),
  };
}
function between(a: Counts, b: Counts): Counts {
  return { sql: b.sql - a.sql, redis: b.redis - a.redis, redisWrites: b.redisWrites - a.redisWrites, cpu: b.cpu - a.cpu, serversCpu: b.serversCpu - a.serversCpu, at: b.at - a.at };
}

interface ReadWork {
  requests: number;
  sqlPerRequest: number;
  redisCommandsPerRequest: number;
  redisRoundTripsPerRequest: number;
  cpuMsPerRequest: number;
  /** MariaDB, Redis and NATS. */
  serversCpuMsPerRequest: number;
  p50Ms: number;
  p99Ms: number;
}

/** `count` calls one at a time after as many unmeasured ones; idle work over the same time subtracted. */
async function measure(label: string, count: number, pid: number, call: (i: number) => Promise<unknown>): Promise<ReadWork> {
  for (let i = 0; i < count; i++) await call(i);
  const latency = new Histogram();
  const t0 = await snapshot(pid);
  for (let i = 0; i < count; i++) {
    const s = performance.now();
    await call(i);
    latency.recordMs(performance.now() - s);
  }
  const t1 = await snapshot(pid);
  const busy = between(t0, t1);
  await delay(Math.min(busy.at, 3000));
  const t2 = await snapshot(pid);
  const idle = between(t1, t2);
  const per = (used: number, idleUsed: number): number => round2(Math.max(0, used - (idleUsed / idle.at) * busy.at) / count);
  const l = latency.summary();
  const w = {
    requests: count,
    sqlPerRequest: per(busy.sql, idle.sql),
    redisCommandsPerRequest: per(busy.redis, idle.redis),
    redisRoundTripsPerRequest: per(busy.redisWrites, idle.redisWrites),
    cpuMsPerRequest: per(busy.cpu * 1000, idle.cpu * 1000),
    serversCpuMsPerRequest: per(busy.serversCpu * 1000, idle.serversCpu * 1000),
    p50Ms: round2(l.p50Ms),
    p99Ms: round2(l.p99Ms),
  };
  say(`${label}: ${w.sqlPerRequest} SQL, ${w.redisCommandsPerRequest} Redis commands in ${w.redisRoundTripsPerRequest} round trips, ${w.cpuMsPerRequest} + ${w.serversCpuMsPerRequest} (servers) CPU ms per request; p50 ${w.p50Ms} ms (${elapsed()})`);
  return w;
}

try {
  c = await startBenchCluster({ say, mode: "single" });
  const cluster = c;
  const { router, redis } = cluster;
  const members = cluster.infra.mysql.replicaSets.flatMap((rs) => [rs.primary, ...rs.replicas]);
  const admin = cluster.infra.mysql.adminUser;
  conns = await Promise.all(members.map((m) => createConnection({ host: m.host, port: m.port, user: admin.user, password: admin.password })));
  bus = createEventBus({ config: { ...loadBusConfig(cluster.env), natsUrl: cluster.env.NATS_URL! }, log: createLogger("bench", "warn") });
  await bus.ready();
  stopNudges = announceOutboxCommits(bus);
  const chirpPid = cluster.mesh.gatewayPid;
  serverPids = cluster.infra.processes.map((p) => p.pid);
  say(`system up (${elapsed()})`);

  // --- setup -------------------------------------------------------------------
  const { user } = await api<{ user: { id: string } }>("chirp.user.v1.UserService/SignUp", {
    handle: "bench_author",
    displayName: "Bench author",
    email: "bench_author@example.com",
    password: "correct horse battery",
  });
  const authorId = BigInt(user.id);
  const authorToken = cluster.signer.sign(String(authorId), 3600).token;
  const post = async (text: string): Promise<bigint> =>
    BigInt((await api<{ tweet: { id: string } }>("chirp.tweet.v1.TweetService/PostTweet", { text }, authorToken)).tweet.id);
  const mentioning = await post("a tweet that mentions everybody");
  const liked = await post("a tweet everybody likes");

  const mint = createIdGenerator(1019);
  const USERS = Math.max(MENTIONS, LIKES) + FOLLOWS;
  const users = Array.from({ length: USERS }, () => mint.next());
  const setupStart = performance.now();
  const insertByShard = async (head: string, cols: number, items: bigint[], shardOf: (id: bigint) => ReturnType<typeof router.shardForUser>, values: (id: bigint) => unknown[]) => {
    for (const { shard, items: onShard } of router.byShard(items, shardOf).values()) {
      for (let i = 0; i < onShard.length; i += 1000) {
        const chunk = onShard.slice(i, i + 1000);
        const tuple = `(${new Array(cols).fill("?").join(", ")})`;
        await router.primary(shard).execute(`${head} VALUES ${chunk.map(() => tuple).join(", ")}`, chunk.flatMap(values) as never);
      }
    }
  };
  const handle = (id: bigint): string => `nb${id.toString(36)}`;
  await insertByShard(
    "INSERT INTO chirp.users (id, handle, display_name, bio, email, password_hash, create_time, follower_count, following_count, tweet_count)",
    10,
    users,
    (id) => router.shardForUser(id),
    (id) => [id, handle(id), `Bench ${handle(id)}`, "", `${handle(id)}@bench.example`, "x", "2026-01-01 00:00:00", 0, 0, 0],
  );
  await insertByShard("INSERT INTO chirp.user_handles (handle_lower, user_id, create_time)", 3, users, (id) => router.shardForHandle(handle(id)), (id) => [
    handle(id),
    id,
    "2026-01-01 00:00:00",
  ]);
  say(`${USERS} users inserted in ${((performance.now() - setupStart) / 1000).toFixed(1)} s (${elapsed()})`);

  // --- events through the outbox -------------------------------------------------
  type Event = { subject: string; payload: Uint8Array };
  const writeOutbox = async (events: Event[]): Promise<number> => {
    let committedAt = 0;
    await router.transaction(router.shardForUser(authorId), async (tx) => {
      for (let i = 0; i < events.length; i += 500) {
        const chunk = events.slice(i, i + 500);
        await tx.execute(
          `INSERT INTO chirp.outbox (event_id, user_id, subject, payload, headers) VALUES ${chunk.map(() => "(?, ?, ?, ?, NULL)").join(", ")}`,
          chunk.flatMap((e) => [mint.next(), authorId, e.subject, Buffer.from(e.payload)]),
        );
      }
      tx.afterCommit(() => {
        committedAt = performance.now();
        // No rows handed over: the relay reads them, as it does another process's.
        outboxCommitted(tx.keyspace, tx.shard.name, []);
      });
    });
    return committedAt;
  };
  let polls = 0;
  /** Shown rows of a cause and subject on every shard (the recipients may be anywhere). */
  const shownCount = async (cause: number, subjectId: bigint, recipientId?: bigint): Promise<number> => {
    const shards = recipientId === undefined ? router.shards() : [router.shardForUser(recipientId)];
    const counts = await Promise.all(
      shards.map(async (s) => {
        polls++;
        const [row] = await router
          .primary(s)
          .query<{ n: number }>(
            `SELECT COUNT(*) AS n FROM chirp.notifications WHERE ${recipientId === undefined ? "" : `recipient_id = ${recipientId} AND `}cause = ? AND subject_id = ? AND state = 1`,
            [cause, subjectId],
          );
        return Number(row?.n ?? 0);
      }),
    );
    return counts.reduce((a, b) => a + b, 0);
  };
  const handlerMetric = async (subject: string): Promise<{ sum: number; count: number }> => {
    const text = await (await fetch(cluster.mesh.gatewayMetricsUrl)).text();
    const pick = (suffix: string): number =>
      text
        .split("\n")
        .filter((l) => l.startsWith(`chirp_bus_handler_duration_seconds_${suffix}{`) && l.includes('durable="notification-tweets"') && l.includes(subject))
        .reduce((a, l) => a + Number(l.split(" ").at(-1)), 0);
    return { sum: pick("sum"), count: pick("count") };
  };

  /** Commits `events`, waits until `expected` rows are shown, and counts what it took. */
  const storm = async (label: string, events: Event[], expected: number, count: () => Promise<number>) => {
    const t0 = await snapshot(chirpPid);
    polls = 0;
    const committedAt = await writeOutbox(events);
    let seen = 0;
    let firstAt = 0;
    let lastReport = performance.now();
    for (;;) {
      seen = await count();
      if (seen > 0 && firstAt === 0) firstAt = performance.now();
      if (seen >= expected) break;
      if (performance.now() - committedAt > 600_000) throw new Error(`${label}: only ${seen}/${expected} after 10 minutes`);
      if (performance.now() - lastReport > 2000) {
        say(`${label}: ${seen}/${expected} inboxes (${elapsed()})`);
        lastReport = performance.now();
      }
      await delay(25);
    }
    const doneAt = performance.now();
    const t1 = await snapshot(chirpPid);
    const used = between(t0, t1);
    const ms = doneAt - committedAt;
    const out = {
      notifications: expected,
      firstVisibleMs: Math.round(firstAt - committedAt),
      allVisibleMs: Math.round(ms),
      notificationsPerSecond: Math.round(expected / (ms / 1000)),
      sqlPerNotification: round2((used.sql - polls - events.length / 500 - 2) / expected),
      redisCommandsPerNotification: round2(used.redis / expected),
      cpuMsPerNotification: round2((used.cpu * 1000) / expected),
      serversCpuMsPerNotification: round2((used.serversCpu * 1000) / expected),
    };
    say(`${label}: all ${expected} shown ${out.allVisibleMs} ms after the commit (${out.notificationsPerSecond}/s) (${elapsed()})`);
    return out;
  };

  const at = timestampFromDate(new Date());
  // The readers' follows first (not measured: they give the readers full pages).
  const readers = users.slice(0, READERS);
  const followers = users.slice(USERS - FOLLOWS);
  const follows: Event[] = readers.flatMap((r) =>
    followers.map((f) => ({
      subject: EVENTS.userFollowed.subject,
      payload: toBinary(EVENTS.userFollowed.schema, create(EVENTS.userFollowed.schema, { followerId: f, followeeId: r, followTime: at, edgeVersion: 1n })),
    })),
  );
  await storm("readers' follows", follows, follows.length, () => shownCount(Cause.follow, 0n));

  // Fan-in: one tweet that mentions MENTIONS users.
  const mentioned = users.slice(0, MENTIONS);
  const before = await handlerMetric("tweet_created");
  const fanIn = await storm(
    `fan-in of a tweet mentioning ${MENTIONS}`,
    [
      {
        subject: EVENTS.tweetCreated.subject,
        payload: toBinary(
          EVENTS.tweetCreated.schema,
          create(EVENTS.tweetCreated.schema, { tweetId: mentioning, authorId, text: "a tweet that mentions everybody", mentions: mentioned, createTime: at }),
        ),
      },
    ],
    MENTIONS,
    () => shownCount(Cause.tweet, mentioning),
  );
  let after = await handlerMetric("tweet_created");
  while (after.count <= before.count) {
    await delay(20);
    after = await handlerMetric("tweet_created");
  }
  const fanInHandlerMs = round2(((after.sum - before.sum) / (after.count - before.count)) * 1000);
  say(`fan-in: the consumer's handler took ${fanInHandlerMs} ms for the event`);

  // The floor of the fan-in: the same number of inbox rows and outbox events, one transaction per inbox, FAN_OUT at once.
  const floorIds = Array.from({ length: MENTIONS }, () => mint.next());
  const floorStart = performance.now();
  const floorT0 = await snapshot(chirpPid);
  let next = 0;
  await Promise.all(
    Array.from({ length: FAN_OUT }, async () => {
      while (next < MENTIONS) {
        const i = next++;
        const r = mentioned[i]!;
        await router.transaction(router.shardForUser(r), async (tx) => {
          await tx.execute(
            "INSERT INTO chirp.notifications (recipient_id, cause, subject_id, actor_id, id, kind, state, version, event_time) VALUES (?, ?, ?, ?, ?, ?, 1, 1, UTC_TIMESTAMP(6))",
            [r, Cause.tweet, floorIds[0]!, authorId, floorIds[i]!, NotificationKind.MENTION],
          );
          await tx.execute("INSERT INTO chirp.outbox (event_id, user_id, subject, payload, headers) VALUES (?, ?, ?, ?, NULL)", [
            mint.next(),
            r,
            "bench.floor",
            Buffer.alloc(64),
          ]);
        });
      }
    }),
  );
  const floorMs = performance.now() - floorStart;
  const floorUsed = between(floorT0, await snapshot(chirpPid));
  // Take the floor's rows away again: they are not notifications of any tweet.
  for (const s of router.shards()) {
    await router.primary(s).execute("DELETE FROM chirp.notifications WHERE cause = ? AND subject_id = ?", [Cause.tweet, floorIds[0]!]);
    await router.primary(s).execute("DELETE FROM chirp.outbox WHERE subject = 'bench.floor'");
  }
  const fanInFloor = {
    notifications: MENTIONS,
    allVisibleMs: Math.round(floorMs),
    notificationsPerSecond: Math.round(MENTIONS / (floorMs / 1000)),
    sqlPerNotification: round2(floorUsed.sql / MENTIONS),
  };
  say(`fan-in floor: ${MENTIONS} inbox transactions in ${fanInFloor.allVisibleMs} ms (${fanInFloor.notificationsPerSecond}/s) (${elapsed()})`);

  // The like storm: LIKES likes of one tweet.
  const likers = users.slice(0, LIKES);
  const likeStorm = await storm(
    `like storm of ${LIKES}`,
    likers.map((l, i) => ({
      subject: EVENTS.tweetLiked.subject,
      payload: toBinary(
        EVENTS.tweetLiked.schema,
        create(EVENTS.tweetLiked.schema, { tweetId: liked, authorId, likerId: l, likeTime: timestampFromDate(new Date(Date.now() + i)), likeVersion: 1n }),
      ),
    })),
    LIKES,
    () => shownCount(Cause.like, liked, authorId),
  );

  // --- reads ---------------------------------------------------------------------
  const tokens = new Map([...readers, authorId].map((u) => [u, cluster.signer.sign(String(u), 3600).token]));
  const list = (u: bigint, grouped: boolean) => api<unknown>("chirp.notification.v1.NotificationService/ListNotifications", { pageSize: 20, grouped }, tokens.get(u));
  const unread = (u: bigint) => api<unknown>("chirp.notification.v1.NotificationService/GetUnreadCount", {}, tokens.get(u));
  const reader = (i: number): bigint => readers[i % readers.length]!;
  const reads: Record<string, ReadWork> = {};
  const cases: Array<[string, (i: number) => Promise<unknown>]> = [
    ["reader: ListNotifications flat", (i) => list(reader(i), false)],
    ["reader: ListNotifications grouped", (i) => list(reader(i), true)],
    ["reader: GetUnreadCount", (i) => unread(reader(i))],
    ["author after the storm: ListNotifications flat", () => list(authorId, false)],
    ["author after the storm: ListNotifications grouped", () => list(authorId, true)],
    ["author after the storm: GetUnreadCount", () => unread(authorId)],
    // A miss: the inbox cache's hash deleted before each read (one more Redis command, the bench's DEL).
    ["author after the storm: ListNotifications grouped, from MySQL", () => redis.del(`chirp:inbox:{${authorId}}`).then(() => list(authorId, true))],
  ];
  for (const [label, call] of cases) reads[label] = await measure(label, READS, chirpPid, call);
  const authorGrouped = (await list(authorId, true)) as { notifications?: Array<{ actorCount?: number }>; nextPageToken?: string };
  // Paging the author's grouped view to its end: past the group's first page, its older members are skipped, a scan at a time.
  const walkStart = performance.now();
  const walkT0 = await snapshot(chirpPid);
  let walkPages = 1;
  let walkEntries = authorGrouped.notifications?.length ?? 0;
  for (let token = authorGrouped.nextPageToken ?? ""; token !== ""; walkPages++) {
    const page = await api<{ notifications?: unknown[]; nextPageToken?: string }>(
      "chirp.notification.v1.NotificationService/ListNotifications",
      { pageSize: 20, grouped: true, pageToken: token },
      tokens.get(authorId),
    );
    walkEntries += page.notifications?.length ?? 0;
    token = page.nextPageToken ?? "";
  }
  const walkUsed = between(walkT0, await snapshot(chirpPid));
  const groupedWalk = {
    pages: walkPages,
    entries: walkEntries,
    ms: Math.round(performance.now() - walkStart),
    sql: walkUsed.sql,
    serversCpuMs: round2(walkUsed.serversCpu * 1000),
    cpuMs: round2(walkUsed.cpu * 1000),
  };
  say(`the author's grouped view to its end: ${groupedWalk.pages} pages, ${groupedWalk.entries} entries, ${groupedWalk.ms} ms (${elapsed()})`);
  const authorUnread = (await unread(authorId)) as { count?: number };

  // The floor: one Redis GET of the same answers, prepared.
  floor = fork(fileURLToPath(new URL("./notifications-floor.ts", import.meta.url)), [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, REDIS_URL: cluster.infra.redisUrl },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    floor!.once("message", (m: { port: number }) => resolve(m.port));
    floor!.once("exit", (code) => reject(new Error(`floor exited (${code})`)));
  });
  const prepared = async (key: string, body: unknown): Promise<string> => {
    await redis.set(key, JSON.stringify(body));
    return key;
  };
  const readerPage = await prepared("bench:floor:page", await list(reader(0), false));
  const readerCount = await prepared("bench:floor:unread", await unread(reader(0)));
  const floorGet = async (key: string): Promise<void> => {
    const res = await fetch(`http://127.0.0.1:${port}/get?key=${key}`);
    if (res.status !== 200) throw new Error(`floor: ${res.status}`);
    await res.arrayBuffer();
  };
  const floorReads: Record<string, ReadWork> = {
    "floor: a page (one GET of prepared bytes)": await measure("floor page", READS, floor.pid!, () => floorGet(readerPage)),
    "floor: an unread count (one GET)": await measure("floor unread count", READS, floor.pid!, () => floorGet(readerCount)),
  };

  // --- report --------------------------------------------------------------------
  console.log("\nFan-in (from the outbox commit to the last inbox row shown)");
  console.table({
    [`a tweet mentioning ${MENTIONS}`]: fanIn,
    [`floor: ${MENTIONS} inbox transactions, ${FAN_OUT} at once`]: fanInFloor,
    [`a like storm of ${LIKES} on one tweet`]: likeStorm,
  });
  console.log(`the consumer's handler for the mentioning TweetCreated: ${fanInHandlerMs} ms`);
  console.log(`after the storm the author's grouped first page: ${authorGrouped.notifications?.length ?? 0} entries, actorCount ${authorGrouped.notifications?.[0]?.actorCount ?? 0}; unread count ${authorUnread.count ?? 0}`);
  console.log(
    `the author's grouped view paged to its end: ${groupedWalk.pages} pages of 20 for ${groupedWalk.entries} entries, ${groupedWalk.ms} ms, ${groupedWalk.sql} SQL statements, ${groupedWalk.serversCpuMs} ms of the servers' CPU`,
  );
  console.log(`\nReads, one at a time, ${READS} of each, caches warm (page of 20; readers hold 1 mention and ${FOLLOWS} follows)`);
  console.table({ ...reads, ...floorReads });

  const result = {
    benchmark: "notifications",
    date: new Date().toISOString(),
    machine: machine(),
    servers: await serverVersions(router, redis),
    parameters: { mentions: MENTIONS, likes: LIKES, readers: READERS, follows: FOLLOWS, reads: READS },
    fanIn: { ...fanIn, handlerMs: fanInHandlerMs },
    fanInFloor,
    likeStorm,
    groupedWalk,
    afterStorm: { groupedFirstPageEntries: authorGrouped.notifications?.length ?? 0, actorCount: authorGrouped.notifications?.[0]?.actorCount ?? 0, unreadCount: authorUnread.count ?? 0 },
    reads,
    floorReads,
  };
  mkdirSync(dirname(args.out), { recursive: true });
  writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
  say(`wrote ${args.out} (${elapsed()})`);
} finally {
  await cleanup();
}
