// The reshard workflow's phase machine: created -> copying -> catching-up ->
// verified -> reads-switched -> writes-switched -> complete (decision 23). Each run loads the state from
// NATS KV and continues from its phase, so a killed run is resumed by running
// the command again.
import { hostname } from "node:os";
import type { KV } from "@nats-io/kv";
import type { Connection, RowDataPacket } from "mysql2/promise";
import { loadMigrations, migrateDatabase } from "../db/migrate.js";
import { withMysql } from "../db/mysql-client.js";
import type { MemberAddress, MysqlCredentials, ReplicaSetInfo } from "../shard/types.js";
import { catchUp, type CatchUpProgress } from "./catch-up.js";
import { copySnapshot, type CopyProgress } from "./copy.js";
import { ReshardPlanError, type ReshardPlan } from "./plan.js";
import { databaseExists, dropDatabase, openConnection, readTables, type TableShape } from "./sql.js";
import { createState, deleteState, loadState, reshardKey, type ReshardState, type StateHandle } from "./state.js";
import { verify } from "./verify.js";
import { dropFence, fenceDatabase, publishChange, ReshardSwitchError, switchReads, switchReadsBack, switchWrites, type WriteSwitchResult } from "./switch.js";
import { DEFAULT_HOLD_ATTEMPTS, DEFAULT_HOLD_MS, DEFAULT_MAX_LAG_MS, DEFAULT_SWITCH_GAP_MS, Follower, HoldBudgetExceeded } from "./hold.js";
import { switchWritesBack } from "./switch-back.js";
import { keepBinlog, restoreBinlogExpiry } from "./binlog.js";
import { withResharding } from "../shard/resharding.js";
import { rewriteSplitShards } from "../shard/shard-config.js";
import { readTopology } from "../shard/topology.js";

/** Where the servers are: each replica set's current primary, and the admin account. */
export interface ReshardServers {
  readonly replicaSets: readonly ReplicaSetInfo[];
  readonly adminUser: MysqlCredentials;
}

export interface ReshardRunOptions {
  readonly plan: ReshardPlan;
  readonly servers: ReshardServers;
  readonly kv: KV;
  /** The live topology bucket (chirp_topology): needed from the read switch on. */
  readonly topologyKv?: KV;
  /** The shard-config file `complete` rewrites (the source's entry replaced by the targets). */
  readonly shardConfigFile?: string;
  /** Longest wait of the write switch's fence for transactions in flight on the source (default 1000 ms). */
  readonly fenceWaitMs?: number;
  readonly onWriteSwitch?: (r: WriteSwitchResult) => void;
  /** The write switch's hold budget (WriteSwitchOptions.holdMs; default 800 ms). */
  readonly holdMs?: number;
  /** Write switch attempts in one run when the hold budget runs out (default 3). */
  readonly holdAttempts?: number;
  /** A write switch starts only once catch-up lag is at most this (default 200 ms)... */
  readonly maxLagMs?: number;
  /** ...waiting for it at most this long before the run stops (default 60 s). */
  readonly lagWaitMs?: number;
  /** The least time from the read switch to the first write switch attempt (default 2 s: DEFAULT_SWITCH_GAP_MS). */
  readonly switchGapMs?: number;
  /** Each attempt that gave up (undone, nothing lost). */
  readonly onGiveUp?: (e: HoldBudgetExceeded) => void;
  /** WriteSwitchOptions.heldCheck. */
  readonly heldCheck?: "counts" | "digests";
  /** Rows per copy batch (default 1000). */
  readonly batchRows?: number;
  /** Stop after this step (default: after verify). */
  readonly stopAfter?: ReshardStep;
  /** Re-check rounds in which a key must be found different before verify reports it (VerifyOptions.attempts, default 3). */
  readonly verifyAttempts?: number;
  /** Catch-up's backpressure bound (CatchUpOptions.maxQueuedEvents). */
  readonly maxQueuedEvents?: number;
  /**
   * After the last step, keep catching up (the targets stay current) until
   * `signal` fires; the run then returns normally with the position saved.
   */
  readonly follow?: boolean;
  readonly log?: (line: string) => void;
  readonly onCopy?: (p: CopyProgress) => void;
  readonly onCatchUp?: (p: CatchUpProgress) => void;
  /** Checked between batches; aborting it stops the run as a crash would (the state stays). */
  readonly signal?: AbortSignal;
}

