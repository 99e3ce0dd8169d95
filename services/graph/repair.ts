// Keeping the followee's copy of each edge in line with the follower's side.
// One operation, reconcile(edge version), serves three callers:
//   sync      right after the follower's transaction, in the Follow/Unfollow call;
//   consumer  from the graph events on JetStream, after a crash between the two;
//   sweep     periodically, for rows still marked sync_pending (no NATS needed).
// It is idempotent and order-independent (the followee's side only moves to a
// higher version), so the three may race each other freely.
import { Counter } from "prom-client";
import type { Logger } from "../../lib/logger.js";
import type { Metrics } from "../../lib/metrics.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { edgeVersionOfEvent, type GraphEdgeEvent } from "./events.js";
import type { UserCache } from "../../lib/user-cache.js";
import { applyFolloweeSide, clearSyncPending, listSyncPending, readFollowerSide, type EdgeVersion } from "./store.js";

export type RepairPath = "sync" | "consumer" | "sweep";

export interface EdgeRepairOptions {
  readonly router: ShardRouter;
  readonly log: Logger;
  readonly metrics?: Metrics;
  /** Sweep period; 0 disables the periodic sweep (sweepOnce still works). */
  readonly sweepIntervalMs: number;
  /** A pending row younger than this is left to the in-flight call that made it. */
  readonly sweepGraceMs: number;
  /** Pending rows taken per shard per sweep. */
  readonly sweepBatch: number;
  /** Cleared for the followee once their side is applied (their follower_count may have changed). */
  readonly userCache?: UserCache | undefined;
}

export interface SweepResult {
  /** Pending rows looked at. */
  readonly pending: number;
  /** Of those, how many changed the followee's side (the rest were already current). */
  readonly applied: number;
  /** Rows that failed (left pending for the next sweep). */
  readonly failed: number;
}

export interface EdgeRepair {
  /**
   * Applies `edge` to the followee's side if that side is older, then clears
   * the follower row's pending mark for this version.
   */
  reconcile(edge: EdgeVersion, path: RepairPath): Promise<"applied" | "current">;
  /** reconcile for the request path: a failure is logged and left to the consumer and the sweep. */
  syncAfterChange(edge: EdgeVersion): Promise<boolean>;
  /** The consumer's handler for a graph edge event. Idempotent; throws to have the event redelivered. */
  handleEvent(event: GraphEdgeEvent): Promise<void>;
  /** One pass over every shard's pending rows. */
  sweepOnce(): Promise<SweepResult>;
  /** Starts the periodic sweep (when sweepIntervalMs > 0). */
  start(): void;
  /** Stops the periodic sweep and waits for a pass in progress. */
  close(): Promise<void>;
}

export function createEdgeRepair(opts: EdgeRepairOptions): EdgeRepair {
  const { router, log } = opts;
  const reconciles = opts.metrics
    ? new Counter({
        name: "chirp_graph_edge_reconciles_total",
        help: "Followee-side reconciles of follow edges, by caller (sync, consumer, sweep) and result (applied, current, failed).",
        labelNames: ["path", "result"] as const,
        registers: [opts.metrics.registry],
      })
    : undefined;

  const reconcile = async (edge: EdgeVersion, path: RepairPath): Promise<"applied" | "current"> => {
    try {
      const result = await applyFolloweeSide(router, edge);
      // Also when "current": an earlier reconcile may have applied it and failed to clear.
      await opts.userCache?.invalidate([edge.followeeId]);
      await clearSyncPending(router, edge.followerId, edge.followeeId, edge.version);
      reconciles?.inc({ path, result });
      if (result === "applied" && path !== "sync") {
        log.info({ path, follower_id: String(edge.followerId), followee_id: String(edge.followeeId), edge_version: String(edge.version) }, "follow edge repaired");
      }
      return result;
    } catch (err) {
      reconciles?.inc({ path, result: "failed" });
      throw err;
    }
  };

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let closed = false;

  const sweepOnce = async (): Promise<SweepResult> => {
    let pending = 0;
    let applied = 0;
    let failed = 0;
    for (const shard of router.shards()) {
      let rows: Array<{ followerId: bigint; followeeId: bigint }>;
      try {
        rows = await listSyncPending(router, shard, opts.sweepGraceMs, opts.sweepBatch);
      } catch (err) {
        log.warn({ err, shard: shard.name }, "graph sweep: cannot list pending edges");
        continue;
      }
      pending += rows.length;
      for (const { followerId, followeeId } of rows) {
        try {
          // The row as committed now: its latest version, not the one that was pending.
          const edge = await readFollowerSide(router, followerId, followeeId);
          if (edge !== undefined && (await reconcile(edge, "sweep")) === "applied") applied++;
        } catch (err) {
          failed++;
          log.warn({ err, shard: shard.name }, "graph sweep: reconcile failed; left for the next pass");
        }
      }
    }
    return { pending, applied, failed };
  };

  const schedule = (): void => {
    if (closed || opts.sweepIntervalMs <= 0) return;
    timer = setTimeout(() => {
      running = sweepOnce()
        .catch((err: unknown) => log.error({ err }, "graph sweep failed"))
        .finally(() => {
          running = undefined;
          schedule();
        });
    }, opts.sweepIntervalMs);
    timer.unref();
  };

  return {
    reconcile,
    async syncAfterChange(edge) {
      try {
        await reconcile(edge, "sync");
        return true;
      } catch (err) {
        // The follower's side is committed with its event: the consumer or the
        // sweep finishes the copy. The caller's request has succeeded.
        log.warn({ err, follower_id: String(edge.followerId), followee_id: String(edge.followeeId) }, "followee side not updated; left to repair");
        return false;
      }
    },
    async handleEvent(event) {
      const edge = edgeVersionOfEvent(event);
      if (edge !== undefined) await reconcile(edge, "consumer");
    },
    sweepOnce,
    start: schedule,
    async close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}
