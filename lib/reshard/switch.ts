// The read switch, the write switch and cleanup of a split (decision 23): each
// publishes a new live topology document (publishTopology: epoch bump,
// compare-and-set) that every router follows.
//
// The write switch:
//   1. publish `writes: "held"`: routers hold new writes of the range;
//   2. fence the source: RENAME TABLE moves every sharded table of the source
//      database into `<source>_resharded` in one statement. It waits for the
//      transactions that use them to finish, and afterwards a write from a
//      router that has not seen step 1 yet fails (1146, then 1471/1288 once
//      the views below exist) before doing anything, which the router answers
//      by waiting for the next document and resolving again (execution.ts): no
//      router acknowledgements are needed for exactness. In the source
//      database, a read-only view (ALGORITHM=TEMPTABLE is never updatable; SQL
//      SECURITY DEFINER, so the application account, which has no grant on the
//      fence, can read through it) of each fenced table takes its name: the binlog reader looks tables up by
//      their logged name, and a late read-your-writes read still finds the rows;
//   3. drain catch-up to the source's GTID position after the fence, rows read
//      from the fence (the follower, paused during 2, on its open stream);
//   4. check, exact (nothing can write the fenced tables): each table's row
//      count, source against targets, and with `heldCheck: "digests"` its sum
//      of row digests too (verifyTotals). Contents and placement were verified
//      in full before the read switch, and the drain is exact by construction:
//      inside the pause only what scales with an index fits in a second (a
//      full per-target scan took 2.2 s for 40,000 rows, server-side digests
//      2.2 s for ~100,000, in bench:reshard);
//   5. publish the targets serving, the source gone: held writes resolve again
//      and land on the targets.
// A failure in 2-4 renames the tables back and publishes `writes: "source"`;
// held writes then run on the source as if nothing happened. So does running
// out of the hold budget (`holdMs`, hold.ts) at any step: the fence's RENAME
// waits at most what is left (max_statement_time), the drain stops at the
// deadline, the check's queries carry what is left; the caller may try again.
import type { KV } from "@nats-io/kv";
import type { Connection } from "mysql2/promise";
import { publishTopology, readTopology, StaleTopologyError, type LiveTopology, type ReshardingEntry } from "../shard/topology.js";
import { withResharding } from "../shard/resharding.js";
import type { CatchUpOptions } from "./catch-up.js";
import { fenceDatabase, type ReshardPlan } from "./plan.js";
import { DEFAULT_HOLD_MS, HoldBudget, HoldBudgetExceeded, isStatementTimeout, type Follower } from "./hold.js";
import { baseTables, binlogGtidPos, databaseExists, dropDatabase, dropViews } from "./sql.js";
import type { StateHandle } from "./state.js";
import { verifyTotals } from "./verify.js";

/** Where the write switch moves the source's tables (and where cleanup drops them). */
export { fenceDatabase };

export class ReshardSwitchError extends Error {
  override readonly name = "ReshardSwitchError";
}

/** Publishes `change(current)` with the next epoch; a lost race re-reads and tries again. */
export async function publishChange(kv: KV, keyspace: string, change: (t: LiveTopology) => Pick<LiveTopology, "shards" | "resharding">): Promise<LiveTopology> {
  for (let attempt = 1; ; attempt++) {
    const current = await readTopology(kv, keyspace);
    if (current === undefined) throw new ReshardSwitchError(`no live topology of keyspace ${keyspace} in NATS KV: the topology manager publishes it (npm start runs one)`);
    const { shards, resharding } = change(current.topology);
    const { resharding: _old, ...rest } = current.topology;
    const next: LiveTopology = { ...rest, shards, ...(resharding === undefined ? {} : { resharding }), epoch: current.topology.epoch + 1, updateTime: new Date().toISOString() };
    try {
      await publishTopology(kv, next);
      return next;
    } catch (err) {
      if (attempt >= 5) throw err;
      if (!(err instanceof StaleTopologyError) && !/wrong last sequence/i.test(String((err as Error).message))) throw err;
    }
  }
}

function entry(t: LiveTopology, plan: Pick<ReshardPlan, "source">): ReshardingEntry | undefined {
  return t.resharding?.find((e) => e.source === plan.source.name);
}

/** Targets in `shards` (not serving) and the ring's reads of the range on them; writes stay on the source. */
export async function switchReads(plan: ReshardPlan, handle: StateHandle, kv: KV): Promise<LiveTopology> {
  const names = plan.targets.map((t) => t.name);
  const published = await publishChange(kv, plan.keyspace, (t) => {
    if (!t.shards.some((s) => s.name === plan.source.name)) throw new ReshardSwitchError(`shard ${plan.source.name} is not in the live topology`);
    const others = (t.resharding ?? []).filter((e) => e.source !== plan.source.name);
    return {
      shards: [...t.shards.filter((s) => !names.includes(s.name)), ...plan.targets.map((s) => ({ name: s.name, replicaSet: s.replicaSet, database: s.database, serving: false }))],
      resharding: [...others, { source: plan.source.name, targets: names, reads: "targets", writes: "source" }],
    };
  });
  handle.state.phase = "reads-switched";
  handle.state.readSwitch = { epoch: published.epoch, time: published.updateTime };
  await handle.save();
  return published;
}

