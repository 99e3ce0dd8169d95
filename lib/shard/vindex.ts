// Vindexes: functions from a sharding value to a keyspace id, byte-compatible
// with the Vitess vindexes of the same name, so rows placed by Chirp sit where
// Vitess would look for them (see shard-config/README.md).
import { createCipheriv, createDecipheriv, createHash } from "node:crypto";

export class VindexError extends Error {
  override readonly name = "VindexError";
}

export const MAX_UINT64 = (1n << 64n) - 1n;

const DECIMAL_RE = /^[0-9]{1,20}$/;

// Vitess's `hash` is DES with an all-zero key. Node's default OpenSSL provider
// has no single DES (`des-ecb` is in the legacy provider), but 3DES-EDE with
// K1 = K2 = K3 is E(D(E(x))) = E(x): the same permutation.
const ZERO_3DES_KEY = Buffer.alloc(24);

// ECB has no chaining, so one long-lived cipher in each direction encrypts any
// number of blocks, one update() each, and is never finalised: a cipher per
// id cost more than the rest of a tweet's shard lookup (1-2 % of a home read's
// CPU, profiled). Node is single-threaded: no two updates interleave.
const encryptor = createCipheriv("des-ede3", ZERO_3DES_KEY, null).setAutoPadding(false);
const decryptor = createDecipheriv("des-ede3", ZERO_3DES_KEY, null).setAutoPadding(false);

/** Parses a uint64 id given as a bigint or a decimal string. */
export function parseUint64(id: bigint | string): bigint {
  let n: bigint;
  if (typeof id === "bigint") n = id;
  else if (typeof id === "string" && DECIMAL_RE.test(id)) n = BigInt(id);
  else throw new VindexError(`id must be a decimal uint64, got ${describe(id)}`);
  if (n < 0n || n > MAX_UINT64) throw new VindexError(`id ${n} is outside uint64`);
  return n;
}

/** Vitess `hash`: DES (zero key) of the 8-byte big-endian id. User 1 -> 166b40b44aba4bd6. */
export function hashVindex(id: bigint | string): Buffer {
  const block = Buffer.allocUnsafe(8);
  block.writeBigUInt64BE(parseUint64(id));
  return encryptor.update(block);
}

/** The id a `hash` keyspace id came from (DES is a permutation, so every 8 bytes have one). */
export function hashVindexReverse(ksid: Buffer): bigint {
  if (ksid.length !== 8) throw new VindexError(`invalid keyspace id: ${ksid.toString("hex")} (want 8 bytes)`);
  return decryptor.update(ksid).readBigUInt64BE();
}

/** Vitess `binary_md5`: md5 of the raw bytes (strings as UTF-8). 16-byte keyspace ids. */
export function binaryMd5Vindex(value: string | Buffer): Buffer {
  if (typeof value !== "string" && !Buffer.isBuffer(value)) {
    throw new VindexError(`binary_md5 takes a string or bytes, got ${describe(value)}`);
  }
  return createHash("md5").update(value).digest();
}

/**
 * Keyspace id of a handle's `user_handles` row: binary_md5 of the lower-cased
 * handle (the column `handle_lower`). Only ASCII letters fold; handles are
 * [A-Za-z0-9_], and a locale-aware fold could differ between processes.
 */
export function handleKeyspaceId(handle: string): Buffer {
  if (typeof handle !== "string") throw new VindexError(`handle must be a string, got ${describe(handle)}`);
  return binaryMd5Vindex(lowerAscii(handle));
}

export function lowerAscii(s: string): string {
  return s.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return typeof v;
}
