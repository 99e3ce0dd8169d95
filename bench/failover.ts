/**
 * Failover benchmark: how long writes to a replica set pause when its primary
 * is killed (kill -9), what the topology manager spent on each phase, whether
 * the other replica set noticed, and whether any acknowledged write was lost.
 *
 *   npm run bench:failover -- [--runs 3] [--warm-acks 300] [--ephemeral] [--freeze S] [--out bench/results/failover.json]
 *
 * --freeze S: instead of kill -9, the primary is frozen (SIGSTOP, what a
 * partition or a long stall looks like) for S seconds, then woken; the run
 * ends when the manager has rejoined it or refused it (a write in flight at
 * the freeze may have committed there alone: an errant transaction). Results
 * go to bench/results/failover-freeze.json unless --out says otherwise.
 *
 * A private cluster (durable settings, as `npm start` runs it, unless
 * --ephemeral) and the topology manager in this process with its default
 * timings (probe every 250 ms, 3 failed probes). Writes run one at a time,
 * back to back, through the shard router on rs0 (shard -40) and rs1 (shard
 * 80-c0). Each run kills rs0's current primary, waits for the failover and
 * for writes to resume, restarts the killed member, waits for it to rejoin,
 * then checks every acknowledged rs0 write on the new primary and the old
 * one. Each set has a primary and two semi-sync replicas, as npm start runs
 * it (decision 24); each run kills the current primary.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import * as os from "node:os";
import { performance } from "node:perf_hooks";
import { dirname } from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { connect as connectNats } from "@nats-io/transport-node";
import { createConnection, type RowDataPacket } from "mysql2/promise";
import { pino } from "pino";
import { newTestDataDir, startLocalCluster, type RunningInfra } from "../devcluster/index.js";
import type { MemberAddress } from "../lib/shard/types.js";
import { loadShardConfig } from "../lib/shard/shard-config.js";
import { createShardRouter } from "../lib/shard/router.js";
import { openTopologyKv } from "../lib/shard/topology.js";
import { topologyConfigFor } from "../services/topology/config.js";
import type { FailoverReport } from "../services/topology/failover.js";
import { TopologyManager } from "../services/topology/manager.js";
import { createTopologyMetrics } from "../services/topology/metrics.js";
import { PROBE_TABLE, PROBE_TABLE_DDL, startWriteLoad } from "../test/support/write-load.js";

const NUMERIC = ["rs0PauseMs", "killToFirstWriteMs", "killToFirstFailedProbeMs", "detectMs", "fenceMs", "applyMs", "promoteMs", "publishMs", "managerTotalMs", "rs1MaxGapMs", "rejoinMs"] as const;

const DEFAULT_OUT = fileURLToPath(new URL("./results/failover.json", import.meta.url));

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    "warm-acks": { type: "string", default: "300" },
    ephemeral: { type: "boolean", default: false },
    freeze: { type: "string", default: "0" },
    out: { type: "string" },
  },
});
const runs = Number(values.runs);
const warmAcks = Number(values["warm-acks"]);
const freezeS = Number(values.freeze);
const out = values.out ?? (freezeS > 0 ? DEFAULT_OUT.replace(/failover\.json$/, "failover-freeze.json") : DEFAULT_OUT);
if (!(freezeS >= 0 && freezeS <= 600)) {
  console.error("--freeze must be 0-600 seconds");
  process.exit(2);
}
if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(warmAcks) || warmAcks < 1) {
  console.error("usage: npm run bench:failover -- [--runs N] [--warm-acks N] [--ephemeral] [--freeze S] [--out file]");
  process.exit(2);
}

interface RunResult {
  run: number;
  killed: string;
  promoted: string;
  /** Last rs0 ack before the kill -> first rs0 ack after it. */
  rs0PauseMs: number;
  /** kill -> first rs0 ack after it. */
  killToFirstWriteMs: number;
  /** kill -> the manager's first failed probe of the old primary. */
  killToFirstFailedProbeMs: number;
  /** Manager phases (first failed probe of the old primary is t=0). */
  detectMs: number;
  fenceMs: number;
  applyMs: number;
  promoteMs: number;
  publishMs: number;
  managerTotalMs: number;
  /** Longest gap between consecutive rs1 acks over the whole run. */
  rs1MaxGapMs: number;
  /** restart (or wake) of the old primary -> the manager rejoined it as a replica, or refused it. */
  rejoinMs: number;
  /** The manager's answer to the old primary's return: ok, or refused (an errant transaction: a write committed there alone). */
  rejoin: string;
  rs0Acked: number;
  rs1Acked: number;
  rs0FailedWrites: number;
  lostAcked: number;
  mayHaveLostWrites: boolean;
}

