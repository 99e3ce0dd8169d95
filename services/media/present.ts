import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MediaKind, MediaSchema, type Media } from "../../gen/chirp/media/v1/media_pb.js";
import type { MediaRow } from "./store.js";

/** A media row as the API shows it; the URLs are the gateway's. */
export function presentMedia(row: MediaRow): Media {
  const id = String(row.id);
  return create(MediaSchema, {
    id: BigInt(id),
    ownerId: BigInt(row.owner_id),
    contentType: row.content_type,
    sizeBytes: BigInt(row.size_bytes),
    width: Number(row.width),
    height: Number(row.height),
    ...(row.duration_ms === null ? {} : { duration: durationFromMs(Number(row.duration_ms)) }),
    kind: Number(row.kind) === MediaKind.VIDEO ? MediaKind.VIDEO : MediaKind.IMAGE,
    url: `/media/${id}`,
    thumbnailUrl: row.thumb_sha256 === null ? "" : `/media/${id}/thumb`,
    createTime: timestampFromDate(row.create_time),
  });
}
