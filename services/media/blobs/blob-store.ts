// Content-addressed blob storage: a blob's name is the lower-case hex SHA-256
// of its bytes, so the same file is stored once, a name says nothing a user
// chose, and a name that is not 64 hex digits never reaches a path or a key.
import { Code, ConnectError } from "@connectrpc/connect";

export interface BlobInfo {
  readonly size: number;
  /** When it was last written (or re-written by a duplicate upload). */
  readonly modifiedMs: number;
}

export type BlobSource = { readonly path: string } | { readonly bytes: Buffer };

export interface BlobStore {
  /** Where uploads are spooled before they are stored (a local folder either way). */
  readonly spoolDir: string;
  /**
   * Stores `source` as blob `sha256` (the caller computed the hash of those
   * bytes). Storing a blob that exists refreshes its modification time, which
   * the sweep reads. A `path` source is left in place for the caller.
   */
  put(sha256: string, source: BlobSource, size: number): Promise<void>;
  stat(sha256: string): Promise<BlobInfo | undefined>;
  /** Bytes [start, end) of the blob. */
  read(sha256: string, start: number, end: number, signal?: AbortSignal): AsyncIterable<Uint8Array>;
  /** Deletes it; a blob already gone is not an error. */
  delete(sha256: string): Promise<void>;
}

const HASH = /^[0-9a-f]{64}$/;

/** Refuses anything but a blob name. */
export function checkBlobName(sha256: string): string {
  if (!HASH.test(sha256)) throw new ConnectError("bad blob name", Code.Internal);
  return sha256;
}