const log = (line: string): void => console.error(`[bench] ${line}`);
const dataDir = newTestDataDir();
const managerLog: string[] = [];
let infra: RunningInfra | undefined;

try {
  log(`starting a private cluster (${values.ephemeral ? "ephemeral: relaxed fsync" : "durable: sync_binlog=1, innodb_flush_log_at_trx_commit=1"})...`);
  // Three members per set, as npm start runs them: with semi-sync that never falls back
  // (decision 24), a set of two would take no write between the kill and the rejoin.
  infra = await startLocalCluster({ dataDir, ephemeral: values.ephemeral, replicasPerSet: 2, log: (l) => managerLog.push(`[cluster] ${l}`) });
  const cluster = infra;
  for (const shard of cluster.mysql.shards) {
    const rs = cluster.mysql.replicaSets.find((r) => r.name === shard.replicaSet)!;
    await admin(cluster, rs.primary, shard.database, (c) => c.query(PROBE_TABLE_DDL));
  }
  const nc = await connectNats({ servers: cluster.natsUrl });
  const kv = await openTopologyKv(nc);
  const sink = new Writable({ write: (chunk: Buffer, _e, done) => (managerLog.push(chunk.toString().trimEnd()), done()) });
  const manager = new TopologyManager(topologyConfigFor(cluster, loadShardConfig("local")), {
    log: pino({ level: "info", base: { service: "topology" } }, sink),
    metrics: createTopologyMetrics(),
    kv,
    nc,
  });
  const topology = await manager.start();
  const router = await createShardRouter({ topology, credentials: cluster.mysql.appUser, topologyKv: kv, topologyNats: nc });
  const database = cluster.mysql.shards.find((s) => s.name === "-40")!.database;

  const results: RunResult[] = [];
  for (let run = 1; run <= runs; run++) {
    const before = manager.current!.replicaSets.find((r) => r.name === "rs0")!;
    const oldPrimary = before.primary;
    const rs0 = startWriteLoad(router, "-40", run * 10_000_000);
    const rs1 = startWriteLoad(router, "80-c0", 1_000_000_000 + run * 10_000_000);
    const runStart = performance.now();
    await rs0.acksAtLeast(warmAcks, 30_000);
    await rs1.acksAtLeast(warmAcks, 30_000);

    const failoverSeen = new Promise<FailoverReport>((resolve) => {
      const on = (r: FailoverReport): void => {
        if (r.replicaSet !== "rs0") return;
        manager.off("failover", on);
        resolve(r);
      };
      manager.on("failover", on);
    });
    const killedAt = performance.now();
    const killedAtWall = Date.now();
    const victimPid = cluster.processes.find((p) => p.name === oldPrimary.name)!.pid;
    process.kill(victimPid, freezeS > 0 ? "SIGSTOP" : "SIGKILL");
    const report = await withDeadline(failoverSeen, 60_000, "failover");
    const resumed = await rs0.firstAckSentAfter(killedAt, 30_000);
    const lastBefore = rs0.ackBefore(resumed)!;
    await rs0.acksAtLeast(warmAcks, 30_000);

    const rejoined = new Promise<string>((resolve) => {
      const on = (e: { member: string; result: string }): void => {
        if (e.member !== oldPrimary.name) return;
        manager.off("rejoin", on);
        resolve(e.result);
      };
      manager.on("rejoin", on);
    });
    let restartAt: number;
    if (freezeS > 0) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, killedAt + freezeS * 1000 - performance.now())));
      restartAt = performance.now();
      process.kill(victimPid, "SIGCONT");
    } else {
      restartAt = performance.now();
      await cluster.restartMysqlMember(oldPrimary.name);
    }
    const rejoinResult = await withDeadline(rejoined, 60_000, "rejoin");
    if (rejoinResult !== "ok" && freezeS === 0) throw new Error(`${oldPrimary.name} rejoin: ${rejoinResult}`);
    const rejoinMs = performance.now() - restartAt;
    await rs0.acksAtLeast(100, 30_000);
    await rs0.stop();
    await rs1.stop();
    const runEnd = performance.now();

    const promoted = manager.current!.replicaSets.find((r) => r.name === "rs0")!.primary;
    const onNew = await ids(cluster, promoted, database);
    const [[pos]] = await admin(cluster, promoted, database, (c) => c.query<RowDataPacket[]>("SELECT @@global.gtid_binlog_pos AS p"));
    // A woken member refused for an errant transaction is not a copy of the primary: only the primary is checked then.
    let onOld = onNew;
    if (rejoinResult === "ok") {
      await admin(cluster, oldPrimary, database, (c) => c.query("SELECT MASTER_GTID_WAIT(?, 30)", [pos!["p"]]));
      onOld = await ids(cluster, oldPrimary, database);
    }
    const lost = rs0.acked.filter((a) => !onNew.has(a.id) || !onOld.has(a.id)).length;

    const r: RunResult = {
      run,
      killed: oldPrimary.name,
      promoted: promoted.name,
      rs0PauseMs: round(resumed.at - lastBefore.at),
      killToFirstWriteMs: round(resumed.at - killedAt),
      killToFirstFailedProbeMs: report.firstFailureAt - killedAtWall,
      detectMs: report.detectMs,
      fenceMs: report.fenceMs,
      applyMs: report.applyMs,
      promoteMs: report.promoteMs,
      publishMs: report.publishMs,
      managerTotalMs: report.totalMs,
      rs1MaxGapMs: round(rs1.maxGap(runStart, runEnd)),
      rejoinMs: round(rejoinMs),
      rejoin: rejoinResult,
      rs0Acked: rs0.acked.length,
      rs1Acked: rs1.acked.length,
      rs0FailedWrites: rs0.failed.length,
      lostAcked: lost,
      mayHaveLostWrites: report.mayHaveLostWrites,
    };
    results.push(r);
    if (r.rejoin !== "ok") {
      log(`run ${run}: ${r.killed} was refused (${r.rejoin}: a write of its own; the manager rebuilds it from the new primary), so no further runs`);
      break;
    }
    log(
      `run ${run}: ${freezeS > 0 ? `froze for ${freezeS} s` : "killed"} ${r.killed}, promoted ${r.promoted}; rs0 pause ${r.rs0PauseMs} ms (manager ${r.managerTotalMs} ms: ` +
        `detect ${r.detectMs}, fence ${r.fenceMs}, apply ${r.applyMs}, promote ${r.promoteMs}, publish ${r.publishMs}); ` +
        `rs1 max gap ${r.rs1MaxGapMs} ms; rejoin ${r.rejoin}; lost ${r.lostAcked} of ${r.rs0Acked} acked`,
    );
  }

  await router.close();
  await manager.stop();
  await nc.close();

  const table = renderTable(results);
  console.log(table);
  const cpus = os.cpus();
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(
    out,
    `${JSON.stringify(
      {
        benchmark: "failover",
        date: new Date().toISOString(),
        machine: {
          cpus: `${cpus.length} x ${cpus[0]?.model ?? "?"}`,
          memoryGiB: Math.round(os.totalmem() / 2 ** 30),
          platform: `${os.platform()} ${os.release()} ${os.arch()}`,
          node: process.version,
          loadAverageAtEnd: os.loadavg(),
        },
        parameters: {
          runs,
          warmAcks,
          fault: freezeS > 0 ? `SIGSTOP for ${freezeS} s` : "kill -9",
          durability: values.ephemeral ? "ephemeral" : "durable",
          probeIntervalMs: 250,
          failuresToFailover: 3,
          heartbeatIntervalMs: 250,
        },
        median: medians(results),
        runs: results,
      },
      null,
      2,
    )}\n`,
  );
  log(`wrote ${out}`);
  const lostTotal = results.reduce((n, r) => n + r.lostAcked, 0);
  if (lostTotal > 0) {
    log(`LOST ${lostTotal} ACKNOWLEDGED WRITES`);
    process.exitCode = 1;
  }
} catch (err) {
  console.error(managerLog.slice(-60).join("\n"));
  console.error(err);
  process.exitCode = 1;
} finally {
  await infra?.stop().catch(() => undefined);
  await rm(dataDir, { recursive: true, force: true });
}

