// Real files made in code, for the tests: images through real encoders (or
// built chunk by chunk), videos as minimal valid containers, and the broken
// ones the service must refuse. Test support only; nothing in the service
// imports it.
import { randomBytes } from "node:crypto";
import { crc32, deflateSync } from "node:zlib";
import { encode as encodeJpeg } from "jpeg-js";
import { GifWriter } from "omggif";

/** Bytes that must never survive into a served file: they sit only in metadata. */
export const SECRET_MAKE = "ChirpSecretCam";
export const SECRET_TEXT = "secret-comment-gps-home";
/** 51° 30' 26.4" N, 0° 7' 39.6" W, as EXIF rationals (numerators are distinctive on purpose). */
export const GPS_LATITUDE: ReadonlyArray<readonly [number, number]> = [[51, 1], [30, 1], [26437, 1000]];
export const GPS_LONGITUDE: ReadonlyArray<readonly [number, number]> = [[0, 1], [7, 1], [39613, 1000]];

/** A gradient, so the encoders have something to encode and thumbnails something to average. */
export function gradient(width: number, height: number, alpha = 255): Uint8Array {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (y * width + x) * 4;
      data[p] = Math.round((x * 255) / Math.max(1, width - 1));
      data[p + 1] = Math.round((y * 255) / Math.max(1, height - 1));
      data[p + 2] = 128;
      data[p + 3] = alpha;
    }
  }
  return data;
}

// --- EXIF (TIFF) -------------------------------------------------------------

/**
 * A big-endian TIFF block: IFD0 with Make, Orientation (optional) and a GPS
 * IFD pointer; the GPS IFD with latitude and longitude.
 */
export function exifTiff(options: { orientation?: number } = {}): Buffer {
  const make = Buffer.from(`${SECRET_MAKE}\0`, "latin1");
  const entries0 = options.orientation === undefined ? 2 : 3;
  const ifd0 = 8;
  const ifd0Size = 2 + entries0 * 12 + 4;
  const makeAt = ifd0 + ifd0Size;
  const gpsAt = makeAt + make.length + (make.length & 1);
  const gpsEntries = 4;
  const gpsSize = 2 + gpsEntries * 12 + 4;
  const latAt = gpsAt + gpsSize;
  const lonAt = latAt + 24;
  const buf = Buffer.alloc(lonAt + 24);
  buf.write("MM", 0, "latin1");
  buf.writeUInt16BE(42, 2);
  buf.writeUInt32BE(ifd0, 4);
  let p = ifd0;
  buf.writeUInt16BE(entries0, p);
  p += 2;
  const entry = (tag: number, type: number, count: number, value: (at: number) => void): void => {
    buf.writeUInt16BE(tag, p);
    buf.writeUInt16BE(type, p + 2);
    buf.writeUInt32BE(count, p + 4);
    value(p + 8);
    p += 12;
  };
  entry(0x010f, 2, make.length, (at) => buf.writeUInt32BE(makeAt, at)); // Make (ASCII)
  if (options.orientation !== undefined) entry(0x0112, 3, 1, (at) => buf.writeUInt16BE(options.orientation!, at));
  entry(0x8825, 4, 1, (at) => buf.writeUInt32BE(gpsAt, at)); // GPSInfo IFD pointer
  buf.writeUInt32BE(0, p);
  make.copy(buf, makeAt);
  p = gpsAt;
  buf.writeUInt16BE(gpsEntries, p);
  p += 2;
  entry(0x0001, 2, 2, (at) => buf.write("N\0", at, "latin1")); // GPSLatitudeRef
  entry(0x0002, 5, 3, (at) => buf.writeUInt32BE(latAt, at)); // GPSLatitude
  entry(0x0003, 2, 2, (at) => buf.write("W\0", at, "latin1")); // GPSLongitudeRef
  entry(0x0004, 5, 3, (at) => buf.writeUInt32BE(lonAt, at)); // GPSLongitude
  buf.writeUInt32BE(0, p);
  GPS_LATITUDE.forEach(([n, d], i) => {
    buf.writeUInt32BE(n, latAt + i * 8);
    buf.writeUInt32BE(d, latAt + i * 8 + 4);
  });
  GPS_LONGITUDE.forEach(([n, d], i) => {
    buf.writeUInt32BE(n, lonAt + i * 8);
    buf.writeUInt32BE(d, lonAt + i * 8 + 4);
  });
  return buf;
}

