// MP4 (ISO BMFF): walk the boxes with positional reads. Every top-level box
// must lie inside the file (a cut-off upload fails here), there must be a
// moov, and the duration (mvhd) and the first video track's size (tkhd) are
// read where they are stated.
import { fail } from "./errors.js";
import type { RandomAccess } from "./reader.js";

export interface VideoInfo {
  /** undefined when the container does not state it. */
  readonly durationMs: number | undefined;
  readonly width: number;
  readonly height: number;
}

interface Box {
  readonly type: string;
  readonly start: number;
  readonly data: number;
  readonly end: number;
}

/** Boxes between `from` and `to`; each must fit. */
async function boxes(file: RandomAccess, from: number, to: number): Promise<Box[]> {
  const out: Box[] = [];
  let at = from;
  while (at < to) {
    if (at + 8 > to) fail("mp4: truncated box header");
    const head = await file.read(at, 16);
    if (head.length < 8) fail("mp4: truncated box header");
    let size = head.readUInt32BE(0);
    const type = head.toString("latin1", 4, 8);
    let header = 8;
    if (size === 1) {
      if (head.length < 16) fail("mp4: truncated box header");
      size = Number(head.readBigUInt64BE(8));
      header = 16;
    } else if (size === 0) {
      size = to - at; // to the end of the enclosing space
    }
    if (size < header) fail("mp4: bad box size");
    if (at + size > to) fail("mp4: truncated box");
    out.push({ type, start: at, data: at + header, end: at + size });
    at += size;
  }
  return out;
}

const MAX_SMALL_BOX = 1 << 16;

async function readBox(file: RandomAccess, box: Box): Promise<Buffer> {
  if (box.end - box.data > MAX_SMALL_BOX) fail("mp4: header box too large");
  return file.read(box.data, box.end - box.data);
}

export async function probeMp4(file: RandomAccess): Promise<VideoInfo> {
  const top = await boxes(file, 0, file.size);
  if (top[0]?.type !== "ftyp") fail("mp4: ftyp is not first");
  const moov = top.find((b) => b.type === "moov");
  if (moov === undefined) fail("mp4: no movie header (moov)");
  if (!top.some((b) => b.type === "mdat" || b.type === "moof")) fail("mp4: no media data");

  let durationMs: number | undefined;
  let width = 0;
  let height = 0;
  for (const child of await boxes(file, moov.data, moov.end)) {
    if (child.type === "mvhd") {
      const b = await readBox(file, child);
      const version = b[0];
      const [timescale, duration] =
        version === 1
          ? b.length >= 32 ? [b.readUInt32BE(20), b.readBigUInt64BE(24)] : [0, 0n]
          : b.length >= 20 ? [b.readUInt32BE(12), BigInt(b.readUInt32BE(16))] : [0, 0n];
      const unknown = version === 1 ? duration === 0xffff_ffff_ffff_ffffn : duration === 0xffff_ffffn;
      if (timescale > 0 && duration > 0n && !unknown) durationMs = Number((duration * 1000n) / BigInt(timescale));
    } else if (child.type === "trak" && width === 0) {
      const size = await videoTrackSize(file, child);
      if (size !== undefined) ({ width, height } = size);
    }
  }
  return { durationMs, width, height };
}

/** The presentation size from tkhd, if the track's handler is video. */
async function videoTrackSize(file: RandomAccess, trak: Box): Promise<{ width: number; height: number } | undefined> {
  const children = await boxes(file, trak.data, trak.end);
  const mdia = children.find((b) => b.type === "mdia");
  const tkhd = children.find((b) => b.type === "tkhd");
  if (mdia === undefined || tkhd === undefined) return undefined;
  const hdlr = (await boxes(file, mdia.data, mdia.end)).find((b) => b.type === "hdlr");
  if (hdlr === undefined) return undefined;
  const h = await readBox(file, hdlr);
  if (h.length < 12 || h.toString("latin1", 8, 12) !== "vide") return undefined;
  const t = await readBox(file, tkhd);
  // After version/flags: times and ids (20 bytes in v0, 32 in v1), then 52
  // bytes of reserved, layer, group, volume and matrix; then 16.16 width, height.
  const at = t[0] === 1 ? 4 + 32 + 52 : 4 + 20 + 52;
  if (t.length < at + 8) return undefined;
  return { width: t.readUInt32BE(at) >>> 16, height: t.readUInt32BE(at + 4) >>> 16 };
}
