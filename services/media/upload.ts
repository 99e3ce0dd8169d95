// Receiving an upload: the stream is spooled to a file while it is hashed,
// its type is decided from its first bytes, and the size limit of that type
// is enforced as the bytes arrive, so nothing more than a chunk is held in
// memory and an oversized upload is refused as soon as it crosses its limit
// (or at once, when the size it declares is already over it).
import { createHash, randomUUID } from "node:crypto";
import { open, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type { UploadRequest } from "../../gen/chirp/media/v1/media_service_pb.js";
import { MediaFormatError } from "./formats/errors.js";
import { probeMp4, type VideoInfo } from "./formats/mp4.js";
import { fileAccess } from "./formats/reader.js";
import { SNIFF_BYTES, isImage, sniff, type ImageFormat, type MediaFormat, type VideoFormat } from "./formats/sniff.js";
import { probeWebm } from "./formats/webm.js";
import type { ImagePool } from "./image/pool.js";
import { TooManyPixelsError, type ImageOptions } from "./image/process.js";

export interface UploadLimits {
  readonly maxImageBytes: number;
  readonly maxVideoBytes: number;
}

export interface Spooled {
  readonly path: string;
  readonly format: MediaFormat;
  readonly size: number;
  /** Hex SHA-256 of the bytes as received. */
  readonly sha256: string;
  readonly fileName: string;
}

const invalid = (message: string): ConnectError => new ConnectError(message, Code.InvalidArgument);
const tooLarge = (format: MediaFormat, limit: number): ConnectError =>
  new ConnectError(`${isImage(format) ? "image" : "video"} larger than ${limit} bytes`, Code.ResourceExhausted);

/**
 * Reads the Upload stream into a spool file. The caller deletes `path` (on
 * success too). InvalidArgument: a stream not made of metadata then chunks,
 * a type we do not store, fewer or more bytes than declared;
 * ResourceExhausted: over the type's size limit.
 */
export async function receiveUpload(requests: AsyncIterable<UploadRequest>, limits: UploadLimits, spoolDir: string): Promise<Spooled> {
  const it = requests[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done === true || first.value.part.case !== "metadata") throw invalid("the first message must be metadata");
  const declared = Number(first.value.part.value.sizeBytes);
  const fileName = first.value.part.value.fileName;
  if (declared > Math.max(limits.maxImageBytes, limits.maxVideoBytes)) {
    throw new ConnectError(`file larger than ${Math.max(limits.maxImageBytes, limits.maxVideoBytes)} bytes`, Code.ResourceExhausted);
  }

  const path = join(spoolDir, `${randomUUID()}.upload`);
  const file = await open(path, "wx", 0o600);
  const hash = createHash("sha256");
  let received = 0;
  let head: Buffer[] = [];
  let headLength = 0;
  let format: MediaFormat | undefined;
  const decide = (): MediaFormat => {
    const found = sniff(Buffer.concat(head));
    head = [];
    if (found === undefined) throw invalid("unsupported file type: JPEG, PNG, GIF, WebP, MP4 or WebM only");
    const limit = isImage(found) ? limits.maxImageBytes : limits.maxVideoBytes;
    if (declared > limit) throw tooLarge(found, limit);
    return found;
  };
  try {
    for (;;) {
      const next = await it.next();
      if (next.done === true) break;
      const part = next.value.part;
      if (part.case !== "chunk") throw invalid("metadata may only come first");
      const chunk = part.value;
      received += chunk.length;
      if (received > declared) throw invalid("more bytes than size_bytes");
      if (format === undefined) {
        head.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        headLength += chunk.length;
        if (headLength >= SNIFF_BYTES) format = decide();
      }
      if (format !== undefined) {
        const limit = isImage(format) ? limits.maxImageBytes : limits.maxVideoBytes;
        if (received > limit) throw tooLarge(format, limit);
      }
      hash.update(chunk);
      await file.write(chunk);
    }
    if (format === undefined) format = decide();
    if (received !== declared) throw invalid("fewer bytes than size_bytes");
    await file.sync();
    await file.close();
    return { path, format, size: received, sha256: hash.digest("hex"), fileName };
  } catch (err) {
    // No more reading: the call answers with this error, which ends the
    // client's stream (grpc-js stops taking its messages).
    await file.close().catch(() => {});
    await unlink(path).catch(() => {});
    throw err;
  }
}

export interface ProcessedImage {
  readonly format: ImageFormat;
  /** The file as served: metadata stripped. */
  readonly bytes: Buffer;
  readonly sha256: string;
  /** As displayed (EXIF orientation applied). */
  readonly width: number;
  readonly height: number;
  readonly thumbnail: Buffer;
  readonly thumbnailSha256: string;
}

const sha256 = (b: Buffer): string => createHash("sha256").update(b).digest("hex");

/**
 * Checks the image's structure, strips its metadata, decodes it (which checks
 * the image data) and makes its thumbnail, on the pool's worker threads.
 * InvalidArgument for a corrupt file or one that declares more pixels than
 * allowed (checked before decoding).
 */
export async function processImage(spooled: Spooled & { format: ImageFormat }, pool: ImagePool, options: ImageOptions): Promise<ProcessedImage> {
  // Images are bounded by their size limit (16 MiB by default); this is the
  // one place an upload is read whole, after it has been received.
  const original = await readFile(spooled.path);
  try {
    const r = await pool.process(spooled.format, original, options);
    const bytes = Buffer.from(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength);
    const thumbnail = Buffer.from(r.thumbnail.buffer, r.thumbnail.byteOffset, r.thumbnail.byteLength);
    return { format: spooled.format, bytes, sha256: sha256(bytes), width: r.width, height: r.height, thumbnail, thumbnailSha256: sha256(thumbnail) };
  } catch (err) {
    if (err instanceof TooManyPixelsError) throw new ConnectError(err.message, Code.InvalidArgument);
    throw asInvalid(err);
  }
}

/** Walks the container (positional reads, never the whole file): InvalidArgument if it is cut short or malformed. */
export async function probeVideo(spooled: Spooled & { format: VideoFormat }): Promise<VideoInfo> {
  const handle = await open(spooled.path, "r");
  try {
    const access = fileAccess(handle, spooled.size);
    return spooled.format === "mp4" ? await probeMp4(access) : await probeWebm(access);
  } catch (err) {
    throw asInvalid(err);
  } finally {
    await handle.close();
  }
}

function asInvalid(err: unknown): unknown {
  return err instanceof MediaFormatError ? new ConnectError(`not a valid file: ${err.message}`, Code.InvalidArgument, undefined, undefined, err) : err;
}