/** An XMP packet with a GPS position, as cameras and editors write it. */
export function xmpPacket(): Buffer {
  return Buffer.from(
    `<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">` +
      `<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="51,30.44N" exif:GPSLongitude="0,7.66W"/></rdf:RDF></x:xmpmeta><?xpacket end="w"?>`,
    "utf8",
  );
}

// --- JPEG ----------------------------------------------------------------

function jpegSegment(marker: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt16BE(0xff00 | marker, 0);
  head.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([head, payload]);
}

/**
 * A baseline JPEG from jpeg-js, with EXIF (camera make, GPS, optional
 * orientation), XMP with GPS and a comment spliced in after its JFIF header.
 */
export function makeJpeg(options: { width?: number; height?: number; orientation?: number; metadata?: boolean } = {}): Buffer {
  const width = options.width ?? 64;
  const height = options.height ?? 48;
  const plain = encodeJpeg({ width, height, data: gradient(width, height) }, 90).data;
  if (options.metadata === false) return plain;
  // jpeg-js writes SOI, then APP0 (JFIF): insert after it.
  const app0End = 2 + 2 + plain.readUInt16BE(4);
  const exif = jpegSegment(0xe1, Buffer.concat([Buffer.from("Exif\0\0", "latin1"), exifTiff({ ...(options.orientation === undefined ? {} : { orientation: options.orientation }) })]));
  const xmp = jpegSegment(0xe1, Buffer.concat([Buffer.from("http://ns.adobe.com/xap/1.0/\0", "latin1"), xmpPacket()]));
  const comment = jpegSegment(0xfe, Buffer.from(SECRET_TEXT, "latin1"));
  return Buffer.concat([plain.subarray(0, app0End), exif, xmp, comment, plain.subarray(app0End)]);
}

// --- PNG -----------------------------------------------------------------

function pngChunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
  return Buffer.concat([head, data, crc]);
}

/** An 8-bit RGBA PNG with a tEXt comment and an eXIf chunk holding GPS. */
export function makePng(options: { width?: number; height?: number; alpha?: number; metadata?: boolean } = {}): Buffer {
  const width = options.width ?? 40;
  const height = options.height ?? 30;
  const pixels = gradient(width, height, options.alpha ?? 255);
  const raw = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 4 + 1)] = 0; // filter: none
    Buffer.from(pixels.buffer, y * width * 4, width * 4).copy(raw, y * (width * 4 + 1) + 1);
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 6;
  const meta =
    options.metadata === false
      ? []
      : [pngChunk("tEXt", Buffer.from(`Comment\0${SECRET_TEXT}`, "latin1")), pngChunk("eXIf", exifTiff()), pngChunk("iTXt", Buffer.concat([Buffer.from("XML:com.adobe.xmp\0\0\0\0\0", "latin1"), xmpPacket()]))];
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    ...meta,
    pngChunk("IDAT", deflateSync(raw)),
    pngChunk("IEND", Buffer.alloc(0)),
  ]);
}

// --- GIF -----------------------------------------------------------------

/** A two-frame looping GIF from omggif, with a comment and an XMP application extension. */
export function makeGif(options: { width?: number; height?: number; metadata?: boolean } = {}): Buffer {
  const width = options.width ?? 32;
  const height = options.height ?? 20;
  const palette = [0xff0000, 0x00ff00, 0x0000ff, 0xffffff];
  const buf = new Uint8Array(1024 + width * height * 4);
  const writer = new GifWriter(buf, width, height, { palette, loop: 0 });
  const frame = (shift: number): number[] => Array.from({ length: width * height }, (_, i) => ((i % width) + shift) % 4);
  writer.addFrame(0, 0, width, height, frame(0), { delay: 10 });
  writer.addFrame(0, 0, width, height, frame(1), { delay: 10 });
  const gif = Buffer.from(buf.subarray(0, writer.end()));
  if (options.metadata === false) return gif;
  const text = Buffer.from(SECRET_TEXT, "latin1");
  const comment = Buffer.concat([Buffer.from([0x21, 0xfe, text.length]), text, Buffer.from([0])]);
  const xmp = xmpPacket();
  const xmpBlocks: Buffer[] = [];
  for (let i = 0; i < xmp.length; i += 255) {
    const piece = xmp.subarray(i, i + 255);
    xmpBlocks.push(Buffer.from([piece.length]), piece);
  }
  const app = Buffer.concat([Buffer.from([0x21, 0xff, 11]), Buffer.from("XMP DataXMP", "latin1"), ...xmpBlocks, Buffer.from([0])]);
  // Before the trailer.
  return Buffer.concat([gif.subarray(0, gif.length - 1), comment, app, gif.subarray(gif.length - 1)]);
}

