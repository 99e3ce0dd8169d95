import type { FileHandle } from "node:fs/promises";

/** Positional reads over a file, so containers are walked without loading them. */
export interface RandomAccess {
  readonly size: number;
  /** Up to `length` bytes at `offset` (fewer at the end of the file). */
  read(offset: number, length: number): Promise<Buffer>;
}

export function fileAccess(handle: FileHandle, size: number): RandomAccess {
  return {
    size,
    async read(offset, length) {
      const n = Math.max(0, Math.min(length, size - offset));
      const buf = Buffer.alloc(n);
      let got = 0;
      while (got < n) {
        const { bytesRead } = await handle.read(buf, got, n - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    },
  };
}

export function bufferAccess(buf: Buffer): RandomAccess {
  return {
    size: buf.length,
    read: async (offset, length) => buf.subarray(Math.min(offset, buf.length), Math.min(offset + length, buf.length)),
  };
}
