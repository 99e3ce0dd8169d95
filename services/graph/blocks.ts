// Block, Unblock, Mute and Unmute (services/graph/README.md, "Blocks and
// mutes"). A block or unblock is, in order, each step idempotent:
//   1. the blocker's row, its version and the UserBlocked/UserUnblocked event,
//      in one transaction on the blocker's shard;
//   2. the blocker's cached relations cleared (lib/relations.ts);
//   3. the copy on the blocked user's shard (blocked_by), then their cached
//      relations cleared;
//   4. for a block, the follows between the two ended both ways, through the
//      follow path (follow-edges.ts), so counts stay exact and UserUnfollowed
//      events take the entries out of home timelines as an unfollow does.
// The call does all four before it returns; if it fails part way, the graph's
// consumer of the block events does 2-4 again from the blocker's row as it
// stands then, and a retried call does too. A follow checks both rows on the
// follower's shard inside its own transaction (relations-store.ts
// blockedBetween), and step 4 takes the follow's row lock after step 3's
// commit, so a follow racing a block either sees the block or is ended by it.
import type { IdGenerator } from "../../lib/ids.js";
import type { Logger } from "../../lib/logger.js";
import type { RelationCache } from "../../lib/relations.js";
import type { ShardRouter } from "../../lib/shard/router.js";
import { createKeyedQueue } from "./edge-queue.js";
import { announceBlockChange, blockVersionOfEvent, type BlockEvent } from "./events.js";
import type { FollowEdges } from "./follow-edges.js";
import { applyBlockedSide, readBlockerSide, setBlockerSide, setMute, type BlockVersion } from "./relations-store.js";

export interface Blocks {
  /** Blocks (`active`) or unblocks; idempotent. */
  setBlock(blockerId: bigint, blockedId: bigint, active: boolean, requestId: string | undefined): Promise<void>;
  /** Mutes (`active`) or unmutes; idempotent. */
  setMute(muterId: bigint, mutedId: bigint, active: boolean): Promise<void>;
  /** The consumer's handler for UserBlocked and UserUnblocked: finishes the block as it stands now. Throws to be redelivered. */
  handleEvent(event: BlockEvent): Promise<void>;
}

export function createBlocks(deps: { router: ShardRouter; ids: IdGenerator; relations: RelationCache; follows: FollowEdges; log: Logger }): Blocks {
  const { router, ids, relations, follows, log } = deps;
  const queue = createKeyedQueue();

  /** Steps 3 and 4 for the block as the blocker's row says. */
  const finish = async (block: BlockVersion, requestId: string | undefined): Promise<void> => {
    await applyBlockedSide(router, block);
    await relations.invalidate([block.blockedId]);
    if (!block.active) return;
    // Both ways; never refused (an unfollow is not checked).
    await follows.set(block.blockerId, block.blockedId, false, requestId);
    await follows.set(block.blockedId, block.blockerId, false, requestId);
  };

  return {
    setBlock(blockerId, blockedId, active, requestId) {
      return queue.run(`${blockerId}:${blockedId}`, async () => {
        let change: Awaited<ReturnType<typeof setBlockerSide>>;
        try {
          change = await setBlockerSide(router, blockerId, blockedId, active, announceBlockChange(ids, requestId));
        } catch (err) {
          // It may have failed after its COMMIT.
          await relations.invalidate([blockerId]).catch(() => {});
          throw err;
        }
        if (change.block === undefined) return; // unblocking a block that never was
        if (change.changed) await relations.invalidate([blockerId]);
        // Also unchanged: a retry after a failure part way completes it.
        await finish(change.block, requestId);
      });
    },

    async setMute(muterId, mutedId, active) {
      try {
        await setMute(router, muterId, mutedId, active);
      } finally {
        // Also after a failure, which may have come after the write.
        await relations.invalidate([muterId]);
      }
    },

    async handleEvent(event) {
      const announced = blockVersionOfEvent(event);
      if (announced === undefined) return;
      await queue.run(`${announced.blockerId}:${announced.blockedId}`, async () => {
        // The row as it stands now: a later change may have followed this event.
        const current = await readBlockerSide(router, announced.blockerId, announced.blockedId);
        if (current === undefined) return;
        await relations.invalidate([current.blockerId]);
        await finish(current, undefined);
        log.debug({ blocker_id: String(current.blockerId), blocked_id: String(current.blockedId), active: current.active }, "block finished from its event");
      });
    },
  };
}