// --- WebP ----------------------------------------------------------------

/** LSB-first bit writer (VP8L's order). */
class Bits {
  private readonly bytes: number[] = [];
  private bit = 0;
  write(value: number, count: number): this {
    for (let i = 0; i < count; i++) {
      if (this.bit === 0) this.bytes.push(0);
      if ((value >> i) & 1) this.bytes[this.bytes.length - 1]! |= 1 << this.bit;
      this.bit = (this.bit + 1) & 7;
    }
    return this;
  }
  done(): Buffer {
    return Buffer.from(this.bytes);
  }
}

function riffChunk(fourcc: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.write(fourcc, 0, "latin1");
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data, data.length & 1 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

/**
 * A lossless WebP of one colour: a VP8L bitstream whose five prefix codes
 * each have a single symbol, so every pixel costs no bits. Wrapped in VP8X
 * with EXIF (GPS) and XMP chunks unless `metadata` is false.
 */
export function makeWebp(options: { width?: number; height?: number; argb?: [number, number, number, number]; metadata?: boolean } = {}): Buffer {
  const width = options.width ?? 50;
  const height = options.height ?? 20;
  const [a, r, g, b] = options.argb ?? [255, 200, 100, 50];
  const bits = new Bits()
    .write(0x2f, 8)
    .write(width - 1, 14)
    .write(height - 1, 14)
    .write(a === 255 ? 0 : 1, 1)
    .write(0, 3) // version
    .write(0, 1) // no transform
    .write(0, 1) // no colour cache
    .write(0, 1); // no meta prefix codes
  // Green, red, blue, alpha, distance: simple code, one symbol, 8-bit symbol.
  for (const symbol of [g, r, b, a, 0]) bits.write(1, 1).write(0, 1).write(1, 1).write(symbol, 8);
  const vp8l = riffChunk("VP8L", bits.done());
  let body: Buffer;
  if (options.metadata === false) {
    body = vp8l;
  } else {
    const vp8x = Buffer.alloc(10);
    vp8x[0] = 0x08 | 0x04 | (a === 255 ? 0 : 0x10);
    vp8x.writeUIntLE(width - 1, 4, 3);
    vp8x.writeUIntLE(height - 1, 7, 3);
    body = Buffer.concat([riffChunk("VP8X", vp8x), vp8l, riffChunk("EXIF", exifTiff()), riffChunk("XMP ", xmpPacket())]);
  }
  const head = Buffer.alloc(12);
  head.write("RIFF", 0, "latin1");
  head.writeUInt32LE(4 + body.length, 4);
  head.write("WEBP", 8, "latin1");
  return Buffer.concat([head, body]);
}

// --- MP4 -----------------------------------------------------------------

function box(type: string, ...parts: Buffer[]): Buffer {
  const data = Buffer.concat(parts);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8 + data.length, 0);
  head.write(type, 4, "latin1");
  return Buffer.concat([head, data]);
}

const MATRIX = (() => {
  const m = Buffer.alloc(36);
  m.writeUInt32BE(0x00010000, 0);
  m.writeUInt32BE(0x00010000, 16);
  m.writeUInt32BE(0x40000000, 32);
  return m;
})();

function track(id: number, handler: "vide" | "soun", width: number, height: number, duration: number): Buffer {
  const tkhd = Buffer.alloc(84);
  tkhd.writeUInt32BE(0x00000003, 0); // version 0, enabled | in movie
  tkhd.writeUInt32BE(id, 12);
  tkhd.writeUInt32BE(duration, 20);
  tkhd.writeUInt16BE(handler === "soun" ? 0x0100 : 0, 36); // volume
  MATRIX.copy(tkhd, 40);
  tkhd.writeUInt32BE(width * 65536, 76);
  tkhd.writeUInt32BE(height * 65536, 80);
  const mdhd = Buffer.alloc(24);
  mdhd.writeUInt32BE(1000, 12);
  mdhd.writeUInt32BE(duration, 16);
  mdhd.writeUInt16BE(0x55c4, 20); // "und"
  const hdlr = Buffer.concat([Buffer.alloc(8), Buffer.from(handler, "latin1"), Buffer.alloc(12), Buffer.from(`${handler === "vide" ? "Video" : "Sound"}Handler\0`, "latin1")]);
  return box("trak", box("tkhd", tkhd), box("mdia", box("mdhd", mdhd), box("hdlr", hdlr)));
}