/** The steps a run can stop after. */
export type ReshardStep = "create" | "copy" | "catch-up" | "verify" | "switch-reads" | "switch-writes" | "complete";

const SWITCHED: readonly string[] = ["reads-switched", "writes-switched", "complete"];

export function primaryOf(servers: ReshardServers, replicaSet: string): MemberAddress {
  const rs = servers.replicaSets.find((r) => r.name === replicaSet);
  if (rs === undefined) throw new ReshardPlanError(`no replica set ${replicaSet} among the servers`);
  return rs.primary;
}

export async function runReshard(opts: ReshardRunOptions): Promise<ReshardState> {
  const { plan, servers, kv } = opts;
  const log = opts.log ?? (() => {});
  const key = reshardKey(plan.keyspace, plan.source.database);
  const stopAfter = opts.stopAfter ?? "verify";
  const conns: Connection[] = [];
  const open = async (addr: MemberAddress): Promise<Connection> => {
    const c = await openConnection(addr, servers.adminUser);
    conns.push(c);
    return c;
  };
  try {
    const sourceAddr = primaryOf(servers, plan.source.replicaSet);
    const source = await open(sourceAddr);
    const tables = await checkSourceTables(plan, source);

    let handle = await loadState(kv, key);
    if (handle === undefined) {
      const now = new Date().toISOString();
      handle = await createState(kv, key, {
        version: 1,
        keyspace: plan.keyspace,
        source: plan.source,
        targets: plan.targets,
        phase: "created",
        createTime: now,
        updateTime: now,
        copy: {},
      });
      log(`reshard ${plan.source.name} -> ${plan.targets.map((t) => t.name).join(",")}: created (state in NATS KV ${key})`);
    } else {
      const same = handle.state.targets.length === plan.targets.length && handle.state.targets.every((t, i) => t.name === plan.targets[i]!.name && t.database === plan.targets[i]!.database && t.replicaSet === plan.targets[i]!.replicaSet);
      if (!same) {
        throw new ReshardPlanError(
          `a reshard of ${plan.source.name} into ${handle.state.targets.map((t) => `${t.name} (${t.database} on ${t.replicaSet})`).join(", ")} exists: run it with the same --to and --replica-set, or abort it first (chirp reshard abort --from ${plan.source.name})`,
        );
      }
      log(`reshard ${plan.source.name}: resuming at phase ${handle.state.phase}`);
    }
    handle.state.runner = `${hostname()}:${process.pid}`;
    await handle.save();
    const state = handle.state;

    if (state.phase === "created") {
      await createTargets(plan, servers);
      log(`target databases ${plan.targets.map((t) => t.database).join(", ")} on ${plan.targets[0]!.replicaSet}: schema applied`);
    }
    if (stopAfter === "create") return state;

    const targets = new Map<string, Connection>();
    for (const t of plan.targets) targets.set(t.name, await open(primaryOf(servers, t.replicaSet)));

    if (state.phase === "created" || state.phase === "copying") {
      await copySnapshot(plan, handle, {
        source: await open(sourceAddr),
        targets,
        tables: [...tables.values()],
        batchRows: opts.batchRows ?? 1000,
        ...(opts.onCopy === undefined ? {} : { onProgress: opts.onCopy }),
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      });
      log(`copy done: ${Object.values(state.copy).reduce((n, c) => n + c.rows, 0)} rows of ${tables.size} tables`);
    }
    if (stopAfter === "copy") return state;

    const catchUpOpts = {
      sourceAddress: sourceAddr,
      admin: servers.adminUser,
      source,
      targets,
      tables,
      ...(opts.maxQueuedEvents === undefined ? {} : { maxQueuedEvents: opts.maxQueuedEvents }),
      ...(opts.onCatchUp === undefined ? {} : { onProgress: opts.onCatchUp }),
      ...(opts.signal === undefined ? {} : { signal: opts.signal }),
    };
    const follow = async (current: ReshardState): Promise<ReshardState> => {
      if (opts.follow !== true) return current;
      log("following the source's binlog until interrupted...");
      try {
        await catchUp(plan, handle, { ...catchUpOpts, until: "never" });
      } catch (err) {
        if (opts.signal?.aborted !== true) throw err;
      }
      log(`stopped following at ${current.catchUp?.gtid ?? "?"}`);
      return current;
    };
    if (SWITCHED.includes(state.phase)) await recoverWriteSwitch(plan, handle, source, opts.topologyKv, log);
    if (!SWITCHED.includes(state.phase)) {
      const caught = await catchUp(plan, handle, { ...catchUpOpts, until: "current" });
      log(`caught up to ${caught.gtid} (${caught.transactions} binlog transactions, ${caught.rowsApplied} rows applied in this run)`);
      if (stopAfter === "catch-up") return await follow(state);

      if (state.phase === "verified") {
        // Verified by an earlier run (--stop-after verify): catch-up has kept the targets current since,
        // and the write switch checks again while writes are held. Verifying again would only cost time.
        log(`verified earlier (at ${state.verify?.position ?? "?"}, ${state.verify?.time ?? "?"}): not verified again`);
        if (stopAfter === "verify") return await follow(state);
      } else {
        const result = await verify(plan, handle, {
          snapshot: await open(sourceAddr),
          catchUp: catchUpOpts,
          ...(opts.verifyAttempts === undefined ? {} : { attempts: opts.verifyAttempts }),
        });
        const converged = result.tables.reduce((n, t) => n + (t.keysConverged ?? 0), 0);
        log(
          result.ok
            ? `verified: ${result.tables.length} table/target pairs match${converged > 0 ? ` (${converged} keys ahead at the verify position converged in ${result.attempts - 1} re-check rounds)` : ""}`
            : `verify FAILED: ${result.tables
                .filter((t) => !t.match)
                .map((t) => `${t.table}@${t.target}${t.keysDiffering ? ` (keys ${t.keysDiffering.join("; ")})` : ""}`)
                .join(", ")} differ from the source`,
        );
        if (stopAfter === "verify" || !result.ok) {
          await follow(state);
          return state;
        }
      }
    }

    if (state.phase === "verified" || state.phase === "reads-switched") {
      const topologyKv = opts.topologyKv;
      if (topologyKv === undefined) throw new ReshardPlanError("switching reads and writes needs the live topology (topologyKv)");
      // From the read switch on the ring names the targets, but reads and writes stay on the source's
      // database until the write switch (lib/shard/resharding.ts): catch-up keeps the targets current
      // for the write switch's drain, and nothing reads them if this command dies.
      let follower = new Follower(plan, handle, catchUpOpts);
      try {
        if (state.phase === "verified") {
          await grantLikeSource(plan, servers, source);
          const published = await switchReads(plan, handle, topologyKv);
          log(`reads switched to ${plan.targets.map((t) => t.name).join(", ")} (topology epoch ${published.epoch}): routers name the targets, reads and writes stay on ${plan.source.name}'s database until the write switch`);
        }
        if (stopAfter === "switch-reads") {
          log("following the source's binlog (keeping the targets current for the write switch) until interrupted...");
          const err = await follower.ended;
          if (err !== undefined) throw err;
          return state;
        }
        const holdMs = opts.holdMs ?? DEFAULT_HOLD_MS;
        const maxLagMs = opts.maxLagMs ?? DEFAULT_MAX_LAG_MS;
        const attempts = Math.max(1, opts.holdAttempts ?? DEFAULT_HOLD_ATTEMPTS);
        // Names resolved before the read switch must be out of use before writes switch (hold.ts).
        const sinceReads = Date.now() - Date.parse(state.readSwitch?.time ?? "");
        const gap = opts.switchGapMs ?? DEFAULT_SWITCH_GAP_MS;
        if (Number.isFinite(sinceReads) && sinceReads < gap) {
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(resolve, gap - sinceReads);
            opts.signal?.addEventListener("abort", () => (clearTimeout(timer), reject(opts.signal!.reason)), { once: true });
          });
        }
        for (let attempt = 1; ; attempt++) {
          // The hold starts only once catch-up is close behind the source, so its drain is short.
          const lag = await follower.waitForLag(source, maxLagMs, opts.lagWaitMs ?? 60_000);
          log(`catch-up lag ${lag.toFixed(0)} ms (at most ${maxLagMs}): switching writes${attempts > 1 ? ` (attempt ${attempt} of ${attempts})` : ""}, hold budget ${holdMs} ms`);
          const current = follower;
          try {
            const switched = await switchWrites(plan, handle, {
              kv: topologyKv,
              source,
              catchUp: catchUpOpts,
              following: current,
              holdMs,
              ...(opts.fenceWaitMs === undefined ? {} : { fenceWaitMs: opts.fenceWaitMs }),
              ...(opts.heldCheck === undefined ? {} : { heldCheck: opts.heldCheck }),
              log,
            });
            opts.onWriteSwitch?.(switched);
            // Abort replays the targets' binlog from here on: expiry must not remove it meanwhile (binlog.ts).
            const rs = servers.replicaSets.find((r) => r.name === plan.targets[0]!.replicaSet);
            if (rs !== undefined) {
              const kept = await keepBinlog([rs.primary, ...rs.replicas], servers.adminUser, log);
              if (kept.length > 0) {
                state.binlogKept = [...(state.binlogKept ?? []), ...kept];
                await handle.save();
              }
            }
            break;
          } catch (err) {
            if (!(err instanceof HoldBudgetExceeded)) throw err;
            opts.onGiveUp?.(err);
            const why = `write switch attempt ${attempt} of ${attempts} gave up at ${err.step} after ${Math.round(err.elapsedMs)} ms (${err.limit} ${err.budgetMs} ms); undone${err.cost === undefined ? "" : ` (writes held ${Math.round(err.cost.heldMs)} ms in all)`}: writes back on ${plan.source.name}, nothing lost, phase reads-switched`;
            if (attempt >= attempts) {
              log(why);
              throw new ReshardSwitchError(
                `the write switch gave up ${attempts} time(s) (last at ${err.step}): writes stay on ${plan.source.name}, nothing lost; run the same command again when writes are lighter, or allow more with --hold-ms or --fence-wait (issue 23 bounds the hold at 1 s end to end)`,
                { cause: err },
              );
            }
            log(`${why}; trying again once catch-up lag is under ${maxLagMs} ms`);
            // The follower stopped inside the hold (or is stopping): a new one goes on from its saved position.
            await current.stop().catch(() => undefined);
            follower = new Follower(plan, handle, catchUpOpts);
          }
        }
      } finally {
        // Its failure, if it failed, has already surfaced through waitForLag or stopFollowing.
        await follower.stop().catch(() => undefined);
      }
    }
    if (stopAfter !== "complete") return state;

    if (state.phase === "writes-switched") {
      await dropFence(plan, source);
      if (opts.shardConfigFile !== undefined) {
        rewriteSplitShards(opts.shardConfigFile, plan.source.name, plan.targets);
        log(`${opts.shardConfigFile}: ${plan.source.name} replaced by ${plan.targets.map((t) => t.name).join(", ")}`);
      }
      state.phase = "complete";
      state.completeTime = new Date().toISOString();
      await handle.save();
      if (state.binlogKept !== undefined && state.binlogKept.length > 0) {
        await restoreBinlogExpiry(state.binlogKept, servers.adminUser, log);
        delete state.binlogKept;
        await handle.save();
      }
      log(`complete: ${fenceDatabase(plan.source.database)} (the source's rows of the range) dropped`);
    }
    return state;
  } finally {
    for (const c of conns.reverse()) await c.end().catch(() => c.destroy());
  }
}

