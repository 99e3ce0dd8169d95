// A deleted account's timeline keys (docs/decisions/0025-account-deletion-by-events.md):
// its home list and what the list's upkeep keeps beside it, its recent list
// as a hot author, and its place in the hot set. Others' home lists lose the
// account's entries through the events its erasure causes elsewhere (each
// UserUnfollowed takes the followee's entries out, each TweetDeleted the
// tweet), and reads drop a tweet whose author no longer exists meanwhile.
import type { Redis } from "ioredis";
import { KEYS } from "./lists.js";

/** Deletes the user's keys; idempotent. */
export async function eraseTimelineKeys(redis: Redis, userId: bigint): Promise<void> {
  await redis
    .multi()
    .del(KEYS.home(userId), KEYS.edges(userId), KEYS.following(userId), KEYS.followingLease(userId), KEYS.recent(userId))
    .srem(KEYS.hot, String(userId))
    .exec();
}
