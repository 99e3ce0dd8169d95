import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  FollowResponseSchema,
  ListFollowerIdsResponseSchema,
  ListFollowersResponseSchema,
  ListFollowingIdsResponseSchema,
  ListFollowingResponseSchema,
  UnfollowResponseSchema,
  type GraphService,
} from "../../gen/chirp/graph/v1/graph_service_pb.js";
import type { User } from "../../gen/chirp/user/v1/user_pb.js";
import { callerOf, requireCaller } from "../../lib/auth/caller.js";
import { onBehalfOf, userExists } from "../../lib/rpc/mesh-clients.js";
import { REQUEST_ID_HEADER } from "../../lib/rpc/metadata.js";
import type { GraphContext } from "./context.js";
import { createKeyedQueue } from "./edge-queue.js";
import { announceEdgeChange } from "./events.js";
import { decodeIdPageToken, decodePageToken, encodeIdPageToken, encodePageToken, type ListKind } from "./page-token.js";
import { listEdgeIds, listEdges, setFollowerSide } from "./store.js";

const DEFAULT_PAGE_SIZE = 20;
const DEFAULT_ID_PAGE_SIZE = 1000;

/** GraphService handlers: validate, call the store, shape the response. */
export function routes(ctx: GraphContext): Partial<ServiceImpl<typeof GraphService>> {
  const edgeQueue = createKeyedQueue();
  /**
   * Follow and Unfollow: the follower's side first, with its event, in one
   * transaction; then the followee's side, at once. If the second step fails
   * the call still succeeds (the edge exists where it is decided) and the
   * repair consumer or sweep completes it; a retried call finishes it too.
   */
  const setEdge = async (targetId: bigint, active: boolean, hctx: HandlerContext): Promise<void> => {
    const callerId = requireCaller(hctx);
    if (targetId === callerId) throw new ConnectError(active ? "cannot follow yourself" : "cannot unfollow yourself", Code.InvalidArgument);
    if (!(await userExists(ctx.clients, targetId, onBehalfOf(hctx)))) throw new ConnectError("user not found", Code.NotFound);
    const requestId = hctx.requestHeader.get(REQUEST_ID_HEADER) ?? undefined;
    await edgeQueue.run(`${callerId}:${targetId}`, async () => {
      // A caller that gave up while queued gets nothing done behind its back.
      hctx.signal.throwIfAborted();
      let change: Awaited<ReturnType<typeof setFollowerSide>>;
      try {
        change = await setFollowerSide(ctx.router, callerId, targetId, active, announceEdgeChange(ctx.ids, requestId));
      } catch (err) {
        // It may have failed after its COMMIT: the caller's following_count may have changed.
        await ctx.userCache?.invalidate([callerId]).catch(() => {});
        throw err;
      }
      // The caller's following_count; the followee's follower_count is cleared with their side (repair.ts).
      if (change.changed) await ctx.userCache?.invalidate([callerId]);
      if (change.edge !== undefined && change.syncPending) await ctx.repair.syncAfterChange(change.edge);
    });
  };

  const list = async (kind: ListKind, req: { userId: bigint; pageSize: number; pageToken: string }, hctx: HandlerContext) => {
    const pageSize = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : req.pageSize;
    const after = req.pageToken === "" ? undefined : decodePageToken(req.pageToken, kind, req.userId);
    // Read-your-writes for one's own lists (the primary); anyone else's may come from a replica.
    const own = callerOf(hctx) === req.userId;
    const rows = await listEdges(ctx.router, kind, req.userId, after, pageSize + 1, own);
    const page = rows.slice(0, pageSize);
    if (page.length === 0 && after === undefined && !(await userExists(ctx.clients, req.userId, onBehalfOf(hctx)))) {
      throw new ConnectError("user not found", Code.NotFound);
    }
    const users = await hydrate(page.map((r) => r.otherUserId), hctx);
    const last = page.at(-1);
    const nextPageToken =
      rows.length > pageSize && last !== undefined
        ? encodePageToken(kind, req.userId, { followTimeMicros: last.followTimeMicros, otherUserId: last.otherUserId })
        : "";
    return { users, nextPageToken };
  };

  /** The internal id lists (fan-out, timeline rebuilds): no hydration, no existence check. */
  const listIds = async (kind: ListKind, req: { userId: bigint; pageSize: number; pageToken: string }) => {
    const pageSize = req.pageSize === 0 ? DEFAULT_ID_PAGE_SIZE : req.pageSize;
    const after = req.pageToken === "" ? 0n : decodeIdPageToken(req.pageToken, kind, req.userId);
    const ids = await listEdgeIds(ctx.router, kind, req.userId, after, pageSize + 1);
    const userIds = ids.slice(0, pageSize);
    const last = userIds.at(-1);
    const nextPageToken = ids.length > pageSize && last !== undefined ? encodeIdPageToken(kind, req.userId, last) : "";
    return { userIds, nextPageToken };
  };

  /** One BatchGetUsers for the page, in the page's order; an id the user service does not know is left out. */
  const hydrate = async (ids: bigint[], hctx: HandlerContext): Promise<User[]> => {
    if (ids.length === 0) return [];
    const { users } = await ctx.clients.user.batchGetUsers({ userIds: ids }, onBehalfOf(hctx));
    const byId = new Map(users.map((u) => [u.id, u]));
    return ids.flatMap((id) => {
      const user = byId.get(id);
      return user === undefined ? [] : [user];
    });
  };

  return {
    async follow(req, hctx) {
      await setEdge(req.userId, true, hctx);
      return create(FollowResponseSchema);
    },
    async unfollow(req, hctx) {
      await setEdge(req.userId, false, hctx);
      return create(UnfollowResponseSchema);
    },
    async listFollowers(req, hctx) {
      return create(ListFollowersResponseSchema, await list("followers", req, hctx));
    },
    async listFollowing(req, hctx) {
      return create(ListFollowingResponseSchema, await list("following", req, hctx));
    },
    async listFollowerIds(req) {
      return create(ListFollowerIdsResponseSchema, await listIds("followers", req));
    },
    async listFollowingIds(req) {
      return create(ListFollowingIdsResponseSchema, await listIds("following", req));
    },
  };
}
