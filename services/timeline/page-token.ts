// Timeline page tokens: a keyset cursor on tweet ids (Snowflakes, so time
// order), the exclusive upper bound of the next page, bound to the timeline it
// was issued for. Tweets that arrive meanwhile are newer than every bound
// given out, so they never shift a page: pages stay disjoint and complete.
//
//   byte 0      format version (1)
//   byte 1      timeline kind (1 home, 2 user)
//   bytes 2-9   whose timeline: the caller (home) or the listed user, big-endian
//   bytes 10-17 the bound: the next page holds ids below it, big-endian
//
// base64url without padding (24 characters). Tokens are not signed: a forged
// one can only start a page of a timeline its holder may read anyway.
import { Code, ConnectError } from "@connectrpc/connect";

export type TimelineKind = "home" | "user";

const VERSION = 1;
const KINDS: Record<TimelineKind, number> = { home: 1, user: 2 };
const LENGTH = 18;

export function encodeTimelineToken(kind: TimelineKind, ownerId: bigint, before: bigint): string {
  const buf = Buffer.alloc(LENGTH);
  buf.writeUInt8(VERSION, 0);
  buf.writeUInt8(KINDS[kind], 1);
  buf.writeBigUInt64BE(ownerId, 2);
  buf.writeBigUInt64BE(before, 10);
  return buf.toString("base64url");
}

/** The bound in `token`; undefined for "" (the newest page). InvalidArgument for anything not issued for this timeline. */
export function decodeTimelineToken(token: string, kind: TimelineKind, ownerId: bigint): bigint | undefined {
  if (token === "") return undefined;
  const bad = (): ConnectError => new ConnectError("invalid page token", Code.InvalidArgument);
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  const buf = Buffer.from(token, "base64url");
  // Only the canonical spelling of a token we made.
  if (buf.length !== LENGTH || buf.toString("base64url") !== token) throw bad();
  if (buf.readUInt8(0) !== VERSION || buf.readUInt8(1) !== KINDS[kind]) throw bad();
  if (buf.readBigUInt64BE(2) !== ownerId) throw bad();
  const before = buf.readBigUInt64BE(10);
  if (before === 0n) throw bad();
  return before;
}
