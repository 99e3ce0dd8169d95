/**
 * chirp reshard's copy rate and catch-up lag (issue 23): a private durable
 * cluster, `--users` users (a users row and a follows row each) loaded into
 * shard -40, then the workflow splits -40 into -20 and 20-40: the copy's rows
 * per second, then `--seconds` of single-row writes at `--rate` per second on
 * the source while catch-up runs (lag of each applied batch, p50/max), the
 * time to be current once the writes stop, and verify. Then the switches:
 * two shard routers follow the live topology (published here: no topology
 * manager runs) while `--writers` loops write users of the range at `--rate`
 * through them; reads, then writes switch. Reported: how long the command
 * held writes (and its parts) and the write pause end to end (the slowest
 * write that was in flight across the switch), errors, and whether every
 * acknowledged write is on its target. With --switch-back, writes go on for
 * 2 s on the targets and then `abort` switches them back (reverse replication
 * from the targets' binlog, the write switch in reverse): its hold, the pause
 * end to end, errors, and whether every acknowledged write is on the source.
 *
 *   npm run bench:reshard [-- --users 100000 --rate 300 --seconds 10 --batch 1000]
 *
 * Prints a summary and writes bench/results/reshard.json.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect } from "@nats-io/transport-node";
import { createConnection } from "mysql2/promise";
import { newTestDataDir, startLocalCluster, type RunningInfra } from "../devcluster/index.js";
import { parseNatsUrl } from "../lib/events/nats-url.js";
import { planReshard } from "../lib/reshard/plan.js";
import { openReshardKv } from "../lib/reshard/state.js";
import { abortReshard, runReshard } from "../lib/reshard/workflow.js";
import { ShardMap } from "../lib/shard/keyrange.js";
import { createShardRouter } from "../lib/shard/router.js";
import { openTopologyKv, publishTopology } from "../lib/shard/topology.js";
import type { WriteSwitchResult } from "../lib/reshard/switch.js";
import { loadShardConfig } from "../lib/shard/shard-config.js";
import { machine } from "./dsb/machine.js";
import { exitWithUsageIfAsked } from "./usage.js";

exitWithUsageIfAsked(`
Copy rate and catch-up lag of chirp reshard -40 -> -20,20-40 on a private cluster.
Writes bench/results/reshard.json.

  npm run bench:reshard [-- options]

  --users N     users loaded into -40 (a users and a follows row each) (100000)
  --rate N      single-row writes per second on the source during catch-up (300)
  --writers N   connections the writes are spread over (1)
  --seconds N   seconds of writes during catch-up (10)
  --batch N     rows per copy batch (1000)
  --held-check counts|digests   what the write switch compares while writes are held (counts)
  --switch-back  after the write switch, abort under the same writes: writes switch back to -40
  --hold-ms N   the write switch's hold budget (800); a small one shows what a give-up costs end to end
  --hold-attempts N  write switch attempts before the run gives up (3)
  --out FILE    where the JSON goes
`);

const { values: args } = parseArgs({
  options: {
    users: { type: "string", default: "100000" },
    rate: { type: "string", default: "300" },
    writers: { type: "string", default: "1" },
    seconds: { type: "string", default: "10" },
    batch: { type: "string", default: "1000" },
    "held-check": { type: "string", default: "counts" },
    "switch-back": { type: "boolean", default: false },
    "hold-ms": { type: "string", default: "800" },
    "hold-attempts": { type: "string", default: "3" },
    out: { type: "string" },
  },
});
const users = Number(args.users);
const rate = Number(args.rate);
const writerCount = Number(args.writers);
const seconds = Number(args.seconds);
const batch = Number(args.batch);
const heldCheck = args["held-check"] === "digests" ? "digests" : "counts";
const switchBack = args["switch-back"] === true;
const holdMs = Number(args["hold-ms"]);
const holdAttempts = Number(args["hold-attempts"]);
const out = args.out ?? fileURLToPath(new URL("./results/reshard.json", import.meta.url));
const log = (line: string): void => console.error(`[bench] ${line}`);

const config = loadShardConfig("local");
const map = new ShardMap(config.shards);
function* idsOnX40(from: number): Generator<string> {
  for (let id = from; ; id++) if (map.shardForUser(String(id)).name === "-40") yield String(id);
}
const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

const dataDir = newTestDataDir();
let infra: RunningInfra | undefined;
try {
  log("starting a durable cluster...");
  infra = await startLocalCluster({ dataDir, log: () => {} });
  const rs0 = infra.mysql.replicaSets.find((r) => r.name === "rs0")!;
  const admin = await createConnection({ host: rs0.primary.host, port: rs0.primary.port, user: infra.mysql.adminUser.user, password: infra.mysql.adminUser.password });
  const source = config.shards.find((s) => s.name === "-40")!.database;

  log(`loading ${users} users (and a follow each) into ${source}...`);
  const ids = idsOnX40(1_000_000);
  for (let done = 0; done < users; ) {
    const n = Math.min(2000, users - done);
    const chunk = Array.from({ length: n }, () => ids.next().value as string);
    await admin.query(`INSERT INTO ${source}.users (id, handle, email, password_hash, bio) VALUES ?`, [chunk.map((id) => [id, `u${id}`, `u${id}@x.test`, "x".repeat(60), `a bio of some length for ${id}`])]);
    await admin.query(`INSERT INTO ${source}.follows (follower_id, followee_id) VALUES ?`, [chunk.map((id) => [id, "1"])]);
    done += n;
  }

  const nc = await connect({ ...parseNatsUrl(infra.natsUrl), name: "bench-reshard" });
  const kv = await openReshardKv(nc);
  const plan = planReshard(config, "-40", ["-20", "20-40"]);
  const servers = { replicaSets: infra.mysql.replicaSets, adminUser: infra.mysql.adminUser };

  log("copy...");
  const t0 = performance.now();
  const copied = await runReshard({ plan, servers, kv, batchRows: batch, stopAfter: "copy" });
  const copySeconds = (performance.now() - t0) / 1000;
  const copiedRows = Object.values(copied.copy).reduce((n, c) => n + c.rows, 0);
  log(`copied ${copiedRows} rows in ${copySeconds.toFixed(1)} s (${Math.round(copiedRows / copySeconds)} rows/s, including target creation)`);

  log(`catch-up under ${rate} writes/s for ${seconds} s...`);
  const lags: number[] = [];
  let writes = 0;
  let writing = true;
  const writerConns = await Promise.all(
    Array.from({ length: writerCount }, () => createConnection({ host: rs0.primary.host, port: rs0.primary.port, user: infra!.mysql.adminUser.user, password: infra!.mysql.adminUser.password })),
  );
  const more = idsOnX40(50_000_000);
  const started = performance.now();
  const writer = Promise.all(
    writerConns.map(async (conn) => {
      while (performance.now() - started < seconds * 1000) {
        const due = Math.floor(((performance.now() - started) / 1000) * rate);
        if (writes >= due) {
          await delay(2);
          continue;
        }
        writes++;
        const id = more.next().value as string;
        await conn.execute(`INSERT INTO ${source}.users (id, handle, email, password_hash) VALUES (?, ?, ?, 'x')`, [id, `w${id}`, `w${id}@x.test`]);
      }
    }),
  ).then(async () => {
    writing = false;
    for (const c of writerConns) await c.end();
  });
  let rounds = 0;
  while (writing) {
    await runReshard({ plan, servers, kv, stopAfter: "catch-up", onCatchUp: (p) => lags.push(p.lagMs) });
    rounds++;
  }
  await writer;
  const t1 = performance.now();
  await runReshard({ plan, servers, kv, stopAfter: "catch-up" });
  const drainMs = performance.now() - t1;
  log(`${writes} writes; catch-up lag p50 ${pct(lags, 50)} ms, p99 ${pct(lags, 99)} ms, max ${Math.max(0, ...lags)} ms over ${lags.length} samples (${rounds} rounds); current ${drainMs.toFixed(0)} ms after the writes stopped (one run's start included)`);

  const t2 = performance.now();
  const verified = await runReshard({ plan, servers, kv });
  const verifySeconds = (performance.now() - t2) / 1000;
  log(`verify ${verified.verify?.ok ? "OK" : "FAILED"} in ${verifySeconds.toFixed(1)} s`);
  for (const t of verified.verify?.tables ?? []) if (!t.match) log(`  ${t.table} ${t.target}: rows ${t.sourceRows} / ${t.targetRows}, checksum ${t.sourceChecksum} / ${t.targetChecksum}`);

  // The switches, under writes through routers that follow the live topology.
  const topologyKv = await openTopologyKv(nc);
  await publishTopology(topologyKv, { keyspace: config.keyspace, epoch: 1, replicaSets: infra.mysql.replicaSets, shards: config.shards, updateTime: new Date().toISOString() });
  const routers = await Promise.all(
    [0, 1].map(() => createShardRouter({ topology: { keyspace: config.keyspace, epoch: 0, replicaSets: infra!.mysql.replicaSets, shards: config.shards, updateTime: "" }, credentials: infra!.mysql.appUser, topologyKv })),
  );
  const switchIds = idsOnX40(80_000_000);
  const acked: string[] = [];
  const writeLog: Array<{ start: number; end: number }> = [];
  let errors = 0;
  let switching = true;
  let issued = 0;
  const switchStart = performance.now();
  const switchWriters = Promise.all(
    Array.from({ length: Math.max(2, writerCount) }, async (_, w) => {
      const r = routers[w % 2]!;
      while (switching) {
        const due = Math.floor(((performance.now() - switchStart) / 1000) * rate);
        if (issued >= due) {
          await delay(2);
          continue;
        }
        issued++;
        const id = switchIds.next().value as string;
        const start = performance.now();
        try {
          await r.primary(r.shardForUser(id)).execute("INSERT INTO chirp.users (id, handle, email, password_hash) VALUES (?, ?, ?, 'x')", [id, `s${id}`, `s${id}@x.test`]);
          acked.push(id);
          writeLog.push({ start, end: performance.now() });
        } catch (err) {
          errors++;
          log(`write failed: ${(err as Error).message}`);
        }
      }
    }),
  );
  let switched: WriteSwitchResult | undefined;
  let heldAt = 0;
  const s0 = performance.now();
  // Attempts that ran out of the hold budget: undone, held writes run on the source.
  const giveUps: Array<{ step: string; heldMs: number; undoMs: number; unfenceMs: number; stopMs: number }> = [];
  let gaveUpFor = "";
  await runReshard({
    plan,
    servers,
    kv,
    topologyKv,
    stopAfter: "switch-writes",
    heldCheck,
    holdMs,
    holdAttempts,
    log: (line) => {
      if (line.startsWith("reads switched")) heldAt = performance.now();
      log(line);
    },
    onWriteSwitch: (r) => (switched = r),
    onGiveUp: (e) =>
      giveUps.push({ step: e.step, heldMs: Math.round(e.cost?.heldMs ?? -1), undoMs: Math.round(e.cost?.undoMs ?? -1), unfenceMs: Math.round(e.cost?.unfenceMs ?? -1), stopMs: Math.round(e.cost?.stopMs ?? -1) }),
  }).catch((err: unknown) => {
    gaveUpFor = (err as Error).message;
    log(`write switch not done: ${gaveUpFor}`);
  });
  const switchSeconds = (performance.now() - s0) / 1000;
  if (giveUps.length > 0) log(`${giveUps.length} attempt(s) gave up: ${giveUps.map((g) => `at ${g.step}, held ${g.heldMs} ms (the step stopping ${g.stopMs}, tables back ${g.unfenceMs}, undo in all ${g.undoMs} ms)`).join("; ")}`);
  // --switch-back: the targets take writes for 2 s, then abort switches writes back under the same load.
  let back: { heldMs: number; rowsReplayed: number; seconds: number; pauseMs: number; missingOnSource: number } | undefined;
  let backAt = Infinity;
  const backGiveUps: Array<{ step: string; heldMs: number; undoMs: number }> = [];
  if (switchBack && switched !== undefined) {
    await delay(2000);
    backAt = performance.now();
    let heldMs = -1;
    let rowsReplayed = -1;
    const aborted = await abortReshard({
      keyspace: plan.keyspace,
      sourceDatabase: plan.source.database,
      servers,
      kv,
      topologyKv,
      plan,
      holdMs,
      holdAttempts,
      onGiveUp: (e) => backGiveUps.push({ step: e.step, heldMs: Math.round(e.cost?.heldMs ?? -1), undoMs: Math.round(e.cost?.undoMs ?? -1) }),
      log: (line) => {
        const m = /^writes switched back to \S+: held (\d+) ms, (\d+) rows replayed/.exec(line);
        if (m !== null) [heldMs, rowsReplayed] = [Number(m[1]), Number(m[2])];
        log(line);
      },
    }).then(
      () => true,
      (err: unknown) => {
        // Every attempt gave up: the targets still serve, and the writes are checked there.
        log(`switch-back not done: ${(err as Error).message}`);
        return false;
      },
    );
    if (backGiveUps.length > 0) log(`${backGiveUps.length} switch-back attempt(s) gave up: ${backGiveUps.map((g) => `at ${g.step}, held ${g.heldMs} ms (undo ${g.undoMs} ms)`).join("; ")}`);
    if (aborted) back = { heldMs, rowsReplayed, seconds: (performance.now() - backAt) / 1000, pauseMs: 0, missingOnSource: 0 };
  }
  await delay(500);
  switching = false;
  await switchWriters;
  if (back !== undefined) {
    back.pauseMs = Math.max(0, ...writeLog.filter((w) => w.end >= backAt).map((w) => w.end - w.start));
    for (let i = 0; i < acked.length; i += 1000) {
      const chunk = acked.slice(i, i + 1000);
      const [rows] = await admin.query(`SELECT COUNT(*) AS n FROM ${plan.source.database}.users WHERE id IN (?)`, [chunk]);
      back.missingOnSource += chunk.length - Number((rows as Array<{ n: number }>)[0]!.n);
    }
    log(`switch-back: abort in ${back.seconds.toFixed(1)} s; writes held ${back.heldMs} ms, ${back.rowsReplayed} rows replayed; write pause end to end ${back.pauseMs.toFixed(0)} ms; ${acked.length} writes acknowledged in all, ${back.missingOnSource} missing on the source, ${errors} errors`);
  }
  // The pause end to end: the slowest write among those in flight after the read switch (and before any switch-back).
  const during = writeLog.filter((w) => w.end >= heldAt && w.end < backAt);
  const pauseMs = Math.max(0, ...during.map((w) => w.end - w.start));
  const normal = writeLog.filter((w) => w.end < heldAt).map((w) => w.end - w.start);
  let missing = 0;
  // After a switch-back the targets are gone: the check is on the source (above); after a
  // switch that gave up every attempt, every write is on the source.
  const onTargets = back === undefined && switched !== undefined ? acked : [];
  if (switched === undefined) {
    for (let i = 0; i < acked.length; i += 1000) {
      const chunk = acked.slice(i, i + 1000);
      const [rows] = await admin.query(`SELECT COUNT(*) AS n FROM ${plan.source.database}.users WHERE id IN (?)`, [chunk]);
      missing += chunk.length - Number((rows as Array<{ n: number }>)[0]!.n);
    }
  }
  for (let i = 0; i < onTargets.length; i += 1000) {
    const chunk = onTargets.slice(i, i + 1000);
    const [rows] = await admin.query(
      `SELECT COUNT(*) AS n FROM (SELECT id FROM ${plan.targets[0]!.database}.users WHERE id IN (?) UNION ALL SELECT id FROM ${plan.targets[1]!.database}.users WHERE id IN (?)) x`,
      [chunk, chunk],
    );
    missing += chunk.length - Number((rows as Array<{ n: number }>)[0]!.n);
  }
  for (const r of routers) await r.close();
  log(
    `switch: reads then writes in ${switchSeconds.toFixed(1)} s; writes held ${switched?.heldMs.toFixed(0)} ms (fence ${switched?.fenceMs.toFixed(0)}, drain ${switched?.drainMs.toFixed(0)}, verify ${switched?.verifyMs.toFixed(0)} ms); ` +
      `write pause end to end ${pauseMs.toFixed(0)} ms (a write's p50 before: ${pct(normal, 50).toFixed(1)} ms); ${acked.length} writes acknowledged, ${back === undefined ? `${missing} missing on the ${switched === undefined ? "source" : "targets"}` : "checked on the source after the switch-back"}, ${errors} errors`,
  );

  const result = {
    time: new Date().toISOString(),
    machine: machine(),
    parameters: { users, rate, writers: writerCount, seconds, batch, heldCheck, switchBack, holdMs, holdAttempts },
    copy: { rows: copiedRows, seconds: copySeconds, rowsPerSecond: Math.round(copiedRows / copySeconds) },
    catchUp: { writes, lagP50Ms: pct(lags, 50), lagP99Ms: pct(lags, 99), lagMaxMs: Math.max(0, ...lags), samples: lags.length, currentAfterWritesMs: Math.round(drainMs) },
    verify: { ok: verified.verify?.ok ?? false, seconds: verifySeconds },
    writeSwitch: {
      heldMs: Math.round(switched?.heldMs ?? -1),
      fenceMs: Math.round(switched?.fenceMs ?? -1),
      drainMs: Math.round(switched?.drainMs ?? -1),
      verifyMs: Math.round(switched?.verifyMs ?? -1),
      pauseEndToEndMs: Math.round(pauseMs),
      writeP50BeforeMs: Number(pct(normal, 50).toFixed(2)),
      acknowledged: acked.length,
      missingOnTargets: missing,
      errors,
      switchSeconds,
      giveUps,
      ...(gaveUpFor === "" ? {} : { notSwitched: gaveUpFor }),
    },
    ...(back === undefined ? {} : { switchBack: { ...back, pauseMs: Math.round(back.pauseMs), giveUps: backGiveUps } }),
  };
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${out}`);
  await admin.end();
  await nc.close();
} finally {
  await infra?.stop().catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
}