/** ftyp, moov (mvhd; an audio track, then a video track) and mdat of `mediaBytes` random bytes. */
export function makeMp4(options: { width?: number; height?: number; durationMs?: number; mediaBytes?: number; moovFirst?: boolean } = {}): Buffer {
  const width = options.width ?? 640;
  const height = options.height ?? 360;
  const duration = options.durationMs ?? 3500;
  const ftyp = box("ftyp", Buffer.from("isom", "latin1"), Buffer.from([0, 0, 2, 0]), Buffer.from("isomiso2avc1mp41", "latin1"));
  const mvhd = Buffer.alloc(100);
  mvhd.writeUInt32BE(1000, 12); // timescale
  mvhd.writeUInt32BE(duration, 16);
  mvhd.writeUInt32BE(0x00010000, 20); // rate
  mvhd.writeUInt16BE(0x0100, 24); // volume
  MATRIX.copy(mvhd, 36);
  mvhd.writeUInt32BE(3, 96); // next track id
  const moov = box("moov", box("mvhd", mvhd), track(1, "soun", 0, 0, duration), track(2, "vide", width, height, duration));
  const mdat = box("mdat", randomBytes(options.mediaBytes ?? 4096));
  return options.moovFirst === false ? Buffer.concat([ftyp, mdat, moov]) : Buffer.concat([ftyp, moov, mdat]);
}

// --- WebM ----------------------------------------------------------------

function idBytes(id: number): Buffer {
  const bytes: number[] = [];
  for (let v = id; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from(bytes);
}

/** An EBML element with an 8-byte size field (valid at any size). */
function el(id: number, ...parts: Buffer[]): Buffer {
  const data = Buffer.concat(parts);
  const size = Buffer.alloc(8);
  size.writeBigUInt64BE(BigInt(data.length) | (1n << 56n));
  return Buffer.concat([idBytes(id), size, data]);
}

function uintEl(id: number, value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return el(id, b);
}

/** EBML header (DocType webm), Segment: Info (Duration), Tracks (one VP8 video track), one Cluster. */
export function makeWebm(options: { width?: number; height?: number; durationMs?: number; mediaBytes?: number } = {}): Buffer {
  const width = options.width ?? 320;
  const height = options.height ?? 240;
  const duration = Buffer.alloc(8);
  duration.writeDoubleBE(options.durationMs ?? 2250);
  const header = el(0x1a45dfa3, uintEl(0x4286, 1), uintEl(0x42f7, 1), uintEl(0x42f2, 4), uintEl(0x42f3, 8), el(0x4282, Buffer.from("webm")), uintEl(0x4287, 4), uintEl(0x4285, 2));
  const info = el(0x1549a966, uintEl(0x2ad7b1, 1_000_000), el(0x4489, duration), el(0x4d80, Buffer.from("chirp-test")), el(0x5741, Buffer.from("chirp-test")));
  const tracks = el(0x1654ae6b, el(0xae, uintEl(0xd7, 1), uintEl(0x73c5, 1), uintEl(0x83, 1), el(0x86, Buffer.from("V_VP8")), el(0xe0, uintEl(0xb0, width), uintEl(0xba, height))));
  const block = Buffer.concat([Buffer.from([0x81, 0, 0, 0x80]), randomBytes(options.mediaBytes ?? 4096)]);
  const cluster = el(0x1f43b675, uintEl(0xe7, 0), el(0xa3, block));
  return Buffer.concat([header, el(0x18538067, info, tracks, cluster)]);
}

// --- Not media -------------------------------------------------------------

/** The start of a Linux x86-64 executable, then random bytes. */
export function makeElf(size = 8192): Buffer {
  const head = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x00, 0x3e, 0x00, 0x01, 0, 0, 0]);
  return Buffer.concat([head, randomBytes(size - head.length)]);
}
