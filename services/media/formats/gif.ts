// GIF: walk the block structure for the logical screen size and check that
// it ends with a trailer; rebuild it without comments and application
// extensions other than the looping ones.
import { fail } from "./errors.js";

export interface GifInfo {
  readonly width: number;
  readonly height: number;
  readonly frames: number;
}

// Application extensions that only control animation; XMP ("XMP DataXMP")
// and any other application data are dropped.
const KEPT_APPLICATIONS = new Set(["NETSCAPE2.0", "ANIMEXTS1.0"]);

interface Walk {
  readonly info: GifInfo;
  /** [start, end) byte ranges of the file to keep, in order. */
  readonly kept: Array<[number, number]>;
}

function walk(buf: Buffer): Walk {
  if (buf.length < 13) fail("gif: truncated header");
  const width = buf.readUInt16LE(6);
  const height = buf.readUInt16LE(8);
  const packed = buf[10]!;
  let at = 13;
  if (packed & 0x80) at += 3 * (1 << ((packed & 7) + 1));
  if (at > buf.length) fail("gif: truncated colour table");
  const kept: Array<[number, number]> = [[0, at]];
  let frames = 0;

  /** Offset past a run of data sub-blocks starting at `from`. */
  const subBlocks = (from: number): number => {
    let p = from;
    for (;;) {
      const size = buf[p];
      if (size === undefined) fail("gif: truncated data");
      p += 1 + size;
      if (size === 0) return p;
      if (p > buf.length) fail("gif: truncated data");
    }
  };

  for (;;) {
    const introducer = buf[at];
    if (introducer === undefined) fail("gif: truncated (no trailer)");
    if (introducer === 0x3b) {
      kept.push([at, at + 1]);
      break;
    }
    if (introducer === 0x21) {
      const label = buf[at + 1];
      if (label === undefined) fail("gif: truncated extension");
      const end = subBlocks(at + 2);
      let keep = label !== 0xfe; // comment
      if (label === 0xff) {
        const size = buf[at + 2];
        keep = size === 11 && KEPT_APPLICATIONS.has(buf.toString("latin1", at + 3, at + 14));
      }
      if (keep) kept.push([at, end]);
      at = end;
      continue;
    }
    if (introducer === 0x2c) {
      if (at + 10 > buf.length) fail("gif: truncated image descriptor");
      const local = buf[at + 9]!;
      let p = at + 10;
      if (local & 0x80) p += 3 * (1 << ((local & 7) + 1));
      p += 1; // LZW minimum code size
      if (p > buf.length) fail("gif: truncated image");
      const end = subBlocks(p);
      kept.push([at, end]);
      frames++;
      at = end;
      continue;
    }
    fail("gif: unknown block");
  }
  if (width === 0 || height === 0) fail("gif: empty image");
  if (frames === 0) fail("gif: no image data");
  return { info: { width, height, frames }, kept };
}

export function parseGif(buf: Buffer): GifInfo {
  return walk(buf).info;
}

export function stripGif(buf: Buffer): Buffer {
  return Buffer.concat(walk(buf).kept.map(([s, e]) => buf.subarray(s, e)));
}