/**
 * The source database's base tables, each checked: known to the VSchema
 * (sharded, with a primary key) or a reference table. Anything else stops the
 * workflow before it makes anything, as Vitess's Reshard refuses it.
 */
async function checkSourceTables(plan: ReshardPlan, source: Connection): Promise<Map<string, TableShape>> {
  const all = await readTables(source, plan.source.database);
  if (all.size === 0) throw new ReshardPlanError(`source database ${plan.source.database} has no tables (or does not exist)`);
  const problems: string[] = [];
  const sharded = new Map<string, TableShape>();
  for (const [name, shape] of [...all].sort(([a], [b]) => a.localeCompare(b))) {
    if (plan.referenceTables.has(name)) continue;
    if (!plan.tables.has(name)) problems.push(`table ${name} is not in the VSchema`);
    else if (shape.primaryKey.length === 0) problems.push(`table ${name} has no primary key`);
    else sharded.set(name, shape);
  }
  if (problems.length > 0) throw new ReshardPlanError(`cannot reshard ${plan.source.database}: ${problems.join("; ")}`);
  return sharded;
}

/** Target databases with the schema of lib/db/migrations, on each target's replica set primary. */
async function createTargets(plan: ReshardPlan, servers: ReshardServers): Promise<void> {
  const migrations = await loadMigrations();
  for (const t of plan.targets) {
    await withMysql(primaryOf(servers, t.replicaSet), servers.adminUser, (c) => migrateDatabase(c, t.database, migrations), { multipleStatements: true });
  }
}

