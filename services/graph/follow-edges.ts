// Follow and unfollow, one edge at a time per process (edge-queue.ts): the
// follower's side first, with its event, in one transaction; then the
// followee's side, at once. If the second step fails the call still succeeds
// (the edge exists where it is decided) and the repair consumer or sweep
// completes it; a retried call finishes it too. Follow, Unfollow and Block
// (which ends the follows both ways through this same path and its events)
// all change edges here.
import type { IdGenerator } from "../../lib/ids.js";
import type { UserCache } from "../../lib/user-cache.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { createKeyedQueue } from "./edge-queue.js";
import { announceEdgeChange } from "./events.js";
import { blockedBetween } from "./relations-store.js";
import type { EdgeRepair } from "./repair.js";
import { setFollowerSide } from "./store.js";

export interface FollowEdges {
  /** The edge set to `active`; "refused" for a follow while a block stands between the two (nothing written). */
  set(followerId: bigint, followeeId: bigint, active: boolean, requestId: string | undefined, signal?: AbortSignal): Promise<"ok" | "refused">;
}

export function createFollowEdges(deps: { router: ShardRouter; ids: IdGenerator; userCache: UserCache | undefined; repair: EdgeRepair }): FollowEdges {
  const { router, ids, userCache, repair } = deps;
  const queue = createKeyedQueue();
  return {
    set(followerId, followeeId, active, requestId, signal) {
      return queue.run(`${followerId}:${followeeId}`, async () => {
        // A caller that gave up while queued gets nothing done behind its back.
        signal?.throwIfAborted();
        let change: Awaited<ReturnType<typeof setFollowerSide>>;
        try {
          change = await setFollowerSide(router, followerId, followeeId, active, announceEdgeChange(ids, requestId), (tx) =>
            blockedBetween(tx, followerId, followeeId),
          );
        } catch (err) {
          // It may have failed after its COMMIT: the follower's following_count may have changed.
          await userCache?.invalidate([followerId]).catch(() => {});
          throw err;
        }
        if (change.refused === true) return "refused";
        // The follower's following_count; the followee's follower_count is cleared with their side (repair.ts).
        if (change.changed) await userCache?.invalidate([followerId]);
        if (change.edge !== undefined && change.syncPending) await repair.syncAfterChange(change.edge);
        return "ok";
      });
    },
  };
}