/** Reads back on the source, targets out of the topology (abort before the write switch). */
export async function switchReadsBack(plan: Pick<ReshardPlan, "keyspace" | "source" | "targets">, kv: KV): Promise<void> {
  const names = new Set(plan.targets.map((t) => t.name));
  const current = await readTopology(kv, plan.keyspace);
  if (current === undefined || (entry(current.topology, plan) === undefined && !current.topology.shards.some((s) => names.has(s.name)))) return;
  await publishChange(kv, plan.keyspace, (t) => ({ shards: t.shards.filter((s) => !names.has(s.name)), resharding: withResharding(t, plan.source.name, undefined) }));
}

export interface WriteSwitchOptions {
  readonly kv: KV;
  /** An admin connection to the source primary (the fence runs on it). */
  readonly source: Connection;
  readonly catchUp: Omit<CatchUpOptions, "until">;
  /**
   * The catch-up that kept the targets current since the read switch: paused
   * while the source is fenced, then drained to the fenced position on its
   * open binlog stream (Follower, hold.ts).
   */
  readonly following: Pick<Follower, "pause" | "drainTo">;
  /** Longest wait of the fence for transactions in flight on the source (default 1000 ms; never past the hold budget). */
  readonly fenceWaitMs?: number;
  /**
   * The hold budget: from publishing `writes: "held"` to publishing the
   * targets serving (default DEFAULT_HOLD_MS). A step that would end past it
   * gives up: the switch is undone (HoldBudgetExceeded, nothing lost).
   */
  readonly holdMs?: number;
  /** What is compared while writes are held: row counts (default) or counts and row digests (slower: every row is read). */
  readonly heldCheck?: "counts" | "digests";
  readonly log?: (line: string) => void;
}

export interface WriteSwitchResult {
  /** From publishing `writes: "held"` to publishing the targets serving, as the command saw it. */
  readonly heldMs: number;
  readonly fenceMs: number;
  /** Of fenceMs: the RENAME TABLE (waiting for transactions in flight); the rest is the views. */
  readonly renameMs: number;
  readonly drainMs: number;
  readonly verifyMs: number;
  readonly position: string;
}

