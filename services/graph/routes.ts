import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  BlockResponseSchema,
  FollowResponseSchema,
  ListBlockedResponseSchema,
  ListMutedResponseSchema,
  ListRelationIdsResponseSchema,
  MuteResponseSchema,
  UnblockResponseSchema,
  UnmuteResponseSchema,
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
import { decodeIdPageToken, decodePageToken, encodeIdPageToken, encodePageToken, type FollowListKind } from "./page-token.js";
import { listRelationIds, listRelations, type RelationListKind } from "./relations-store.js";
import { listEdgeIds, listEdges } from "./store.js";

const DEFAULT_PAGE_SIZE = 20;
const DEFAULT_ID_PAGE_SIZE = 1000;

/** GraphService handlers: validate, call the store, shape the response. */
export function routes(ctx: GraphContext): Partial<ServiceImpl<typeof GraphService>> {
  /** The other user of a Follow, Block or Mute: not the caller, and someone who exists. */
  const checkTarget = async (targetId: bigint, verb: string, hctx: HandlerContext): Promise<bigint> => {
    const callerId = requireCaller(hctx);
    if (targetId === callerId) throw new ConnectError(`cannot ${verb} yourself`, Code.InvalidArgument);
    if (!(await userExists(ctx.clients, targetId, onBehalfOf(hctx)))) throw new ConnectError("user not found", Code.NotFound);
    return callerId;
  };

  /** Follow and Unfollow (follow-edges.ts); a follow while a block stands either way is PermissionDenied. */
  const setEdge = async (targetId: bigint, active: boolean, hctx: HandlerContext): Promise<void> => {
    const callerId = await checkTarget(targetId, active ? "follow" : "unfollow", hctx);
    const requestId = hctx.requestHeader.get(REQUEST_ID_HEADER) ?? undefined;
    if ((await ctx.follows.set(callerId, targetId, active, requestId, hctx.signal)) === "refused") {
      throw new ConnectError("blocked", Code.PermissionDenied);
    }
  };

  const setBlock = async (targetId: bigint, active: boolean, hctx: HandlerContext): Promise<void> => {
    const callerId = await checkTarget(targetId, active ? "block" : "unblock", hctx);
    await ctx.blocks.setBlock(callerId, targetId, active, hctx.requestHeader.get(REQUEST_ID_HEADER) ?? undefined);
  };

  const setMute = async (targetId: bigint, active: boolean, hctx: HandlerContext): Promise<void> => {
    const callerId = await checkTarget(targetId, active ? "mute" : "unmute", hctx);
    await ctx.blocks.setMute(callerId, targetId, active);
  };

  /** ListBlocked and ListMuted: the caller's own, newest first, from their primary. */
  const listOwn = async (kind: RelationListKind, req: { pageSize: number; pageToken: string }, hctx: HandlerContext) => {
    const callerId = requireCaller(hctx);
    const pageSize = req.pageSize === 0 ? DEFAULT_PAGE_SIZE : req.pageSize;
    const after = req.pageToken === "" ? undefined : decodePageToken(req.pageToken, kind, callerId);
    const rows = await listRelations(ctx.router, kind, callerId, after, pageSize + 1);
    const page = rows.slice(0, pageSize);
    const users = await hydrate(page.map((r) => r.otherUserId), hctx);
    const last = page.at(-1);
    const nextPageToken =
      rows.length > pageSize && last !== undefined ? encodePageToken(kind, callerId, { followTimeMicros: last.timeMicros, otherUserId: last.otherUserId }) : "";
    return { users, nextPageToken };
  };

  const list = async (kind: FollowListKind, req: { userId: bigint; pageSize: number; pageToken: string }, hctx: HandlerContext) => {
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
  const listIds = async (kind: FollowListKind, req: { userId: bigint; pageSize: number; pageToken: string }) => {
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
    async block(req, hctx) {
      await setBlock(req.userId, true, hctx);
      return create(BlockResponseSchema);
    },
    async unblock(req, hctx) {
      await setBlock(req.userId, false, hctx);
      return create(UnblockResponseSchema);
    },
    async listBlocked(req, hctx) {
      return create(ListBlockedResponseSchema, await listOwn("blocked", req, hctx));
    },
    async mute(req, hctx) {
      await setMute(req.userId, true, hctx);
      return create(MuteResponseSchema);
    },
    async unmute(req, hctx) {
      await setMute(req.userId, false, hctx);
      return create(UnmuteResponseSchema);
    },
    async listMuted(req, hctx) {
      return create(ListMutedResponseSchema, await listOwn("muted", req, hctx));
    },
    async listRelationIds(req) {
      const { blocked, blockedBy, muted } = await listRelationIds(ctx.router, req.userId);
      return create(ListRelationIdsResponseSchema, { blockedIds: blocked, blockedByIds: blockedBy, mutedIds: muted });
    },
  };
}
