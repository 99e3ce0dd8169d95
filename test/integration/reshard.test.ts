// chirp reshard's workflow (lib/reshard) against real servers: a tenant of the
// shared cluster splits its own -40 shard database into -20 and 20-40 on the
// same replica set. The copy is killed mid-way and resumed; rows change
// between and during the runs; catch-up from the binlog must carry every
// change; verify compares counts and checksums; abort drops the targets.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import type { KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { createConnection, type Connection, type RowDataPacket } from "mysql2/promise";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parseNatsUrl } from "../../lib/events/nats-url.js";
import { keyRangeContains } from "../../lib/shard/keyrange.js";
import { parseKeyRange } from "../../lib/shard/shard-config.js";
import { hashVindex, handleKeyspaceId } from "../../lib/shard/vindex.js";
import { createShardRouter, type ShardRouter } from "../../lib/shard/router.js";
import { topologyFromEnv } from "../../lib/shard/config.js";
import { loadShardConfig } from "../../lib/shard/shard-config.js";
import { openTopologyKv, publishTopology, readTopology } from "../../lib/shard/topology.js";
import { fenceDatabase, ReshardSwitchError, unfence, type WriteSwitchResult } from "../../lib/reshard/switch.js";
import { baseTables, binlogGtidPos, openConnection, readTables } from "../../lib/reshard/sql.js";
import { catchUp, type CatchUpOptions } from "../../lib/reshard/catch-up.js";
import { formatBinlogReport, inspectBinlog, ReshardBinlogError } from "../../lib/reshard/binlog.js";
import { HoldBudgetExceeded } from "../../lib/reshard/hold.js";
import { verify, verifyTotals } from "../../lib/reshard/verify.js";
import { planReshard, type ReshardPlan } from "../../lib/reshard/plan.js";
import { loadState, openReshardKv, reshardKey } from "../../lib/reshard/state.js";
import { formatStatus } from "../../lib/reshard/status.js";
import { abortReshard, primaryOf, runReshard, type ReshardServers } from "../../lib/reshard/workflow.js";
import { replicaSetEnvVar } from "../../lib/shard/infra-env.js";
import { writeHeartbeat } from "../../lib/shard/replication.js";
import { heartbeatDatabases, LiveDocument } from "../../services/topology/document.js";
import { searchAllShards } from "../../services/search/fan-out.js";
import { createSearchStore } from "../../services/search/store.js";
import { run as runCli } from "../../scripts/cli/reshard.js";
import { eventually } from "../support/eventually.js";
import { startSystem, type TestSystem } from "../support/system.js";

const CHIRP_BIN = fileURLToPath(new URL("../../bin/chirp.js", import.meta.url));

let system: TestSystem;
let router: ShardRouter;
let nc: NatsConnection;
let kv: KV;
let plan: ReshardPlan;
let servers: ReshardServers;
let admin: Connection;

/** User ids (and handles) whose rows live on -40, from `from` upwards. */
function idsOnX40(count: number, from: number): string[] {
  const ids: string[] = [];
  for (let id = from; ids.length < count; id++) if (router.shardForUser(String(id)).name === "-40") ids.push(String(id));
  return ids;
}
function handlesOnX40(count: number, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) if (router.shardForHandle(`${prefix}${i}`).name === "-40") out.push(`${prefix}${i}`);
  return out;
}

async function insertUsers(ids: readonly string[], handles: readonly string[]): Promise<void> {
  const db = router.primary("-40");
  for (let i = 0; i < ids.length; i += 100) {
    const chunk = ids.slice(i, i + 100);
    await db.execute(`INSERT INTO chirp.users (id, handle, email, password_hash, bio) VALUES ${chunk.map(() => "(?, ?, ?, 'x', ?)").join(", ")}`, chunk.flatMap((id) => [id, `h${id}`, `e${id}@x.test`, `bio of ${id}`]));
    await db.execute(`INSERT INTO chirp.follows (follower_id, followee_id) VALUES ${chunk.map(() => "(?, ?)").join(", ")}`, chunk.flatMap((id) => [id, "1"]));
  }
  for (let i = 0; i < handles.length; i += 100) {
    const chunk = handles.slice(i, i + 100);
    await db.execute(`INSERT INTO chirp.user_handles (handle_lower, user_id) VALUES ${chunk.map(() => "(?, ?)").join(", ")}`, chunk.flatMap((h, j) => [h, String(j + 1)]));
  }
}

/** Rows keyed by bytes: search postings (VARBINARY term) and push subscriptions (BINARY(32) hash, some ending in zero bytes). */
async function insertByteKeyed(ids: readonly string[]): Promise<void> {
  const db = router.primary("-40");
  await db.execute(`INSERT INTO chirp.search_postings (term, tweet_id) VALUES ${ids.map(() => "(?, ?)").join(", ")}`, ids.flatMap((id, i) => [Buffer.from(`term${i % 5}`), id]));
  await db.execute(
    `INSERT INTO chirp.push_subscriptions (user_id, endpoint_hash, endpoint, p256dh, auth, create_time) VALUES ${ids.map(() => "(?, ?, ?, 'k', 'a', NOW(6))").join(", ")}`,
    ids.flatMap((id) => [id, zeroEndedHash(id), `https://push.example/${id}`]),
  );
}
function zeroEndedHash(id: string): Buffer {
  const h = createHash("sha256").update(id).digest();
  h.fill(0, 29);
  return h;
}

/** What verify and catch-up take, on connections of their own (the workflow's: dates as strings), for the -40 split. */
async function workflowParts(): Promise<{ snapshot: Connection; catchUp: Omit<CatchUpOptions, "until">; close: () => Promise<void> }> {
  const at = primaryOf(servers, plan.source.replicaSet);
  const source = await openConnection(at, servers.adminUser);
  const snapshot = await openConnection(at, servers.adminUser);
  const target = await openConnection(primaryOf(servers, plan.targets[0]!.replicaSet), servers.adminUser);
  const tables = new Map([...(await readTables(source, plan.source.database))].filter(([name]) => plan.tables.has(name)));
  return {
    snapshot,
    catchUp: { sourceAddress: at, admin: servers.adminUser, source, targets: new Map(plan.targets.map((t) => [t.name, target])), tables },
    close: async () => {
      for (const c of [source, snapshot, target]) await c.end();
    },
  };
}

