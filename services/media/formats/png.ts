// PNG (and APNG): walk the chunks, checking each CRC, for the size; rebuild
// the file from the chunks that draw the image, without text, time or EXIF.
import { crc32 } from "node:zlib";
import { fail } from "./errors.js";

export interface PngInfo {
  readonly width: number;
  readonly height: number;
}

const SIGNATURE_LENGTH = 8;

// Chunks that take part in drawing the image (PNG 3rd edition, APNG). Every
// other ancillary chunk (tEXt, zTXt, iTXt, tIME, eXIf and unknown ones) is
// metadata or private, and is dropped.
const KEPT = new Set(["IHDR", "PLTE", "IDAT", "IEND", "tRNS", "cHRM", "gAMA", "iCCP", "sBIT", "sRGB", "cICP", "mDCV", "cLLI", "bKGD", "pHYs", "acTL", "fcTL", "fdAT"]);

interface Chunk {
  readonly type: string;
  readonly start: number;
  readonly end: number;
  readonly data: number;
  readonly length: number;
}

function chunks(buf: Buffer): Chunk[] {
  if (buf.length < SIGNATURE_LENGTH) fail("png: no signature");
  const out: Chunk[] = [];
  let at = SIGNATURE_LENGTH;
  for (;;) {
    if (at + 12 > buf.length) fail("png: truncated (no IEND)");
    const length = buf.readUInt32BE(at);
    const type = buf.toString("latin1", at + 4, at + 8);
    if (!/^[A-Za-z]{4}$/.test(type)) fail("png: bad chunk type");
    const end = at + 12 + length;
    if (length > 0x7fffffff || end > buf.length) fail("png: truncated chunk");
    if (crc32(buf.subarray(at + 4, at + 8 + length)) !== buf.readUInt32BE(at + 8 + length)) fail("png: chunk checksum mismatch");
    out.push({ type, start: at, end, data: at + 8, length });
    if (out.length === 1 && type !== "IHDR") fail("png: IHDR is not first");
    if (type === "IEND") return out;
    // Uppercase first letter: critical. One we do not know cannot be drawn.
    if (type.charCodeAt(0) < 0x61 && !KEPT.has(type)) fail("png: unknown critical chunk");
    at = end;
  }
}

export function parsePng(buf: Buffer): PngInfo {
  const all = chunks(buf);
  const ihdr = all[0]!;
  if (ihdr.length !== 13) fail("png: bad IHDR");
  const width = buf.readUInt32BE(ihdr.data);
  const height = buf.readUInt32BE(ihdr.data + 4);
  if (width === 0 || height === 0) fail("png: empty image");
  if (!all.some((c) => c.type === "IDAT")) fail("png: no image data");
  return { width, height };
}

/** The same image with only the chunks in KEPT; bytes after IEND are dropped. */
export function stripPng(buf: Buffer): Buffer {
  const parts: Buffer[] = [buf.subarray(0, SIGNATURE_LENGTH)];
  for (const c of chunks(buf)) if (KEPT.has(c.type)) parts.push(buf.subarray(c.start, c.end));
  return Buffer.concat(parts);
}
