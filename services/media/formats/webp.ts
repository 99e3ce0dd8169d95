// WebP: the RIFF container's chunks for the canvas size; rebuild it without
// the EXIF and XMP chunks (and their VP8X flags).
import { fail } from "./errors.js";

export interface WebpInfo {
  readonly width: number;
  readonly height: number;
}

interface Chunk {
  readonly fourcc: string;
  readonly start: number;
  /** Past the chunk and its padding byte. */
  readonly end: number;
  readonly data: number;
  readonly length: number;
}

const VP8X_EXIF = 0x08;
const VP8X_XMP = 0x04;

function chunks(buf: Buffer): Chunk[] {
  if (buf.length < 12 || buf.toString("latin1", 0, 4) !== "RIFF" || buf.toString("latin1", 8, 12) !== "WEBP") fail("webp: no RIFF header");
  const riffEnd = 8 + buf.readUInt32LE(4);
  if (riffEnd > buf.length) fail("webp: truncated");
  const out: Chunk[] = [];
  let at = 12;
  while (at < riffEnd) {
    if (at + 8 > riffEnd) fail("webp: truncated chunk header");
    const fourcc = buf.toString("latin1", at, at + 4);
    const length = buf.readUInt32LE(at + 4);
    const end = at + 8 + length + (length & 1);
    if (at + 8 + length > riffEnd) fail("webp: truncated chunk");
    out.push({ fourcc, start: at, end: Math.min(end, riffEnd), data: at + 8, length });
    at = end;
  }
  if (out.length === 0) fail("webp: no chunks");
  return out;
}

export function parseWebp(buf: Buffer): WebpInfo {
  const all = chunks(buf);
  const first = all[0]!;
  let size: WebpInfo;
  if (first.fourcc === "VP8X") {
    if (first.length < 10) fail("webp: short VP8X");
    size = { width: 1 + buf.readUIntLE(first.data + 4, 3), height: 1 + buf.readUIntLE(first.data + 7, 3) };
    const flags = buf[first.data]!;
    const animated = (flags & 0x02) !== 0;
    if (!all.some((c) => c.fourcc === (animated ? "ANMF" : "VP8 ") || c.fourcc === "VP8L")) fail("webp: no image data");
  } else if (first.fourcc === "VP8 ") {
    // Frame tag (3 bytes), start code 9d 01 2a, then 14-bit width and height.
    if (first.length < 10 || buf[first.data + 3] !== 0x9d || buf[first.data + 4] !== 0x01 || buf[first.data + 5] !== 0x2a) fail("webp: bad VP8 header");
    size = { width: buf.readUInt16LE(first.data + 6) & 0x3fff, height: buf.readUInt16LE(first.data + 8) & 0x3fff };
  } else if (first.fourcc === "VP8L") {
    // Signature 0x2f, then width-1 and height-1 in 14 bits each, LSB first.
    if (first.length < 5 || buf[first.data] !== 0x2f) fail("webp: bad VP8L header");
    const bits = buf.readUInt32LE(first.data + 1);
    size = { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  } else {
    fail("webp: unknown first chunk");
  }
  if (size.width === 0 || size.height === 0) fail("webp: empty image");
  return size;
}

export function stripWebp(buf: Buffer): Buffer {
  const kept = chunks(buf).filter((c) => c.fourcc !== "EXIF" && c.fourcc !== "XMP ");
  const body = Buffer.concat(
    kept.map((c) => {
      const bytes = Buffer.from(buf.subarray(c.start, c.end));
      if (c.fourcc === "VP8X") bytes[8] = bytes[8]! & ~(VP8X_EXIF | VP8X_XMP);
      // A final odd-length chunk may have lost its padding byte to riffEnd.
      return bytes.length === 8 + c.length + (c.length & 1) ? bytes : Buffer.concat([bytes, Buffer.alloc(1)]);
    }),
  );
  const header = Buffer.alloc(12);
  header.write("RIFF", 0, "latin1");
  header.writeUInt32LE(4 + body.length, 4);
  header.write("WEBP", 8, "latin1");
  return Buffer.concat([header, body]);
}
