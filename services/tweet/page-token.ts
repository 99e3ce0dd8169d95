import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Page tokens of ListLikedTweets: a keyset cursor, the position of the last
 * like returned in the list's order (like_time DESC, tweet id DESC), bound to
 * the user whose likes are listed, so a token replayed on another user's list
 * is refused instead of paging through it from a foreign position.
 *
 * Layout (25 bytes, base64url without padding, 34 characters):
 *
 *   | 1: format version (1) | 8: user id | 8: like time, us since the epoch (signed) | 8: tweet id |
 *
 * Integers are big-endian. Not signed: a forged token can only start a page
 * of a list the caller may read anyway.
 */
export interface LikeCursor {
  /** like_time of the last like returned, microseconds since the epoch. */
  readonly likeTimeMicros: bigint;
  readonly tweetId: bigint;
}

const FORMAT_V1 = 1;
const LENGTH = 25;

export function encodeLikesPageToken(userId: bigint, cursor: LikeCursor): string {
  const buf = Buffer.alloc(LENGTH);
  buf.writeUInt8(FORMAT_V1, 0);
  buf.writeBigUInt64BE(userId, 1);
  buf.writeBigInt64BE(cursor.likeTimeMicros, 9);
  buf.writeBigUInt64BE(cursor.tweetId, 17);
  return buf.toString("base64url");
}

/** The cursor in `token`, which must have been issued for `userId`'s list; InvalidArgument otherwise. */
export function decodeLikesPageToken(token: string, userId: bigint): LikeCursor {
  const bad = (): ConnectError => new ConnectError("invalid page token", Code.InvalidArgument);
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  const buf = Buffer.from(token, "base64url");
  // Only the canonical spelling of a token we made: Node's decoder ignores stray trailing bits.
  if (buf.length !== LENGTH || buf.toString("base64url") !== token) throw bad();
  if (buf.readUInt8(0) !== FORMAT_V1 || buf.readBigUInt64BE(1) !== userId) throw bad();
  const likeTimeMicros = buf.readBigInt64BE(9);
  const tweetId = buf.readBigUInt64BE(17);
  if (likeTimeMicros <= 0n || tweetId === 0n) throw bad();
  return { likeTimeMicros, tweetId };
}

/**
 * Page tokens of GetThread's replies: the last reply id returned (replies go
 * oldest first, by id), bound to the tweet whose replies they are.
 *
 * Layout (17 bytes, base64url without padding, 23 characters):
 *
 *   | 1: format version (2) | 8: tweet id | 8: reply id |
 */
const REPLIES_V1 = 2;
const REPLIES_LENGTH = 17;

export function encodeRepliesPageToken(tweetId: bigint, lastReplyId: bigint): string {
  const buf = Buffer.alloc(REPLIES_LENGTH);
  buf.writeUInt8(REPLIES_V1, 0);
  buf.writeBigUInt64BE(tweetId, 1);
  buf.writeBigUInt64BE(lastReplyId, 9);
  return buf.toString("base64url");
}

/** The last reply id in `token`, which must have been issued for `tweetId`'s replies; InvalidArgument otherwise. */
export function decodeRepliesPageToken(token: string, tweetId: bigint): bigint {
  const bad = (): ConnectError => new ConnectError("invalid page token", Code.InvalidArgument);
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  const buf = Buffer.from(token, "base64url");
  if (buf.length !== REPLIES_LENGTH || buf.toString("base64url") !== token) throw bad();
  if (buf.readUInt8(0) !== REPLIES_V1 || buf.readBigUInt64BE(1) !== tweetId) throw bad();
  const replyId = buf.readBigUInt64BE(9);
  if (replyId === 0n) throw bad();
  return replyId;
}
