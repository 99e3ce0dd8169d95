// WebM (Matroska subset): walk the EBML elements with positional reads. The
// Segment and each of its children must lie inside the file (a cut-off
// upload fails here), Info and Tracks must be there with at least one
// Cluster, and the duration and the first video track's pixel size are read
// where they are stated.
import { fail } from "./errors.js";
import type { VideoInfo } from "./mp4.js";
import type { RandomAccess } from "./reader.js";
import { readElementId, readVint } from "./sniff.js";

const EBML = 0x1a45dfa3;
const SEGMENT = 0x18538067;
const INFO = 0x1549a966;
const TRACKS = 0x1654ae6b;
const CLUSTER = 0x1f43b675;
const TIMESTAMP_SCALE = 0x2ad7b1;
const DURATION = 0x4489;
const TRACK_ENTRY = 0xae;
const TRACK_TYPE = 0x83;
const VIDEO = 0xe0;
const PIXEL_WIDTH = 0xb0;
const PIXEL_HEIGHT = 0xba;
// The Segment's children: an unknown-size one ends where the next begins.
const SEGMENT_CHILDREN = new Set([0x114d9b74, INFO, TRACKS, CLUSTER, 0x1c53bb6b, 0x1941a469, 0x1043a770, 0x1254c367, 0xec, 0xbf]);

interface Element {
  readonly id: number;
  readonly start: number;
  readonly data: number;
  /** undefined: unknown size. */
  readonly size: number | undefined;
}

async function header(file: RandomAccess, at: number): Promise<Element> {
  const head = await file.read(at, 12);
  const id = readElementId(head, 0);
  if (id === undefined) fail("webm: bad element id");
  const size = readVint(head, id.length);
  if (size === undefined) fail("webm: truncated element header");
  return { id: id.id, start: at, data: at + id.length + size.length, size: size.value };
}

/** Known-size children between `from` and `to`; each must fit. */
async function children(file: RandomAccess, from: number, to: number): Promise<Element[]> {
  const out: Element[] = [];
  let at = from;
  while (at < to) {
    const e = await header(file, at);
    if (e.size === undefined) fail("webm: unknown size inside a sized element");
    if (e.data + e.size > to) fail("webm: truncated element");
    out.push(e);
    at = e.data + e.size;
  }
  return out;
}

const MAX_SMALL_ELEMENT = 1 << 20;

async function body(file: RandomAccess, e: Element): Promise<Buffer> {
  const size = e.size ?? 0;
  if (size > MAX_SMALL_ELEMENT) fail("webm: header element too large");
  return file.read(e.data, size);
}

function uint(b: Buffer): number {
  let v = 0;
  for (const byte of b) v = v * 256 + byte;
  return v;
}

export async function probeWebm(file: RandomAccess): Promise<VideoInfo> {
  const ebml = await header(file, 0);
  if (ebml.id !== EBML || ebml.size === undefined) fail("webm: no EBML header");
  const segment = await header(file, ebml.data + ebml.size);
  if (segment.id !== SEGMENT) fail("webm: no segment");
  if (segment.size !== undefined && segment.data + segment.size > file.size) fail("webm: truncated segment");
  const end = segment.size === undefined ? file.size : segment.data + segment.size;

  let scale = 1_000_000;
  let duration: number | undefined;
  let width = 0;
  let height = 0;
  let sawInfo = false;
  let sawTracks = false;
  let clusters = 0;
  let at = segment.data;
  while (at < end) {
    const e = await header(file, at);
    if (e.size === undefined) {
      // A live-written Cluster: its children run until the next Segment child.
      if (e.id !== CLUSTER) fail("webm: unknown-size element");
      clusters++;
      at = await skipUnsized(file, e.data, end);
      continue;
    }
    if (e.data + e.size > end) fail("webm: truncated element");
    if (e.id === INFO) {
      sawInfo = true;
      for (const c of await children(file, e.data, e.data + e.size)) {
        if (c.id === TIMESTAMP_SCALE) scale = uint(await body(file, c)) || scale;
        if (c.id === DURATION) {
          const b = await body(file, c);
          duration = b.length === 8 ? b.readDoubleBE(0) : b.length === 4 ? b.readFloatBE(0) : undefined;
        }
      }
    } else if (e.id === TRACKS) {
      sawTracks = true;
      for (const entry of await children(file, e.data, e.data + e.size)) {
        if (entry.id !== TRACK_ENTRY || width !== 0) continue;
        const fields = await children(file, entry.data, entry.data + (entry.size ?? 0));
        const type = fields.find((f) => f.id === TRACK_TYPE);
        const video = fields.find((f) => f.id === VIDEO);
        if (type === undefined || uint(await body(file, type)) !== 1 || video === undefined) continue;
        for (const v of await children(file, video.data, video.data + (video.size ?? 0))) {
          if (v.id === PIXEL_WIDTH) width = uint(await body(file, v));
          if (v.id === PIXEL_HEIGHT) height = uint(await body(file, v));
        }
      }
    } else if (e.id === CLUSTER) {
      clusters++;
    }
    at = e.data + e.size;
  }
  if (!sawInfo) fail("webm: no segment info");
  if (!sawTracks) fail("webm: no tracks");
  if (clusters === 0) fail("webm: no media data");
  const durationMs = duration !== undefined && Number.isFinite(duration) && duration > 0 ? Math.round((duration * scale) / 1e6) : undefined;
  return { durationMs, width, height };
}

async function skipUnsized(file: RandomAccess, from: number, end: number): Promise<number> {
  let at = from;
  while (at < end) {
    const e = await header(file, at);
    if (SEGMENT_CHILDREN.has(e.id)) return at;
    if (e.size === undefined || e.data + e.size > end) fail("webm: truncated cluster");
    at = e.data + e.size;
  }
  return at;
}
