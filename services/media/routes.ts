import { unlink } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import { MediaKind } from "../../gen/chirp/media/v1/media_pb.js";
import {
  AttachMediaResponseSchema,
  BatchGetMediaResponseSchema,
  GetMediaResponseSchema,
  MediaVariant,
  ReadMediaResponseSchema,
  UploadResponseSchema,
  type MediaService,
  type ReadMediaRequest,
  type ReadMediaResponse,
} from "../../gen/chirp/media/v1/media_service_pb.js";
import { requireCaller } from "../../lib/auth/caller.js";
import { requestIdOf } from "../../lib/rpc/metadata.js";
import type { MediaContext } from "./context.js";
import { CONTENT_TYPES, isImage, type ImageFormat, type VideoFormat } from "./formats/sniff.js";
import { announceMediaUploaded } from "./events.js";
import { presentMedia } from "./present.js";
import type { MediaRow } from "./store.js";
import { probeVideo, processImage, receiveUpload } from "./upload.js";

/** The largest chunk ReadMedia sends. */
const READ_CHUNK = 256 * 1024;

/** MediaService handlers: validate what the proto cannot, call the stores, shape the response. */
export function routes(ctx: MediaContext): Partial<ServiceImpl<typeof MediaService>> {
  const { store, blobs, media: config } = ctx;

  /** A media row by id: lookup, then the owner's shard; replicas first, the primary for what is younger than the lag bound. */
  const find = async (mediaId: bigint): Promise<MediaRow | undefined> => {
    const owner = (await store.ownerOf(mediaId, "reader")) ?? (await store.ownerOf(mediaId, "primary"));
    if (owner === undefined) return undefined;
    return (await store.media(owner, mediaId, "reader")) ?? (await store.media(owner, mediaId, "primary"));
  };

  /** Stores a blob and returns once it is there; a put that raced the sweep's delete is made again. */
  const ensureBlob = async (sha256: string, source: { path: string } | { bytes: Buffer }, size: number): Promise<void> => {
    if ((await blobs.stat(sha256)) === undefined) await blobs.put(sha256, source, size);
  };

  return {
    async getMedia(req) {
      const row = await find(req.mediaId);
      if (row === undefined) throw new ConnectError("media not found", Code.NotFound);
      return create(GetMediaResponseSchema, { media: presentMedia(row) });
    },

    async upload(requests, hctx) {
      const caller = requireCaller(hctx);
      let kind = "unknown";
      try {
        const spooled = await receiveUpload(requests, config, blobs.spoolDir);
        kind = isImage(spooled.format) ? "image" : "video";
        try {
          const id = ctx.ids.next();
          let fields: Omit<Parameters<typeof store.createMedia>[0], "id" | "ownerId" | "contentType" | "sizeBytes">;
          let ensure: () => Promise<void>;
          if (isImage(spooled.format)) {
            const image = await processImage({ ...spooled, format: spooled.format as ImageFormat }, ctx.images, config);
            // Blobs first: a row never names a blob that is not there.
            await blobs.put(image.sha256, { bytes: image.bytes }, image.bytes.length);
            await blobs.put(image.thumbnailSha256, { bytes: image.thumbnail }, image.thumbnail.length);
            fields = {
              kind: MediaKind.IMAGE,
              sha256: image.sha256,
              storedBytes: image.bytes.length,
              width: image.width,
              height: image.height,
              durationMs: undefined,
              thumbSha256: image.thumbnailSha256,
              thumbBytes: image.thumbnail.length,
            };
            ensure = async () => {
              await ensureBlob(image.sha256, { bytes: image.bytes }, image.bytes.length);
              await ensureBlob(image.thumbnailSha256, { bytes: image.thumbnail }, image.thumbnail.length);
            };
          } else {
            const video = await probeVideo({ ...spooled, format: spooled.format as VideoFormat });
            await blobs.put(spooled.sha256, { path: spooled.path }, spooled.size);
            fields = {
              kind: MediaKind.VIDEO,
              sha256: spooled.sha256,
              storedBytes: spooled.size,
              width: video.width,
              height: video.height,
              durationMs: video.durationMs,
              thumbSha256: undefined,
              thumbBytes: undefined,
            };
            ensure = () => ensureBlob(spooled.sha256, { path: spooled.path }, spooled.size);
          }
          await store.insertLookup(id, caller);
          let row: MediaRow;
          try {
            row = await store.createMedia(
              { ...fields, id, ownerId: caller, contentType: CONTENT_TYPES[spooled.format], sizeBytes: spooled.size },
              announceMediaUploaded(ctx.ids, requestIdOf(hctx)),
            );
          } catch (err) {
            await store.deleteLookup(id).catch(() => {});
            throw err;
          }
          // The sweep may have deleted a blob of the same bytes between our
          // put and our insert (it saw no row naming it yet): store it again.
          await ensure();
          ctx.uploads.inc({ kind, result: "ok" });
          return create(UploadResponseSchema, { media: presentMedia(row) });
        } finally {
          await unlinkQuietly(spooled.path);
        }
      } catch (err) {
        ctx.uploads.inc({ kind, result: err instanceof ConnectError ? Code[err.code] : "Internal" });
        throw err;
      }
    },

    async attachMedia(req, hctx) {
      const caller = requireCaller(hctx);
      const result = await store.attach(caller, req.tweetId, req.mediaIds);
      if (result.kind === "refused") {
        // Not on the caller's shard, or someone else's there: the lookup tells
        // "someone else's" from "no such media" for the ones not found.
        const owners = await Promise.all(result.missing.map((id) => store.ownerOf(id, "primary")));
        const unknown = result.missing.filter((_, i) => owners[i] === undefined || owners[i] === caller);
        if (unknown.length > 0) throw new ConnectError("media not found", Code.NotFound);
        throw new ConnectError("media belongs to another user", Code.PermissionDenied);
      }
      if (result.kind === "conflict") throw new ConnectError("media already attached to another tweet", Code.FailedPrecondition);
      return create(AttachMediaResponseSchema, { media: result.rows.map(presentMedia) });
    },

    async batchGetMedia(req) {
      const wanted = [...new Set(req.mediaIds)];
      const byId = new Map((await store.mediaByIds(wanted)).map((row) => [row.id, row]));
      const media = wanted.flatMap((id) => {
        const row = byId.get(id);
        return row === undefined ? [] : [presentMedia(row)];
      });
      return create(BatchGetMediaResponseSchema, { media });
    },

    async *readMedia(req, hctx) {
      const row = await find(req.mediaId);
      if (row === undefined) throw new ConnectError("media not found", Code.NotFound);
      const file = fileOf(row, req.variant);
      if (file === undefined) throw new ConnectError("media has no thumbnail", Code.NotFound);
      const range = resolveRange(req, file.size);
      yield create(ReadMediaResponseSchema, {
        part: {
          case: "info",
          value: {
            contentType: file.contentType,
            sizeBytes: BigInt(file.size),
            sha256: file.sha256,
            satisfiable: range !== undefined,
            rangeStart: BigInt(range?.start ?? 0),
            rangeLength: BigInt(req.infoOnly || range === undefined ? 0 : range.length),
            createTime: timestampFromDate(row.createTime),
          },
        },
      });
      if (req.infoOnly || range === undefined || range.length === 0) return;
      let sent = 0;
      try {
        for await (const piece of blobs.read(file.sha256, range.start, range.start + range.length, hctx.signal)) {
          for (let at = 0; at < piece.length; at += READ_CHUNK) {
            const chunk = piece.subarray(at, at + READ_CHUNK);
            sent += chunk.length;
            yield create(ReadMediaResponseSchema, { part: { case: "chunk", value: chunk } }) as ReadMediaResponse;
          }
        }
      } catch (err) {
        if (hctx.signal.aborted) return;
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          ctx.log.error({ media_id: String(row.id), sha256: file.sha256 }, "media blob missing");
          throw new ConnectError("media file missing", Code.Internal);
        }
        throw err;
      }
      if (sent !== range.length) throw new ConnectError("media file shorter than recorded", Code.Internal);
    },
  };
}

