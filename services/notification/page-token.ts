import { decodeKeysetToken, encodeKeysetToken } from "../../lib/keyset-token.js";

/**
 * Page tokens of ListNotifications: a keyset cursor, the inbox id of the last
 * row the page used (rows are read in id order, newest first), bound to the
 * caller's inbox and to the view (flat or grouped), so a token replayed by
 * another user or in the other view is refused instead of paging through
 * something else.
 *
 * The layout is lib/keyset-token.ts's (18 bytes, 24 characters): kind 1 flat,
 * 2 grouped; owner the recipient; one field, the last id. Not signed: a forged
 * token can only start a page of the caller's own inbox at a position of its
 * choosing.
 */
export type InboxView = "flat" | "grouped";

const VIEWS: Record<InboxView, number> = { flat: 1, grouped: 2 };

export function encodePageToken(view: InboxView, recipientId: bigint, lastId: bigint): string {
  return encodeKeysetToken(VIEWS[view], recipientId, [lastId]);
}

/** The last id in `token`, issued for `view` of `recipientId`; InvalidArgument for anything else. */
export function decodePageToken(token: string, view: InboxView, recipientId: bigint): bigint {
  return decodeKeysetToken(token, VIEWS[view], recipientId, 1)[0]!;
}
