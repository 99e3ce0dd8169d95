// Decoded cache entries kept in process memory, so a hot read does not decode
// the same protobuf bytes again: a home timeline page reads ten tweets and
// ten profiles from Redis, nearly always the same bytes as the last time.
//
// Exact by construction: an entry is reused only when the bytes Redis just
// answered are equal to the bytes it was decoded from (one memcmp), so a like,
// an edit, a delete or a profile change (new bytes in Redis: a new version,
// new counts, a tombstone) is decoded afresh on the first read that sees it.
// Redis stays the source of truth and is still read on every request; only
// the decoding is saved. Bounded: the least recently used id goes first.
//
// The decoded values are shared between reads, as a cache hit already was
// within one batch: whoever receives one must not change it (tweets are
// shown through shallow copies, tweet/reads.ts).
import { LruMap } from "./lru.js";

/** How many ids a memo holds by default (a few MiB: bytes and decoded message per entry). */
export const DEFAULT_DECODED_MEMO_SIZE = 20_000;

export class DecodedMemo<V> {
  private readonly entries: LruMap<bigint, { readonly bytes: Buffer; readonly value: V }>;

  /** `size`: ids held at most; 0 keeps nothing (every read decodes). */
  constructor(size: number = DEFAULT_DECODED_MEMO_SIZE) {
    this.entries = new LruMap(size);
  }

  /**
   * `decode(bytes)`, or the value decoded before from equal bytes for `id`.
   * A value `decode` refuses (undefined) is not kept.
   */
  decode(id: bigint, bytes: Buffer, decode: (bytes: Buffer) => V | undefined): V | undefined {
    const had = this.entries.get(id);
    if (had !== undefined && had.bytes.equals(bytes)) return had.value;
    const value = decode(bytes);
    // A copy: Redis replies can be views into a larger socket buffer.
    if (value !== undefined && this.entries.capacity > 0) this.entries.set(id, { bytes: Buffer.from(bytes), value });
    return value;
  }

  /** Ids held now. */
  get held(): number {
    return this.entries.size;
  }
}