/**
 * The accounts that may use the source database (the application's) get the
 * same database privileges on the targets, on every member of the targets'
 * replica set. Grants are per member and not binlogged (devcluster/mariadb.ts
 * gives them the same way), so each member is told directly. Idempotent.
 */
async function grantLikeSource(plan: ReshardPlan, servers: ReshardServers, source: Connection): Promise<void> {
  const [rows] = await source.query<RowDataPacket[]>(
    "SELECT GRANTEE AS g, GROUP_CONCAT(PRIVILEGE_TYPE) AS p FROM information_schema.SCHEMA_PRIVILEGES WHERE TABLE_SCHEMA = ? GROUP BY GRANTEE",
    [plan.source.database],
  );
  if (rows.length === 0) return;
  for (const rsName of new Set(plan.targets.map((t) => t.replicaSet))) {
    const rs = servers.replicaSets.find((r) => r.name === rsName);
    if (rs === undefined) throw new ReshardPlanError(`no replica set ${rsName} among the servers`);
    for (const member of [rs.primary, ...rs.replicas]) {
      await withMysql(member, servers.adminUser, async (c) => {
        await c.query("SET SESSION sql_log_bin = 0");
        for (const t of plan.targets.filter((x) => x.replicaSet === rsName)) {
          // GRANTEE comes quoted from the server ('user'@'host'); privileges are keywords.
          for (const r of rows) await c.query(`GRANT ${String(r["p"])} ON \`${t.database}\`.* TO ${String(r["g"])}`);
        }
      });
    }
  }
}

