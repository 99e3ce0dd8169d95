// A user's counts (followers, following, tweets) on the users row: the one
// place a service other than the user service writes the user service's
// table. A count changes in the same transaction as the row it counts (a
// follow edge, a tweet), and both live on the user's shard; an RPC to the user
// service could not join that transaction, so the graph and tweet services
// run this inside their own. After the commit the caller invalidates the
// user's cached profile (user-cache.ts) before its call returns, which keeps
// a count exact on every read that starts afterwards.
import { executeOrDefer, type Queryable } from "./shard/router.js";

export type UserCount = "follower_count" | "following_count" | "tweet_count";

const STATEMENTS = new Map<string, string>(
  (["follower_count", "following_count", "tweet_count"] as const).flatMap((count) => [
    [`${count}+`, `UPDATE chirp.users SET ${count} = ${count} + 1 WHERE id = ?`],
    [`${count}-`, `UPDATE chirp.users SET ${count} = ${count} - 1 WHERE id = ?`],
  ]),
);

/**
 * One up or down, inside `tx` (a transaction on `userId`'s shard): deferred
 * to go with the transaction's COMMIT (Transaction.defer) when `tx` can.
 */
export function adjustUserCount(tx: Queryable, userId: bigint, count: UserCount, delta: 1 | -1): Promise<void> {
  return executeOrDefer(tx, STATEMENTS.get(`${count}${delta > 0 ? "+" : "-"}`)!, [userId]);
}
