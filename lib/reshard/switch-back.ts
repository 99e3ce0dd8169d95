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
// A failure in 3-5, or running out of the hold budget (`holdMs`, hold.ts:
// the fence's wait, the drain and the check bounded by what is left), undoes
// the targets' fence and publishes the targets serving again: held writes
// land on the targets as if nothing happened; abort may try again.
// A run that stopped in the middle (killed, or `signal`) leaves the range
// held; the next run sees what is done (the targets' fence holds tables, the
// source's fence is empty) and finishes from there.
import type { KV } from "@nats-io/kv";
import type { Connection } from "mysql2/promise";
import { withResharding } from "../shard/resharding.js";
import type { HostPort, MysqlCredentials } from "../shard/types.js";
import { binlogCoverage, describeGap, ReshardBinlogError } from "./binlog.js";
import { catchUp, type CatchUpOptions } from "./catch-up.js";
import type { ReshardPlan } from "./plan.js";
import { DEFAULT_HOLD_MS, HoldBudget, HoldBudgetExceeded, isStatementTimeout } from "./hold.js";
import { baseTables, binlogGtidPos, deleteByKeys, dropDatabase, dropViews, readTables, replaceRows, type TableShape } from "./sql.js";
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
  /** The hold budget, as the write switch's (hold.ts): past it, the targets are unfenced and keep serving (HoldBudgetExceeded). */
  readonly holdMs?: number;
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
    for (const t of plan.targets) await dropViews(opts.targets, t.database, tables);
  };

  // Before anything changes: the binlog the replay starts from must still be on the targets' primary.
  const from = handle.state.reverse?.gtid;
  if (from === undefined) throw new ReshardSwitchError("no reverse replication position in the state: writes have not switched");
  const coverage = await binlogCoverage(opts.targets, from);
  if (!coverage.ok) {
    const at = `${opts.targetsAddress.host}:${opts.targetsAddress.port}`;
    throw new ReshardBinlogError(
      `abort cannot switch writes back to ${plan.source.name}: it replays the targets' binlog from ${from} into the source, and the targets' primary ${describeGap(coverage, at)}. ` +
        `Nothing was changed: ${plan.targets.map((t) => t.name).join(", ")} still serve the range. Either keep the split (chirp reshard complete --from ${plan.source.name}), ` +
        `or make a member that still has that binlog the primary of ${plan.targets[0]!.replicaSet} (or restore the purged files) and run abort again.`,
    );
  }
  // What an earlier run that stopped in the middle already did.
  const targetsFenced = (await readTables(opts.targets, fenceDatabase(plan.targets[0]!.database))).size > 0;
  const sourceBack = (await readTables(opts.source, srcFence)).size === 0;
  if (targetsFenced) log(`an interrupted switch-back had fenced the targets${sourceBack ? " and renamed the source's tables back" : ""}: finishing it`);
  const before = targetsFenced ? { rowsApplied: 0 } : await catchUp(plan, handle, { ...reverse(false), until: "current" });
  if (!targetsFenced) log(`reverse replication current: ${before.rowsApplied} rows replayed from the targets into ${srcFence}`);
  for (const t of plan.targets) await opts.targets.query(`CREATE DATABASE IF NOT EXISTS \`${fenceDatabase(t.database)}\``);
  const fenceWaitMs = opts.fenceWaitMs ?? 1000;
  await opts.targets.query("SET SESSION lock_wait_timeout = ?", [Math.max(1, Math.ceil(fenceWaitMs / 1000))]);

  const budget = new HoldBudget(opts.holdMs ?? DEFAULT_HOLD_MS);
  const started = performance.now();
  await publishChange(opts.kv, plan.keyspace, (t) => {
    const others = (t.resharding ?? []).filter((e) => e.source !== plan.source.name);
    return {
      shards: [...t.shards.filter((s) => s.name !== plan.source.name).map((s) => (names.has(s.name) ? { ...s, serving: false } : s)), { name: plan.source.name, replicaSet: plan.source.replicaSet, database: src }],
      resharding: [...others, { source: plan.source.name, targets: [...names], reads: "targets", writes: "held" }],
    };
  });
  budget.reserve(performance.now() - started);
  let fenced = targetsFenced;
  let renamedBack = sourceBack;
  let drained = { rowsApplied: 0 };
  try {
    if (!targetsFenced) {
      budget.check("fence");
      const fenceStart = performance.now();
      // Waits for transactions in flight on the targets, at most fenceWaitMs and never past the budget.
      const byBudget = budget.left() < fenceWaitMs;
      const waitSeconds = (Math.max(1, Math.floor(Math.min(budget.left(), fenceWaitMs))) / 1000).toFixed(3);
      try {
        await opts.targets.query(`SET STATEMENT max_statement_time = ${waitSeconds} FOR ${renameTargets(true)}`);
      } catch (err) {
        fenced = true; // not known: the undo looks at where the tables are
        if (!isStatementTimeout(err)) throw err;
        if (byBudget) throw budget.exceeded("fence", err);
        throw new HoldBudgetExceeded("fence", fenceWaitMs, budget.elapsed(), { cause: err, limit: "fence wait" });
      }
      fenced = true;
      await opts.targets.query("SET SESSION sql_log_bin = 0");
      for (const t of plan.targets)
        for (const n of tables) {
          budget.check("fence");
          await opts.targets.query(`CREATE ALGORITHM=TEMPTABLE SQL SECURITY DEFINER VIEW \`${t.database}\`.\`${n}\` AS SELECT * FROM \`${fenceDatabase(t.database)}\`.\`${n}\``);
        }
      await opts.targets.query("SET SESSION sql_log_bin = 1");
      budget.reserve(performance.now() - fenceStart);
    }
    opts.signal?.throwIfAborted();
    if (!sourceBack) {
      const position = await binlogGtidPos(opts.targets);
      budget.check("drain");
      drained = await budget.within("drain", (late) => catchUp(plan, handle, { ...reverse(true), until: position, signal: late }));
      budget.check("check");
      const fencedPlan: ReshardPlan = { ...plan, targets: plan.targets.map((t) => ({ ...t, database: fenceDatabase(t.database) })) };
      let checked: Awaited<ReturnType<typeof verifyTotals>>;
      try {
        checked = await verifyTotals(fencedPlan, opts.source, srcFence, new Map(plan.targets.map((t) => [t.name, opts.targets])), opts.tables.values(), false, () => budget.statementSeconds());
      } catch (err) {
        if (isStatementTimeout(err)) throw budget.exceeded("check", err);
        throw err;
      }
      if (!checked.ok) throw new ReshardSwitchError(`the check while writes were held found ${checked.tables.filter((c) => !c.match).map((c) => `${c.table}@${c.target}`).join(", ")} different`);
      // The point of no return: once the source's tables are back they are the current copy.
      budget.check("publish");
      await dropViews(opts.source, src, tables);
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
    const undoStart = performance.now();
    if (fenced && (await baseTables(opts.targets, fenceDatabase(plan.targets[0]!.database))).length > 0) {
      await dropTargetViews();
      await opts.targets.query(renameTargets(false));
    }
    await publishChange(opts.kv, plan.keyspace, (t) => ({
      shards: t.shards.filter((s) => s.name !== plan.source.name).map((s) => (names.has(s.name) ? { name: s.name, replicaSet: s.replicaSet, database: s.database } : s)),
      resharding: withResharding(t, plan.source.name, undefined),
    }));
    if (err instanceof HoldBudgetExceeded) throw err.undone({ heldMs: performance.now() - started, undoMs: performance.now() - undoStart });
    throw err;
  }
}
