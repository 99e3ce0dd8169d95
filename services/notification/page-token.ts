import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Page tokens of ListNotifications: a keyset cursor, the inbox id of the last
 * row the page used (rows are read in id order, newest first), bound to the
 * caller's inbox and to the view (flat or grouped), so a token replayed by
 * another user or in the other view is refused instead of paging through
 * something else.
 *
 * Layout (18 bytes, base64url without padding, 24 characters):
 *
 *   | 1: format version (1) | 1: view (1 flat, 2 grouped) | 8: recipient id | 8: last id |
 *
 * Integers are big-endian. Not signed: a forged token can only start a page of
 * the caller's own inbox at a position of its choosing.
 */
export type InboxView = "flat" | "grouped";

const FORMAT_V1 = 1;
const VIEWS: Record<InboxView, number> = { flat: 1, grouped: 2 };
const LENGTH = 18;

export function encodePageToken(view: InboxView, recipientId: bigint, lastId: bigint): string {
  const buf = Buffer.alloc(LENGTH);
  buf.writeUInt8(FORMAT_V1, 0);
  buf.writeUInt8(VIEWS[view], 1);
  buf.writeBigUInt64BE(recipientId, 2);
  buf.writeBigUInt64BE(lastId, 10);
  return buf.toString("base64url");
}

/** The last id in `token`, issued for `view` of `recipientId`; InvalidArgument for anything else. */
export function decodePageToken(token: string, view: InboxView, recipientId: bigint): bigint {
  const bad = (): ConnectError => new ConnectError("invalid page token", Code.InvalidArgument);
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  const buf = Buffer.from(token, "base64url");
  // Node's decoder ignores stray trailing bits; only the canonical spelling of a token we made is accepted.
  if (buf.length !== LENGTH || buf.toString("base64url") !== token) throw bad();
  if (buf.readUInt8(0) !== FORMAT_V1 || buf.readUInt8(1) !== VIEWS[view]) throw bad();
  if (buf.readBigUInt64BE(2) !== recipientId) throw bad();
  const lastId = buf.readBigUInt64BE(10);
  if (lastId === 0n) throw bad();
  return lastId;
}
