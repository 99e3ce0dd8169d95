// Switching writes back (abort after the write switch, decision 23): the write
// switch in reverse. The write switch saved the targets' GTID position when
// they began to serve (state.reverse); from it, reverse replication replays
// the targets' binlog into the source's fenced tables (catch-up.ts with
// `reverse`: each changed key re-read from its target, REPLACEd into the fence
// or DELETEd there). Then:
//   1. reverse catch-up until current, writes still on the targets;
//   2. publish the source back in `shards` with `writes: "held"` (the ring
//      keeps the targets' names, so held writes and reads resolve again);
//   3. fence the targets: one RENAME TABLE of every target's tables into
//      `<target>_resharded`, read-only views in their place (as switch.ts);
//   4. drain reverse replication to the targets' position after the fence;
//   5. check row counts, fenced targets together against the source's fence;
//   6. rename the source's tables back from its fence (views dropped);
//   7. publish `writes: "source"`: held writes resolve to the source's
//      database; then reads back on the source (switchReadsBack).
// A failure in 3-5 undoes the targets' fence and publishes the targets
// serving again: held writes land on the targets as if nothing happened.
// A run that stopped in the middle (killed, or `signal`) leaves the range
// held; the next run sees what is done (the targets' fence holds tables, the
// source's fence is empty) and finishes from there.
import type { KV } from "@nats-io/kv";
import type { Connection } from "mysql2/promise";
import { withResharding } from "../shard/resharding.js";
import type { HostPort, MysqlCredentials } from "../shard/types.js";
import { catchUp, type CatchUpOptions } from "./catch-up.js";
import type { ReshardPlan } from "./plan.js";
import { binlogGtidPos, deleteByKeys, dropDatabase, readTables, replaceRows, type TableShape } from "./sql.js";
import type { StateHandle } from "./state.js";
import { fenceDatabase, publishChange, ReshardSwitchError, switchReadsBack } from "./switch.js";
import { verifyTotals } from "./verify.js";

export interface SwitchBackOptions {
  readonly kv: KV;
  /** Admin connection to the source primary (its fence receives the targets' changes). */
  readonly source: Connection;
  /** The targets' primary (one replica set): its binlog and an admin connection to it. */
  readonly targetsAddress: HostPort;
  readonly targets: Connection;
  readonly admin: MysqlCredentials;
  readonly tables: ReadonlyMap<string, TableShape>;
  readonly fenceWaitMs?: number;
  readonly maxQueuedEvents?: number;
  readonly log?: (line: string) => void;
  /** Stops the run where it stands once the targets are fenced, as a kill would (for tests of the resume). */
  readonly signal?: AbortSignal;
}

export interface SwitchBackResult {
  /** Rows replayed from the targets into the source (reverse replication, both runs). */
  readonly rowsApplied: number;
  /** From publishing `writes: "held"` to publishing `writes: "source"`. */
  readonly heldMs: number;
}