async function count(database: string, table: string): Promise<number> {
  const [[row]] = await admin.query<RowDataPacket[]>(`SELECT COUNT(*) AS n FROM \`${database}\`.\`${table}\``);
  return Number(row?.["n"]);
}

beforeAll(async () => {
  system = await startSystem({ mesh: false });
  router = system.router;
  const infra = system.infra;
  nc = await connect({ ...parseNatsUrl(infra.natsUrl), name: "reshard-test" });
  kv = await openReshardKv(nc);
  plan = planReshard(infra.shardConfig, "-40", ["-20", "20-40"]);
  servers = { replicaSets: infra.mysql.replicaSets, adminUser: infra.mysql.adminUser };
  const rs = infra.mysql.replicaSets.find((r) => r.name === plan.source.replicaSet)!;
  admin = await createConnection({ host: rs.primary.host, port: rs.primary.port, user: infra.mysql.adminUser.user, password: infra.mysql.adminUser.password, supportBigNumbers: true, bigNumberStrings: true });
});

afterAll(async () => {
  if (plan !== undefined && servers !== undefined && kv !== undefined) await abortReshard({ keyspace: plan.keyspace, sourceDatabase: plan.source.database, servers, kv }).catch(() => {});
  await admin?.end();
  await nc?.close();
  await system?.stop();
});

