// Blocks on the tweet service's write paths: while a block stands between two
// users (either blocked the other), neither can reply to, quote, repost or
// like the other's tweets. Asked of the actor's cached relations
// (lib/relations.ts): one SMISMEMBER per author in steady state, no SQL.
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { RelationCache } from "../../lib/relations.js";
import { onBehalfOf } from "../../lib/rpc/mesh-clients.js";

/** PermissionDenied if a block stands between `actorId` and any of `authorIds` (their own tweets aside). */
export async function refuseIfBlocked(relations: RelationCache, actorId: bigint, authorIds: Iterable<bigint>, hctx: HandlerContext): Promise<void> {
  const others = [...new Set(authorIds)].filter((id) => id !== actorId);
  const blocked = await Promise.all(others.map((id) => relations.blocked(actorId, id, onBehalfOf(hctx))));
  if (blocked.some(Boolean)) throw new ConnectError("blocked", Code.PermissionDenied);
}
