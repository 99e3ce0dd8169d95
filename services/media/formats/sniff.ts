// What a file is, from its first bytes, never from a name or a header.

export type ImageFormat = "jpeg" | "png" | "gif" | "webp";
export type VideoFormat = "mp4" | "webm";
export type MediaFormat = ImageFormat | VideoFormat;

export const CONTENT_TYPES: Readonly<Record<MediaFormat, string>> = {
  jpeg: "image/jpeg",
  png: "image/png",
  gif: "image/gif",
  webp: "image/webp",
  mp4: "video/mp4",
  webm: "video/webm",
};

export function isImage(format: MediaFormat): format is ImageFormat {
  return format === "jpeg" || format === "png" || format === "gif" || format === "webp";
}

/** How many leading bytes sniff() wants (fewer if the file is shorter). */
export const SNIFF_BYTES = 4096;

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// ISO BMFF brands of MP4 video files. HEIF/AVIF images, QuickTime and
// 3GPP share the container but are other types, and are refused.
const MP4_BRANDS = new Set(["isom", "iso2", "iso3", "iso4", "iso5", "iso6", "iso7", "iso8", "iso9", "mp41", "mp42", "avc1", "M4V ", "M4VH", "M4VP", "dash", "mp71", "MSNV"]);
const NOT_MP4_BRANDS = new Set(["heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif", "avis", "qt  ", "crx "]);

/**
 * The format of a file whose first bytes are `head` (SNIFF_BYTES of them, or
 * the whole file when it is shorter); undefined for anything else.
 */
export function sniff(head: Buffer): MediaFormat | undefined {
  if (head.length >= 3 && head[0] === 0xff && head[1] === 0xd8 && head[2] === 0xff) return "jpeg";
  if (head.length >= 8 && head.subarray(0, 8).equals(PNG_SIGNATURE)) return "png";
  if (head.length >= 6 && (head.toString("latin1", 0, 6) === "GIF87a" || head.toString("latin1", 0, 6) === "GIF89a")) return "gif";
  if (head.length >= 16 && head.toString("latin1", 0, 4) === "RIFF" && head.toString("latin1", 8, 12) === "WEBP") return "webp";
  if (head.length >= 12 && head.toString("latin1", 4, 8) === "ftyp" && isMp4Ftyp(head)) return "mp4";
  if (head.length >= 4 && head.readUInt32BE(0) === 0x1a45dfa3 && ebmlDocType(head) === "webm") return "webm";
  return undefined;
}

function isMp4Ftyp(head: Buffer): boolean {
  const size = head.readUInt32BE(0);
  if (size < 16 || size > head.length) return false;
  const major = head.toString("latin1", 8, 12);
  if (MP4_BRANDS.has(major)) return true;
  if (NOT_MP4_BRANDS.has(major)) return false;
  // An unknown major brand: MP4 if it declares itself compatible with one.
  for (let at = 16; at + 4 <= size; at += 4) {
    const brand = head.toString("latin1", at, at + 4);
    if (brand === "isom" || brand === "mp41" || brand === "mp42") return true;
  }
  return false;
}

/** The DocType of an EBML header at the start of `head` ("webm", "matroska"), if it is there. */
function ebmlDocType(head: Buffer): string | undefined {
  const size = readVint(head, 4);
  if (size === undefined || size.value === undefined) return undefined;
  let at = 4 + size.length;
  const end = Math.min(head.length, at + size.value);
  while (at < end) {
    const id = readElementId(head, at);
    if (id === undefined) return undefined;
    const len = readVint(head, at + id.length);
    if (len === undefined || len.value === undefined) return undefined;
    const data = at + id.length + len.length;
    if (data + len.value > end) return undefined;
    if (id.id === 0x4282) return head.toString("latin1", data, data + len.value).replace(/\0+$/, "");
    at = data + len.value;
  }
  return undefined;
}

/** An EBML element id: 1 to 4 bytes, the length marker kept in the value. */
export function readElementId(buf: Buffer, at: number): { id: number; length: number } | undefined {
  const first = buf[at];
  if (first === undefined || first === 0) return undefined;
  const length = Math.clz32(first) - 23;
  if (length > 4 || at + length > buf.length) return undefined;
  let id = 0;
  for (let i = 0; i < length; i++) id = id * 256 + buf[at + i]!;
  return { id, length };
}

/**
 * An EBML variable-size integer: 1 to 8 bytes, the marker bit removed.
 * `value` is undefined for the reserved all-ones "unknown size".
 */
export function readVint(buf: Buffer, at: number): { value: number | undefined; length: number } | undefined {
  const first = buf[at];
  if (first === undefined || first === 0) return undefined;
  const length = Math.clz32(first) - 23;
  if (at + length > buf.length) return undefined;
  let value = first & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    const b = buf[at + i]!;
    if (b !== 0xff) allOnes = false;
    value = value * 256 + b;
  }
  return { value: allOnes ? undefined : value, length };
}