describe("chirp reshard -40 -> -20,20-40", () => {
  it("refuses targets that do not tile the source", () => {
    expect(() => planReshard(system.infra.shardConfig, "-40", ["-20", "30-40"])).toThrow(/tile/);
    expect(() => planReshard(system.infra.shardConfig, "-40", ["-40"])).toThrow(/two or more/);
    expect(() => planReshard(system.infra.shardConfig, "-30", ["-20", "20-30"])).toThrow(/no shard/);
  });

  it("copies a snapshot, resumes a killed copy, catches up from the binlog, verifies, and aborts", async () => {
    const ids = idsOnX40(300, 10_000);
    const handles = handlesOnX40(150, "hh");
    await insertUsers(ids, handles);
    await insertByteKeyed(ids.slice(0, 40));

    // First run: killed once it has copied 100 rows (batches of 50).
    const kill = new AbortController();
    await expect(
      runReshard({ plan, servers, kv, batchRows: 50, signal: kill.signal, onCopy: (p) => p.rows >= 100 && kill.abort(new Error("killed")) }),
    ).rejects.toThrow("killed");
    const key = reshardKey(plan.keyspace, plan.source.database);
    const killed = (await loadState(kv, key))!.state;
    expect(killed.phase).toBe("copying");
    const copiedBefore = Object.values(killed.copy).reduce((n, c) => n + c.rows, 0);
    expect(copiedBefore).toBe(100);
    expect(Object.values(killed.copy).some((c) => !c.done)).toBe(true);

    // Changes the first snapshot does not hold, on both sides of its last key.
    const db = router.primary("-40");
    const gone = [ids[0]!, ids[299]!];
    await db.execute("DELETE FROM chirp.users WHERE id IN (?, ?)", gone);
    await db.execute("UPDATE chirp.users SET bio = 'changed after the kill' WHERE id IN (?, ?)", [ids[1]!, ids[298]!]);
    const later = idsOnX40(40, 50_000);
    await insertUsers(later, []);

    // Second run resumes the copy (not from the start) and stops after it.
    const resumed = await runReshard({ plan, servers, kv, batchRows: 50, stopAfter: "copy" });
    expect(resumed.phase).toBe("catching-up");
    const sourceRows = (await count(plan.source.database, "users")) + (await count(plan.source.database, "follows")) + (await count(plan.source.database, "user_handles"));
    const copied = Object.values(resumed.copy).reduce((n, c) => n + c.rows, 0);
    // From scratch it would have copied everything again on top of the first 100.
    expect(copied).toBeLessThan(copiedBefore + sourceRows);

    // Changes after the copy reach the targets only through the binlog, some of them while catch-up runs.
    await db.execute("UPDATE chirp.users SET bio = 'changed after the copy', tweet_count = 7 WHERE id = ?", [ids[2]!]);
    await db.execute("DELETE FROM chirp.follows WHERE follower_id = ?", [ids[3]!]);
    await db.execute("DELETE FROM chirp.user_handles WHERE handle_lower = ?", [handles[0]!]);
    await db.execute("DELETE FROM chirp.search_postings WHERE term = ? AND tweet_id = ?", [Buffer.from("term0"), ids[0]!]);
    await db.execute("UPDATE chirp.push_subscriptions SET auth = 'changed' WHERE user_id = ? AND endpoint_hash = ?", [ids[5]!, zeroEndedHash(ids[5]!)]);
    await insertByteKeyed(ids.slice(200, 205));
    // 40 one-row transactions (4 binlog events each to the reader) so the backpressure bound below is passed.
    for (const id of ids.slice(10, 50)) await db.execute("UPDATE chirp.users SET bio = ? WHERE id = ?", [`one of 40 (${id})`, id]);
    let writing = true;
    const more = idsOnX40(60, 90_000);
    const writer = (async () => {
      for (let i = 0; writing || i < 10; i++) {
        if (i >= more.length) break;
        await insertUsers([more[i]!], []);
      }
    })();
    const lags: number[] = [];
    let restarts = 0;
    // A tiny backpressure bound: the stream is stopped and restarted from the saved position many times.
    const caught = runReshard({ plan, servers, kv, stopAfter: "catch-up", maxQueuedEvents: 150, onCatchUp: (p) => (lags.push(p.lagMs), (restarts = p.restarts)) });
    await caught.finally(() => (writing = false));
    await writer;

    // Verify runs its own catch-up to its snapshot's position first.
    const done = await runReshard({ plan, servers, kv });
    expect(done.phase).toBe("verified");
    expect(done.verify?.ok).toBe(true);
    expect(done.verify?.tables.length).toBe(plan.targets.length * plan.tables.size);
    expect(lags.length).toBeGreaterThan(0);
    expect(restarts).toBeGreaterThan(0);

    // Every source row is on exactly the target that owns it.
    const [x20, x2040] = plan.targets;
    for (const table of ["users", "follows", "user_handles", "search_postings", "push_subscriptions"]) {
      expect((await count(x20!.database, table)) + (await count(x2040!.database, table))).toBe(await count(plan.source.database, table));
    }
    const [users20] = await admin.query<RowDataPacket[]>(`SELECT id FROM \`${x20!.database}\`.users`);
    expect(users20.length).toBeGreaterThan(0);
    for (const r of users20) expect(keyRangeContains(parseKeyRange("-20"), hashVindex(String(r["id"])))).toBe(true);
    const [handles2040] = await admin.query<RowDataPacket[]>(`SELECT handle_lower FROM \`${x2040!.database}\`.user_handles`);
    expect(handles2040.length).toBeGreaterThan(0);
    for (const r of handles2040) expect(keyRangeContains(parseKeyRange("20-40"), handleKeyspaceId(String(r["handle_lower"])))).toBe(true);
    const target = [x20, x2040].find((t) => keyRangeContains(parseKeyRange(t!.name), hashVindex(ids[2]!)))!;
    const [[changed]] = await admin.query<RowDataPacket[]>(`SELECT bio, tweet_count FROM \`${target.database}\`.users WHERE id = ?`, [ids[2]!]);
    expect(changed).toMatchObject({ bio: "changed after the copy", tweet_count: "7" });
    const owner5 = [x20, x2040].find((t) => keyRangeContains(parseKeyRange(t!.name), hashVindex(ids[5]!)))!;
    const [[sub]] = await admin.query<RowDataPacket[]>(`SELECT auth FROM \`${owner5.database}\`.push_subscriptions WHERE user_id = ?`, [ids[5]!]);
    expect(sub).toMatchObject({ auth: "changed" });

    const status = formatStatus(done);
    expect(status).toContain("phase verified");
    expect(status).toMatch(/users\s+-20/);

    // --follow keeps the targets current until stopped: a row written now reaches its target.
    const stopFollowing = new AbortController();
    let markFollowing!: () => void;
    const isFollowing = new Promise<void>((resolve) => (markFollowing = resolve));
    const following = runReshard({ plan, servers, kv, stopAfter: "catch-up", follow: true, signal: stopFollowing.signal, log: (line) => line.startsWith("following") && markFollowing() });
    await isFollowing;
    const [late] = idsOnX40(1, 200_000);
    await insertUsers([late!], []);
    const lateTarget = [x20, x2040].find((t) => keyRangeContains(parseKeyRange(t!.name), hashVindex(late!)))!;
    await eventually("the row written while following is on its target", async () => {
      const [rows] = await admin.query<RowDataPacket[]>(`SELECT id FROM \`${lateTarget.database}\`.users WHERE id = ?`, [late!]);
      return rows.length === 1;
    });
    stopFollowing.abort();
    expect((await following).catchUp?.gtid).toBeTruthy();

    // A run resumed in phase verified does not verify again (catch-up keeps the targets current).
    const verifiedAt = (await loadState(kv, key))!.state.verify!.time;
    const again: string[] = [];
    expect((await runReshard({ plan, servers, kv, log: (l) => again.push(l) })).verify?.time).toBe(verifiedAt);
    expect(again.some((l) => l.startsWith("verified earlier"))).toBe(true);

    const parts = await workflowParts();
    try {
      // Verify while the same rows change all the time (a user's counters, a follow's sync flag):
      // catch-up to the verify position re-reads them newer than the snapshot, so the sums differ
      // every time; the differing keys are re-checked against the source until they converge.
      // Many rows, each changed a few times a second by one of four writers: some are changed between
      // the verify position and their re-read whenever verify runs; each is steady now and then.
      const hot = ids.slice(50, 250);
      let updating = true;
      let updates = 0;
      const updater = Promise.all(
        [0, 1, 2, 3].map(async (w) => {
          const mine = hot.filter((_, i) => i % 4 === w);
          for (let i = 0; updating; i++) {
            const id = mine[i % mine.length]!;
            await db.execute("UPDATE chirp.users SET tweet_count = tweet_count + 1, follower_count = follower_count + 1 WHERE id = ?", [id]);
            await db.execute("UPDATE chirp.follows SET sync_pending = 1 - sync_pending WHERE follower_id = ? AND followee_id = 1", [id]);
            updates++;
          }
        }),
      );
      let underLoad: Awaited<ReturnType<typeof verify>>;
      try {
        await eventually("every hot row has changed", async () => updates >= hot.length);
        underLoad = await verify(plan, (await loadState(kv, key))!, parts);
      } finally {
        updating = false;
        await updater;
      }
      expect(underLoad.tables.filter((t) => !t.match)).toEqual([]);
      expect(underLoad.ok).toBe(true);
      if (process.env["DEBUG_RESHARD"]) process.stderr.write(`hot rows: ${updates} updates; ${underLoad.tables.reduce((n, t) => n + (t.keysConverged ?? 0), 0)} keys ahead converged, ${underLoad.attempts - 1} re-check rounds\n`);

      // A real difference is still one: a row changed on a target and a row only there fail verify, by key.
      const victim = ids[250]!;
      const victimOwner = [x20, x2040].find((t) => keyRangeContains(parseKeyRange(t!.name), hashVindex(victim)))!;
      const [extra] = idsOnX40(1, 700_000);
      const extraOwner = [x20, x2040].find((t) => keyRangeContains(parseKeyRange(t!.name), hashVindex(extra!)))!;
      await admin.query(`UPDATE \`${victimOwner.database}\`.users SET bio = 'corrupted on the target' WHERE id = ?`, [victim]);
      await admin.query(`INSERT INTO \`${extraOwner.database}\`.users (id, handle, email, password_hash) VALUES (?, ?, ?, 'x')`, [extra!, `x${extra}`, `x${extra}@x.test`]);
      const rounds: number[] = [];
      const failed = await verify(plan, (await loadState(kv, key))!, { ...parts, onAttempt: (r) => rounds.push(r) });
      expect(failed.ok).toBe(false);
      const differs = failed.tables.filter((t) => !t.match && t.table === "users");
      expect(differs.flatMap((t) => t.keysDiffering ?? []).sort()).toEqual([victim, extra!].sort());
      expect(failed.tables.filter((t) => !t.match && t.table !== "users")).toEqual([]);
      expect(rounds.length).toBeGreaterThanOrEqual(3);
      expect((await loadState(kv, key))!.state.phase).toBe("catching-up");
      expect(formatStatus((await loadState(kv, key))!.state)).toMatch(new RegExp(`DIFFERS \\(keys [^)]*\\b${victim}\\b`));

      // A transaction committed just before the write switch's fence, its TABLE_MAP read by the binlog
      // reader after the RENAME moved the table (before any view takes the name back): the reader looks
      // the table up in the fence (zongji halted with "Insufficient permissions to access" before).
      await db.execute("UPDATE chirp.users SET bio = 'just before the fence' WHERE id = ?", [victim]);
      const fencedAt = await binlogGtidPos(admin);
      const fence = fenceDatabase(plan.source.database);
      await admin.query(`CREATE DATABASE IF NOT EXISTS \`${fence}\``);
      const names = [...parts.catchUp.tables.keys()];
      await admin.query(`RENAME TABLE ${names.map((t) => `\`${plan.source.database}\`.\`${t}\` TO \`${fence}\`.\`${t}\``).join(", ")}`);
      try {
        await catchUp(plan, (await loadState(kv, key))!, { ...parts.catchUp, readDatabase: fence, until: fencedAt });
      } finally {
        await unfence(plan, admin, names);
      }
      const [[drained]] = await admin.query<RowDataPacket[]>(`SELECT bio FROM \`${victimOwner.database}\`.users WHERE id = ?`, [victim]);
      expect(drained).toEqual({ bio: "just before the fence" });
    } finally {
      await parts.close();
    }

    // Abort: the targets go, the state goes, the source is untouched.
    const sourceUsers = await count(plan.source.database, "users");
    await abortReshard({ keyspace: plan.keyspace, sourceDatabase: plan.source.database, servers, kv });
    expect(await loadState(kv, key)).toBeUndefined();
    const [dbs] = await admin.query<RowDataPacket[]>("SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN (?, ?)", [x20!.database, x2040!.database]);
    expect(dbs).toEqual([]);
    expect(await count(plan.source.database, "users")).toBe(sourceUsers);
  });

  it("runs as `chirp reshard`: killed mid-copy and resumed, with progress, status and abort", async () => {
    const infra = system.infra;
    const env: NodeJS.ProcessEnv = { ...process.env, NATS_URL: infra.natsUrl };
    delete env["MYSQL_URL"];
    for (const rs of infra.mysql.replicaSets) {
      const { user, password } = infra.mysql.adminUser;
      env[replicaSetEnvVar(rs.name)] = `mysql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@${[rs.primary, ...rs.replicas].map((m) => `${m.host}:${m.port}`).join(",")}`;
    }
    const configFile = infra.shardConfigFile!;

    // Targets on the other replica set this time. The first run is killed (SIGKILL) at its first
    // progress line, mid-copy in batches of 5 rows; the second resumes it.
    const args = ["reshard", "--env", configFile, "--from", "-40", "--to", "-20,20-40", "--replica-set", "rs1"];
    const child = spawn(process.execPath, [CHIRP_BIN, ...args, "--batch", "5"], { env, stdio: ["ignore", "ignore", "pipe"] });
    const exited = once(child, "exit");
    let killedAt = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      if (killedAt === "" && d.includes("copy: ")) {
        killedAt = d;
        child.kill("SIGKILL");
      }
    });
    const [, signal] = (await exited) as [number | null, string | null];
    expect(signal).toBe("SIGKILL");
    const killed = (await loadState(kv, reshardKey(plan.keyspace, plan.source.database)))!.state;
    expect(killed.phase).toBe("copying");
    expect(Object.values(killed.copy).some((c) => !c.done)).toBe(true);

    // The rest in this process (a child costs seconds of CPU): the same run(), the same env.
    const inProcess = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
      const saved = { ...process.env };
      Object.assign(process.env, env);
      delete process.env["MYSQL_URL"];
      let stdout = "";
      let stderr = "";
      const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk) => ((stdout += String(chunk)), true));
      const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk) => ((stderr += String(chunk)), true));
      try {
        return { code: await runCli(["--env", configFile, ...args]), stdout, stderr };
      } finally {
        out.mockRestore();
        err.mockRestore();
        for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
      }
    };
    const ran = await inProcess("--from", "-40", "--to", "-20,20-40", "--replica-set", "rs1", "--batch", "100", "--stop-after", "verify");
    expect(ran.stderr).toContain("resuming at phase copying");
    expect(ran.stderr).toMatch(/copy: \d+\/~?\d+ rows, \d+\/\d+ tables/);
    expect(ran.stderr).toMatch(/catch-up: lag [\d.]+ s, .*current/);
    expect(ran.stdout).toContain("phase verified");
    expect(ran.code).toBe(0);

    const status = await inProcess("status");
    expect(status.code).toBe(0);
    expect(status.stdout).toContain(`reshard ${plan.keyspace}/-40 (${plan.source.database}`);
    expect(status.stdout).toContain("verify: OK");
    expect(status.stdout).toContain(`-20 (${plan.targets[0]!.database} on rs1)`);

    expect((await inProcess("abort", "--from", "-40")).code).toBe(0);
    expect((await inProcess("status")).stdout).toContain("no reshard in progress");
  });

  it("aborts after the write switch: writes switch back, the targets' changes replayed into the source, nothing lost", async () => {
    const topologyKv = await openTopologyKv(nc);
    const start = router.topology();
    await publishTopology(topologyKv, { ...start, epoch: start.epoch + 1, updateTime: new Date().toISOString() });
    const r = await createShardRouter({ ...topologyFromEnv(system.env, system.infra.shardConfig), topologyKv, failoverWaitMs: 10_000 });
    try {
      const before = idsOnX40(20, 250_000);
      await insertUsers(before, []);
      // This test checks what lands where, not the hold budget (the last test does): a budget that cannot run out on a loaded machine.
      // Its router resolves a shard per statement: no gap between the switches is needed (switchGapMs).
      const switched = await runReshard({ plan, servers, kv, topologyKv, stopAfter: "switch-writes", holdMs: 10_000, switchGapMs: 0 });
      expect(formatStatus(switched)).toMatch(/reverse replication \(for abort\): from \S+/);
      await eventually("the router applied the write switch", async () => r.primaryForUser(before[0]!).shard.database !== plan.source.database);
      // Changes made on the targets: new rows, an update and a delete of rows the source had.
      const onTargets = idsOnX40(20, 260_000);
      for (const id of onTargets) await r.primaryForUser(id).execute("INSERT INTO chirp.users (id, handle, email, password_hash, bio) VALUES (?, ?, ?, 'x', 'on the targets')", [id, `t${id}`, `t${id}@x.test`]);
      await r.primaryForUser(before[0]!).execute("UPDATE chirp.users SET bio = 'changed on a target' WHERE id = ?", [before[0]!]);
      await r.primaryForUser(before[1]!).execute("DELETE FROM chirp.users WHERE id = ?", [before[1]!]);
      // A writer through the router while writes switch back: every acknowledged write ends on the source.
      const during = idsOnX40(200, 270_000);
      const acked: string[] = [];
      const errors: unknown[] = [];
      let stop = false;
      const writer = (async () => {
        for (const id of during) {
          if (stop) break;
          try {
            await r.primaryForUser(id).execute("INSERT INTO chirp.users (id, handle, email, password_hash, bio) VALUES (?, ?, ?, 'x', 'during the switch back')", [id, `d${id}`, `d${id}@x.test`]);
            acked.push(id);
          } catch (err) {
            errors.push(err);
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      const lines: string[] = [];
      // The first abort stops once the targets are fenced, as a kill would: the range stays held,
      // and the next abort finishes the switch-back from there.
      const killed = new AbortController();
      killed.abort(new Error("killed mid switch-back"));
      await expect(abortReshard({ keyspace: plan.keyspace, sourceDatabase: plan.source.database, servers, kv, topologyKv, plan, holdMs: 10_000, log: (l) => lines.push(l), signal: killed.signal })).rejects.toThrow("killed mid switch-back");
      expect(lines.some((l) => l.startsWith("writes switched back"))).toBe(false);
      await abortReshard({ keyspace: plan.keyspace, sourceDatabase: plan.source.database, servers, kv, topologyKv, plan, holdMs: 10_000, log: (l) => lines.push(l) });
      expect(lines.some((l) => l.startsWith("an interrupted switch-back had fenced the targets"))).toBe(true);
      stop = true;
      await writer;
      if (process.env["DEBUG_RESHARD"]) process.stderr.write(`${lines.join("\n")}\n${acked.length} writes acknowledged during the abort\n`);
      expect(errors).toEqual([]);
      expect(lines.some((l) => l.startsWith("writes switched back"))).toBe(true);
      expect(await loadState(kv, reshardKey(plan.keyspace, plan.source.database))).toBeUndefined();
      await eventually("the router is back on the source", async () => r.shards().some((s) => s.name === "-40"));
      expect(r.primaryForUser(before[0]!).shard.database).toBe(plan.source.database);
      const src = plan.source.database;
      const [rows] = await admin.query<RowDataPacket[]>(`SELECT id, bio FROM \`${src}\`.users WHERE id IN (${[...before, ...onTargets, ...acked].map(() => "?").join(",")})`, [...before, ...onTargets, ...acked]);
      const bio = new Map(rows.map((row) => [String(row["id"]), String(row["bio"])]));
      expect(onTargets.filter((id) => bio.get(id) !== "on the targets")).toEqual([]);
      expect(acked.filter((id) => bio.get(id) !== "during the switch back")).toEqual([]);
      expect(bio.get(before[0]!)).toBe("changed on a target");
      expect(bio.has(before[1]!)).toBe(false);
      expect(acked.length).toBeGreaterThan(0);
      const [dbs] = await admin.query<RowDataPacket[]>("SELECT SCHEMA_NAME AS s FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?", [`${src.slice(0, 3)}%resharded`]);
      expect(dbs).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it("switches reads, then writes under write load: every acknowledged write is on its target, none failed, walkers see each row once", async () => {
    // The live topology this tenant's routers follow (no topology manager runs here: the test publishes it).
    const topologyKv = await openTopologyKv(nc);
    const start = router.topology();
    const published = (await readTopology(topologyKv, start.keyspace))?.topology.epoch ?? 0;
    await publishTopology(topologyKv, { ...start, epoch: Math.max(start.epoch, published) + 1, updateTime: new Date().toISOString() });
    // What the topology manager writes heartbeats into follows the live document (no restart after a split).
    const live = new LiveDocument(topologyKv, start.keyspace, pino({ level: "silent" }));
    await live.follow();
    const routers = await Promise.all(
      [0, 1].map(() => createShardRouter({ ...topologyFromEnv(system.env, system.infra.shardConfig), topologyKv, failoverWaitMs: 10_000 })),
    );
    try {
      const before = idsOnX40(100, 300_000);
      await insertUsers(before, []);
      // Search across the split: tweets of the moved range indexed before it, found once each at every step.
      const indexed: string[] = [];
      const index = async (r: ShardRouter, n: number, from: number): Promise<void> => {
        const store = createSearchStore(r);
        for (let id = from; n > 0; id++) {
          if (["-40", "-20", "20-40"].includes(store.shardOf(BigInt(id)).name)) {
            await store.indexTweet({ tweetId: BigInt(id), authorId: BigInt(id), body: "across the split", terms: ["splitterm"] });
            indexed.push(String(id));
            n--;
          }
        }
      };
      const searched = async (r: ShardRouter): Promise<string[]> =>
        (await searchAllShards({ router: r, store: createSearchStore(r), timeoutMs: 5000 }, { terms: ["splitterm"], needles: [], before: undefined, limit: 100 })).hits.map((h) => String(h.tweetId)).sort();
      await index(routers[0]!, 10, 310_000);


      // Writers: users of the moved range, one in three with a follow in the same transaction, through both routers.
      let candidate = 400_000;
      const nextId = (): string => {
        while (router.shardForUser(String(candidate)).name !== "-40") candidate++;
        return String(candidate++);
      };
      let next = 0;
      const acked: string[] = [];
      const followed: string[] = [];
      const errors: unknown[] = [];
      const latencies: Array<{ at: number; ms: number }> = [];
      let switched = false;
      let afterSwitch = 0;
      const writer = async (w: number): Promise<void> => {
        const r = routers[w % 2]!;
        while (!(switched && afterSwitch >= 60)) {
          const id = nextId();
          next++;
          const t0 = performance.now();
          try {
            if (next % 3 === 0) {
              await r.transaction(r.shardForUser(id), async (tx) => {
                await tx.execute("INSERT INTO chirp.users (id, handle, email, password_hash, bio) VALUES (?, ?, ?, 'x', 'under load')", [id, `w${id}`, `w${id}@x.test`]);
                await tx.execute("INSERT INTO chirp.follows (follower_id, followee_id) VALUES (?, '1')", [id]);
              });
              followed.push(id);
            } else {
              // Resolve the shard first, as 31 call sites do, then write.
              await r.primary(r.shardForUser(id)).execute("INSERT INTO chirp.users (id, handle, email, password_hash, bio) VALUES (?, ?, ?, 'x', 'under load')", [id, `w${id}`, `w${id}@x.test`]);
            }
            acked.push(id);
            latencies.push({ at: t0, ms: performance.now() - t0 });
            if (switched) afterSwitch++;
          } catch (err) {
            errors.push(err);
            if (errors.length > 20) throw err;
          }
          // A steady load (about 300 writes/s in all), not a flood that catch-up on two shared cores cannot follow.
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      };
      const writers = Promise.all([0, 1, 2, 3].map(writer));

      // The command dies right after the read switch: nothing keeps the targets current any more,
      // so reads must not come from them. A write after the kill is read back through reader(),
      // and a walker of shards() visits the source's database once, not once per target.
      const kill = new AbortController();
      const firstRun: string[] = [];
      await runReshard({ plan, servers, kv, topologyKv, stopAfter: "switch-reads", signal: kill.signal, log: (line) => (firstRun.push(line), line.startsWith("following the source's binlog") && kill.abort()) });
      expect(firstRun.some((l) => l.startsWith("reads switched"))).toBe(true);
      const r0 = routers[0]!;
      await eventually("the router applied the read switch", async () => r0.topology().resharding?.[0]?.reads === "targets");
      const [afterKill] = idsOnX40(1, 350_000);
      await r0.primaryForUser(afterKill!).execute("INSERT INTO chirp.users (id, handle, email, password_hash, bio) VALUES (?, ?, ?, 'x', 'after the kill')", [afterKill!, `k${afterKill}`, `k${afterKill}@x.test`]);
      expect(r0.shardForUser(afterKill!).name).not.toBe("-40");
      expect(r0.readerForUser(afterKill!).shard.database).toBe(plan.source.database);
      await eventually("the write made after the kill is read back", async () => (await r0.readerForUser(afterKill!).query("SELECT id FROM chirp.users WHERE id = ?", [afterKill!])).length === 1);
      expect(r0.shards().map((s) => s.name)).toEqual(["-20", "40-80", "80-c0", "c0-"]);
      let walkedOnce = 0;
      for (const s of r0.shards()) {
        const [row] = await r0.primary(s).query<{ n: string | number }>(`SELECT COUNT(*) AS n FROM chirp.users WHERE id IN (${before.map(() => "?").join(",")})`, before);
        walkedOnce += Number(row!.n);
      }
      expect(walkedOnce).toBe(before.length);
      await index(r0, 1, 320_000);
      await eventually("search finds every indexed tweet once while reads are switched", async () => JSON.stringify(await searched(r0)) === JSON.stringify([...indexed].sort()));

      let result: WriteSwitchResult | undefined;
      const phases: string[] = [];
      const done = await runReshard({
        plan,
        servers,
        kv,
        topologyKv,
        stopAfter: "switch-writes",
        heldCheck: "digests",
        // The digests read every row while writes are held; this test checks what lands where, not the
        // budget (the last test does), so the budget cannot run out here on a loaded machine.
        holdMs: 10_000,
        log: (line) => {
          phases.push(line);
          if (process.env["DEBUG_RESHARD"]) process.stderr.write(`${line}\n`);
        },
        onWriteSwitch: (r) => (result = r),
      }).finally(() => (switched = true));
      await writers;

      if (process.env["DEBUG_RESHARD"]) process.stderr.write(`slowest write ${Math.max(...latencies.map((l) => l.ms)).toFixed(0)} ms of ${acked.length}\n`);
      expect(errors).toEqual([]);
      expect(done.phase).toBe("writes-switched");
      expect(result!.heldMs).toBeGreaterThan(0);
      expect(afterSwitch).toBeGreaterThanOrEqual(60);
      expect(phases.some((l) => l.includes("resuming at phase reads-switched"))).toBe(true);

      // Every router follows: the targets are in the ring, the source is gone, writes go to the targets' databases.
      for (const r of routers) {
        await eventually("the router applied the write switch", async () => r.topology().epoch === routers[0]!.topology().epoch);
        expect(r.shards().map((s) => s.name)).toEqual(["-20", "20-40", "40-80", "80-c0", "c0-"]);
        expect(r.primary("-20").shard.database).toBe(plan.targets[0]!.database);
      }
      await eventually("search finds every indexed tweet once after the write switch", async () => JSON.stringify(await searched(routers[1]!)) === JSON.stringify([...indexed].sort()));
      await eventually("the followed document has the write switch", async () => live.current?.epoch === routers[0]!.topology().epoch);
      const beaten = heartbeatDatabases(plan.source.replicaSet, live.current, system.infra.shardConfig.shards);
      expect(beaten).toEqual(expect.arrayContaining(plan.targets.map((t) => t.database)));
      expect(beaten).not.toContain(plan.source.database);
      expect(await writeHeartbeat(admin, beaten, 5000)).toBe(true);

      // Every acknowledged write is on the target that owns it; nothing is left on (or only on) the source.
      const [x20, x2040] = plan.targets;
      const onTarget = new Set<string>();
      for (const t of [x20!, x2040!]) {
        const [rows] = await admin.query<RowDataPacket[]>(`SELECT id FROM \`${t.database}\`.users WHERE bio = 'under load'`);
        for (const row of rows) {
          expect(keyRangeContains(parseKeyRange(t.name), hashVindex(String(row["id"])))).toBe(true);
          onTarget.add(String(row["id"]));
        }
      }
      expect(acked.filter((id) => !onTarget.has(id))).toEqual([]);
      expect(onTarget.size).toBe(acked.length);
      const [[f]] = await admin.query<RowDataPacket[]>(
        `SELECT (SELECT COUNT(*) FROM \`${x20!.database}\`.follows WHERE followee_id = 1 AND follower_id >= 400000) + (SELECT COUNT(*) FROM \`${x2040!.database}\`.follows WHERE followee_id = 1 AND follower_id >= 400000) AS n`,
      );
      expect(Number(f?.["n"])).toBe(followed.length);
      // A walker of shards() counts each row once (the users written before the split, too); through
      // reader() the replicas may be a write behind at first, never ahead, and never double.
      const r = routers[0]!;
      const walk = async (): Promise<number> => {
        let walked = 0;
        for (const s of r.shards()) {
          const [row] = await r.reader(s).query<{ n: string | number }>("SELECT COUNT(*) AS n FROM chirp.users WHERE bio = 'under load' OR id IN (" + before.map(() => "?").join(",") + ")", before);
          walked += Number(row!.n);
        }
        expect(walked).toBeLessThanOrEqual(acked.length + before.length);
        return walked;
      };
      await eventually("a walk over the shards counts every row once", async () => (await walk()) === acked.length + before.length);
      // Reads by id through the router find every acknowledged write.
      const sample = [...acked.filter((_, i) => i % 25 === 0), afterKill!];
      for (const id of sample) expect(await r.primaryForUser(id).query("SELECT id FROM chirp.users WHERE id = ?", [id])).toHaveLength(1);

      // The held check compares the fenced source with the targets exactly: now that the targets took writes, it says so.
      const fenced = await readTables(admin, fenceDatabase(plan.source.database));
      const totals = await verifyTotals(plan, admin, fenceDatabase(plan.source.database), new Map(plan.targets.map((t) => [t.name, admin])), fenced.values(), true);
      expect(totals.tables.find((t) => t.table === "users")).toMatchObject({ match: false, targetRows: (await count(x20!.database, "users")) + (await count(x2040!.database, "users")) });
      expect(totals.tables.find((t) => t.table === "user_handles")?.match).toBe(true);

      // A router that never saw the hold (it has the read switch's document): its write meets the
      // fence, does nothing there, and lands on the target once the router has the newer document.
      const final = routers[0]!.topology();
      const readSwitched = {
        ...final,
        epoch: final.epoch - 2,
        shards: [...final.shards.map((s) => (plan.targets.some((t) => t.name === s.name) ? { ...s, serving: false } : s)), plan.source],
        resharding: [{ source: "-40", targets: ["-20", "20-40"], reads: "targets" as const, writes: "source" as const }],
      };
      const lines: string[] = [];
      const late = await createShardRouter({
        ...topologyFromEnv(system.env, system.infra.shardConfig),
        failoverWaitMs: 30_000,
        log: pino({ level: "info" }, { write: (line: string) => void lines.push(line) }),
      });
      try {
        expect(late.applyTopology(readSwitched)).toBe(true);
        const lateId = nextId();
        expect(late.primary(late.shardForUser(lateId)).shard.database).toBe(plan.source.database);
        const lateWrite = late.primary(late.shardForUser(lateId)).execute("INSERT INTO chirp.users (id, handle, email, password_hash, bio) VALUES (?, ?, ?, 'x', 'late router')", [lateId, `l${lateId}`, `l${lateId}@x.test`]);
        await eventually("the late write met the fence", async () => lines.some((l) => l.includes("fenced reshard source")));
        expect(late.applyTopology(final)).toBe(true);
        await lateWrite;
        const owner = plan.targets.find((t) => keyRangeContains(parseKeyRange(t.name), hashVindex(lateId)))!;
        expect(await count(owner.database, "users")).toBeGreaterThan(0);
        const [found] = await admin.query<RowDataPacket[]>(`SELECT bio FROM \`${owner.database}\`.users WHERE id = ?`, [lateId]);
        expect(found).toEqual([{ bio: "late router" }]);
        const [inFence] = await admin.query<RowDataPacket[]>(`SELECT id FROM \`${fenceDatabase(plan.source.database)}\`.users WHERE id = ?`, [lateId]);
        expect(inFence).toEqual([]);
      } finally {
        await late.close();
      }

      // complete: the source's rows go, shard-config names the targets.
      const configFile = system.infra.shardConfigFile!;
      const completed = await runReshard({ plan, servers, kv, topologyKv, stopAfter: "complete", shardConfigFile: configFile });
      expect(completed.phase).toBe("complete");
      const [fence] = await admin.query<RowDataPacket[]>("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", [`${plan.source.database}_resharded`]);
      expect(fence).toEqual([]);
      expect(loadShardConfig(configFile).shards.map((s) => s.name)).toEqual(["-20", "20-40", "40-80", "80-c0", "c0-"]);
      expect(formatStatus(completed)).toMatch(/writes switched at .*held \d+ ms/);
    } finally {
      live.stop();
      for (const r of routers) await r.close();
    }
  });

  // After the split above (-40 is -20 and 20-40 now), -20 is split onto the other replica set.
  it("gives up a write switch past its hold budget (undone, nothing lost), switches within a larger one; keeps the targets' binlog, and abort refuses once it is purged", async () => {
    const topologyKv = await openTopologyKv(nc);
    const configFile = system.infra.shardConfigFile!;
    const config = loadShardConfig(configFile);
    const split = planReshard(config, "-20", ["-10", "10-20"], "rs1");
    const key = reshardKey(split.keyspace, split.source.database);
    const rs1 = system.infra.mysql.replicaSets.find((r) => r.name === "rs1")!;
    const { user, password } = system.infra.mysql.adminUser;
    const connect = (m: { host: string; port: number }): Promise<Connection> => createConnection({ host: m.host, port: m.port, user, password, supportBigNumbers: true, bigNumberStrings: true });
    const rs1Members = await Promise.all([rs1.primary, ...rs1.replicas].map(connect));
    const rs1Admin = rs1Members[0]!;
    const expiry = async (): Promise<number[]> => Promise.all(rs1Members.map(async (c) => Number((await c.query<RowDataPacket[]>("SELECT @@GLOBAL.binlog_expire_logs_seconds AS s"))[0][0]?.["s"])));
    const r = await createShardRouter({ ...topologyFromEnv(system.env, config), topologyKv, failoverWaitMs: 10_000 });
    const blocker = await connect(system.infra.mysql.replicaSets.find((x) => x.name === split.source.replicaSet)!.primary);
    let writing = true;
    const acked: string[] = [];
    const errors: unknown[] = [];
    let writer: Promise<void> = Promise.resolve();
    try {
      // Binlog expiry as a user's server might have it (a day: nothing of this cluster is that old).
      for (const c of rs1Members) await c.query("SET GLOBAL binlog_expire_logs_seconds = 86400");
      const inRange = (n: number, from: number): string[] => {
        const out: string[] = [];
        for (let id = from; out.length < n; id++) if (keyRangeContains(parseKeyRange("-20"), hashVindex(String(id)))) out.push(String(id));
        return out;
      };
      await eventually("the router has the -40 split", async () => r.shards().some((s) => s.name === "-20"));
      // A writer through the router all along: users of the moved range.
      const ids = inRange(3000, 600_000);
      writer = (async () => {
        for (const id of ids) {
          if (!writing) break;
          try {
            await r.primaryForUser(id).execute("INSERT INTO chirp.users (id, handle, email, password_hash, bio) VALUES (?, ?, ?, 'x', 'budget')", [id, `b${id}`, `b${id}@x.test`]);
            acked.push(id);
          } catch (err) {
            errors.push(err);
          }
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      })();
      await runReshard({ plan: split, servers, kv, batchRows: 500 });

      // A transaction left open on the source: the fence's RENAME waits for it, past the budget.
      await blocker.query("BEGIN");
      await blocker.query(`UPDATE \`${split.source.database}\`.users SET bio = 'open' WHERE id = ?`, [ids[0]!]);
      const gaveUp: HoldBudgetExceeded[] = [];
      const lines: string[] = [];
      await expect(
        runReshard({ plan: split, servers, kv, topologyKv, stopAfter: "switch-writes", holdMs: 500, holdAttempts: 2, switchGapMs: 0, onGiveUp: (e) => gaveUp.push(e), log: (l) => lines.push(l) }),
      ).rejects.toBeInstanceOf(ReshardSwitchError);
      await blocker.query("ROLLBACK");
      expect(gaveUp.map((e) => [e.limit, e.cost !== undefined])).toEqual([["hold budget", true], ["hold budget", true]]);
      expect(gaveUp.every((e) => e.step === "fence" || e.step === "pause following")).toBe(true);
      expect(lines.filter((l) => /^write switch attempt \d of 2 gave up/.test(l))).toHaveLength(2);
      // Undone: the state and the topology as before the hold, the source's tables back, writes still land there.
      expect((await loadState(kv, key))!.state.phase).toBe("reads-switched");
      const entry = (await readTopology(topologyKv, split.keyspace))!.topology.resharding?.find((e) => e.source === "-20");
      expect(entry).toMatchObject({ reads: "targets", writes: "source" });
      expect(await baseTables(admin, fenceDatabase(split.source.database))).toEqual([]);
      const afterGiveUp = acked.length;
      await eventually("writes go on after the give-up", async () => acked.length >= afterGiveUp + 20);
      expect(r.primaryForUser(acked[acked.length - 1]!).shard.database).toBe(split.source.database);
      expect(await expiry()).toEqual(rs1Members.map(() => 86400));

      // Again, with a budget this run cannot exhaust: it switches, and the targets' binlog is kept from here on.
      const done = await runReshard({ plan: split, servers, kv, topologyKv, stopAfter: "switch-writes", holdMs: 30_000 });
      expect(done.phase).toBe("writes-switched");
      expect(await expiry()).toEqual(rs1Members.map(() => 0));
      expect(done.binlogKept?.map((k) => k.expireLogsSeconds)).toEqual(rs1Members.map(() => 86400));
      await eventually("the router applied the write switch", async () => r.primaryForUser(ids[0]!).shard.database !== split.source.database);
      const switchedAt = acked.length;
      await eventually("writes land on the targets", async () => acked.length >= switchedAt + 20);
      writing = false;
      await writer;
      expect(errors).toEqual([]);
      // Every acknowledged write (before, during and after both switches) is on its target.
      const landed = new Set<string>();
      for (const t of split.targets) {
        const [rows] = await rs1Admin.query<RowDataPacket[]>(`SELECT id FROM \`${t.database}\`.users WHERE bio = 'budget'`);
        for (const row of rows) landed.add(String(row["id"]));
      }
      expect(acked.filter((id) => !landed.has(id))).toEqual([]);

      // What `chirp reshard status` reports: the binlog is there, no expiry left on.
      const inspect = (): ReturnType<typeof inspectBinlog> => inspectBinlog(done.reverse!.gtid, rs1.primary, [rs1.primary, ...rs1.replicas], system.infra.mysql.adminUser);
      const kept = await inspect();
      expect(kept.coverage?.ok).toBe(true);
      expect(formatBinlogReport(kept, 0).filter((l) => l.startsWith("WARNING"))).toEqual([]);

      // The targets' binlog since the write switch purged (as expiry or a hand PURGE would): abort refuses, nothing changes.
      const [[{ File: newest }]] = (await rs1Admin.query("FLUSH BINARY LOGS").then(() => rs1Admin.query("SHOW MASTER STATUS"))) as unknown as [[{ File: string }]];
      // A file is purged once replicas have read past it and the server's binlog checkpoint has moved on.
      await eventually("the binlog before the flush is purged", async () => {
        await rs1Admin.query("PURGE BINARY LOGS TO ?", [newest]);
        const [logs] = await rs1Admin.query<RowDataPacket[]>("SHOW BINARY LOGS");
        return String(logs[0]?.["Log_name"]) === newest;
      });
      const epoch = (await readTopology(topologyKv, split.keyspace))!.topology.epoch;
      await expect(abortReshard({ keyspace: split.keyspace, sourceDatabase: split.source.database, servers, kv, topologyKv, plan: split })).rejects.toBeInstanceOf(ReshardBinlogError);
      expect((await loadState(kv, key))!.state.phase).toBe("writes-switched");
      expect((await readTopology(topologyKv, split.keyspace))!.topology.epoch).toBe(epoch);
      expect((await baseTables(admin, fenceDatabase(split.source.database))).sort()).toEqual(Object.keys(done.copy).sort());
      for (const t of split.targets) expect(await baseTables(rs1Admin, fenceDatabase(t.database))).toEqual([]);
      const purged = await inspect();
      expect(purged.coverage?.ok).toBe(false);
      expect(purged.coverage?.missing.length).toBeGreaterThan(0);

      // complete keeps the split and puts binlog expiry back.
      await runReshard({ plan: split, servers, kv, topologyKv, stopAfter: "complete" });
      expect(await expiry()).toEqual(rs1Members.map(() => 86400));
    } finally {
      writing = false;
      await writer;
      await blocker.end();
      for (const c of rs1Members) await c.query("SET GLOBAL binlog_expire_logs_seconds = 0").catch(() => undefined);
      for (const c of rs1Members) await c.end();
      await r.close();
    }
  });
});