interface ServedFile {
  readonly sha256: string;
  readonly size: number;
  readonly contentType: string;
}

function fileOf(row: MediaRow, variant: MediaVariant): ServedFile | undefined {
  if (variant === MediaVariant.THUMBNAIL) {
    if (row.thumbSha256 === null || row.thumbBytes === null) return undefined;
    return { sha256: row.thumbSha256, size: row.thumbBytes, contentType: "image/jpeg" };
  }
  return { sha256: row.sha256, size: row.storedBytes, contentType: row.contentType };
}

/** The bytes a request asks for within a file of `size` bytes; undefined when the range lies past the end. */
export function resolveRange(req: Pick<ReadMediaRequest, "range">, size: number): { start: number; length: number } | undefined {
  const spec = req.range?.spec;
  if (spec === undefined || spec.case === undefined) return { start: 0, length: size };
  if (spec.case === "suffixLength") {
    const length = Math.min(size, Number(spec.value));
    return { start: size - length, length };
  }
  const first = Number(spec.value.firstByte);
  if (first >= size) return undefined;
  const last = spec.value.lastByte === undefined ? size - 1 : Math.min(size - 1, Number(spec.value.lastByte));
  if (last < first) throw new ConnectError("range ends before it starts", Code.InvalidArgument);
  return { start: first, length: last - first + 1 };
}


async function unlinkQuietly(path: string): Promise<void> {
  await unlink(path).catch(() => {});
}