export async function switchWritesBack(plan: ReshardPlan, handle: StateHandle, opts: SwitchBackOptions): Promise<SwitchBackResult> {
  const log = opts.log ?? (() => {});
  const src = plan.source.database;
  const srcFence = fenceDatabase(src);
  const tables = [...opts.tables.keys()];
  const names = new Set(plan.targets.map((t) => t.name));
  const reverse = (fenced: boolean): Omit<CatchUpOptions, "until"> => ({
    sourceAddress: opts.targetsAddress,
    admin: opts.admin,
    source: opts.targets,
    targets: new Map(),
    tables: opts.tables,
    ...(opts.maxQueuedEvents === undefined ? {} : { maxQueuedEvents: opts.maxQueuedEvents }),
    reverse: {
      databases: new Map(plan.targets.map((t) => [t.database, fenced ? fenceDatabase(t.database) : t.database])),
      apply: async (table, keys, rows) => {
        await deleteByKeys(opts.source, srcFence, table, keys);
        await replaceRows(opts.source, srcFence, table, rows);
      },
    },
  });
  const renameTargets = (into: boolean): string =>
    `RENAME TABLE ${plan.targets
      .flatMap((t) => tables.map((n) => (into ? `\`${t.database}\`.\`${n}\` TO \`${fenceDatabase(t.database)}\`.\`${n}\`` : `\`${fenceDatabase(t.database)}\`.\`${n}\` TO \`${t.database}\`.\`${n}\``)))
      .join(", ")}`;
  const dropTargetViews = async (): Promise<void> => {
    await opts.targets.query("SET SESSION sql_log_bin = 0");
    for (const t of plan.targets) for (const n of tables) await opts.targets.query(`DROP VIEW IF EXISTS \`${t.database}\`.\`${n}\``);
    await opts.targets.query("SET SESSION sql_log_bin = 1");
  };

  // What an earlier run that stopped in the middle already did.
  const targetsFenced = (await readTables(opts.targets, fenceDatabase(plan.targets[0]!.database))).size > 0;
  const sourceBack = (await readTables(opts.source, srcFence)).size === 0;
  if (targetsFenced) log(`an interrupted switch-back had fenced the targets${sourceBack ? " and renamed the source's tables back" : ""}: finishing it`);
  const before = targetsFenced ? { rowsApplied: 0 } : await catchUp(plan, handle, { ...reverse(false), until: "current" });
  if (!targetsFenced) log(`reverse replication current: ${before.rowsApplied} rows replayed from the targets into ${srcFence}`);
  for (const t of plan.targets) await opts.targets.query(`CREATE DATABASE IF NOT EXISTS \`${fenceDatabase(t.database)}\``);
  await opts.targets.query("SET SESSION lock_wait_timeout = ?", [Math.max(1, Math.ceil((opts.fenceWaitMs ?? 1000) / 1000))]);

  const started = performance.now();
  await publishChange(opts.kv, plan.keyspace, (t) => {
    const others = (t.resharding ?? []).filter((e) => e.source !== plan.source.name);
    return {
      shards: [...t.shards.filter((s) => s.name !== plan.source.name).map((s) => (names.has(s.name) ? { ...s, serving: false } : s)), { name: plan.source.name, replicaSet: plan.source.replicaSet, database: src }],
      resharding: [...others, { source: plan.source.name, targets: [...names], reads: "targets", writes: "held" }],
    };
  });
  let fenced = targetsFenced;
  let renamedBack = sourceBack;
  let drained = { rowsApplied: 0 };
  try {
    if (!targetsFenced) {
      await opts.targets.query(renameTargets(true));
      fenced = true;
      await opts.targets.query("SET SESSION sql_log_bin = 0");
      for (const t of plan.targets)
        for (const n of tables) await opts.targets.query(`CREATE ALGORITHM=TEMPTABLE SQL SECURITY DEFINER VIEW \`${t.database}\`.\`${n}\` AS SELECT * FROM \`${fenceDatabase(t.database)}\`.\`${n}\``);
      await opts.targets.query("SET SESSION sql_log_bin = 1");
    }
    opts.signal?.throwIfAborted();
    if (!sourceBack) {
      const position = await binlogGtidPos(opts.targets);
      drained = await catchUp(plan, handle, { ...reverse(true), until: position });
      const fencedPlan: ReshardPlan = { ...plan, targets: plan.targets.map((t) => ({ ...t, database: fenceDatabase(t.database) })) };
      const checked = await verifyTotals(fencedPlan, opts.source, srcFence, new Map(plan.targets.map((t) => [t.name, opts.targets])), opts.tables.values());
      if (!checked.ok) throw new ReshardSwitchError(`the check while writes were held found ${checked.tables.filter((c) => !c.match).map((c) => `${c.table}@${c.target}`).join(", ")} different`);
      await opts.source.query("SET SESSION sql_log_bin = 0");
      for (const n of tables) await opts.source.query(`DROP VIEW IF EXISTS \`${src}\`.\`${n}\``);
      await opts.source.query("SET SESSION sql_log_bin = 1");
      await opts.source.query(`RENAME TABLE ${tables.map((n) => `\`${srcFence}\`.\`${n}\` TO \`${src}\`.\`${n}\``).join(", ")}`);
      renamedBack = true;
      await dropDatabase(opts.source, srcFence);
    }
    await publishChange(opts.kv, plan.keyspace, (t) => ({ shards: [...t.shards], resharding: withResharding(t, plan.source.name, { writes: "source" }) }));
    const heldMs = performance.now() - started;
    handle.state.phase = "reads-switched";
    delete handle.state.writeSwitch;
    await handle.save();
    await switchReadsBack(plan, opts.kv);
    log(`writes switched back to ${plan.source.name}: held ${heldMs.toFixed(0)} ms, ${before.rowsApplied + drained.rowsApplied} rows replayed from the targets`);
    return { rowsApplied: before.rowsApplied + drained.rowsApplied, heldMs };
  } catch (err) {
    // Stopped as a kill would stop it, or past the point of no return (the source's tables are
    // back and current): the range stays held, and the next run finishes the switch-back.
    if (opts.signal?.aborted === true || renamedBack) throw err;
    // The targets keep serving, nothing lost: the held writes run there once this is published.
    if (fenced) {
      await dropTargetViews();
      await opts.targets.query(renameTargets(false));
    }
    await publishChange(opts.kv, plan.keyspace, (t) => ({
      shards: t.shards.filter((s) => s.name !== plan.source.name).map((s) => (names.has(s.name) ? { name: s.name, replicaSet: s.replicaSet, database: s.database } : s)),
      resharding: withResharding(t, plan.source.name, undefined),
    }));
    throw err;
  }
}
