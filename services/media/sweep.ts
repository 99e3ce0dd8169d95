// Removes uploads that were never attached to a tweet within the grace period:
// the row (only if still unattached: the DELETE re-checks under its row lock,
// so an AttachMedia that got there first wins), then its lookup row, then each
// of its blobs that no row on any shard names any more and that has not been
// written within the grace period (a new upload of the same bytes re-writes
// it before inserting its row, so its blob is never taken from under it).
import { Counter } from "prom-client";
import type { Logger } from "../../lib/logger.js";
import type { Metrics } from "../../lib/metrics.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import type { BlobStore } from "./blobs/blob-store.js";
import type { MediaStore } from "./store.js";

export interface SweepOptions {
  readonly router: ShardRouter;
  readonly store: MediaStore;
  readonly blobs: BlobStore;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly graceMs: number;
  readonly batch: number;
  /** 0: never on a timer (sweepOnce() still works). */
  readonly intervalMs: number;
}

export interface Sweeper {
  /** One pass over every shard; returns how many uploads were removed. */
  sweepOnce(): Promise<number>;
  /**
   * A deleted account's uploads, attached or not, in batches of `batch`:
   * each row, then its lookup row, then each of its blobs that nothing names
   * any more (as the sweep does). Idempotent; how many rows went.
   */
  eraseOwner(ownerId: bigint, batch?: number): Promise<number>;
  stop(): Promise<void>;
}

export function createSweeper(opts: SweepOptions): Sweeper {
  const removed = new Counter({
    name: "chirp_media_swept_total",
    help: "Unattached uploads removed by the sweep (what: media rows, blobs).",
    labelNames: ["what"],
    registers: [opts.metrics.registry],
  });
  const log = opts.log.child({ component: "media-sweep" });

  const deleteBlobIfUnused = async (sha256: string): Promise<void> => {
    if (await opts.store.blobReferenced(sha256)) return;
    const info = await opts.blobs.stat(sha256);
    if (info === undefined || Date.now() - info.modifiedMs < opts.graceMs) return;
    await opts.blobs.delete(sha256);
    removed.inc({ what: "blob" });
  };

  const sweepOnce = async (): Promise<number> => {
    let total = 0;
    for (const shard of opts.router.shards()) {
      try {
        const candidates = await opts.store.sweepCandidates(shard, opts.graceMs, opts.batch);
        for (const c of candidates) {
          if (!(await opts.store.deleteUnattached(shard, c.id, opts.graceMs))) continue;
          total++;
          removed.inc({ what: "media" });
          await opts.store.deleteLookup(c.id);
          for (const sha of [c.sha256, c.thumbSha256]) if (sha !== null) await deleteBlobIfUnused(sha);
        }
      } catch (err) {
        // One shard's trouble never stops the others; the next pass retries.
        log.warn({ err, shard: shard.name }, "media sweep failed on a shard");
      }
    }
    if (total > 0) log.info({ removed: total }, "removed unattached uploads");
    return total;
  };

  const eraseOwner = async (ownerId: bigint, batch = opts.batch): Promise<number> => {
    let total = 0;
    for (;;) {
      const rows = await opts.store.ownerMedia(ownerId, batch);
      for (const r of rows) {
        await opts.store.deleteOwned(ownerId, r.id);
        await opts.store.deleteLookup(r.id);
        for (const sha of [r.sha256, r.thumbSha256]) if (sha !== null) await deleteBlobIfUnused(sha);
      }
      total += rows.length;
      if (rows.length < batch) return total;
    }
  };

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let stopped = false;
  const schedule = (): void => {
    if (stopped || opts.intervalMs === 0) return;
    timer = setTimeout(() => {
      running = sweepOnce().finally(schedule);
    }, opts.intervalMs);
    timer.unref();
  };
  schedule();

  return {
    sweepOnce,
    eraseOwner,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running?.catch(() => {});
    },
  };
}
