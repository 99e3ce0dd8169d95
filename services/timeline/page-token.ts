// Timeline page tokens: a keyset cursor on tweet ids (Snowflakes, so time
// order), the exclusive upper bound of the next page, bound to the timeline it
// was issued for. Tweets that arrive meanwhile are newer than every bound
// given out, so they never shift a page: pages stay disjoint and complete.
// The layout is lib/keyset-token.ts's (18 bytes, 24 characters): kind 1 home,
// 2 user; owner the caller (home) or the listed user; one field, the bound
// (the next page holds ids below it). Not signed: a forged token can only
// start a page of a timeline its holder may read anyway.
import { decodeKeysetToken, encodeKeysetToken } from "../../lib/keyset-token.js";

export type TimelineKind = "home" | "user";

const KINDS: Record<TimelineKind, number> = { home: 1, user: 2 };

export function encodeTimelineToken(kind: TimelineKind, ownerId: bigint, before: bigint): string {
  return encodeKeysetToken(KINDS[kind], ownerId, [before]);
}

/** The bound in `token`; undefined for "" (the newest page). InvalidArgument for anything not issued for this timeline. */
export function decodeTimelineToken(token: string, kind: TimelineKind, ownerId: bigint): bigint | undefined {
  if (token === "") return undefined;
  return decodeKeysetToken(token, KINDS[kind], ownerId, 1)[0]!;
}
