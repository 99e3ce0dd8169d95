import { decodeKeysetToken, encodeKeysetToken } from "../../lib/keyset-token.js";

/**
 * Page tokens of ListFollowers/ListFollowing: a keyset cursor, the position of
 * the last edge returned in the list's order (follow_time DESC, other user's
 * id DESC). It names the list it belongs to, so a token replayed on another
 * user's list, or on the other RPC, is refused instead of silently paging
 * through the wrong list.
 *
 * The layout is lib/keyset-token.ts's (26 bytes, 35 characters): the list
 * kind; owner the listed user; two fields, the follow time in microseconds
 * since the epoch (signed) and the other user's id.
 */
export type ListKind = "followers" | "following" | "blocked" | "muted";

/** The follow lists (their id lists too: ListFollowerIds, ListFollowingIds). */
export type FollowListKind = "followers" | "following";

export interface PageCursor {
  /** follow_time of the last edge returned, microseconds since the epoch. */
  readonly followTimeMicros: bigint;
  /** The other end of that edge: the follower (ListFollowers) or the followee (ListFollowing). */
  readonly otherUserId: bigint;
}

// ListBlocked and ListMuted (the caller's blocks and mutes, newest first) use the same layout: 5 and 6.
const KINDS: Record<ListKind, number> = { followers: 1, following: 2, blocked: 5, muted: 6 };
/** The follow time is kept signed. */
const CURSOR_SIGNED = [true, false];

export function encodePageToken(kind: ListKind, userId: bigint, cursor: PageCursor): string {
  return encodeKeysetToken(KINDS[kind], userId, [cursor.followTimeMicros, cursor.otherUserId], CURSOR_SIGNED);
}

/**
 * The cursor in `token`, which must have been issued for `kind` of `userId`.
 * InvalidArgument for anything else: not base64url, wrong length or version,
 * another list.
 */
export function decodePageToken(token: string, kind: ListKind, userId: bigint): PageCursor {
  const [followTimeMicros, otherUserId] = decodeKeysetToken(token, KINDS[kind], userId, 2, CURSOR_SIGNED) as [bigint, bigint];
  return { followTimeMicros, otherUserId };
}

/**
 * Page tokens of the internal ListFollowerIds/ListFollowingIds: the last id
 * returned (the lists are in ascending id order), bound to the list: kinds 3
 * (follower ids) and 4 (following ids), one field (18 bytes, 24 characters).
 */
const ID_KINDS: Record<FollowListKind, number> = { followers: 3, following: 4 };

export function encodeIdPageToken(kind: FollowListKind, userId: bigint, lastId: bigint): string {
  return encodeKeysetToken(ID_KINDS[kind], userId, [lastId]);
}

/** The last id in `token`, issued for `kind` of `userId`; InvalidArgument otherwise. */
export function decodeIdPageToken(token: string, kind: FollowListKind, userId: bigint): bigint {
  return decodeKeysetToken(token, ID_KINDS[kind], userId, 1)[0]!;
}
