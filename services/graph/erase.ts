// A deleted account's part of the graph (docs/decisions/0025-account-deletion-by-events.md),
// erased from its UserDeleted event by the graph's own consumer, in batches,
// through the paths Unfollow and Unblock take: so every count on the other
// side is corrected exactly once (a follow edge's state is versioned under its
// row lock; ending an ended edge changes nothing), and the UserUnfollowed and
// UserUnblocked events take the user's entries out of others' home timelines
// and notifications as an unfollow would. Each batch lists what is still
// active, so a redelivery after a crash goes on with what is left.
import type { Logger } from "../../lib/logger.js";
import type { RelationCache } from "../../lib/relations.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import type { Blocks } from "./blocks.js";
import type { FollowEdges } from "./follow-edges.js";
import { deleteMutes, listBlockIds } from "./relations-store.js";
import { listEdgeIds } from "./store.js";

/** Edges (or mutes) taken per batch. */
export const ERASE_BATCH = 100;

export interface GraphErased {
  following: number;
  followers: number;
  blocked: number;
  blockedBy: number;
  mutes: number;
}

export interface GraphErasure {
  /**
   * Ends every follow of and by `userId`, every block by and of them, and
   * deletes their mutes. Idempotent. `onBatch` (tests) runs after each batch
   * and may throw to stop it there, as a crash would.
   */
  erase(userId: bigint, opts?: { batch?: number; onBatch?: (what: keyof GraphErased, n: number) => void }): Promise<GraphErased>;
}

export function createGraphErasure(deps: { router: ShardRouter; follows: FollowEdges; blocks: Blocks; relations: RelationCache; log: Logger }): GraphErasure {
  const { router, follows, blocks } = deps;
  return {
    async erase(userId, opts = {}) {
      const batch = opts.batch ?? ERASE_BATCH;
      const done: GraphErased = { following: 0, followers: 0, blocked: 0, blockedBy: 0, mutes: 0 };
      /** Pages of ids after a cursor, each id handed to `end` (one at a time: each is a transaction on two shards). */
      const each = async (what: keyof GraphErased, list: (after: bigint) => Promise<bigint[]>, end: (other: bigint) => Promise<unknown>): Promise<void> => {
        let after = 0n;
        for (;;) {
          const ids = await list(after);
          if (ids.length === 0) return;
          for (const other of ids) await end(other);
          done[what] += ids.length;
          after = ids[ids.length - 1]!;
          opts.onBatch?.(what, ids.length);
          if (ids.length < batch) return;
        }
      };
      await each(
        "following",
        (after) => listEdgeIds(router, "following", userId, after, batch),
        (other) => follows.set(userId, other, false, undefined),
      );
      await each(
        "followers",
        (after) => listEdgeIds(router, "followers", userId, after, batch),
        (other) => follows.set(other, userId, false, undefined),
      );
      await each(
        "blocked",
        (after) => listBlockIds(router, "blocked", userId, after, batch),
        (other) => blocks.setBlock(userId, other, false, undefined),
      );
      await each(
        "blockedBy",
        (after) => listBlockIds(router, "blockedBy", userId, after, batch),
        (other) => blocks.setBlock(other, userId, false, undefined),
      );
      for (;;) {
        const n = await deleteMutes(router, userId, batch);
        done.mutes += n;
        if (n > 0) opts.onBatch?.("mutes", n);
        if (n < batch) break;
      }
      await deps.relations.invalidate([userId]);
      return done;
    },
  };
}