export async function switchWrites(plan: ReshardPlan, handle: StateHandle, opts: WriteSwitchOptions): Promise<WriteSwitchResult> {
  const log = opts.log ?? (() => {});
  const fence = fenceDatabase(plan.source.database);
  const tables = [...opts.catchUp.tables.keys()];
  const names = new Set(plan.targets.map((t) => t.name));
  const src = plan.source.database;
  const fenceWaitMs = opts.fenceWaitMs ?? 1000;
  const renameAll = (from: string, to: string): string => `RENAME TABLE ${tables.map((t) => `\`${from}\`.\`${t}\` TO \`${to}\`.\`${t}\``).join(", ")}`;
  await opts.source.query(`CREATE DATABASE IF NOT EXISTS \`${fence}\``);
  // A backstop in whole seconds; the wait itself is bounded by max_statement_time (what is left of the budget).
  await opts.source.query("SET SESSION lock_wait_timeout = ?", [Math.max(1, Math.ceil(fenceWaitMs / 1000))]);

  const budget = new HoldBudget(opts.holdMs ?? DEFAULT_HOLD_MS);
  const started = performance.now();
  await publishChange(opts.kv, plan.keyspace, (t) => ({ shards: [...t.shards], resharding: withResharding(t, plan.source.name, { writes: "held" }) }));
  budget.reserve(performance.now() - started);
  /** false: the source is not fenced; true: it is; undefined: a RENAME failed in a way that does not say. */
  let fenced: boolean | undefined = false;
  try {
    await budget.within("pause following", () => opts.following.pause());
    budget.check("fence");
    const fenceStart = performance.now();
    // The RENAME waits for transactions in flight on the tables (metadata locks): at most
    // fenceWaitMs, and never past the budget. Interrupted, it has renamed nothing.
    const byBudget = budget.left() < fenceWaitMs;
    const waitSeconds = (Math.max(1, Math.floor(Math.min(budget.left(), fenceWaitMs))) / 1000).toFixed(3);
    try {
      await opts.source.query(`SET STATEMENT max_statement_time = ${waitSeconds} FOR ${renameAll(src, fence)}`);
      fenced = true;
    } catch (err) {
      // Stopped while waiting for metadata locks it renamed nothing, but a stop that lands as the
      // locks are taken is not worth trusting: the undo looks at where the tables are.
      fenced = undefined;
      if (!isStatementTimeout(err)) throw err;
      if (byBudget) throw budget.exceeded("fence", err);
      throw new HoldBudgetExceeded("fence", fenceWaitMs, budget.elapsed(), { cause: err, limit: "fence wait" });
    }
    const renamed = performance.now();
    // Views are the primary's own (not binlogged: no semi-sync wait per view inside the pause).
    await opts.source.query("SET SESSION sql_log_bin = 0");
    for (const t of tables) {
      budget.check("fence");
      await opts.source.query(`CREATE ALGORITHM=TEMPTABLE SQL SECURITY DEFINER VIEW \`${src}\`.\`${t}\` AS SELECT * FROM \`${fence}\`.\`${t}\``);
    }
    await opts.source.query("SET SESSION sql_log_bin = 1");
    // Undoing now costs about what fencing did (views dropped, one RENAME back).
    budget.reserve(performance.now() - fenceStart);
    const position = await binlogGtidPos(opts.source);
    budget.check("drain");
    const drainStart = performance.now();
    await budget.within("drain", (late) => opts.following.drainTo(fence, position, late));
    budget.check("check");
    const verifyStart = performance.now();
    let checked: Awaited<ReturnType<typeof verifyTotals>>;
    try {
      checked = await verifyTotals(plan, opts.source, fence, opts.catchUp.targets, opts.catchUp.tables.values(), opts.heldCheck === "digests", () => budget.statementSeconds());
    } catch (err) {
      if (isStatementTimeout(err)) throw budget.exceeded("check", err);
      throw err;
    }
    if (!checked.ok) throw new ReshardSwitchError(`verify while writes were held found ${checked.tables.filter((c) => !c.match).map((c) => `${c.table}@${c.target}`).join(", ")} different`);
    const verifyEnd = performance.now();
    // Reverse replication starts here: the targets' position before they serve (switch-back.ts).
    const reverseFrom = await binlogGtidPos(opts.catchUp.targets.get(plan.targets[0]!.name)!);
    budget.check("publish");
    await publishChange(opts.kv, plan.keyspace, (t) => ({
      shards: t.shards.filter((s) => s.name !== plan.source.name).map((s) => (names.has(s.name) ? { name: s.name, replicaSet: s.replicaSet, database: s.database } : s)),
      resharding: withResharding(t, plan.source.name, undefined),
    }));
    const result: WriteSwitchResult = {
      heldMs: performance.now() - started,
      fenceMs: drainStart - fenceStart,
      renameMs: renamed - fenceStart,
      drainMs: verifyStart - drainStart,
      verifyMs: verifyEnd - verifyStart,
      position,
    };
    handle.state.phase = "writes-switched";
    handle.state.writeSwitch = { time: new Date().toISOString(), fence, ...result };
    handle.state.reverse = { gtid: reverseFrom, events: 0, rowsApplied: 0, lagMs: 0, updateTime: new Date().toISOString() };
    await handle.save();
    log(`writes switched: held ${result.heldMs.toFixed(0)} ms (fence ${result.fenceMs.toFixed(0)} of which rename ${result.renameMs.toFixed(0)}, drain ${result.drainMs.toFixed(0)}, verify ${result.verifyMs.toFixed(0)} ms); the source's rows wait in ${fence} for \`complete\``);
    return result;
  } catch (err) {
    // Back to the source, nothing lost: the held writes run there once this is published.
    // Whatever the fence holds goes back (a RENAME that failed or was stopped: the undo looks).
    const undoStart = performance.now();
    if (fenced !== false) await unfence(plan, opts.source, tables);
    const unfenced = performance.now();
    await publishChange(opts.kv, plan.keyspace, (t) => ({ shards: [...t.shards], resharding: withResharding(t, plan.source.name, { writes: "source" }) }));
    if (err instanceof HoldBudgetExceeded) {
      throw err.undone({ heldMs: performance.now() - started, undoMs: performance.now() - undoStart, unfenceMs: unfenced - undoStart, stopMs: undoStart - started - err.elapsedMs });
    }
    throw err;
  }
}

/** The source's tables back from the fence (views dropped first): the undo of a write switch. */
export async function unfence(plan: Pick<ReshardPlan, "source">, source: Connection, tables: readonly string[]): Promise<number> {
  const fence = fenceDatabase(plan.source.database);
  const src = plan.source.database;
  const fenced = (await baseTables(source, fence)).filter((t) => tables.length === 0 || tables.includes(t));
  // Views made before a failure, for tables that never moved, cannot exist (the RENAME is one statement).
  await dropViews(source, src, fenced);
  if (fenced.length > 0) await source.query(`RENAME TABLE ${fenced.map((t) => `\`${fence}\`.\`${t}\` TO \`${src}\`.\`${t}\``).join(", ")}`);
  return fenced.length;
}

/** Drops the views and the fence database holding the source's rows of the range (the workflow's `complete`). */
export async function dropFence(plan: ReshardPlan, source: Connection): Promise<void> {
  const fence = fenceDatabase(plan.source.database);
  await source.query("SET SESSION sql_log_bin = 0");
  for (const t of plan.tables.keys()) await source.query(`DROP VIEW IF EXISTS \`${plan.source.database}\`.\`${t}\``);
  await source.query("SET SESSION sql_log_bin = 1");
  await dropDatabase(source, fence);
  if (await databaseExists(source, fence)) throw new Error(`${fence} is still there after DROP DATABASE`);
}
