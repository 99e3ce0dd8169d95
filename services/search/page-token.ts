// SearchTweets page tokens: a keyset cursor (the last tweet id of the page)
// bound to the query it was issued for.
//
//   byte 0      format version (1)
//   bytes 1-8   the first 8 bytes of SHA-256(canonical query)
//   bytes 9-16  the last tweet id returned, big-endian
//
// base64url without padding (23 characters). Tokens are not signed: a forged
// one can only start a page of a search anyone may run.
import { createHash } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";

const VERSION = 1;
const LENGTH = 17;
const CANONICAL_BASE64URL = /^[A-Za-z0-9_-]+$/;

export function queryFingerprint(canonicalQuery: string): Buffer {
  return createHash("sha256").update(canonicalQuery).digest().subarray(0, 8);
}

export function encodeSearchPageToken(fingerprint: Buffer, lastTweetId: bigint): string {
  const buf = Buffer.alloc(LENGTH);
  buf.writeUInt8(VERSION, 0);
  fingerprint.copy(buf, 1, 0, 8);
  buf.writeBigUInt64BE(lastTweetId, 9);
  return buf.toString("base64url");
}

/** The cursor of a token, or undefined for "" (the first page). InvalidArgument for anything else. */
export function decodeSearchPageToken(token: string, fingerprint: Buffer): bigint | undefined {
  if (token === "") return undefined;
  const bad = (): ConnectError => new ConnectError("invalid page token", Code.InvalidArgument);
  if (!CANONICAL_BASE64URL.test(token)) throw bad();
  const buf = Buffer.from(token, "base64url");
  // Only the canonical spelling: a token that decodes but re-encodes differently was not ours.
  if (buf.length !== LENGTH || buf.toString("base64url") !== token) throw bad();
  if (buf.readUInt8(0) !== VERSION) throw bad();
  if (!buf.subarray(1, 9).equals(fingerprint.subarray(0, 8))) throw bad();
  const last = buf.readBigUInt64BE(9);
  if (last === 0n) throw bad();
  return last;
}
