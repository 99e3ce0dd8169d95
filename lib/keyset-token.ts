import { Code, ConnectError } from "@connectrpc/connect";

/**
 * The page tokens of the keyset-paged lists (timelines, follow lists, blocks
 * and mutes, inboxes): a cursor bound to the list it was issued for, so a
 * token replayed on another list, another user's or another RPC's, is refused
 * instead of silently paging through the wrong one.
 *
 * Layout (base64url without padding):
 *
 *   | 1: format version (1) | 1: list kind | 8: owner id | 8 per cursor field |
 *
 * Integers are big-endian; a field is unsigned unless the caller says it is
 * signed (a time before 1970 is not expected, but its sign is kept). Tokens
 * are not signed: a forged one can only start a page of a list its holder may
 * read anyway, at a position of its choosing. Each list's kind numbers and
 * cursor fields are in its service's page-token.ts.
 */
const FORMAT_V1 = 1;
const HEADER = 10;

export function encodeKeysetToken(kind: number, ownerId: bigint, fields: readonly bigint[], signed: readonly boolean[] = []): string {
  const buf = Buffer.alloc(HEADER + 8 * fields.length);
  buf.writeUInt8(FORMAT_V1, 0);
  buf.writeUInt8(kind, 1);
  buf.writeBigUInt64BE(ownerId, 2);
  fields.forEach((f, i) => (signed[i] === true ? buf.writeBigInt64BE(f, HEADER + 8 * i) : buf.writeBigUInt64BE(f, HEADER + 8 * i)));
  return buf.toString("base64url");
}

/**
 * The `fieldCount` cursor fields of `token`, which must have been issued for
 * `kind` of `ownerId`, each above zero. InvalidArgument for anything else:
 * not base64url, not its canonical spelling, wrong length, version or list.
 */
export function decodeKeysetToken(token: string, kind: number, ownerId: bigint, fieldCount: number, signed: readonly boolean[] = []): bigint[] {
  const bad = (): ConnectError => new ConnectError("invalid page token", Code.InvalidArgument);
  if (!/^[A-Za-z0-9_-]+$/.test(token)) throw bad();
  const buf = Buffer.from(token, "base64url");
  // Node's decoder ignores stray trailing bits; only the canonical spelling of a token we made is accepted.
  if (buf.length !== HEADER + 8 * fieldCount || buf.toString("base64url") !== token) throw bad();
  if (buf.readUInt8(0) !== FORMAT_V1 || buf.readUInt8(1) !== kind) throw bad();
  if (buf.readBigUInt64BE(2) !== ownerId) throw bad();
  const fields = Array.from({ length: fieldCount }, (_, i) => (signed[i] === true ? buf.readBigInt64BE(HEADER + 8 * i) : buf.readBigUInt64BE(HEADER + 8 * i)));
  if (fields.some((f) => f <= 0n)) throw bad();
  return fields;
}