async function admin<T>(cluster: RunningInfra, addr: MemberAddress, database: string, fn: (c: import("mysql2/promise").Connection) => Promise<T>): Promise<T> {
  const c = await createConnection({ host: addr.host, port: addr.port, user: cluster.mysql.adminUser.user, password: cluster.mysql.adminUser.password, database });
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

async function ids(cluster: RunningInfra, addr: MemberAddress, database: string): Promise<Set<number>> {
  return admin(cluster, addr, database, async (c) => {
    const [rows] = await c.query<RowDataPacket[]>(`SELECT id FROM ${PROBE_TABLE}`);
    return new Set(rows.map((r) => Number(r["id"])));
  });
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
    }),
  ]);
}

function round(ms: number): number {
  return Math.round(ms);
}

function medians(results: readonly RunResult[]): Record<(typeof NUMERIC)[number], number> & { lostAcked: number } {
  const med = (xs: number[]): number => {
    const s = [...xs].sort((a, b) => a - b);
    const m = Math.floor(s.length / 2);
    return s.length % 2 === 1 ? s[m]! : Math.round((s[m - 1]! + s[m]!) / 2);
  };
  const out = Object.fromEntries(NUMERIC.map((k) => [k, med(results.map((r) => r[k]))])) as Record<(typeof NUMERIC)[number], number>;
  return { ...out, lostAcked: results.reduce((n, r) => n + r.lostAcked, 0) };
}

function renderTable(results: readonly RunResult[]): string {
  const header = ["run", "killed → promoted", "rs0 pause ms", "kill → 1st write ms", "kill → 1st failed probe", "detect", "fence", "apply", "promote", "publish", "manager total", "rs1 max gap ms", "rejoin ms", "rs0 acked", "lost"];
  const row = (r: RunResult): string[] => [
    String(r.run),
    `${r.killed} → ${r.promoted}`,
    String(r.rs0PauseMs),
    String(r.killToFirstWriteMs),
    String(r.killToFirstFailedProbeMs),
    String(r.detectMs),
    String(r.fenceMs),
    String(r.applyMs),
    String(r.promoteMs),
    String(r.publishMs),
    String(r.managerTotalMs),
    String(r.rs1MaxGapMs),
    String(r.rejoinMs),
    String(r.rs0Acked),
    String(r.lostAcked),
  ];
  const m = medians(results);
  const medianRow = ["median", "", ...NUMERIC.map((k) => String(m[k])), "", String(m.lostAcked)];
  const lines = [header, ...results.map(row), medianRow].map((cells) => `| ${cells.join(" | ")} |`);
  lines.splice(1, 0, `|${header.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`);
  return lines.join("\n");
}
