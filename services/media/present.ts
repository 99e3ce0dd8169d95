import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MediaKind, MediaSchema, type Media } from "../../gen/chirp/media/v1/media_pb.js";
import type { MediaRow } from "./store.js";

/** A media row as the API shows it; the URLs are the gateway's. */
export function presentMedia(row: MediaRow): Media {
  return create(MediaSchema, {
    id: row.id,
    ownerId: row.ownerId,
    contentType: row.contentType,
    sizeBytes: BigInt(row.sizeBytes),
    width: row.width,
    height: row.height,
    ...(row.durationMs === null ? {} : { duration: durationFromMs(row.durationMs) }),
    kind: row.kind === MediaKind.VIDEO ? MediaKind.VIDEO : MediaKind.IMAGE,
    url: `/media/${row.id}`,
    thumbnailUrl: row.thumbSha256 === null ? "" : `/media/${row.id}/thumb`,
    createTime: timestampFromDate(row.createTime),
  });
}