/**
 * A run killed inside the write switch leaves the topology holding writes (or
 * reading from the targets with writes on the source) and maybe the source's
 * tables fenced. If the last document already serves the targets, the switch
 * happened; otherwise the fence is undone and writes go back to the source.
 */
async function recoverWriteSwitch(plan: ReshardPlan, handle: StateHandle, source: Connection, topologyKv: KV | undefined, log: (line: string) => void): Promise<void> {
  const state = handle.state;
  if (state.phase !== "reads-switched" || topologyKv === undefined) return;
  const live = await readTopology(topologyKv, plan.keyspace);
  if (live === undefined) return;
  const t = live.topology;
  if (!t.shards.some((s) => s.name === plan.source.name) && plan.targets.every((p) => t.shards.some((s) => s.name === p.name && s.serving !== false))) {
    state.phase = "writes-switched";
    await handle.save();
    log("the write switch had been published before the last run stopped: writes-switched");
    return;
  }
  const fence = fenceDatabase(plan.source.database);
  const [rows] = await source.query<RowDataPacket[]>("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?", [fence]);
  if (rows.length > 0) {
    await source.query("SET SESSION sql_log_bin = 0");
    for (const r of rows) await source.query(`DROP VIEW IF EXISTS \`${plan.source.database}\`.\`${String(r["t"])}\``);
    await source.query("SET SESSION sql_log_bin = 1");
    await source.query(`RENAME TABLE ${rows.map((r) => `\`${fence}\`.\`${String(r["t"])}\` TO \`${plan.source.database}\`.\`${String(r["t"])}\``).join(", ")}`);
    log(`an interrupted write switch had fenced ${rows.length} tables: renamed back into ${plan.source.database}`);
  }
  const e = t.resharding?.find((x) => x.source === plan.source.name);
  if (e !== undefined && e.writes !== "source") {
    await publishChange(topologyKv, plan.keyspace, (cur) => ({ shards: [...cur.shards], resharding: withResharding(cur, plan.source.name, { writes: "source" }) }));
    log("writes back on the source after an interrupted write switch");
  }
}

/**
 * Drops the target databases and deletes the state. Before the write switch the
 * source never stopped taking writes: reads go back to it first (when they had
 * switched), then the targets go; nothing is lost. After the write switch it
 * refuses: switching writes back needs reverse replication, not built.
 */
export async function abortReshard(opts: {
  readonly keyspace: string;
  readonly sourceDatabase: string;
  readonly servers: ReshardServers;
  readonly kv: KV;
  readonly topologyKv?: KV;
  /** The plan, needed after the write switch (the tables' shapes and routing); rebuilt from the state's shards when absent. */
  readonly plan?: ReshardPlan;
  readonly log?: (line: string) => void;
  /** Stops a switch-back where it stands once the targets are fenced, as a kill would (a rerun finishes it). */
  readonly signal?: AbortSignal;
  /** The switch-back's hold budget and attempts (as the write switch's, ReshardRunOptions). */
  readonly holdMs?: number;
  readonly holdAttempts?: number;
  readonly onGiveUp?: (e: HoldBudgetExceeded) => void;
}): Promise<ReshardState | undefined> {
  const key = reshardKey(opts.keyspace, opts.sourceDatabase);
  const handle: StateHandle | undefined = await loadState(opts.kv, key);
  if (handle === undefined) return undefined;
  if (handle.state.phase === "complete") {
    throw new ReshardPlanError(`the reshard of ${handle.state.source.name} is complete: the source's rows are gone, nothing to switch back to`);
  }
  if (handle.state.phase === "writes-switched") {
    if (opts.topologyKv === undefined) throw new ReshardPlanError("writes were switched: switching them back needs the live topology");
    if (opts.plan === undefined) throw new ReshardPlanError("writes were switched: switching them back needs the reshard's plan");
    const plan = opts.plan;
    const source = await openConnection(primaryOf(opts.servers, plan.source.replicaSet), opts.servers.adminUser);
    const targetsAddress = primaryOf(opts.servers, plan.targets[0]!.replicaSet);
    const targets = await openConnection(targetsAddress, opts.servers.adminUser);
    try {
      // The source's sharded tables: in its fence, or back in its database if an interrupted switch-back renamed them.
      let tables = await readTables(source, fenceDatabase(plan.source.database));
      if (tables.size === 0) tables = new Map([...(await readTables(source, plan.source.database))].filter(([name]) => plan.tables.has(name)));
      const attempts = Math.max(1, opts.holdAttempts ?? DEFAULT_HOLD_ATTEMPTS);
      for (let attempt = 1; ; attempt++) {
        try {
          await switchWritesBack(plan, handle, {
            kv: opts.topologyKv,
            source,
            targets,
            targetsAddress,
            admin: opts.servers.adminUser,
            tables,
            ...(opts.holdMs === undefined ? {} : { holdMs: opts.holdMs }),
            ...(opts.log === undefined ? {} : { log: opts.log }),
            ...(opts.signal === undefined ? {} : { signal: opts.signal }),
          });
          break;
        } catch (err) {
          if (!(err instanceof HoldBudgetExceeded)) throw err;
          opts.onGiveUp?.(err);
          const why = `switch-back attempt ${attempt} of ${attempts} gave up at ${err.step} after ${Math.round(err.elapsedMs)} ms (${err.limit} ${err.budgetMs} ms); undone: the targets serve, nothing lost`;
          opts.log?.(attempt < attempts ? `${why}; trying again after another reverse catch-up` : why);
          if (attempt >= attempts) {
            throw new ReshardSwitchError(`switching writes back gave up ${attempts} time(s) (last at ${err.step}): the targets still serve, nothing lost; run abort again when writes are lighter, or allow more with --hold-ms`, { cause: err });
          }
        }
      }
    } finally {
      await source.end();
      await targets.end();
    }
  }
  if (handle.state.phase === "reads-switched") {
    if (opts.topologyKv === undefined) throw new ReshardPlanError("reads were switched: aborting needs the live topology to switch them back");
    await switchReadsBack(handle.state, opts.topologyKv);
  }
  for (const t of handle.state.targets) {
    await withMysql(primaryOf(opts.servers, t.replicaSet), opts.servers.adminUser, async (c) => {
      await dropDatabase(c, t.database);
      await dropDatabase(c, fenceDatabase(t.database));
      if (await databaseExists(c, t.database)) throw new Error(`${t.database} is still there after DROP DATABASE`);
    });
  }
  if (handle.state.binlogKept !== undefined && handle.state.binlogKept.length > 0) await restoreBinlogExpiry(handle.state.binlogKept, opts.servers.adminUser, opts.log ?? (() => {}));
  await deleteState(opts.kv, key);
  return handle.state;
}
