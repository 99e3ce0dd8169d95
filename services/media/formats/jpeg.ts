// JPEG: walk the marker segments to find the frame size and EXIF orientation,
// check the file runs from SOI through its scans to EOI, and rebuild it
// without metadata segments.
import { fail } from "./errors.js";

export interface JpegInfo {
  readonly width: number;
  readonly height: number;
  /** EXIF orientation 1-8 (1 when absent or unreadable). */
  readonly orientation: number;
}

interface Segment {
  readonly marker: number;
  /** Offset of the 0xFF of the marker. */
  readonly start: number;
  /** Offset just past the segment (for SOS: past its entropy-coded data). */
  readonly end: number;
  /** Offset and length of the segment's payload (after the length field). */
  readonly data: number;
  readonly dataLength: number;
}

// Start-of-frame markers: every SOFn except DHT (C4), JPG (C8) and DAC (CC).
const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);
const SOS = 0xda;
const EOI = 0xd9;
const APP1 = 0xe1;
const APP2 = 0xe2;
const COM = 0xfe;

function segments(buf: Buffer): Segment[] {
  if (buf.length < 4 || buf[0] !== 0xff || buf[1] !== 0xd8) fail("jpeg: no start of image");
  const out: Segment[] = [];
  let at = 2;
  for (;;) {
    if (at >= buf.length) fail("jpeg: truncated (no end of image)");
    if (buf[at] !== 0xff) fail("jpeg: bad marker");
    // Fill bytes: any number of 0xFF before a marker.
    while (buf[at + 1] === 0xff) at++;
    const marker = buf[at + 1];
    if (marker === undefined) fail("jpeg: truncated (no end of image)");
    if (marker === EOI) {
      out.push({ marker, start: at, end: at + 2, data: at + 2, dataLength: 0 });
      return out;
    }
    if (marker === 0x00 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) fail("jpeg: unexpected marker");
    if (at + 4 > buf.length) fail("jpeg: truncated segment");
    const length = buf.readUInt16BE(at + 2);
    if (length < 2) fail("jpeg: bad segment length");
    const end = at + 2 + length;
    if (end > buf.length) fail("jpeg: truncated segment");
    if (marker !== SOS) {
      out.push({ marker, start: at, end, data: at + 4, dataLength: length - 2 });
      at = end;
      continue;
    }
    // Entropy-coded data runs to the next marker that is not a stuffed 0xFF00
    // or a restart marker (RST0-7).
    let scan = end;
    for (;;) {
      scan = buf.indexOf(0xff, scan);
      if (scan < 0 || scan + 1 >= buf.length) fail("jpeg: truncated scan");
      const next = buf[scan + 1]!;
      if (next === 0x00 || (next >= 0xd0 && next <= 0xd7) || next === 0xff) {
        scan += next === 0xff ? 1 : 2;
        continue;
      }
      break;
    }
    out.push({ marker, start: at, end: scan, data: at + 4, dataLength: length - 2 });
    at = scan;
  }
}

/** Frame size and orientation; MediaFormatError unless the file is a whole baseline/progressive JPEG. */
export function parseJpeg(buf: Buffer): JpegInfo {
  const segs = segments(buf);
  let width = 0;
  let height = 0;
  let orientation = 1;
  let sawScan = false;
  for (const s of segs) {
    if (SOF.has(s.marker)) {
      if (s.dataLength < 6) fail("jpeg: short frame header");
      height = buf.readUInt16BE(s.data + 1);
      width = buf.readUInt16BE(s.data + 3);
    } else if (s.marker === SOS) {
      if (width === 0) fail("jpeg: scan before frame header");
      sawScan = true;
    } else if (s.marker === APP1 && orientation === 1) {
      orientation = exifOrientation(buf.subarray(s.data, s.data + s.dataLength)) ?? 1;
    }
  }
  if (width === 0 || height === 0) fail("jpeg: no frame size");
  if (!sawScan) fail("jpeg: no image data");
  return { width, height, orientation };
}

/**
 * The same image without metadata: APP1 (EXIF, XMP), APP3-APP13, APP15,
 * APP2 other than an ICC profile, comments, and anything after EOI are
 * dropped. Kept: JFIF (APP0), ICC (APP2), Adobe (APP14, needed for colour
 * transforms), tables, frames and scans. An orientation other than 1 is kept
 * as a minimal EXIF block holding only that tag, so the photo still displays
 * upright.
 */
export function stripJpeg(buf: Buffer, orientation: number): Buffer {
  const parts: Buffer[] = [buf.subarray(0, 2)];
  let exifWritten = false;
  const writeOrientation = (): void => {
    if (exifWritten || orientation === 1) return;
    exifWritten = true;
    parts.push(orientationExif(orientation));
  };
  for (const s of segments(buf)) {
    const m = s.marker;
    const app = m >= 0xe0 && m <= 0xef;
    if (m === COM) continue;
    if (app && m !== 0xe0 && m !== 0xee && !(m === APP2 && isIcc(buf, s))) continue;
    // After JFIF (which must come first), before everything else.
    if (m !== 0xe0) writeOrientation();
    parts.push(buf.subarray(s.start, s.end));
  }
  return Buffer.concat(parts);
}

function isIcc(buf: Buffer, s: Segment): boolean {
  return s.dataLength >= 12 && buf.toString("latin1", s.data, s.data + 12) === "ICC_PROFILE\0";
}

/** APP1 "Exif" with one IFD entry: Orientation (0x0112, SHORT). */
function orientationExif(orientation: number): Buffer {
  const tiff = Buffer.alloc(26);
  tiff.write("MM", 0, "latin1");
  tiff.writeUInt16BE(42, 2);
  tiff.writeUInt32BE(8, 4); // IFD0 right after the header
  tiff.writeUInt16BE(1, 8); // one entry
  tiff.writeUInt16BE(0x0112, 10);
  tiff.writeUInt16BE(3, 12); // SHORT
  tiff.writeUInt32BE(1, 14); // count
  tiff.writeUInt16BE(orientation, 18); // value, left-justified in the 4 bytes
  tiff.writeUInt32BE(0, 22); // no next IFD
  const header = Buffer.alloc(4 + 6);
  header.writeUInt16BE(0xffe1, 0);
  header.writeUInt16BE(2 + 6 + tiff.length, 2);
  header.write("Exif\0\0", 4, "latin1");
  return Buffer.concat([header, tiff]);
}

/** Orientation (tag 0x0112) from IFD0 of an APP1 EXIF payload, if readable. */
export function exifOrientation(payload: Buffer): number | undefined {
  if (payload.length < 14 || payload.toString("latin1", 0, 6) !== "Exif\0\0") return undefined;
  const tiff = payload.subarray(6);
  const order = tiff.toString("latin1", 0, 2);
  if (order !== "II" && order !== "MM") return undefined;
  const le = order === "II";
  const u16 = (at: number): number | undefined => (at + 2 <= tiff.length ? (le ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at)) : undefined);
  const u32 = (at: number): number | undefined => (at + 4 <= tiff.length ? (le ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at)) : undefined);
  if (u16(2) !== 42) return undefined;
  const ifd = u32(4);
  if (ifd === undefined) return undefined;
  const count = u16(ifd);
  if (count === undefined) return undefined;
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (u16(entry) === 0x0112 && u16(entry + 2) === 3) {
      const value = u16(entry + 8);
      return value !== undefined && value >= 1 && value <= 8 ? value : undefined;
    }
  }
  return undefined;
}
