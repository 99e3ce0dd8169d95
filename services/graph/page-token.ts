import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Page tokens of ListFollowers/ListFollowing: a keyset cursor, the position of
 * the last edge returned in the list's order (follow_time DESC, other user's
 * id DESC). It names the list it belongs to, so a token replayed on another
 * user's list, or on the other RPC, is refused instead of silently paging
 * through the wrong list.
 *
 * Layout (26 bytes, base64url without padding, 35 characters):
 *
 *   | 1: format version (1) | 1: list kind | 8: user id | 8: follow time, us since epoch (signed) | 8: other user id |
 *
 * Integers are big-endian. Tokens are not signed: a forged one can only start a
 * page of a list the caller may read anyway, at a position of its choosing.
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

const FORMAT_V1 = 1;
// ListBlocked and ListMuted (the caller's blocks and mutes, newest first) use the same layout: 5 and 6.
const KINDS: Record<ListKind, number> = { followers: 1, following: 2, blocked: 5, muted: 6 };
const LENGTH = 26;

export function encodePageToken(kind: ListKind, userId: bigint, cursor: PageCursor): string {
  const buf = Buffer.alloc(LENGTH);
  buf.writeUInt8(FORMAT_V1, 0);
  buf.writeUInt8(KINDS[kind], 1);
  buf.writeBigUInt64BE(userId, 2);
  buf.writeBigInt64BE(cursor.followTimeMicros, 10);
  buf.writeBigUInt64BE(cursor.otherUserId, 18);
  return buf.toString("base64url");
}

/**
 * The cursor in `token`, which must have been issued for `kind` of `userId`.
 * InvalidArgument for anything else: not base64url, wrong length or version,
 * another list.
 */
export function decodePageToken(token: string, kind: ListKind, userId: bigint): PageCursor {
  const bad = (): ConnectError => new ConnectError("invalid page token", Code.InvalidArgument);
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  const buf = Buffer.from(token, "base64url");
  // Node's decoder ignores stray trailing bits; only the canonical spelling of a token we made is accepted.
  if (buf.length !== LENGTH || buf.toString("base64url") !== token) throw bad();
  if (buf.readUInt8(0) !== FORMAT_V1 || buf.readUInt8(1) !== KINDS[kind]) throw bad();
  if (buf.readBigUInt64BE(2) !== userId) throw bad();
  const followTimeMicros = buf.readBigInt64BE(10);
  const otherUserId = buf.readBigUInt64BE(18);
  if (followTimeMicros <= 0n || otherUserId === 0n) throw bad();
  return { followTimeMicros, otherUserId };
}

/**
 * Page tokens of the internal ListFollowerIds/ListFollowingIds: the last id
 * returned (the lists are in ascending id order), bound to the list.
 *
 * Layout (18 bytes, base64url without padding, 24 characters):
 *
 *   | 1: format version (1) | 1: list kind (3 follower ids, 4 following ids) | 8: user id | 8: last id returned |
 */
const ID_KINDS: Record<FollowListKind, number> = { followers: 3, following: 4 };
const ID_LENGTH = 18;

export function encodeIdPageToken(kind: FollowListKind, userId: bigint, lastId: bigint): string {
  const buf = Buffer.alloc(ID_LENGTH);
  buf.writeUInt8(FORMAT_V1, 0);
  buf.writeUInt8(ID_KINDS[kind], 1);
  buf.writeBigUInt64BE(userId, 2);
  buf.writeBigUInt64BE(lastId, 10);
  return buf.toString("base64url");
}

/** The last id in `token`, issued for `kind` of `userId`; InvalidArgument otherwise. */
export function decodeIdPageToken(token: string, kind: FollowListKind, userId: bigint): bigint {
  const bad = (): ConnectError => new ConnectError("invalid page token", Code.InvalidArgument);
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  const buf = Buffer.from(token, "base64url");
  if (buf.length !== ID_LENGTH || buf.toString("base64url") !== token) throw bad();
  if (buf.readUInt8(0) !== FORMAT_V1 || buf.readUInt8(1) !== ID_KINDS[kind]) throw bad();
  if (buf.readBigUInt64BE(2) !== userId) throw bad();
  const lastId = buf.readBigUInt64BE(10);
  if (lastId === 0n) throw bad();
  return lastId;
}
